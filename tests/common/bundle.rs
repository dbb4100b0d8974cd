//! Reading what trust-injector published: the PEM bundle and the hashed directory.

use base64::Engine;
use sha2::Digest;
use std::collections::BTreeMap;
use std::path::Path;

pub const BUNDLE: &str = "ca-certificates.crt";
pub const CERTS: &str = "certs";

pub fn sha256_hex(bytes: &[u8]) -> String {
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Strictly parse every `CERTIFICATE` PEM block of `text` into DER. Text outside
/// blocks (comments) is allowed; a block that is not closed or whose base64 is broken
/// is an error (that is what a torn read would look like).
pub fn parse_pem_certs(text: &str) -> Result<Vec<Vec<u8>>, String> {
    let mut out = Vec::new();
    let mut in_block: Option<String> = None;
    let mut b64 = String::new();
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if let Some(label) = in_block.as_deref() {
            if let Some(end) = line.strip_prefix("-----END ") {
                let end = end.trim_end_matches("-----");
                if end != label {
                    return Err(format!("BEGIN {label} closed by END {end}"));
                }
                if label == "CERTIFICATE" {
                    let der = base64::engine::general_purpose::STANDARD
                        .decode(b64.as_bytes())
                        .map_err(|e| format!("bad base64 in block: {e}"))?;
                    if der.is_empty() {
                        return Err("empty certificate block".into());
                    }
                    out.push(der);
                }
                in_block = None;
                b64.clear();
            } else if line.starts_with("-----") {
                return Err(format!("unexpected line inside block: {line}"));
            } else {
                b64.push_str(line.trim());
            }
        } else if let Some(begin) = line.strip_prefix("-----BEGIN ") {
            in_block = Some(begin.trim_end_matches("-----").to_string());
        } else if line.contains("-----END") {
            return Err(format!("END without BEGIN: {line}"));
        }
    }
    if let Some(label) = in_block {
        return Err(format!("unterminated {label} block"));
    }
    Ok(out)
}

/// SHA-256 fingerprints of the certificates in a PEM text, in order.
pub fn fingerprints(text: &str) -> Result<Vec<String>, String> {
    Ok(parse_pem_certs(text)?
        .iter()
        .map(|d| sha256_hex(d))
        .collect())
}

/// Fingerprints of the published bundle in `out_dir`, or None if it is absent.
pub fn read_bundle(out_dir: &Path) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(out_dir.join(BUNDLE)).ok()?;
    Some(fingerprints(&text).unwrap_or_else(|e| panic!("published bundle is not valid PEM: {e}")))
}

/// Does the published bundle contain every one of `want` and none of `unwanted`?
pub fn bundle_has(out_dir: &Path, want: &[&str], unwanted: &[&str]) -> bool {
    match read_bundle(out_dir) {
        None => false,
        Some(fps) => {
            want.iter().all(|w| fps.iter().any(|f| f == w))
                && unwanted.iter().all(|u| fps.iter().all(|f| f != u))
        }
    }
}

/// Map `file name -> SHA-256 of the certificate` for every entry of a hashed
/// directory whose name looks like `<8 hex>.<n>` (symlinks followed). Other entries
/// are returned under their own name with the value "<not a hash entry>".
pub fn hashed_dir_map(dir: &Path, only_hash_entries: bool) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("read_dir {dir:?}: {e}")) {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        if !is_hash_name(&name) {
            if !only_hash_entries {
                map.insert(name, "<not a hash entry>".to_string());
            }
            continue;
        }
        let text = std::fs::read_to_string(entry.path()).unwrap();
        let fps = fingerprints(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(fps.len(), 1, "{name} holds {} certificates", fps.len());
        map.insert(name, fps[0].clone());
    }
    map
}

pub fn is_hash_name(name: &str) -> bool {
    match name.split_once('.') {
        Some((hash, n)) => {
            hash.len() == 8
                && hash
                    .chars()
                    .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
                && !n.is_empty()
                && n.chars().all(|c| c.is_ascii_digit())
        }
        None => false,
    }
}
