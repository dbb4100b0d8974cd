//! A loopback HTTPS server (Python's `ssl`) that serves leaf + intermediate.
//!
//! The server re-reads its PEM (leaf, intermediate, key in one file) for every
//! connection, so a test can switch it to another chain by atomically replacing that
//! file, without a gap in service.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};

const SERVER: &str = r#"
import socket, ssl, sys, threading
pem = sys.argv[1]
srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", 0))
srv.listen(128)
print(srv.getsockname()[1], flush=True)

def handle(conn):
    try:
        conn.settimeout(15)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(pem)
        with ctx.wrap_socket(conn, server_side=True) as tls:
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = tls.recv(4096)
                if not chunk:
                    break
                data += chunk
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
        let dir = tempfile::tempdir().unwrap();
        let pem = dir.path().join("server.pem");
        std::fs::write(&pem, server_pem).unwrap();
        let mut child = super::tools::clean_command("python3")
            .arg("-c")
            .arg(SERVER)
            .arg(&pem)
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
