//! CPU cost of the backend checks (`run --check`): the real sidecar checks 100
//! backends (100 URLs served by one loopback `openssl s_server` chain root →
//! intermediate → leaf) every second; its CPU time (utime + stime of every thread,
//! from /proc) over a window, divided by the rounds done in it (from
//! `trust_injector_backend_checks_total`, scraped once at each end) is the cost of one
//! round. The same sidecar without checks gives the baseline. Then, with checks on a
//! long interval, an idle sidecar's context switches over a quiet window show that it
//! wakes only for its timers.
//!
//! `cargo bench --bench checks` (release profile: `CARGO_BIN_EXE_trust-injector`).
//! Prints the median of `TI_BENCH_WINDOWS` (default 3) windows of 10 s.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BACKENDS: usize = 100;
const WINDOW: Duration = Duration::from_secs(10);

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let windows: usize = std::env::var("TI_BENCH_WINDOWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let dir = tempfile::tempdir().unwrap();
    let port = serve_chain(dir.path());
    let urls: String = (0..BACKENDS)
        .map(|i| format!("https://localhost:{port}/b{i}\n"))
        .collect();
    std::fs::write(dir.path().join("checks.txt"), urls).unwrap();

    let mut with = Vec::new();
    let mut without = Vec::new();
    for _ in 0..windows {
        with.push(cpu_per_round(dir.path(), &["--check-interval", "1"]));
        without.push(cpu_per_window(dir.path()));
    }
    let (ms, rounds) = median_by(&mut with);
    let base = median(&mut without);
    println!("backends per round:                    {BACKENDS}");
    println!(
        "CPU per round of {BACKENDS} checks (median): {ms:.1} ms ({rounds} rounds in {WINDOW:?})"
    );
    println!(
        "CPU per check:                         {:.2} ms",
        ms / BACKENDS as f64
    );
    println!("sidecar without checks, CPU in {WINDOW:?}: {base:.1} ms");
    let (checker, others) = idle_switches(dir.path());
    println!(
        "idle sidecar with {BACKENDS} checks (interval 300 s), context switches in {WINDOW:?}: \
         checks thread {checker}, other threads {others}"
    );
}

