//! Running `trust-injector run` as a daemon on a loopback port, and talking to its
//! HTTP endpoints with plain HTTP/1.0 over a TcpStream; [`Fixture`] is the Secret
//! and the out-dir it runs on.

use std::cell::RefCell;
use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::Duration;

use super::atomic_writer::AtomicWriter;
use super::process::Process;
use super::{wait_for, wait_for_else, PATIENCE};

/// The counter of reconciles begun, to wait for "the daemon looked again".
pub const RECONCILES: &str = "trust_injector_reconciles_total";

/// A free loopback port (bind :0, read it, release it).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `GET path` on 127.0.0.1:port; returns (status, body) or an error string.
pub fn http_get(port: u16, path: &str) -> Result<(u16, String), String> {
    http_request(port, path, &[], Duration::from_secs(10)).map(|r| (r.status, r.body))
}

/// An HTTP answer with its header block, for tests that look at headers.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    /// The header lines, `name: value` as sent.
    pub headers: Vec<String>,
    pub body: String,
}

impl HttpResponse {
    /// The value of header `name` (case-insensitive), if sent.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find_map(|h| {
            let (n, v) = h.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// `GET path` with extra request headers; the whole exchange must finish within
/// `timeout` (the way a kubelet probe's `timeoutSeconds` bounds it).
pub fn http_request(
    port: u16,
    path: &str,
    headers: &[(&str, &str)],
    timeout: Duration,
) -> Result<HttpResponse, String> {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(timeout)).unwrap();
    s.set_write_timeout(Some(timeout)).unwrap();
    let extra: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n{extra}\r\n").as_bytes())
        .map_err(|e| format!("write: {e}"))?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).map_err(|e| format!("read: {e}"))?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("no header end in response: {text:?}"))?;
    let status_line = head.lines().next().unwrap_or_default();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    Ok(HttpResponse {
        status,
        headers: head.lines().skip(1).map(str::to_string).collect(),
        body,
    })
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// A running `trust-injector run`, stopped with SIGTERM on drop.
pub struct Daemon {
    process: Process,
    pub port: u16,
    pub out_dir: PathBuf,
}

pub struct DaemonBuilder {
    cmd: Command,
    out_dir: PathBuf,
    wait_ready: bool,
    /// `--base`, given once at `start` so that a fixture's default (`none`) can be
    /// changed with [`DaemonBuilder::base`] instead of repeated.
    base: Option<OsString>,
}

impl DaemonBuilder {
    pub fn arg(mut self, a: impl AsRef<OsStr>) -> Self {
        self.cmd.arg(a);
        self
    }
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.cmd.args(args);
        self
    }
    pub fn env(mut self, k: &str, v: impl AsRef<OsStr>) -> Self {
        self.cmd.env(k, v);
        self
    }
    /// `--base BASE` (`none`, `embedded`, a file...).
    pub fn base(mut self, base: impl AsRef<OsStr>) -> Self {
        self.base = Some(base.as_ref().to_os_string());
        self
    }
    /// `--debounce 0`: every event is read at once, for tests that step through
    /// changes one by one (or count what each one does).
    pub fn no_debounce(self) -> Self {
        self.args(["--debounce", "0"])
    }
    /// `--resync SECONDS` (0: only events, signals and timers wake the daemon).
    pub fn resync(self, seconds: u32) -> Self {
        self.arg("--resync").arg(seconds.to_string())
    }
    /// Do not wait for anything after spawning (for tests that look at startup
    /// itself, e.g. the 503s of /readyz before it turns 200).
    pub fn no_wait(mut self) -> Self {
        self.wait_ready = false;
        self
    }
    /// Run the daemon as `uid` (group `uid` too), e.g. 65532 like the image's
    /// user: as root every file is readable, and permission errors never show.
    /// The out-dir and the paths to it must be usable by that user.
    pub fn uid(mut self, uid: u32) -> Self {
        use std::os::unix::process::CommandExt;
        self.cmd.uid(uid).gid(uid);
        self
    }

    pub fn start(mut self) -> Daemon {
        if let Some(base) = &self.base {
            assert!(
                !self.cmd.get_args().any(|a| a == "--base"),
                "--base given twice: use DaemonBuilder::base"
            );
            self.cmd.arg("--base").arg(base);
        }
        let port = free_port();
        self.cmd
            .arg("--out-dir")
            .arg(&self.out_dir)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"));
        let mut d = Daemon {
            process: Process::spawn(&mut self.cmd, "trust-injector"),
            port,
            out_dir: self.out_dir,
        };
        if self.wait_ready {
            d.wait_published();
        }
        d
    }
}

