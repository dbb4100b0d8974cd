//! A loopback HTTPS server (Python's `ssl`, tests/common/python.rs) that serves
//! leaf + intermediate.
//!
//! The server re-reads its PEM (leaf, intermediate, key in one file) for every
//! connection, so a test can switch it to another chain by atomically replacing that
//! file, without a gap in service. It reads that file once per connection and loads
//! the context from a private snapshot of those bytes: `load_cert_chain` opens its
//! file twice (the chain, then the key), so a switch between the two opens would pair
//! the old chain with the new key, fail with KEY_VALUES_MISMATCH and reset the
//! client's handshake (seen once in CI, in tests/rotation.rs).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};

const SERVER: &str = r#"
import os, tempfile, threading
pem = sys.argv[1]
srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", 0))
srv.listen(128)
print(srv.getsockname()[1], flush=True)

keep_alive = sys.argv[2:] == ["keep-alive"]
conns = [0]
conns_lock = threading.Lock()
snapshot = {"bytes": None, "path": None}
snapshot_lock = threading.Lock()

def current_chain():
    # One read of the served file, saved under a name nothing else writes to, so
    # the chain and the key that load_cert_chain reads come from the same bytes.
    with open(pem, "rb") as f:
        data = f.read()
    with snapshot_lock:
        if snapshot["bytes"] != data:
            fd, path = tempfile.mkstemp(dir=os.path.dirname(pem), suffix=".snapshot")
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            snapshot["bytes"], snapshot["path"] = data, path
        return snapshot["path"]

def serve_keep_alive(tls, n):
    # HTTP/1.1 requests on one connection until the client closes it or asks
    # for /close; every body names the connection, so a client can tell a
    # pooled connection from a new one.
    data = b""
    while True:
        while b"\r\n\r\n" not in data:
            chunk = tls.recv(4096)
            if not chunk:
                return
            data += chunk
        head, data = data.split(b"\r\n\r\n", 1)
        close = head.startswith(b"GET /close ")
        body = b"conn %d\n" % n
        tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n%s\r\n%s"
                    % (len(body), b"Connection: close\r\n" if close else b"", body))
        if close:
            return

def handle(conn):
    with conns_lock:
        conns[0] += 1
        n = conns[0]
    try:
        conn.settimeout(300 if keep_alive else 15)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(current_chain())
        with ctx.wrap_socket(conn, server_side=True) as tls:
            if keep_alive:
                serve_keep_alive(tls, n)
                return
            recv_until(tls, b"\r\n\r\n")
            tls.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n")
    except Exception:
        pass
    finally:
        try:
            conn.close()
        except Exception:
            pass

while True:
    conn, _ = srv.accept()
    threading.Thread(target=handle, args=(conn,), daemon=True).start()
"#;

pub struct HttpsServer {
    child: Child,
    pub port: u16,
    pem: PathBuf,
    _dir: tempfile::TempDir,
}

impl HttpsServer {
    /// Start serving `server_pem` (leaf + intermediate + key) on 127.0.0.1:<free port>.
    pub fn start(server_pem: &str) -> HttpsServer {
        Self::spawn(server_pem, &[])
    }

    /// Like [`HttpsServer::start`], but HTTP/1.1 with keep-alive: a client's
    /// connection pool keeps its connection open (a 5-minute idle timeout), each
    /// body is `conn <n>` naming the connection, and `GET /close` closes it.
    pub fn start_keep_alive(server_pem: &str) -> HttpsServer {
        Self::spawn(server_pem, &["keep-alive"])
    }

    fn spawn(server_pem: &str, mode: &[&str]) -> HttpsServer {
        let dir = tempfile::tempdir().unwrap();
        let pem = dir.path().join("server.pem");
        std::fs::write(&pem, server_pem).unwrap();
        let mut child = super::python::command(SERVER)
            .arg(&pem)
            .args(mode)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start python3 HTTPS server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().parse().unwrap_or_else(|_| {
            let _ = child.kill();
            panic!("HTTPS server did not report its port (got {line:?})")
        });
        HttpsServer {
            child,
            port,
            pem,
            _dir: dir,
        }
    }

    /// Serve another chain from the next connection on.
    pub fn switch(&self, server_pem: &str) {
        super::replace_file(&self.pem, server_pem);
    }

    pub fn pem_path(&self) -> &Path {
        &self.pem
    }
}

impl Drop for HttpsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
