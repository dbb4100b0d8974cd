//! A CA rotation under way, for the runtime tests (runtime_matrix, dotnet): the
//! Secret (kubelet AtomicWriter) holds root Old, the daemon published it, and a
//! loopback HTTPS server serves Old's chain; `rotate` replaces Old by New in the
//! Secret and, once published, switches the server to New's chain.

use super::atomic_writer::AtomicWriter;
use super::bundle::{BUNDLE, CERTS};
use super::daemon::{Daemon, Fixture};
use super::https::HttpsServer;
use super::pki::Chain;
use super::tools::{self, Trust};
use std::path::{Path, PathBuf};

/// A CA rotation under way: daemon, Secret, server, and both chains.
pub struct Rotation {
    /// The Secret and the out-dir, removed when the rotation is dropped.
    fixture: Fixture,
    pub old: Chain,
    pub new: Chain,
    pub secret: AtomicWriter,
    pub daemon: Daemon,
    pub server: HttpsServer,
}

impl Rotation {
    /// The Secret holds root Old, the daemon published it, the server serves Old's chain.
    pub fn start(daemon_args: &[&str]) -> Rotation {
        Self::begin(daemon_args, HttpsServer::start)
    }

    /// Like [`Rotation::start`] with a keep-alive server
    /// ([`HttpsServer::start_keep_alive`]), for what a client's connection pool does.
    pub fn start_keep_alive(daemon_args: &[&str]) -> Rotation {
        Self::begin(daemon_args, HttpsServer::start_keep_alive)
    }

    fn begin(daemon_args: &[&str], serve: fn(&str) -> HttpsServer) -> Rotation {
        let old = Chain::new("Matrix Old");
        let new = Chain::new("Matrix New");
        let fixture = Fixture::with_ca(&old.root.pem());
        let mut daemon = fixture.daemon().no_debounce().args(daemon_args).start();
        daemon.wait_bundle("root Old", |b| b == [old.root.sha256()]);
        let server = serve(&old.server_pem());
        Rotation {
            secret: fixture.secret.clone(),
            fixture,
            old,
            new,
            daemon,
            server,
        }
    }

    pub fn port(&self) -> u16 {
        self.server.port
    }

    pub fn bundle(&self) -> PathBuf {
        self.daemon.out_dir.join(BUNDLE)
    }

    pub fn certs(&self) -> PathBuf {
        self.daemon.out_dir.join(CERTS)
    }

    pub fn tmp(&self) -> &Path {
        self.fixture.path()
    }

    /// Old goes, New comes: the Secret, then (once published) the server.
    pub fn rotate(&mut self) {
        self.secret
            .write(&[("ca.crt", self.new.root.pem().as_bytes())]);
        let want = self.new.root.sha256();
        self.daemon
            .wait_bundle("root New only", |b| b == [want.clone()]);
        self.server.switch(&self.new.server_pem());
        // The old chain really is distrusted by the new bundle, and the new
        // chain trusted: the rotation itself is sound, whatever a client does.
        let res = tools::curl(self.port(), Trust::File(&self.bundle()));
        assert!(res.ok(), "fresh curl after rotation:\n{}", res.text());
        assert_ne!(self.old.root.sha256(), self.new.root.sha256());
    }
}