impl Daemon {
    /// `trust-injector run --out-dir OUT --listen 127.0.0.1:<free port>` plus what the
    /// builder adds. Log level `info` unless overridden with `.env("TRUST_INJECTOR_LOG", ..)`.
    pub fn builder(out_dir: &Path) -> DaemonBuilder {
        Daemon::builder_with(super::trust_injector(), out_dir)
    }

    /// [`Daemon::builder`] with `--source SOURCE --base none` (change the base
    /// with [`DaemonBuilder::base`]): what [`Fixture::daemon_on`] starts, for the
    /// tests that need more than one out-dir.
    pub fn on_source(out_dir: &Path, source: &Path) -> DaemonBuilder {
        Daemon::builder(out_dir)
            .arg("--source")
            .arg(source)
            .base("none")
    }

    /// Like [`Daemon::builder`] but starting `cmd`, which must run the sidecar when
    /// given `run ...` (e.g. `qemu-aarch64-static <arm64 binary>`).
    pub fn builder_with(mut cmd: Command, out_dir: &Path) -> DaemonBuilder {
        cmd.arg("run").env("TRUST_INJECTOR_LOG", "info");
        DaemonBuilder {
            cmd,
            out_dir: out_dir.to_path_buf(),
            wait_ready: true,
            base: None,
        }
    }

    pub fn pid(&self) -> i32 {
        self.process.pid()
    }

    /// Wait until the first publish shows in /status (`bundle.sha256` set), which
    /// `start()` does. Not /readyz: a daemon started on a broken source
    /// publishes but is not ready, and the tests about readiness itself must
    /// see its 503s (call `wait_ready` for the 200).
    pub fn wait_published(&mut self) {
        self.wait_answer(
            "/status",
            "no publish in /status",
            "the first publish",
            |a| {
                matches!(a, Ok((200, body))
                if serde_json::from_str::<serde_json::Value>(body)
                    .unwrap_or_default()["bundle"]["sha256"]
                    .is_string())
            },
        )
    }

    /// Wait until /readyz answers 200; panic (with logs) if the process exits first.
    pub fn wait_ready(&mut self) {
        self.wait_answer("/readyz", "/readyz not 200", "/readyz", |a| {
            matches!(a, Ok((200, _)))
        })
    }

    /// Polls `GET path` for 30 s until `done(answer)`; panics `failure` with the
    /// last answer and the logs, or at once if the process exits (`awaited` says
    /// what it was waiting for).
    fn wait_answer(
        &self,
        path: &str,
        failure: &str,
        awaited: &str,
        done: impl Fn(&Result<(u16, String), String>) -> bool,
    ) {
        let last = RefCell::new(None);
        wait_for_else(
            Duration::from_secs(30),
            || {
                format!(
                    "{failure} after 30 s (last answer: {:?}); logs:\n{}",
                    last.borrow(),
                    self.logs_tail()
                )
            },
            || {
                self.assert_running(&format!("while waiting for {awaited}"));
                let answer = http_get(self.port, path);
                let ok = done(&answer);
                *last.borrow_mut() = Some(answer);
                ok.then_some(())
            },
        )
    }

    /// Panic (with logs) if the daemon is no longer running.
    pub fn assert_running(&self, context: &str) {
        if let Some(st) = self.process.exited() {
            panic!(
                "trust-injector exited ({st}) {context}; logs:\n{}",
                self.logs_tail()
            );
        }
    }

