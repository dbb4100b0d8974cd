//! Load on `trust-injector webhook` over loopback HTTPS: reviews per second,
//! latency percentiles and the server's memory while under that load.
//!
//! `cargo bench --bench webhook`. Starts the real binary (the bench profile's
//! build of it), then `TI_BENCH_CLIENTS` (default 4) threads each keep one
//! TLS connection alive, as the API server does, and send the review of an
//! opted-in Pod back to back for `TI_BENCH_SECONDS` (default 5); a second
//! phase opens a new connection for every review (handshake included).
//! Memory is the server's VmRSS at the end of the load and VmHWM (its peak),
//! from /proc. A `harness = false` bench for the reasons in benches/pipeline.rs.
//!
//! Then the large reviews (issue 24): on a fresh server, one review of
//! `TI_BENCH_LARGE_BYTES` (default 2 MiB, the default body limit; a pod of
//! 200 containers with large environments, every one a target): its latency
//! and what it adds to the peak RSS; then, while two clients send such
//! reviews back to back, the latency of one-container reviews and of
//! `/healthz`.

use rustls::pki_types::{CertificateDer, ServerName};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

const POD: &str = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"generateName":"gateway-7d9c5b-","namespace":"apps","labels":{"app":"gateway","pod-template-hash":"7d9c5b","trust-injector.io/inject":"true"},"ownerReferences":[{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"gateway-7d9c5b","uid":"0b6f5c8e-2f53-4b7a-9d1e-3c1f0e6a7b21","controller":true,"blockOwnerDeletion":true}]},"spec":{"containers":[{"name":"gateway","image":"mcr.microsoft.com/azure-api-management/gateway:v2","env":[{"name":"config.service.endpoint","value":"https://example.configuration.azure-api.net"},{"name":"config.service.auth","valueFrom":{"secretKeyRef":{"name":"gw-token","key":"value"}}}],"ports":[{"containerPort":8080},{"containerPort":8081}],"resources":{"requests":{"cpu":"500m","memory":"512Mi"}}}],"terminationGracePeriodSeconds":60}}"#;

fn review_body() -> Vec<u8> {
    review_of(POD)
}

/// A pod of 200 containers (under the webhook's cap), each with as many
/// environment variables as make the review about `bytes` long.
fn large_review(bytes: usize) -> Vec<u8> {
    let containers = 200;
    let entry = r#"{"name":"VAR_100_100","value":"value-00000000000000000100"},"#.len();
    let env_each = bytes.saturating_sub(4096) / containers / entry;
    let list: Vec<String> = (0..containers)
        .map(|c| {
            let env: Vec<String> = (0..env_each)
                .map(|e| format!(r#"{{"name":"VAR_{c}_{e}","value":"value-{e:0>20}"}}"#))
                .collect();
            format!(
                r#"{{"name":"c{c}","image":"example/app:1","env":[{}]}}"#,
                env.join(",")
            )
        })
        .collect();
    let pod = format!(
        r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"generateName":"big-","namespace":"apps","labels":{{"trust-injector.io/inject":"true"}}}},"spec":{{"containers":[{}]}}}}"#,
        list.join(",")
    );
    review_of(&pod)
}

fn review_of(pod: &str) -> Vec<u8> {
    format!(
        r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{{"uid":"bench","kind":{{"group":"","version":"v1","kind":"Pod"}},"resource":{{"group":"","version":"v1","resource":"pods"}},"namespace":"apps","operation":"CREATE","userInfo":{{"username":"system:serviceaccount:kube-system:replicaset-controller"}},"object":{pod},"oldObject":null,"dryRun":false}}}}"#
    )
    .into_bytes()
}

struct Server {
    child: Child,
    port: u16,
    probe_port: u16,
    _dir: tempfile::TempDir,
    roots: rustls::RootCertStore,
}

