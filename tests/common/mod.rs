//! Helpers shared by the integration tests (`mod common;` in each test file).
//!
//! Every test drives the real `trust-injector` binary as a black box, the way a
//! user or the kubelet would, and checks the result with real TLS clients.
#![allow(dead_code)]

pub mod atomic_writer;
pub mod bundle;
pub mod daemon;
pub mod endpoint;
pub mod faulty;
pub mod hostile_der;
pub mod https;
pub mod leak;
pub mod long_client;
pub mod openssl;
pub mod pki;
pub mod process;
pub mod python;
pub mod rotation;
pub mod tools;
pub mod webhook;
pub mod yaml;

use std::path::Path;
use std::time::{Duration, Instant};

/// Generous upper bound for anything the daemon should do "soon".
pub const PATIENCE: Duration = Duration::from_secs(20);
const POLL: Duration = Duration::from_millis(25);

/// Poll `f` every 25 ms until it returns `Some`, or `None` once `timeout` has passed:
/// the one poll loop of the tests, for waits whose timeout is not a failure (e.g.
/// "did the process exit?").
pub fn poll_for<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if start.elapsed() > timeout {
            return None;
        }
        std::thread::sleep(POLL);
    }
}

/// Poll `f` until it returns `Some`, or panic after `timeout` with `describe()`,
/// built only then: a failure can show the state at that moment (the logs, the last
/// answer) without every poll paying for it.
pub fn wait_for_else<T>(
    timeout: Duration,
    describe: impl FnOnce() -> String,
    f: impl FnMut() -> Option<T>,
) -> T {
    poll_for(timeout, f).unwrap_or_else(|| panic!("{}", describe()))
}

/// Poll `f` until it returns `Some`, or panic after `timeout` describing what was awaited.
pub fn wait_for<T>(timeout: Duration, what: &str, f: impl FnMut() -> Option<T>) -> T {
    wait_for_else(
        timeout,
        || format!("timed out after {timeout:?} waiting for: {what}"),
        f,
    )
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
    hermetic_command(bin())
}

/// `program` with the hermetic environment of [`trust_injector`]: for running the
/// sidecar through something else (e.g. `qemu-aarch64-static <arm64 binary>`).
pub fn hermetic_command(program: &str) -> std::process::Command {
    let mut cmd = tools::clean_command(program);
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

/// `run --once --source SOURCE --base BASE --out-dir OUT EXTRA...`: the one-shot
/// publish that most tests of the outputs and the command line start from.
pub fn run_once_on(source: &Path, base: &str, out: &Path, extra: &[&str]) -> tools::Out {
    run_once(
        &[
            &["--source", s(source), "--base", base, "--out-dir", s(out)],
            extra,
        ]
        .concat(),
    )
}

/// [`run_once_on`], which must exit 0.
pub fn publish_once(source: &Path, base: &str, out: &Path, extra: &[&str]) -> tools::Out {
    let out = run_once_on(source, base, out, extra);
    assert_eq!(out.code(), Some(0), "run --once failed:\n{}", out.text());
    out
}

/// The names of the temporary files (`.tmp-*`) in `out_dir`: a publish that has
/// ended, whichever way, leaves none.
pub fn temp_files(out_dir: &Path) -> Vec<String> {
    std::fs::read_dir(out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".tmp-"))
        .collect()
}

/// `out_dir` holds exactly the published files: the bundle (a regular file), `certs`
/// (a symlink) and the one versioned directory it points to, plus at most the
/// retired versions a reader may still be scanning (docs/publishing.md: each a
/// directory of hashed entries, removed by a later publish after a grace).
/// Nothing temporary.
pub fn assert_clean_out_dir(out_dir: &Path) {
    let mut names: Vec<String> = std::fs::read_dir(out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let bundle_meta = std::fs::symlink_metadata(out_dir.join(bundle::BUNDLE))
        .unwrap_or_else(|e| panic!("{}: {e}; out-dir holds {names:?}", bundle::BUNDLE));
    assert!(
        bundle_meta.is_file(),
        "{} is a regular file",
        bundle::BUNDLE
    );
    let target = std::fs::read_link(out_dir.join(bundle::CERTS))
        .unwrap_or_else(|e| panic!("certs is a symlink ({e}); out-dir holds {names:?}"));
    let target_name = target
        .file_name()
        .unwrap_or_else(|| panic!("certs -> {target:?}"))
        .to_string_lossy()
        .into_owned();
    let resolved = out_dir.join(&target);
    assert!(
        resolved.is_dir()
            && resolved.parent().map(|p| p.canonicalize().unwrap())
                == Some(out_dir.canonicalize().unwrap()),
        "certs -> {target:?} is a directory inside out-dir"
    );
    let mut expected = vec![
        bundle::BUNDLE.to_string(),
        bundle::CERTS.to_string(),
        target_name.clone(),
    ];
    let retired: Vec<&String> = names
        .iter()
        .filter(|n| n.starts_with(".certs-") && **n != target_name)
        .collect();
    assert!(
        retired.len() <= 2,
        "at most two retired versions: {names:?}"
    );
    for name in retired {
        let entries: Vec<String> = std::fs::read_dir(out_dir.join(name))
            .unwrap_or_else(|e| panic!("{name} is a directory ({e}); out-dir holds {names:?}"))
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            entries.iter().all(|e| bundle::is_hash_name(e)),
            "retired {name} holds only hashed entries: {entries:?}"
        );
        expected.push(name.clone());
    }
    expected.sort();
    assert_eq!(names, expected, "out-dir holds only the published files");
}

/// In a /status document, the innermost object that carries an error (a field whose
/// name contains "error" with a non-empty value) about `needle`: either the error text
/// mentions it, or one of the object's own string fields (e.g. its path) does.
/// Tolerant of the exact JSON shape, which the contract does not fix.
pub fn error_about(v: &serde_json::Value, needle: &str) -> Option<serde_json::Value> {
    use serde_json::Value;
    match v {
        Value::Array(items) => items.iter().find_map(|i| error_about(i, needle)),
        Value::Object(map) => {
            if let Some(found) = map.values().find_map(|c| error_about(c, needle)) {
                return Some(found);
            }
            let errors: Vec<&Value> = map
                .iter()
                .filter(|(k, v)| {
                    k.to_ascii_lowercase().contains("error")
                        && !matches!(v, Value::Null | Value::Bool(false))
                        && v.as_str() != Some("")
                        && v.as_array().map(|a| !a.is_empty()).unwrap_or(true)
                        && v.as_u64().map(|n| n > 0).unwrap_or(true)
                })
                .map(|(_, v)| v)
                .collect();
            if errors.is_empty() {
                return None;
            }
            let in_error = errors.iter().any(|e| e.to_string().contains(needle));
            let in_own_fields = map
                .values()
                .any(|f| f.as_str().map(|s| s.contains(needle)).unwrap_or(false));
            (in_error || in_own_fields).then(|| v.clone())
        }
        _ => None,
    }
}

/// Lines of `logs` that mention `needle` at one of `levels` (case-insensitive,
/// e.g. &["warn", "error"]).
pub fn log_lines_about<'a>(logs: &'a str, needle: &str, levels: &[&str]) -> Vec<&'a str> {
    logs.lines()
        .filter(|l| {
            let low = l.to_ascii_lowercase();
            l.contains(needle) && levels.iter().any(|lv| low.contains(lv))
        })
        .collect()
}
