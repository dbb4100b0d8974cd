//! Faulty certificates and servers for the `verify` and `inspect` tests: one per
//! way a backend can fail to be trusted, each a good leaf from
//! [`pki::leaf_params`] with one field bent.

use super::daemon::free_port;
use super::pki::{dn, leaf_params, self_signed, signed, Cert};
use rcgen::{BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, KeyUsagePurpose};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration as StdDuration;
use time::{Duration, OffsetDateTime};

/// A leaf that expired yesterday.
pub fn expired_leaf(issuer: &Cert) -> Cert {
    let mut p = leaf_params("localhost");
    p.not_before = OffsetDateTime::now_utc() - Duration::days(60);
    p.not_after = OffsetDateTime::now_utc() - Duration::days(1);
    signed(p, issuer)
}

/// A leaf valid only from ten days on.
pub fn future_leaf(issuer: &Cert) -> Cert {
    let mut p = leaf_params("localhost");
    p.not_before = OffsetDateTime::now_utc() + Duration::days(10);
    p.not_after = OffsetDateTime::now_utc() + Duration::days(100);
    signed(p, issuer)
}

/// A leaf whose extended key usage is clientAuth only.
pub fn client_only_leaf(issuer: &Cert) -> Cert {
    let mut p = leaf_params("localhost");
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    signed(p, issuer)
}

/// A leaf that expires in a week (trusted, with a warning).
pub fn expiring_leaf(issuer: &Cert) -> Cert {
    let mut p = leaf_params("localhost");
    p.not_after = OffsetDateTime::now_utc() + Duration::days(7);
    signed(p, issuer)
}

/// A self-signed server certificate.
pub fn self_signed_leaf() -> Cert {
    self_signed(leaf_params("localhost"))
}

/// An "intermediate" that is not a CA (basicConstraints CA:FALSE), signed
/// by `root`: the classic mistake of issuing from a leaf.
pub fn non_ca_intermediate(root: &Cert, cn: &str) -> Cert {
    let mut p = CertificateParams::default();
    p.distinguished_name = dn(cn);
    p.is_ca = IsCa::ExplicitNoCa;
    p.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyCertSign,
    ];
    p.not_before = OffsetDateTime::now_utc() - Duration::days(1);
    p.not_after = OffsetDateTime::now_utc() + Duration::days(365);
    p.use_authority_key_identifier_extension = true;
    signed(p, root)
}

/// A CA intermediate (pathlen 0) signed by `root`, valid until `days` from now.
pub fn intermediate_valid_for(root: &Cert, cn: &str, days: i64) -> Cert {
    let mut p = CertificateParams::default();
    p.distinguished_name = dn(cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.not_before = OffsetDateTime::now_utc() - Duration::days(1);
    p.not_after = OffsetDateTime::now_utc() + Duration::days(days);
    p.use_authority_key_identifier_extension = true;
    signed(p, root)
}

/// What the HTTPS server serves: the certificates in order, then the leaf's key.
pub fn server_pem(certs: &[&Cert]) -> String {
    let mut s: String = certs.iter().map(|c| c.pem()).collect();
    s.push_str(&certs[0].key_pem());
    s
}

/// A loopback port where nothing listens (bound, then released).
pub fn refused_port() -> u16 {
    free_port()
}

/// A loopback server that answers any connection with a plain HTTP 400, as
/// a plain-HTTP backend does to a TLS ClientHello. Serves `connections`
/// connections, then stops.
pub fn plain_http_server(connections: usize) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in l.incoming().take(connections) {
            let Ok(mut s) = stream else { continue };
            let _ = s.set_read_timeout(Some(StdDuration::from_secs(5)));
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf);
            let _ = s.write_all(
                b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    });
    port
}

/// A loopback server that accepts connections and never says anything,
/// holding each for `hold`. Serves `connections` connections, then stops.
pub fn silent_server(connections: usize, hold: StdDuration) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in l.incoming().take(connections) {
            let Ok(s) = stream else { continue };
            std::thread::spawn(move || {
                std::thread::sleep(hold);
                drop(s);
            });
        }
    });
    port
}