impl Server {
    fn start() -> Server {
        let dir = tempfile::tempdir().unwrap();
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = ca.self_signed(&ca_key).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let leaf = rcgen::CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .signed_by(&key, &ca, &ca_key)
            .unwrap();
        std::fs::write(dir.path().join("tls.crt"), leaf.pem()).unwrap();
        std::fs::write(dir.path().join("tls.key"), key.serialize_pem()).unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(CertificateDer::from(ca.der().to_vec())).unwrap();
        let (port, probe_port) = (free_port(), free_port());
        let child = Command::new(env!("CARGO_BIN_EXE_trust-injector"))
            .arg("webhook")
            .arg(format!("--listen=127.0.0.1:{port}"))
            .arg(format!("--probe-listen=127.0.0.1:{probe_port}"))
            .arg("--tls-cert")
            .arg(dir.path().join("tls.crt"))
            .arg("--tls-key")
            .arg(dir.path().join("tls.key"))
            .env("TRUST_INJECTOR_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let s = Server {
            child,
            port,
            probe_port,
            _dir: dir,
            roots,
        };
        let start = Instant::now();
        while !s.ready() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "webhook not ready"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        s
    }

    fn ready(&self) -> bool {
        let Ok(mut c) = TcpStream::connect(("127.0.0.1", self.probe_port)) else {
            return false;
        };
        let _ = c.write_all(b"GET /readyz HTTP/1.0\r\n\r\n");
        let mut s = String::new();
        let _ = c.read_to_string(&mut s);
        s.starts_with("HTTP/1.0 200") || s.starts_with("HTTP/1.1 200")
    }

    /// (VmRSS, VmHWM) in KiB.
    fn memory(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

type Tls = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

fn connect(config: &Arc<rustls::ClientConfig>, port: u16) -> Tls {
    let sock = TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], port))).unwrap();
    sock.set_nodelay(true).unwrap();
    let conn = rustls::ClientConnection::new(
        Arc::clone(config),
        ServerName::try_from("localhost").unwrap(),
    )
    .unwrap();
    rustls::StreamOwned::new(conn, sock)
}

/// One review on `tls`; panics unless it is a 200 carrying a patch.
fn call(tls: &mut Tls, request: &[u8]) {
    tls.write_all(request).unwrap();
    let mut buf = Vec::with_capacity(16 * 1024);
    let mut chunk = [0u8; 16 * 1024];
    let (head_end, length) = loop {
        let n = tls.read(&mut chunk).unwrap();
        assert!(n > 0, "connection closed mid-response");
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            assert!(head.starts_with("http/1.1 200"), "{head}");
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map(|v| v.trim().parse().unwrap())
                .expect("content-length");
            break (end + 4, length);
        }
    };
    while buf.len() < head_end + length {
        let n = tls.read(&mut chunk).unwrap();
        assert!(n > 0, "connection closed mid-body");
        buf.extend_from_slice(&chunk[..n]);
    }
    assert!(
        buf[head_end..].windows(9).any(|w| w == b"JSONPatch"),
        "not injected"
    );
}

fn client_config(server: &Server) -> Arc<rustls::ClientConfig> {
    Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(server.roots.clone())
        .with_no_client_auth(),
    )
}

/// The HTTP request carrying review `body`.
fn request(body: &[u8]) -> Vec<u8> {
    let mut request = format!(
        "POST /mutate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    request
}

/// Runs `clients` threads for `seconds`; returns every latency in seconds.
fn load(server: &Server, clients: usize, seconds: f64, fresh: bool) -> Vec<f64> {
    let config = client_config(server);
    let request = Arc::new(request(&review_body()));
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let (config, request, port) = (Arc::clone(&config), Arc::clone(&request), server.port);
            std::thread::spawn(move || {
                let mut lat = Vec::new();
                let mut kept = connect(&config, port);
                while Instant::now() < deadline {
                    let t = Instant::now();
                    if fresh {
                        let mut c = connect(&config, port);
                        call(&mut c, &request);
                    } else {
                        call(&mut kept, &request);
                    }
                    lat.push(t.elapsed().as_secs_f64());
                }
                lat
            })
        })
        .collect();
    threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect()
}

/// One `GET /healthz` on a new connection, as the kubelet sends it.
fn healthz(port: u16) -> bool {
    let Ok(mut c) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = c.write_all(b"GET /healthz HTTP/1.0\r\n\r\n");
    let mut s = String::new();
    let _ = c.read_to_string(&mut s);
    s.starts_with("HTTP/1.0 200") || s.starts_with("HTTP/1.1 200")
}