    pub fn get(&self, path: &str) -> (u16, String) {
        http_get(self.port, path).unwrap_or_else(|e| {
            panic!(
                "GET {path} on port {}: {e}; logs:\n{}",
                self.port,
                self.logs()
            )
        })
    }

    /// `GET path` with extra request headers (10 s bound).
    pub fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> HttpResponse {
        http_request(self.port, path, headers, Duration::from_secs(10)).unwrap_or_else(|e| {
            panic!(
                "GET {path} on port {}: {e}; logs:\n{}",
                self.port,
                self.logs_tail()
            )
        })
    }

    pub fn status(&self) -> serde_json::Value {
        let (code, body) = self.get("/status");
        assert_eq!(code, 200, "/status: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("/status is not JSON ({e}): {body}"))
    }

    pub fn metrics(&self) -> String {
        let (code, body) = self.get("/metrics");
        assert_eq!(code, 200, "/metrics: {body}");
        body
    }

    /// Sum of all samples of metric `name` (any labels), None if absent.
    pub fn metric(&self, name: &str) -> Option<f64> {
        metric_sum(&self.metrics(), name)
    }

    /// `trust_injector_reconciles_total` now: it ticks as each reconcile begins.
    pub fn reconciles(&self) -> f64 {
        self.metric(RECONCILES).unwrap_or(0.0)
    }

    /// Wait until `trust_injector_reconciles_total` reaches `n`.
    pub fn wait_reconciles(&self, n: f64) {
        wait_for_else(
            PATIENCE,
            || {
                format!(
                    "timed out after {PATIENCE:?} waiting for {n} reconciles (now {}); logs:\n{}",
                    self.reconciles(),
                    self.logs_tail()
                )
            },
            || {
                self.assert_running("while waiting for reconciles");
                (self.reconciles() >= n).then_some(())
            },
        )
    }

    /// Wait until the reconcile under way (if any) and the `n` after it have
    /// ended, and with them everything they set off (a publish, a retry, the
    /// start of a notification): what a test waits for before it says that
    /// something did *not* happen. The counter ticks as a reconcile begins, and
    /// one begins only when the one before has ended, so the (`n`+1)-th tick
    /// from now is the proof. Something must wake the daemon that often:
    /// `--resync`, a publish retry, or events the test makes.
    pub fn wait_reconciles_done(&self, n: u32) {
        self.wait_reconciles(self.reconciles() + f64::from(n) + 1.0);
    }

    /// The last lines of the log, for failure messages.
    pub fn logs_tail(&self) -> String {
        let logs = self.logs();
        let lines: Vec<&str> = logs.lines().collect();
        let skip = lines.len().saturating_sub(40);
        let mut out = String::new();
        if skip > 0 {
            out.push_str(&format!("[... {skip} earlier lines ...]\n"));
        }
        out.push_str(&lines[skip..].join("\n"));
        out
    }

    /// Everything the daemon logged so far (stderr, then stdout).
    pub fn logs(&self) -> String {
        self.process.logs()
    }

    pub fn signal(&self, sig: i32) {
        self.process.signal(sig);
    }

    /// Wait up to `timeout` for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        self.process.wait_exit(timeout)
    }

    /// SIGTERM and wait (the orderly way every test ends).
    pub fn stop(&mut self) -> ExitStatus {
        if let Some(st) = self.process.exited() {
            return st;
        }
        self.signal(libc::SIGTERM);
        match self.wait_exit(Duration::from_secs(10)) {
            Some(st) => st,
            None => {
                self.process.kill();
                panic!("trust-injector ignored SIGTERM for 10 s");
            }
        }
    }

