//! The serving certificate: loaded from files (a mounted Secret), swapped in
//! place when they change, never a restart.
//!
//! The TLS acceptor asks [`CertStore`] for the certificate at every handshake,
//! so a swap takes effect on the next new connection while connections already
//! open finish on the certificate they started with: no request is dropped.
//! A file pair that does not load (half written, key not matching the
//! certificate) is logged and the previous certificate stays in service.

use crate::webhook::metrics::WebhookMetrics;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard};
use std::time::Duration;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use tokio::sync::Notify;
use tracing::{info, warn};

/// Why a certificate/key pair could not be loaded; the previous pair (if
/// any) stays in service.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TlsLoadError {
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: no PEM CERTIFICATE block")]
    NoCertificate { path: PathBuf },
    #[error("{path}: {reason}")]
    BadPem { path: PathBuf, reason: String },
    #[error("{path}: no usable private key: {reason}")]
    BadKey { path: PathBuf, reason: String },
    #[error("{key} does not belong to the certificate in {cert}: {reason}")]
    Mismatch {
        cert: PathBuf,
        key: PathBuf,
        reason: String,
    },
}

/// The certificate in service, shared by the acceptor and the reloader.
#[derive(Debug, Default)]
pub(crate) struct CertStore {
    /// `None` until the first pair loads; `/readyz` is 503 meanwhile and
    /// handshakes are refused. A std lock: held only to clone an `Arc`.
    current: RwLock<Option<Arc<CertifiedKey>>>,
}

impl CertStore {
    /// Whether a certificate is in service (for `/readyz`).
    pub(crate) fn loaded(&self) -> bool {
        self.read().is_some()
    }

    fn get(&self) -> Option<Arc<CertifiedKey>> {
        self.read().clone()
    }

    /// The lock only ever guards one whole `Option<Arc>` being replaced, so a
    /// holder that panicked cannot leave it half written: a poisoned lock is
    /// used as is rather than read as "no certificate".
    fn read(&self) -> RwLockReadGuard<'_, Option<Arc<CertifiedKey>>> {
        self.current.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Puts `key` in service; false when it is the one already serving.
    fn swap(&self, key: CertifiedKey) -> bool {
        let mut cur = self.current.write().unwrap_or_else(PoisonError::into_inner);
        if cur.as_ref().is_some_and(|c| c.cert == key.cert) {
            return false;
        }
        *cur = Some(Arc::new(key));
        true
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.get()
    }
}

/// The files of the serving certificate.
#[derive(Debug, Clone)]
pub(crate) struct TlsFiles {
    /// `--tls-cert`: the chain, leaf first.
    pub cert: PathBuf,
    /// `--tls-key`: the leaf's private key.
    pub key: PathBuf,
}

/// Reads and checks the pair: the chain, then a key that matches its leaf.
/// Also returns the leaf's notAfter.
pub(crate) fn load(files: &TlsFiles) -> Result<(CertifiedKey, OffsetDateTime), TlsLoadError> {
    let read = |p: &Path| {
        std::fs::read(p).map_err(|source| TlsLoadError::Read {
            path: p.to_path_buf(),
            source,
        })
    };
    let cert_pem = read(&files.cert)?;
    let key_pem = read(&files.key)?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| TlsLoadError::BadPem {
            path: files.cert.clone(),
            reason: e.to_string(),
        })?;
    let Some(leaf) = chain.first() else {
        return Err(TlsLoadError::NoCertificate {
            path: files.cert.clone(),
        });
    };
    let not_after = not_after(leaf).ok_or_else(|| TlsLoadError::BadPem {
        path: files.cert.clone(),
        reason: "the first certificate does not parse as X.509".into(),
    })?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| TlsLoadError::BadKey {
        path: files.key.clone(),
        reason: e.to_string(),
    })?;
    let signer =
        rustls::crypto::ring::sign::any_supported_type(&key).map_err(|e| TlsLoadError::BadKey {
            path: files.key.clone(),
            reason: e.to_string(),
        })?;
    let certified = CertifiedKey::new(chain, signer);
    // A Secret written by hand (not through the kubelet's atomic swap) can be
    // seen between its two files: refuse the pair rather than serve a key
    // that cannot complete a handshake.
    certified.keys_match().map_err(|e| TlsLoadError::Mismatch {
        cert: files.cert.clone(),
        key: files.key.clone(),
        reason: e.to_string(),
    })?;
    Ok((certified, not_after))
}

fn not_after(der: &CertificateDer<'_>) -> Option<OffsetDateTime> {
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).ok()?;
    Some(cert.validity().not_after.to_datetime())
}

/// RFC 3339, as `/status` writes times. X.509 times (years 1950 to 9999,
/// UTC) always format; should one not, the log says so beside the seconds.
fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339)
        .unwrap_or_else(|e| format!("{} (Unix seconds; not RFC 3339: {e})", t.unix_timestamp()))
}

/// Loads the pair into `store` now, logging the outcome; true on a change.
pub(crate) fn reload(files: &TlsFiles, store: &CertStore, metrics: &WebhookMetrics) -> bool {
    match load(files) {
        Ok((key, not_after)) => {
            metrics.cert_expiry.set(not_after.unix_timestamp());
            let changed = store.swap(key);
            if changed {
                metrics.cert_reloads.ok.inc();
                let not_after = rfc3339(not_after);
                info!(cert = %files.cert.display(), %not_after, "serving certificate loaded");
            }
            changed
        }
        Err(e) => {
            metrics.cert_reloads.error.inc();
            if store.loaded() {
                warn!(error = %e, "serving certificate not reloaded; the previous one stays in service");
            } else {
                warn!(error = %e, "no serving certificate yet; not ready");
            }
            false
        }
    }
}

/// Re-reads the pair whenever its directory changes (the same notify-based
/// watches the sidecar uses for its sources), and every `resync` as a safety
/// net; `wake` also comes from SIGHUP. Runs until the task is dropped.
pub(crate) async fn watch(
    files: TlsFiles,
    store: Arc<CertStore>,
    metrics: Arc<WebhookMetrics>,
    resync: Duration,
    wake: Arc<Notify>,
) {
    let mut watches = match crate::serve::watch::Watches::new(Arc::clone(&wake)) {
        Ok(w) => Some(w),
        Err(e) => {
            warn!(error = %e, "cannot watch the certificate files; re-reading every resync");
            None
        }
    };
    let paths = [files.cert.clone(), files.key.clone()];
    loop {
        reload(&files, &store, &metrics);
        // A watch added now missed what happened before it: read once more.
        if watches.as_mut().map(|w| w.update(&paths)).unwrap_or(false) {
            reload(&files, &store, &metrics);
        }
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(resync) => {}
        }
        // The kubelet's swap is several events: take them as one.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
