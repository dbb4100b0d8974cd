//! Generates N distinct self-signed CA certificates quickly, for the
//! benchmarks in `benches/` (spawning `openssl req` 5,000 times takes minutes;
//! this takes seconds).
//!
//! ```sh
//! cargo run --release --example gen_cas -- OUT_DIR N [KEY.pem]
//! ```
//!
//! Writes `OUT_DIR/part-<k>/ca-<i>.crt`, one PEM certificate per file, at most
//! 1,000 files per `part-` directory (a directory source takes at most 4,096
//! files). Every certificate has its own subject (so its own subject hash) and
//! serial, CA:TRUE and ten years of validity. All share one key: with KEY.pem
//! (a PKCS#8 RSA key, e.g. from `openssl genpkey -algorithm RSA`) they are RSA
//! 2048 certificates of the size private CAs usually have (~1.2 KB of PEM, so a
//! 1 MiB Secret holds about 850); without it, a fresh ECDSA P-256 key.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair, KeyUsagePurpose,
    SerialNumber, PKCS_RSA_SHA256,
};
use std::path::{Path, PathBuf};
use time::{Duration, OffsetDateTime};

/// Files per `part-` directory.
pub const PER_DIR: usize = 1000;

/// The shared key: RSA from a PKCS#8 PEM file, else a new ECDSA P-256 key.
pub fn load_key(path: Option<&Path>) -> KeyPair {
    match path {
        Some(p) => {
            let pem = std::fs::read_to_string(p).expect("read key file");
            KeyPair::from_pkcs8_pem_and_sign_algo(&pem, &PKCS_RSA_SHA256).expect("RSA PKCS#8 key")
        }
        None => KeyPair::generate().expect("generate ECDSA key"),
    }
}

/// The `i`th benchmark CA as PEM. `tag` keeps two generations apart (same
/// index, different subject and serial).
pub fn ca_pem(key: &KeyPair, tag: &str, i: usize) -> String {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "trust-injector bench");
    dn.push(DnType::CommonName, format!("Bench {tag} CA {i:05}"));
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let mut serial = tag.as_bytes().to_vec();
    serial.extend_from_slice(&(i as u64).to_be_bytes());
    serial.insert(0, 0x01);
    params.serial_number = Some(SerialNumber::from_slice(&serial));
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::days(1);
    params.not_after = now + Duration::days(3650);
    params.self_signed(key).expect("self-sign").pem()
}

/// Path of the `i`th certificate under `out`.
pub fn ca_path(out: &Path, i: usize) -> PathBuf {
    out.join(format!("part-{}", i / PER_DIR))
        .join(format!("ca-{i:05}.crt"))
}

#[allow(dead_code)] // unused when a bench includes this file as a module
fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 || args.len() > 4 {
        eprintln!("usage: gen_cas OUT_DIR N [RSA_KEY.pem]");
        std::process::exit(2);
    }
    let out = Path::new(&args[1]);
    let n: usize = args[2].parse().expect("N must be a number");
    let key = load_key(args.get(3).map(Path::new));
    for i in 0..n {
        let path = ca_path(out, i);
        if i % PER_DIR == 0 {
            std::fs::create_dir_all(path.parent().unwrap()).expect("create part dir");
        }
        std::fs::write(&path, ca_pem(&key, "g", i)).expect("write certificate");
    }
}
