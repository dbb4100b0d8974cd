//! Unix signals, turned into events for the reconcile loop.
//!
//! signal-hook's pipe registration is the async-signal-safe way in: the
//! handler only writes a byte to a socket, and a task reads it on the runtime.
//! SIGTERM/SIGINT flip the shutdown flag; SIGHUP asks for a re-read.

use std::io;
use std::os::unix::net::UnixStream as StdUnixStream;
use std::sync::Arc;
use tokio::io::AsyncReadExt;
use tokio::net::UnixStream;
use tokio::sync::{watch, Notify};
use tracing::info;

/// Installs the handlers. `shutdown` is set to true on SIGTERM or SIGINT;
/// `reread` is notified on SIGHUP. Must be called inside the runtime.
pub fn install(shutdown: watch::Sender<bool>, reread: Arc<Notify>) -> io::Result<()> {
    let shutdown = Arc::new(shutdown);
    for (sig, name) in [(libc::SIGTERM, "SIGTERM"), (libc::SIGINT, "SIGINT")] {
        let shutdown = Arc::clone(&shutdown);
        listen(sig, move || {
            info!(signal = name, "stopping");
            let _ = shutdown.send(true);
        })?;
    }
    listen(libc::SIGHUP, move || {
        info!(signal = "SIGHUP", "re-reading every source");
        reread.notify_one();
    })
}

fn listen(sig: libc::c_int, mut on_signal: impl FnMut() + Send + 'static) -> io::Result<()> {
    let (rx, tx) = StdUnixStream::pair()?;
    signal_hook::low_level::pipe::register(sig, tx)?;
    rx.set_nonblocking(true)?;
    let mut rx = UnixStream::from_std(rx)?;
    tokio::spawn(async move {
        let mut buf = [0u8; 16];
        // A read of 0 (closed) or an error ends the task; neither happens
        // while the process lives, as the registration keeps the writer open.
        while let Ok(n) = rx.read(&mut buf).await {
            if n == 0 {
                break;
            }
            on_signal();
        }
    });
    Ok(())
}
