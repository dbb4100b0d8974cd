//! A long-running client process (tests/runtimes/) driven line by line: the
//! test writes a mode, the client answers `ok` or `fail <reason>` per line.
//! Long-running because what a runtime caches is the question.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How long one answer of a client may take (a JVM's first TLS handshake is slow).
pub const ANSWER: Duration = Duration::from_secs(60);

/// A long-running client speaking the line protocol of tests/runtimes/: one
/// mode per line in, `ok` or `fail <reason>` (or a number) per line out.
pub struct LongClient {
    pub name: String,
    child: Child,
    pub stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
    stderr: PathBuf,
}

impl LongClient {
    pub fn start(name: &str, mut cmd: Command, stderr: PathBuf) -> LongClient {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut client = LongClient {
            name: name.to_string(),
            child,
            stdin,
            lines,
            stderr,
        };
        let first = client.line("startup");
        assert_eq!(first, "ready", "{} did not start", client.name);
        client
    }

    pub fn line(&mut self, what: &str) -> String {
        match self.lines.recv_timeout(ANSWER) {
            Ok(line) => line,
            Err(_) => {
                let _ = self.child.kill();
                let stderr = std::fs::read_to_string(&self.stderr).unwrap_or_default();
                panic!(
                    "{}: no answer for {what} within {ANSWER:?}; stderr:\n{stderr}",
                    self.name
                )
            }
        }
    }

    /// One request in `mode`: Ok, or the client's reason for failing.
    pub fn ask(&mut self, mode: &str) -> Result<(), String> {
        let answer = self.answer(mode);
        if answer == "ok" {
            Ok(())
        } else {
            Err(answer)
        }
    }

    /// One request in `mode`: the client's whole answer line.
    pub fn answer(&mut self, mode: &str) -> String {
        writeln!(self.stdin, "{mode}").unwrap();
        self.stdin.flush().unwrap();
        self.line(mode)
    }

    pub fn expect_ok(&mut self, mode: &str, when: &str) {
        if let Err(e) = self.ask(mode) {
            panic!("{} {mode} {when}: expected success, got: {e}", self.name);
        }
    }

    pub fn expect_fail(&mut self, mode: &str, when: &str) -> String {
        match self.ask(mode) {
            Ok(()) => panic!("{} {mode} {when}: expected a failure, got ok", self.name),
            Err(e) => e,
        }
    }
}

impl Drop for LongClient {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
