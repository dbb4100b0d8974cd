//! Python's `ssl` as an outside TLS stack: the one connect-and-read snippet that
//! every Python client and server of the tests is written with, and how a script
//! is started.

use super::tools;
use std::process::Command;

/// Put before every script by [`command`]:
/// - `tls_connect(ctx, port, timeout=15, servername="localhost")`: TCP to
///   127.0.0.1:`port`, then TLS with SNI and the name check for `servername`;
/// - `recv_until(tls, end=None)`: what the peer sends until `end` is in it, or
///   until it closes (all of it when `end` is None);
/// - `http_get(ctx, port)`: `GET /` over HTTP/1.0 on a new connection, the whole
///   answer.
const PRELUDE: &str = r#"
import socket, ssl, sys

def tls_connect(ctx, port, timeout=15, servername="localhost"):
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        return ctx.wrap_socket(sock, server_hostname=servername)
    except BaseException:
        sock.close()
        raise

def recv_until(tls, end=None):
    data = b""
    while end is None or end not in data:
        chunk = tls.recv(4096)
        if not chunk:
            break
        data += chunk
    return data

def http_get(ctx, port):
    with tls_connect(ctx, port) as tls:
        tls.sendall(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
        return recv_until(tls)
"#;

/// `python3 -c SCRIPT` (after the [`PRELUDE`]), with the CA-related variables of
/// this machine removed ([`tools::clean_command`]); arguments follow.
pub fn command(script: &str) -> Command {
    let mut cmd = tools::clean_command("python3");
    cmd.arg("-c").arg(format!("{PRELUDE}{script}"));
    cmd
}
