//! The one private-key leak check, blind to encoding.
//!
//! A careless log line does not print a key as PEM: it prints `?der` (a
//! decimal list), `{:x?}`, hex, base64 of a slice, or the raw bytes into a
//! file. Searching the outputs for a few known strings misses all of those.
//! So the check works the other way round: it *decodes* every output in each
//! way such a line could have encoded bytes (raw, `\x` escapes, decimal and
//! hex lists, contiguous hex in either case, base64 in any alignment and
//! either alphabet, across line breaks and `\n` escapes) and looks in what
//! it decoded for any distinctive run of the key's DER.
//!
//! A run is distinctive when it is not also public: the key's own public key
//! (which a published certificate legitimately contains) and low-variety
//! stretches (lengths, padding, shared algorithm identifiers) are excluded,
//! so a hit is a real leak and never a coincidence.

use super::daemon::Daemon;
use super::tools::clean_command;
use base64::Engine;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Length of a run of key bytes that counts as a leak: 96 bits cannot occur
/// by chance, and every secret field (a 32-byte scalar, an RSA prime) is
/// longer.
const RUN: usize = 12;

/// A private key the outputs must not contain.
pub struct Key {
    /// How failures name it.
    pub name: String,
    /// Its DER (PKCS#8, PKCS#1, SEC1 or encrypted PKCS#8, as it was given).
    pub der: Vec<u8>,
    /// Bytes that may legitimately be published: the public key.
    pub public: Vec<u8>,
}

impl Key {
    /// A key from its PEM; the public part is derived with `openssl pkey`
    /// (encrypted keys use the password `x`, as the tests create them).
    pub fn from_pem(name: &str, pem: &str) -> Key {
        let body: String = pem
            .lines()
            .filter(|l| !l.starts_with("-----") && !l.contains(':'))
            .collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(body.trim())
            .unwrap_or_else(|e| panic!("key {name} is not PEM: {e}"));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.pem");
        std::fs::write(&path, pem).unwrap();
        let out = clean_command("openssl")
            .args([
                "pkey", "-pubout", "-outform", "DER", "-passin", "pass:x", "-in",
            ])
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openssl pkey -pubout for key {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Key {
            name: name.to_string(),
            der,
            public: out.stdout,
        }
    }

    /// An rcgen key pair (what tests/common/pki.rs generates).
    pub fn from_rcgen(name: &str, key: &rcgen::KeyPair) -> Key {
        Key {
            name: name.to_string(),
            der: key.serialize_der(),
            public: key.public_key_der(),
        }
    }

    /// The runs of `der` that would betray the key.
    fn runs(&self) -> HashSet<[u8; RUN]> {
        let public: HashSet<&[u8]> = self.public.windows(RUN).collect();
        let runs: HashSet<[u8; RUN]> = self
            .der
            .windows(RUN)
            .filter(|w| !public.contains(w))
            .filter(|w| w.iter().collect::<HashSet<_>>().len() >= RUN / 2)
            .map(|w| w.try_into().unwrap())
            .collect();
        assert!(
            runs.len() >= 16,
            "key {} has too few distinctive runs to check",
            self.name
        );
        runs
    }
}

/// Every output of a running daemon: its log so far, `/status`, `/metrics`,
/// and every file under its out-dir.
pub fn daemon_outputs(d: &Daemon) -> Vec<(String, Vec<u8>)> {
    let mut places = vec![
        ("the log".to_string(), d.logs().into_bytes()),
        ("/status".to_string(), d.get("/status").1.into_bytes()),
        ("/metrics".to_string(), d.get("/metrics").1.into_bytes()),
    ];
    places.extend(files_under(&d.out_dir));
    places
}

/// Every file under `dir` (following no symlink twice: `certs` is a link to
/// a directory that is listed under its own name as well).
pub fn files_under(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack: Vec<PathBuf> = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let meta = std::fs::symlink_metadata(&p).unwrap();
            if meta.is_dir() {
                stack.push(p);
            } else if meta.is_file() {
                out.push((p.display().to_string(), std::fs::read(&p).unwrap()));
            }
        }
    }
    assert!(!out.is_empty(), "nothing published under {}", dir.display());
    out
}

