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
    let mut args = vec!["req".to_string(), "-x509".into(), digest.into()];
    args.extend(new_key(bits, cn, name, "pem"));
    args.extend(
        [
            "-days",
            "90",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
        ]
        .map(String::from),
    );
    openssl(dir, &args.iter().map(String::as_str).collect::<Vec<_>>());
}

/// A certificate request `NAME.csr` (key `NAME.key`, RSA 2048), subject `/CN=CN`.
pub fn request(dir: &Path, name: &str, cn: &str) {
    let mut args = vec!["req".to_string(), "-new".into()];
    args.extend(new_key(2048, cn, name, "csr"));
    openssl(dir, &args.iter().map(String::as_str).collect::<Vec<_>>());
}

/// The `req` arguments for a new RSA key of `bits` bits in `NAME.key`, unencrypted,
/// and what it makes (subject `/CN=CN`) in `NAME.EXT`.
fn new_key(bits: u32, cn: &str, name: &str, ext: &str) -> [String; 9] {
    [
        "-newkey".into(),
        format!("rsa:{bits}"),
        "-nodes".into(),
        "-subj".into(),
        format!("/CN={cn}"),
        "-keyout".into(),
        format!("{name}.key"),
        "-out".into(),
        format!("{name}.{ext}"),
    ]
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

/// What `openssl x509 -hash` makes of a DER certificate on its stdin: its
/// subject hash as OpenSSL prints it, or `None` when OpenSSL cannot decode it.
pub fn x509_hash_der(der: &[u8]) -> Option<String> {
    use std::io::Write;
    use std::process::Stdio;
    tools::require("openssl");
    let mut child = tools::clean_command("openssl")
        .args(["x509", "-inform", "DER", "-noout", "-hash"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn openssl");
    child.stdin.take().unwrap().write_all(der).unwrap();
    let out = child.wait_with_output().unwrap();
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}
