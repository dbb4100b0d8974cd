//! A process of the binary under test (the daemon, the webhook) with stdin
//! closed and its output in files, read back for failure messages; stopped with
//! SIGTERM on drop, killed if it ignores that.

use super::poll_for;
use std::cell::RefCell;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

pub struct Process {
    /// In a `RefCell` so that a wait can check the process is alive (which needs
    /// `&mut Child`) while its failure message reads the logs.
    child: RefCell<Child>,
    /// Holds `stdout` and `stderr`; removed on drop.
    logs: tempfile::TempDir,
}

impl Process {
    /// Spawns `cmd`; `what` names it if that fails.
    pub fn spawn(cmd: &mut Command, what: &str) -> Process {
        let logs = tempfile::tempdir().unwrap();
        let stdout = std::fs::File::create(logs.path().join("stdout")).unwrap();
        let stderr = std::fs::File::create(logs.path().join("stderr")).unwrap();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {what}: {e}"));
        Process {
            child: RefCell::new(child),
            logs,
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.borrow().id() as i32
    }

    /// The exit status, if the process has exited.
    pub fn exited(&self) -> Option<ExitStatus> {
        self.child.borrow_mut().try_wait().unwrap()
    }

    /// Wait up to `timeout` for the process to exit.
    pub fn wait_exit(&self, timeout: Duration) -> Option<ExitStatus> {
        poll_for(timeout, || self.exited())
    }

    /// `kill(pid, sig)`, which must succeed.
    pub fn signal(&self, sig: i32) {
        // SAFETY: plain kill(2) of the child this helper started.
        let rc = unsafe { libc::kill(self.pid(), sig) };
        assert_eq!(rc, 0, "kill({}, {sig})", self.pid());
    }

    /// SIGKILL, and reap it.
    pub fn kill(&self) {
        let mut child = self.child.borrow_mut();
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Everything the process wrote so far (stderr, then stdout).
    pub fn logs(&self) -> String {
        let err = std::fs::read_to_string(self.logs.path().join("stderr")).unwrap_or_default();
        let out = std::fs::read_to_string(self.logs.path().join("stdout")).unwrap_or_default();
        format!("{err}{out}")
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if self.child.get_mut().try_wait().ok().flatten().is_none() {
            // SAFETY: plain kill(2) of the child this helper started.
            unsafe { libc::kill(self.pid(), libc::SIGTERM) };
            if self.wait_exit(Duration::from_secs(5)).is_none() {
                self.kill();
            }
        }
    }
}