/// Panics naming the key, the place and the encoding if any distinctive run
/// of any key appears in any place, in any of the encodings.
pub fn assert_no_key_material(keys: &[Key], places: &[(String, Vec<u8>)]) {
    if let Some(hit) = find_key_material(keys, places) {
        panic!("private key material leaked: {hit}");
    }
}

/// The first leak found, described, or None.
pub fn find_key_material(keys: &[Key], places: &[(String, Vec<u8>)]) -> Option<String> {
    let runs: Vec<(&str, HashSet<[u8; RUN]>)> =
        keys.iter().map(|k| (k.name.as_str(), k.runs())).collect();
    for (place, bytes) in places {
        for (encoding, decoded) in decodings(bytes) {
            for w in decoded.windows(RUN) {
                let w: &[u8; RUN] = w.try_into().unwrap();
                if let Some((name, _)) = runs.iter().find(|(_, r)| r.contains(w)) {
                    return Some(format!("key {name} in {place}, as {encoding}"));
                }
            }
        }
    }
    None
}

/// Everything `bytes` could be an encoding of, each with what it was read as.
fn decodings(bytes: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
    let mut out = vec![
        ("raw bytes", bytes.to_vec()),
        ("escaped bytes (\\xNN)", unescape(bytes)),
    ];
    out.extend(
        number_lists(bytes, 10)
            .into_iter()
            .map(|d| ("a decimal list", d)),
    );
    out.extend(
        number_lists(bytes, 16)
            .into_iter()
            .map(|d| ("a hex list", d)),
    );
    out.extend(contiguous_hex(bytes).into_iter().map(|d| ("hex", d)));
    out.extend(base64_runs(bytes).into_iter().map(|d| ("base64", d)));
    out
}

/// Rust's escaped byte strings (`escape_ascii`, `b"..."` debug): `\x82` is a
/// byte, `\n` a newline, anything else itself.
fn unescape(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 1 < bytes.len() {
            let hex = |j: usize| bytes.get(j).and_then(|c| (*c as char).to_digit(16));
            match bytes[i + 1] {
                b'x' => {
                    if let (Some(h), Some(l)) = (hex(i + 2), hex(i + 3)) {
                        out.push((h * 16 + l) as u8);
                        i += 4;
                        continue;
                    }
                }
                b'n' | b'r' | b't' | b'0' | b'\\' | b'\'' | b'"' => {
                    out.push(match bytes[i + 1] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'0' => 0,
                        c => c,
                    });
                    i += 2;
                    continue;
                }
                _ => {}
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

/// Lists of numbers 0..=255 in `radix` (`[48, 130, 4]`, `30:82:04`,
/// `0x30, 0x82`, `{:#x?}` over several lines), each list decoded to bytes.
fn number_lists(bytes: &[u8], radix: u32) -> Vec<Vec<u8>> {
    let mut lists = Vec::new();
    let mut current = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_alphanumeric() {
            i += 1;
        }
        let token = &bytes[start..i];
        let token = token
            .strip_prefix(b"0x")
            .or_else(|| token.strip_prefix(b"0X"))
            .filter(|_| radix == 16)
            .unwrap_or(token);
        let value = std::str::from_utf8(token)
            .ok()
            .filter(|t| !t.is_empty() && t.len() <= 3)
            .and_then(|t| u32::from_str_radix(t, radix).ok())
            .filter(|v| *v <= 255);
        match value {
            Some(v) => current.push(v as u8),
            None => flush(&mut current, &mut lists),
        }
        // A separator: punctuation and whitespace only, and not too much.
        let sep = i;
        while i < bytes.len() && !bytes[i].is_ascii_alphanumeric() {
            i += 1;
        }
        let separator = &bytes[sep..i];
        let list_like =
            separator.len() <= 24 && separator.iter().all(|c| b" ,;:|[]{}()\t\r\n".contains(c));
        if !list_like {
            flush(&mut current, &mut lists);
        }
    }
    flush(&mut current, &mut lists);
    lists
}

/// Ends the list being read: kept if it is long enough to hold a run.
fn flush(current: &mut Vec<u8>, lists: &mut Vec<Vec<u8>>) {
    if current.len() >= RUN {
        lists.push(std::mem::take(current));
    }
    current.clear();
}

/// Runs of hex digits (either case), decoded from both alignments.
fn contiguous_hex(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for run in bytes.split(|c| !c.is_ascii_hexdigit()) {
        if run.len() < 2 * RUN {
            continue;
        }
        for skip in 0..2 {
            out.push(
                run[skip..]
                    .chunks_exact(2)
                    .map(|p| {
                        let d = |c: u8| (c as char).to_digit(16).unwrap() as u8;
                        d(p[0]) << 4 | d(p[1])
                    })
                    .collect(),
            );
        }
    }
    out
}

/// Runs of base64 (standard or URL-safe alphabet), joined across line breaks
/// and `\n` escapes (PEM, a `{:?}` of a PEM string), decoded from each of the
/// four alignments.
fn base64_runs(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut joined = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\n' | b'\r' => i += 1,
            b'\\' if matches!(bytes.get(i + 1), Some(b'n' | b'r')) => i += 2,
            c => {
                joined.push(c);
                i += 1;
            }
        }
    }
    let value = |c: u8| -> Option<u8> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        })
    };
    let mut out = Vec::new();
    for run in joined.split(|c| value(*c).is_none()) {
        if run.len() < RUN * 4 / 3 {
            continue;
        }
        let sextets: Vec<u8> = run.iter().map(|c| value(*c).unwrap()).collect();
        for skip in 0..4 {
            out.push(
                sextets[skip..]
                    .chunks_exact(4)
                    .flat_map(|q| {
                        let n = (q[0] as u32) << 18
                            | (q[1] as u32) << 12
                            | (q[2] as u32) << 6
                            | q[3] as u32;
                        [(n >> 16) as u8, (n >> 8) as u8, n as u8]
                    })
                    .collect(),
            );
        }
    }
    out
}