/// One large review on a fresh, warmed-up server: its latency, and what it
/// adds to the server's peak RSS and keeps afterwards.
fn one_large(bytes: usize) {
    let server = Server::start();
    let config = client_config(&server);
    let small = request(&review_body());
    let big = request(&large_review(bytes));
    let mut c = connect(&config, server.port);
    for _ in 0..50 {
        call(&mut c, &small);
    }
    let (rss0, hwm0) = server.memory();
    let t = Instant::now();
    call(&mut c, &big);
    let took = t.elapsed().as_secs_f64() * 1e3;
    let (rss1, hwm1) = server.memory();
    std::thread::sleep(Duration::from_secs(1));
    let (rss2, _) = server.memory();
    println!(
        "one {} KiB review: {took:.1} ms; peak RSS +{} KiB (VmHWM {hwm0} -> {hwm1} KiB); RSS {rss0} KiB before, {rss1} KiB just after, {rss2} KiB 1 s later",
        big.len() / 1024,
        hwm1.saturating_sub(hwm0)
    );
}

/// Two clients send large reviews back to back for `seconds`; meanwhile one
/// client sends one-container reviews (keep-alive) and another probes
/// `/healthz`, each every 20 ms. Reports both latencies and the peak RSS.
fn large_stream(bytes: usize, seconds: f64) {
    let server = Server::start();
    let config = client_config(&server);
    let big = Arc::new(request(&large_review(bytes)));
    let small = request(&review_body());
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let large: Vec<_> = (0..2)
        .map(|_| {
            let (config, big, port) = (Arc::clone(&config), Arc::clone(&big), server.port);
            std::thread::spawn(move || {
                let mut c = connect(&config, port);
                let mut n = 0;
                while Instant::now() < deadline {
                    call(&mut c, &big);
                    n += 1;
                }
                n
            })
        })
        .collect();
    let probe_port = server.probe_port;
    let probes = std::thread::spawn(move || {
        let mut lat = Vec::new();
        while Instant::now() < deadline {
            let t = Instant::now();
            assert!(healthz(probe_port), "/healthz failed");
            lat.push(t.elapsed().as_secs_f64());
            std::thread::sleep(Duration::from_millis(20));
        }
        lat
    });
    let mut c = connect(&config, server.port);
    let mut lat = Vec::new();
    while Instant::now() < deadline {
        let t = Instant::now();
        call(&mut c, &small);
        lat.push(t.elapsed().as_secs_f64());
        std::thread::sleep(Duration::from_millis(20));
    }
    let large: usize = large.into_iter().map(|t| t.join().unwrap()).sum();
    let probes = probes.join().unwrap();
    println!(
        "during {large} large reviews of {} KiB from 2 clients:",
        big.len() / 1024
    );
    report("  one-container review", lat, seconds);
    report("  GET /healthz", probes, seconds);
    let (rss, hwm) = server.memory();
    println!("  server memory: RSS {rss} KiB at the end, peak (VmHWM) {hwm} KiB");
}

fn report(what: &str, mut lat: Vec<f64>, seconds: f64) {
    lat.sort_by(|a, b| a.total_cmp(b));
    let q = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)] * 1e3;
    println!(
        "{what:<28} {:>9.0} reviews/s   p50 {:>6.2} ms   p99 {:>6.2} ms   max {:>6.2} ms   ({} reviews)",
        lat.len() as f64 / seconds,
        q(0.50),
        q(0.99),
        lat.last().unwrap() * 1e3,
        lat.len()
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let env = |k: &str, d: f64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let clients = env("TI_BENCH_CLIENTS", 4.0) as usize;
    let seconds = env("TI_BENCH_SECONDS", 5.0);
    let server = Server::start();
    let (idle_rss, _) = server.memory();
    // Warm-up: connections, allocator arenas.
    let _ = load(&server, clients, 0.5, false);
    let kept = load(&server, clients, seconds, false);
    let (rss, _) = server.memory();
    report(&format!("keep-alive, {clients} clients"), kept, seconds);
    let fresh = load(&server, clients, seconds, true);
    let (rss2, hwm) = server.memory();
    report(&format!("new connection each, {clients}"), fresh, seconds);
    println!(
        "server memory: idle {idle_rss} KiB, under keep-alive load {rss} KiB, after handshake load {rss2} KiB, peak (VmHWM) {hwm} KiB"
    );
    drop(server);
    let large = env("TI_BENCH_LARGE_BYTES", 2.0 * 1024.0 * 1024.0) as usize;
    one_large(large);
    large_stream(large, seconds);
}