    /// Poll until the published bundle satisfies `f` (bounded by PATIENCE).
    pub fn wait_bundle(&mut self, what: &str, mut f: impl FnMut(&[String]) -> bool) -> Vec<String> {
        let out = self.out_dir.clone();
        wait_for_else(
            PATIENCE,
            || {
                let now = super::bundle::read_bundle(&out).map(|b| {
                    if b.len() > 8 {
                        format!(
                            "{} certificates, the last 8: {:?}",
                            b.len(),
                            &b[b.len() - 8..]
                        )
                    } else {
                        format!("{b:?}")
                    }
                });
                format!(
                    "timed out after {PATIENCE:?} waiting for bundle: {what}\nbundle now: {now:?}\nlogs:\n{}",
                    self.logs_tail()
                )
            },
            || {
                self.assert_running(&format!("while waiting for bundle: {what}"));
                super::bundle::read_bundle(&out).filter(|fps| f(fps))
            },
        )
    }

    /// Poll until `f(/status)` holds.
    pub fn wait_status(&self, what: &str, mut f: impl FnMut(&serde_json::Value) -> bool) {
        wait_for(PATIENCE, what, || f(&self.status()).then_some(()));
    }
}

/// A Secret, an out-dir, a daemon: what nearly every test starts from. One
/// temporary directory holds the Secret volume (`secret/`, written kubelet-style
/// through [`AtomicWriter`]) and the empty out-dir (`out/`); anything else a test
/// needs (a plain source directory, a base file) goes beside them, in
/// [`Fixture::path`].
pub struct Fixture {
    pub secret: AtomicWriter,
    pub out: PathBuf,
    /// Removed on drop, with everything in it.
    tmp: tempfile::TempDir,
}

impl Fixture {
    /// An empty Secret volume (what an optional Secret that does not exist looks
    /// like) and an empty out-dir.
    pub fn new() -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let secret = AtomicWriter::new(&tmp.path().join("secret"));
        let out = tmp.path().join("out");
        std::fs::create_dir(&out).unwrap();
        Fixture { secret, out, tmp }
    }

    /// The Secret holding `payload` (keys and their bytes).
    pub fn with_secret(payload: &[(&str, &[u8])]) -> Fixture {
        let f = Fixture::new();
        f.secret.write(payload);
        f
    }

    /// The Secret holding one key, `ca.crt`, with `pem`.
    pub fn with_ca(pem: &str) -> Fixture {
        Fixture::with_secret(&[("ca.crt", pem.as_bytes())])
    }

    /// A plain directory `name` (not kubelet-style) beside the Secret, holding
    /// `ca.crt` with `pem`: the source of tests that change files in place.
    pub fn plain_source(&self, name: &str, pem: &str) -> PathBuf {
        let dir = self.path().join(name);
        super::write_file(&dir.join("ca.crt"), pem);
        dir
    }

    /// The temporary directory the Secret and the out-dir are in.
    pub fn path(&self) -> &Path {
        self.tmp.path()
    }

    /// `trust-injector run --source SECRET --base none` publishing into the
    /// out-dir (change the base with [`DaemonBuilder::base`]).
    pub fn daemon(&self) -> DaemonBuilder {
        self.daemon_on(self.secret.dir())
    }

    /// Like [`Fixture::daemon`] on another source (a plain directory, a file).
    pub fn daemon_on(&self, source: &Path) -> DaemonBuilder {
        Daemon::on_source(&self.out, source)
    }

    /// Like [`Fixture::daemon`], starting the sidecar through `cmd` (see
    /// [`Daemon::builder_with`]).
    pub fn daemon_with(&self, cmd: Command) -> DaemonBuilder {
        Daemon::builder_with(cmd, &self.out)
            .arg("--source")
            .arg(self.secret.dir())
            .base("none")
    }
}

/// Sum of all samples of metric `name` in Prometheus text, None if no sample exists.
pub fn metric_sum(text: &str, name: &str) -> Option<f64> {
    let mut sum = None;
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        let metric = line.split(['{', ' ']).next().unwrap_or_default();
        if metric != name {
            continue;
        }
        let value = line.rsplit(' ').next().unwrap_or_default();
        let v: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("unparsable sample: {line}"));
        *sum.get_or_insert(0.0) += v;
    }
    sum
}
