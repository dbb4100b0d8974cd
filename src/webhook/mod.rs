//! `trust-injector webhook`: a mutating admission webhook that adds the
//! sidecar to opted-in Pods at creation, with the very mutation `inject`
//! applies to manifests (see [`mutate`]), so the two can never disagree.
//!
//! [`review`] reads `AdmissionReview`s, [`mutate`] decides, [`patch`] turns
//! the mutated pod into a JSONPatch, [`server`] serves it over rustls with
//! the certificate [`tls`] keeps current; [`certs`] makes a certificate for
//! clusters without cert-manager.

mod certs;
mod handler;
mod lane;
mod metrics;
mod mutate;
mod patch;
mod review;
mod server;
mod tls;

use crate::config::{WebhookArgs, WebhookCommand};
use crate::inject::InjectOptions;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};
use tracing::info;

/// Why the webhook could not run. `Config` is exit code 2, `Fatal` 1.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("{0}")]
    Config(String),
    #[error("{0}")]
    Fatal(String),
}

/// Runs `trust-injector webhook` (or `webhook certs`) to completion.
pub fn main(args: WebhookArgs) -> Result<(), WebhookError> {
    if let Some(WebhookCommand::Certs(c)) = &args.action {
        let ca_bundle = certs::run(c).map_err(|e| WebhookError::Fatal(e.to_string()))?;
        eprintln!(
            "wrote {0}/ca.crt, {0}/tls.crt, {0}/tls.key; the caBundle follows on stdout",
            c.out_dir.display()
        );
        println!("{ca_bundle}");
        return Ok(());
    }
    let probe_listen = match args.probe_listen.as_str() {
        "off" => None,
        a => Some(a.parse::<SocketAddr>().map_err(|e| {
            WebhookError::Config(format!(
                "--probe-listen {a}: {e} (expected IP:PORT, or off)"
            ))
        })?),
    };
    let defaults = inject_options(&args)?;
    crate::logging::init(args.log_format);
    // Current-thread: one review is a few hundred microseconds of JSON work,
    // far below what a cluster's pod creation rate asks (see benches/webhook.rs).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| WebhookError::Fatal(format!("cannot start the runtime: {e}")))?;
    runtime.block_on(serve(args, probe_listen, defaults))
}

/// The pod mutation's defaults from the flags, checked now so a bad value
/// fails at start (exit 2) rather than on the first pod.
fn inject_options(args: &WebhookArgs) -> Result<InjectOptions, WebhookError> {
    let bad = |m: String| WebhookError::Config(m);
    let nonempty = |flag: &str, v: &str| {
        if v.trim().is_empty() {
            Err(bad(format!("{flag}: empty")))
        } else {
            Ok(v.trim().to_string())
        }
    };
    let mut o = InjectOptions {
        image: nonempty("--image", &args.image)?,
        secret: nonempty("--secret", &args.secret)?,
        containers: args
            .containers
            .iter()
            .filter(|c| !c.is_empty())
            .cloned()
            .collect(),
        include: args
            .include
            .iter()
            .filter(|c| !c.is_empty())
            .cloned()
            .collect(),
        mode: args.mode,
        openshift: args.openshift,
        ..InjectOptions::default()
    };
    if let Some(r) = &args.resources {
        o.resources = r.clone();
    }
    Ok(o)
}

async fn serve(
    args: WebhookArgs,
    probe_listen: Option<SocketAddr>,
    defaults: InjectOptions,
) -> Result<(), WebhookError> {
    let bind = |addr: SocketAddr, flag: &'static str| async move {
        TcpListener::bind(addr)
            .await
            .map_err(|e| WebhookError::Fatal(format!("{flag} {addr}: {e}")))
    };
    let https = bind(args.listen, "--listen").await?;
    let probes = match probe_listen {
        Some(a) => Some(bind(a, "--probe-listen").await?),
        None => None,
    };
    let store = Arc::new(tls::CertStore::default());
    let metrics = Arc::new(metrics::WebhookMetrics::new());
    let acceptor = server::acceptor(Arc::clone(&store))
        .map_err(|e| WebhookError::Fatal(format!("TLS configuration: {e}")))?;
    let app = Arc::new(handler::App {
        store: Arc::clone(&store),
        metrics: Arc::clone(&metrics),
        mutator: mutate::Mutator { defaults },
        max_body: args.max_body_bytes,
        request_timeout: Duration::from_secs(args.request_timeout),
        draining: AtomicBool::new(false),
        body_budget: tokio::sync::Semaphore::new(handler::body_budget_kib(args.max_body_bytes)),
        lane: Arc::new(
            lane::Lane::start()
                .map_err(|e| WebhookError::Fatal(format!("cannot start a thread: {e}")))?,
        ),
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let (term_tx, mut term_rx) = watch::channel(false);
    let wake = Arc::new(Notify::new());
    crate::serve::signals::install(term_tx, Arc::clone(&wake))
        .map_err(|e| WebhookError::Fatal(format!("cannot install signal handlers: {e}")))?;
    let files = tls::TlsFiles {
        cert: args.tls_cert.clone(),
        key: args.tls_key.clone(),
    };
    let reloader = tokio::spawn(tls::watch(
        files,
        store,
        metrics,
        Duration::from_secs(args.resync),
        wake,
    ));
    let local = |l: &TcpListener, flag: &str| {
        l.local_addr()
            .map_err(|e| WebhookError::Fatal(format!("{flag}: the bound address: {e}")))
    };
    let addr = local(&https, "--listen")?;
    let probe_addr = match &probes {
        Some(p) => Some(local(p, "--probe-listen")?),
        None => None,
    };
    let probe_task = probes.map(|p| tokio::spawn(server::serve_probes(p, Arc::clone(&app))));
    server::log_listening(addr, probe_addr);
    let serving = tokio::spawn(server::serve_https(
        https,
        acceptor,
        Arc::clone(&app),
        stop_rx,
    ));
    let _ = term_rx.wait_for(|t| *t).await;
    // Not ready first, so the endpoint goes while requests are still served.
    app.draining.store(true, Ordering::Relaxed);
    if args.shutdown_delay > 0 {
        info!(seconds = args.shutdown_delay, "draining before stopping");
        tokio::time::sleep(Duration::from_secs(args.shutdown_delay)).await;
    }
    // The receivers live in the serving task, which is still running.
    let _ = stop_tx.send(true);
    if let Err(e) = serving.await {
        return Err(WebhookError::Fatal(format!(
            "the HTTPS listener failed: {e}"
        )));
    }
    reloader.abort();
    if let Some(p) = probe_task {
        p.abort();
    }
    info!("stopped");
    Ok(())
}
