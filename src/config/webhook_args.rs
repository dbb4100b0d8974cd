//! The clap definitions of `webhook` and `webhook certs`.

use super::args::LogFormat;
use crate::inject::cli::{parse_mode, parse_resources};
use crate::inject::Mode;
use clap::{Args, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;

/// `webhook` options (see docs/webhook.md), each with its environment
/// variable like `run`'s, since the Deployment sets them in `env`.
#[derive(Debug, Clone, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct WebhookArgs {
    /// `webhook certs`: print a CA and serving certificate instead of serving.
    #[command(subcommand)]
    pub action: Option<WebhookCommand>,
    /// HTTPS address of the admission endpoint (POST /mutate).
    #[arg(
        long,
        value_name = "ADDR",
        env = "TRUST_INJECTOR_WEBHOOK_LISTEN",
        default_value = "0.0.0.0:8443"
    )]
    pub listen: SocketAddr,
    /// Plain-HTTP address of /healthz, /readyz and /metrics, or `off`; plain so
    /// probes and scrapes work before a certificate exists.
    #[arg(
        long,
        value_name = "ADDR",
        env = "TRUST_INJECTOR_WEBHOOK_PROBE_LISTEN",
        default_value = "0.0.0.0:9898"
    )]
    pub probe_listen: String,
    /// Serving certificate chain (PEM), re-read when it changes.
    #[arg(
        long,
        value_name = "FILE",
        env = "TRUST_INJECTOR_WEBHOOK_TLS_CERT",
        default_value = "/var/run/webhook-tls/tls.crt"
    )]
    pub tls_cert: PathBuf,
    /// Its private key (PEM), re-read with it.
    #[arg(
        long,
        value_name = "FILE",
        env = "TRUST_INJECTOR_WEBHOOK_TLS_KEY",
        default_value = "/var/run/webhook-tls/tls.key"
    )]
    pub tls_key: PathBuf,
    /// Image of the injected sidecar: the webhook's own image (the manifests
    /// copy it from the Deployment), so the two are one binary. Its former
    /// variable TRUST_INJECTOR_IMAGE is still read when this one is unset.
    #[arg(long, value_name = "IMAGE", env = "TRUST_INJECTOR_WEBHOOK_IMAGE", default_value = concat!("ghcr.io/trust-injector/trust-injector:", env!("CARGO_PKG_VERSION")))]
    pub image: String,
    /// Default CA Secret of injected pods (annotation `trust-injector.io/secret` overrides).
    #[arg(long, value_name = "NAME", env = "TRUST_INJECTOR_WEBHOOK_SECRET", default_value = crate::inject::mutate::DEFAULT_SECRET)]
    pub secret: String,
    /// Containers that get the trust (repeatable; default every container;
    /// annotation `trust-injector.io/containers` overrides).
    #[arg(
        long = "container",
        value_name = "NAME",
        env = "TRUST_INJECTOR_WEBHOOK_CONTAINERS",
        value_delimiter = ','
    )]
    pub containers: Vec<String>,
    /// `--include` globs for the sidecar (repeatable; annotation `trust-injector.io/include` overrides).
    #[arg(
        long = "include",
        value_name = "GLOB",
        env = "TRUST_INJECTOR_WEBHOOK_INCLUDE",
        value_delimiter = ','
    )]
    pub include: Vec<String>,
    /// `native` (Kubernetes >= 1.29) or `classic` (annotation `trust-injector.io/mode` overrides).
    #[arg(
        long,
        value_name = "MODE",
        env = "TRUST_INJECTOR_WEBHOOK_MODE",
        default_value = "native",
        value_parser = parse_mode
    )]
    pub mode: Mode,
    /// The sidecar's resources as JSON ResourceRequirements (annotation
    /// `trust-injector.io/resources` overrides); default: inject's.
    #[arg(long, value_name = "JSON", env = "TRUST_INJECTOR_WEBHOOK_RESOURCES", value_parser = parse_resources)]
    pub resources: Option<serde_json::Value>,
    /// OpenShift (restricted-v2 SCC): no fixed runAsUser/runAsGroup on what is
    /// injected (annotation `trust-injector.io/openshift` overrides).
    #[arg(long, env = "TRUST_INJECTOR_WEBHOOK_OPENSHIFT", action = clap::ArgAction::SetTrue, value_parser = super::values::parse_bool)]
    pub openshift: bool,
    /// Largest request body accepted (bytes); a Pod is at most 1.5 MiB in etcd.
    #[arg(long, value_name = "BYTES", env = "TRUST_INJECTOR_WEBHOOK_MAX_BODY_BYTES", default_value_t = 2 * 1024 * 1024, value_parser = clap::value_parser!(u64).range(1024..=64 * 1024 * 1024))]
    pub max_body_bytes: u64,
    /// Seconds allowed to read one request (headers and body) and answer it.
    #[arg(long, value_name = "SECONDS", env = "TRUST_INJECTOR_WEBHOOK_REQUEST_TIMEOUT", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub request_timeout: u64,
    /// After SIGTERM, keep serving this many seconds (not ready) while the
    /// endpoint is removed, then finish in-flight requests and exit.
    #[arg(long, value_name = "SECONDS", env = "TRUST_INJECTOR_WEBHOOK_SHUTDOWN_DELAY", default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=300))]
    pub shutdown_delay: u64,
    /// Seconds between re-reads of the certificate files (safety net against missed events).
    #[arg(long, value_name = "SECONDS", env = "TRUST_INJECTOR_WEBHOOK_RESYNC", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86400))]
    pub resync: u64,
    /// Log line format (level from TRUST_INJECTOR_LOG, RUST_LOG syntax).
    #[arg(
        long,
        value_name = "FORMAT",
        env = "TRUST_INJECTOR_LOG_FORMAT",
        default_value = "text"
    )]
    pub log_format: LogFormat,
}

/// What `webhook` does instead of serving.
#[derive(Debug, Clone, Subcommand)]
pub enum WebhookCommand {
    /// Write a new CA and a serving certificate for the webhook's Service, and
    /// print the caBundle (for installs without cert-manager).
    Certs(WebhookCertsArgs),
    /// Print the help of `webhook` or of `webhook certs`.
    // Answered by `main` before `webhook::main` runs: clap's built-in `help`
    // is off everywhere, as it refuses `help --help`.
    #[command(after_help = "Exit codes: 0 printed; 2 no such command.")]
    Help(super::args::HelpArgs),
}

/// `webhook certs` options.
#[derive(Debug, Clone, Args)]
pub struct WebhookCertsArgs {
    /// Where to write ca.crt, tls.crt and tls.key (created; existing files are refused).
    #[arg(long, value_name = "DIR")]
    pub out_dir: PathBuf,
    /// The webhook Service's name (the certificate's DNS names derive from it).
    #[arg(long, value_name = "NAME", default_value = "trust-injector-webhook")]
    pub service: String,
    /// The webhook's namespace.
    #[arg(long, value_name = "NAMESPACE", default_value = "trust-injector")]
    pub namespace: String,
    /// Validity of both certificates, in days.
    #[arg(long, value_name = "DAYS", default_value_t = 365, value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub days: u32,
}
