//! The probe server (`run --listen`) under a flood of connections that never
//! send a request (issue 24 item 6): it holds at most its cap of them, and
//! `/healthz` still answers while they stay open. The memory figure for
//! 6,000 of them is in docs/performance.md (benches/probe_flood.py).

mod common;

use common::daemon::{http_get, Fixture};
use std::net::TcpStream;

/// Half-open connections the flood opens: well over the probe port's cap
/// (64), well under a default descriptor limit.
const FLOOD: usize = 400;

/// The sockets a process holds, from /proc.
fn sockets(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|l| l.to_string_lossy().starts_with("socket:"))
        .count()
}

#[test]
fn a_flood_of_half_open_connections_is_capped_and_healthz_still_answers() {
    let f = Fixture::new();
    let mut d = f.daemon().start();
    d.wait_ready();
    let idle = sockets(d.pid());
    let flood: Vec<TcpStream> = (0..FLOOD)
        .map(|i| {
            TcpStream::connect(("127.0.0.1", d.port))
                .unwrap_or_else(|e| panic!("connection {i}: {e}"))
        })
        .collect();
    // Accepted in order: once this is answered, every flood connection was
    // accepted before it, and none has reached the header timeout.
    assert_eq!(
        http_get(d.port, "/healthz"),
        Ok((200, "ok\n".to_string())),
        "/healthz under the flood\n{}",
        d.logs_tail()
    );
    let held = sockets(d.pid()) - idle;
    assert!(
        held <= 64 + 1,
        "the probe server holds {held} connections of {FLOOD} half-open ones; its cap is 64"
    );
    drop(flood);
    d.assert_running("after the flood");
}
