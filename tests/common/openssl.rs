//! Certificates rcgen cannot make (RSA-1024 keys, SHA-1 signatures), made by the
//! `openssl` program in a directory, for the tests that name weak algorithms.
//! Each file is `NAME.key`, `NAME.pem` or `NAME.csr` in that directory.

use super::tools;
use std::path::Path;
use std::time::Duration;

/// `openssl` in `dir`, failing the test on a non-zero exit.
pub fn openssl(dir: &Path, args: &[&str]) {
    let mut cmd = tools::clean_command("openssl");
    cmd.current_dir(dir).args(args);
    let out = tools::run(&mut cmd, Duration::from_secs(60));
    assert!(out.ok(), "openssl {args:?}\n{}", out.text());
}

/// A self-signed CA `NAME.pem` (key `NAME.key`), subject `/CN=CN`, an RSA key of
/// `bits`, signed with `digest` (`-sha1`, `-sha256`), valid 90 days.
pub fn self_signed_ca(dir: &Path, name: &str, cn: &str, bits: u32, digest: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            &format!("rsa:{bits}"),
            digest,
            "-nodes",
            "-subj",
            &format!("/CN={cn}"),
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.pem"),
            "-days",
            "90",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
        ],
    );
}

/// A certificate request `NAME.csr` (key `NAME.key`, RSA 2048), subject `/CN=CN`.
pub fn request(dir: &Path, name: &str, cn: &str) {
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            &format!("/CN={cn}"),
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
        ],
    );
}

/// `REQUEST.csr` signed by the CA `CA.pem`/`CA.key` with `digest`, valid `days`,
/// with the extensions of the file `extfile`, into the file `out`.
pub fn sign_request(
    dir: &Path,
    request: &str,
    ca: &str,
    (digest, days): (&str, u32),
    extfile: &str,
    out: &str,
) {
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{request}.csr"),
            "-CA",
            &format!("{ca}.pem"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            digest,
            "-days",
            &days.to_string(),
            "-extfile",
            extfile,
            "-out",
            out,
        ],
    );
}