/// Proves the check is not blind: each encoding a careless line could use,
/// of a slice from the middle of `key` (the secret part, not the header), is
/// found; call it from a test so a broken decoder fails loudly.
pub fn assert_detects_every_encoding(key: &Key) {
    let mid = key.der.len() / 2;
    let slice = &key.der[mid - 10..(mid + 22).min(key.der.len())];
    let hex: String = slice.iter().map(|b| format!("{b:02x}")).collect();
    let b64 = base64::engine::general_purpose::STANDARD.encode(slice);
    let pem_like = base64::engine::general_purpose::STANDARD.encode(&key.der);
    let wrapped: String = pem_like
        .as_bytes()
        .chunks(64)
        .map(|c| format!("{}\\n", String::from_utf8_lossy(c)))
        .collect();
    let samples: Vec<(&str, Vec<u8>)> = vec![
        ("{:?}", format!("DEBUG parse: block={slice:?}").into_bytes()),
        ("{:x?}", format!("block={slice:x?}").into_bytes()),
        ("{:#04x?}", format!("block={slice:#04x?}").into_bytes()),
        ("hex", format!("k={hex}").into_bytes()),
        (
            "HEX",
            format!("k={}", hex.to_ascii_uppercase()).into_bytes(),
        ),
        (
            "hex:colons",
            slice
                .iter()
                .map(|b| format!("{b:02X}:"))
                .collect::<String>()
                .into_bytes(),
        ),
        ("base64", format!("key=\"{b64}\"").into_bytes()),
        (
            "base64url",
            b64.replace('+', "-").replace('/', "_").into_bytes(),
        ),
        ("pem in {:?}", format!("text={wrapped:?}").into_bytes()),
        (
            "escape_ascii",
            format!("b\"{}\"", slice.escape_ascii()).into_bytes(),
        ),
        ("raw", [b"xx".as_slice(), slice, b"yy"].concat()),
    ];
    for (what, sample) in samples {
        let places = [(what.to_string(), sample)];
        assert!(
            find_key_material(std::slice::from_ref(key), &places).is_some(),
            "the leak check misses a key printed as {what}"
        );
    }
    let public = [("the public key".to_string(), key.public.clone())];
    assert!(
        find_key_material(std::slice::from_ref(key), &public).is_none(),
        "the public key of {} counts as a leak: the check would cry wolf",
        key.name
    );
}
