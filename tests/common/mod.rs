//! Helpers shared by the integration tests (`mod common;` in each test file).
//!
//! Every test drives the real `trust-injector` binary as a black box, the way a
//! user or the kubelet would, and checks the result with real TLS clients.
#![allow(dead_code)]

pub mod atomic_writer;
pub mod bundle;
pub mod daemon;
pub mod https;
pub mod pki;
pub mod tools;

use std::path::Path;
use std::time::{Duration, Instant};

/// Generous upper bound for anything the daemon should do "soon".
pub const PATIENCE: Duration = Duration::from_secs(20);
const POLL: Duration = Duration::from_millis(25);

/// Poll `f` until it returns `Some`, or panic after `timeout` describing what was awaited.
pub fn wait_for<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        if start.elapsed() > timeout {
            panic!("timed out after {timeout:?} waiting for: {what}");
        }
        std::thread::sleep(POLL);
    }
}

/// Poll `f` until it returns true, or panic after `timeout`.
pub fn wait_until(timeout: Duration, what: &str, mut f: impl FnMut() -> bool) {
    wait_for(timeout, what, || f().then_some(()))
}

/// The binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_trust-injector")
}

/// A `Command` for the binary under test with a hermetic environment: no
/// `TRUST_INJECTOR_*` variables leak in from the machine, no CA-related variables.
pub fn trust_injector() -> std::process::Command {
    let mut cmd = tools::clean_command(bin());
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("TRUST_INJECTOR_") || k == "RUST_LOG" {
            cmd.env_remove(&k);
        }
    }
    cmd
}

/// Path as &str (test temp dirs are always UTF-8).
pub fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Write a file, creating parents.
pub fn write_file(path: &Path, bytes: impl AsRef<[u8]>) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(path, bytes).unwrap();
}

/// Replace a file atomically (write a sibling, rename over).
pub fn replace_file(path: &Path, bytes: impl AsRef<[u8]>) {
    let tmp = path.with_extension("tmp-replace");
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// `trust-injector run --once ARGS...` (60 s bound).
pub fn run_once<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> tools::Out {
    let mut cmd = trust_injector();
    cmd.arg("run").arg("--once").args(args);
    tools::run(&mut cmd, std::time::Duration::from_secs(60))
}

/// Like `run_once` but panics with the output unless it exits 0.
pub fn run_once_ok<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> tools::Out {
    let out = run_once(args);
    assert_eq!(out.code(), Some(0), "run --once failed:\n{}", out.text());
    out
}