/// Root → intermediate → leaf for localhost, the root as the Secret, and an
/// `openssl s_server` serving the chain; returns its port.
fn serve_chain(dir: &Path) -> u16 {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca = |cn: &str| {
        let mut p = CertificateParams::new(Vec::new()).unwrap();
        p.distinguished_name.push(rcgen::DnType::CommonName, cn);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p
    };
    let root_key = KeyPair::generate().unwrap();
    let root = ca("Bench Root").self_signed(&root_key).unwrap();
    let inter_key = KeyPair::generate().unwrap();
    let inter = ca("Bench Intermediate")
        .signed_by(&inter_key, &root, &root_key)
        .unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".into()])
        .unwrap()
        .signed_by(&leaf_key, &inter, &inter_key)
        .unwrap();
    std::fs::create_dir(dir.join("secret")).unwrap();
    std::fs::write(dir.join("secret/ca.crt"), root.pem()).unwrap();
    std::fs::write(dir.join("leaf.pem"), leaf.pem()).unwrap();
    std::fs::write(dir.join("leaf.key"), leaf_key.serialize_pem()).unwrap();
    std::fs::write(dir.join("inter.pem"), inter.pem()).unwrap();
    let port = free_port();
    let server = Command::new("openssl")
        .args(["s_server", "-quiet", "-www", "-accept"])
        .arg(format!("127.0.0.1:{port}"))
        .args([
            "-cert",
            "leaf.pem",
            "-key",
            "leaf.key",
            "-cert_chain",
            "inter.pem",
        ])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl s_server (Debian package openssl)");
    // Left running until the process exits: a bench, not a test.
    std::mem::forget(server);
    wait(|| TcpStream::connect(("127.0.0.1", port)).is_ok());
    port
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls `f` for up to 30 s.
fn wait(mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < Duration::from_secs(30), "timed out");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The sidecar on the bench's Secret, with `extra` arguments, serving on a free port.
fn sidecar(dir: &Path, extra: &[&str]) -> (Child, u16) {
    let listen = free_port();
    let out = tempfile::tempdir_in(dir).unwrap().keep();
    let child = Command::new(env!("CARGO_BIN_EXE_trust-injector"))
        .args(["run", "--base", "none", "--resync", "0", "--source"])
        .arg(dir.join("secret"))
        .arg("--out-dir")
        .arg(out)
        .arg("--listen")
        .arg(format!("127.0.0.1:{listen}"))
        .args(extra)
        .env("TRUST_INJECTOR_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait(|| get(listen, "/readyz").contains(" 200 "));
    (child, listen)
}

fn get(port: u16, path: &str) -> String {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    let _ = write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n");
    let mut body = String::new();
    let _ = s.read_to_string(&mut body);
    body
}

/// Checks counted so far, every result.
fn checks_done(port: u16) -> f64 {
    get(port, "/metrics")
        .lines()
        .filter(|l| l.starts_with("trust_injector_backend_checks_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// utime + stime of `pid` (every thread), in ms.
fn cpu_ms(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    // After the command name: state is field 3, utime 14, stime 15 (1-based).
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks * 1000.0 / clock_ticks()
}

/// The kernel's clock ticks per second, as `getconf` says (no `unsafe` sysconf).
fn clock_ticks() -> f64 {
    let out = Command::new("getconf").arg("CLK_TCK").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// (CPU ms per round, rounds) of a sidecar checking every backend each second.
fn cpu_per_round(dir: &Path, extra: &[&str]) -> (f64, u64) {
    let file = dir.join("checks.txt");
    let mut args = vec!["--check-file", file.to_str().unwrap()];
    args.extend_from_slice(extra);
    let (mut child, port) = sidecar(dir, &args);
    wait(|| checks_done(port) >= BACKENDS as f64);
    let (c0, n0) = (cpu_ms(child.id()), checks_done(port));
    std::thread::sleep(WINDOW);
    let (c1, n1) = (cpu_ms(child.id()), checks_done(port));
    let _ = child.kill();
    let _ = child.wait();
    let rounds = ((n1 - n0) / BACKENDS as f64).round().max(1.0);
    ((c1 - c0) / rounds, rounds as u64)
}

/// CPU ms of a sidecar without checks over the window.
fn cpu_per_window(dir: &Path) -> f64 {
    let (mut child, _) = sidecar(dir, &[]);
    let c0 = cpu_ms(child.id());
    std::thread::sleep(WINDOW);
    let c1 = cpu_ms(child.id());
    let _ = child.kill();
    let _ = child.wait();
    c1 - c0
}

/// Context switches (voluntary and not) of an idle sidecar with checks on a long
/// interval, over the window after its first round: (the checker thread, the others).
fn idle_switches(dir: &Path) -> (u64, u64) {
    let file = dir.join("checks.txt");
    let args = [
        "--check-file",
        file.to_str().unwrap(),
        "--check-interval",
        "300",
    ];
    let (mut child, port) = sidecar(dir, &args);
    wait(|| checks_done(port) >= BACKENDS as f64);
    // Let the first round's workers finish and the scrape's connection close.
    std::thread::sleep(Duration::from_secs(1));
    let before = switches(child.id());
    std::thread::sleep(WINDOW);
    let after = switches(child.id());
    let _ = child.kill();
    let _ = child.wait();
    (after.0 - before.0, after.1 - before.1)
}

/// Context switches so far: (the `checks` thread, every other thread).
fn switches(pid: u32) -> (u64, u64) {
    let (mut checks, mut others) = (0, 0);
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .flatten()
    {
        let status = std::fs::read_to_string(task.path().join("status")).unwrap_or_default();
        let n = status
            .lines()
            .filter(|l| l.contains("ctxt_switches"))
            .filter_map(|l| l.split_whitespace().last()?.parse::<u64>().ok())
            .sum::<u64>();
        let name = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if name.trim() == "checks" {
            checks += n;
        } else {
            others += n;
        }
    }
    (checks, others)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn median_by(v: &mut [(f64, u64)]) -> (f64, u64) {
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    v[v.len() / 2]
}
