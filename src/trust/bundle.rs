//! Assembles the bundle: base first (in the base's own order), then sources
//! in flag order, files by path, and the certificates of one file by their
//! SHA-256 fingerprint; the first occurrence of a certificate wins.
//! The order is stable so that an unchanged input gives the same bytes, and
//! "nothing rewritten when nothing changed" falls out of a byte comparison.
//! Within a file the order of blocks is deliberately not kept: the kubelet
//! writes a ClusterTrustBundle projection in an arbitrary order, and a file
//! whose certificates only moved must not republish (a new bundle would wake
//! every `--on-change-*` hook and make .NET reload for nothing).

use crate::trust::cert::{push_escaped_line, Certificate};
use crate::trust::policy::{Concern, Policy};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::path::PathBuf;

/// Where a certificate came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The base bundle.
    Base,
    /// A source file (the path users see).
    File(PathBuf),
}

impl Origin {
    /// Whether this is a custom (source) certificate.
    pub fn is_custom(&self) -> bool {
        matches!(self, Origin::File(_))
    }

    /// For logs and status.
    pub fn describe(&self) -> String {
        match self {
            Origin::Base => "base".to_string(),
            Origin::File(p) => p.display().to_string(),
        }
    }
}

/// One published certificate.
#[derive(Debug, Clone)]
pub struct Entry {
    pub cert: Certificate,
    pub origin: Origin,
    /// What the policy found worth a warning.
    pub concerns: Vec<Concern>,
}

/// A certificate left out, and why.
#[derive(Debug, Clone)]
pub struct Dropped {
    pub cert: Certificate,
    pub origin: Origin,
    pub reason: String,
}

/// The assembled bundle.
#[derive(Debug, Clone, Default)]
pub struct Bundle {
    /// Published certificates in bundle order.
    pub entries: Vec<Entry>,
    /// Certificates the policy left out.
    pub dropped: Vec<Dropped>,
    /// The `ca-certificates.crt` bytes.
    pub pem: Vec<u8>,
    /// Where each entry's PEM block (without its comment) lies in `pem`, so
    /// the hashed directory reuses those bytes instead of encoding again.
    blocks: Vec<Range<usize>>,
    /// SHA-256 of `pem`, hex.
    pub sha256: String,
    /// When the earliest published certificate expires (Unix seconds): the
    /// moment the bundle must be rebuilt without waiting for an event.
    pub next_expiry: Option<i64>,
}

impl Bundle {
    /// Number of certificates from sources.
    pub fn custom_count(&self) -> usize {
        self.entries.iter().filter(|e| e.origin.is_custom()).count()
    }

    /// Drops the encoded bytes once they are on disk: the daemon keeps the
    /// published bundle for its entries (the next publish's log diff,
    /// `/status`, the next expiry), never for its bytes, and with the system
    /// roots they are a large share of an idle sidecar's memory. The
    /// bundle then has no [`Bundle::hashed_files`] either. The entries are
    /// kept at their exact length: [`assemble`] reserves for the base only, so
    /// a few custom certificates would double the vector.
    pub fn forget_bytes(&mut self) {
        self.pem = Vec::new();
        self.blocks = Vec::new();
        self.entries.shrink_to_fit();
        self.dropped.shrink_to_fit();
    }

    /// The hashed-directory files: each name (`<hash>.<n>`) with its entry's
    /// PEM block, numbered exactly as `openssl rehash` numbers a directory
    /// whose files sort in bundle order. Every certificate has a hash: one
    /// whose name OpenSSL cannot hash never parses ([`Certificate::from_der`]).
    pub fn hashed_files(&self) -> Vec<(String, &[u8])> {
        let mut next: HashMap<u32, usize> = HashMap::new();
        self.entries
            .iter()
            .zip(&self.blocks)
            .filter_map(|(e, block)| {
                let hash = e.cert.subject_hash?;
                let n = next.entry(hash).or_insert(0);
                let name = format!("{hash:08x}.{n}");
                *n += 1;
                Some((name, &self.pem[block.clone()]))
            })
            .collect()
    }
}

/// Builds the bundle from the base and the custom certificates (in source
/// and file order; each file's certificates in any order) at time `now`.
pub fn assemble<'a>(
    base: &'a [Certificate],
    custom: impl IntoIterator<Item = (&'a PathBuf, &'a [Certificate])>,
    policy: Policy,
    now: i64,
) -> Bundle {
    // Keyed by the SHA-256 of the DER, not the DER: the same key, 64 bytes
    // to hash instead of a kilobyte or more per certificate.
    let mut seen: HashSet<&str> = HashSet::with_capacity(base.len());
    let mut dropped = Vec::new();
    let candidates = base
        .iter()
        .map(|c| (c, Origin::Base))
        .chain(custom.into_iter().flat_map(|(path, certs)| {
            let mut sorted: Vec<&Certificate> = certs.iter().collect();
            sorted.sort_by(|a, b| a.sha256.cmp(&b.sha256));
            sorted
                .into_iter()
                .map(move |c| (c, Origin::File(path.clone())))
        }));
    // At least the base: one allocation rather than a doubling series.
    let mut entries = Vec::with_capacity(candidates.size_hint().0);
    for (cert, origin) in candidates {
        if !seen.insert(&cert.sha256) {
            continue;
        }
        if policy.admits(cert, now) {
            entries.push(Entry {
                cert: cert.clone(),
                origin,
                concerns: Vec::new(),
            });
        } else {
            dropped.push(Dropped {
                cert: cert.clone(),
                origin,
                reason: format!("expired at {}", crate::trust::cert::rfc3339(cert.not_after)),
            });
        }
    }

    let subjects: HashSet<u32> = entries.iter().filter_map(|e| e.cert.subject_hash).collect();
    for entry in &mut entries {
        let has_issuer = entry
            .cert
            .issuer_hash
            .is_some_and(|h| subjects.contains(&h));
        entry.concerns = policy.concerns(&entry.cert, entry.origin.is_custom(), has_issuer, now);
    }

    let (pem, blocks) = render(&entries);
    let next_expiry = if policy.keep_expired {
        None
    } else {
        entries.iter().map(|e| e.cert.not_after).min()
    };
    Bundle {
        sha256: crate::trust::cert::hex(&Sha256::digest(&pem)),
        entries,
        dropped,
        pem,
        blocks,
        next_expiry,
    }
}

/// The PEM bundle: each certificate preceded by a comment naming it, and
/// where each certificate's block lies in it. The subject is escaped so a
/// crafted name can never add a line or a marker.
fn render(entries: &[Entry]) -> (Vec<u8>, Vec<Range<usize>>) {
    let mut out = String::with_capacity(entries.len() * 2048);
    let mut blocks = Vec::with_capacity(entries.len());
    for e in entries {
        out.push_str("# ");
        push_escaped_line(&mut out, &e.cert.subject);
        out.push('\n');
        let start = out.len();
        e.cert.write_pem(&mut out);
        blocks.push(start..out.len());
    }
    (out.into_bytes(), blocks)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(cn: &str, not_after_offset_days: i64) -> Certificate {
        let mut params = rcgen::CertificateParams::default();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.not_before = time::OffsetDateTime::now_utc() - time::Duration::days(400);
        params.not_after =
            time::OffsetDateTime::now_utc() + time::Duration::days(not_after_offset_days);
        let key = rcgen::KeyPair::generate().unwrap();
        Certificate::from_der(params.self_signed(&key).unwrap().der()).unwrap()
    }

    fn now() -> i64 {
        time::OffsetDateTime::now_utc().unix_timestamp()
    }

    #[test]
    fn order_is_base_then_sources_and_first_occurrence_wins() {
        let (b1, b2, c1, c2) = (cert("b1", 9), cert("b2", 9), cert("c1", 9), cert("c2", 9));
        let (f1, f2) = (PathBuf::from("/s/a.crt"), PathBuf::from("/s/b.crt"));
        let base = [b1.clone(), b2.clone()];
        let file1 = [c2.clone(), b1.clone()];
        let file2 = [c1.clone(), c2.clone()];
        let bundle = assemble(
            &base,
            [(&f1, &file1[..]), (&f2, &file2[..])],
            Policy::default(),
            now(),
        );
        let order: Vec<&str> = bundle
            .entries
            .iter()
            .map(|e| e.cert.subject.as_str())
            .collect();
        assert_eq!(order, ["CN=b1", "CN=b2", "CN=c2", "CN=c1"]);
        assert_eq!(bundle.entries[2].origin, Origin::File(f1.clone()));
        assert_eq!(bundle.custom_count(), 2);
    }

    #[test]
    fn order_of_blocks_inside_one_file_does_not_matter() {
        let certs: Vec<Certificate> = (0..6).map(|i| cert(&format!("c{i}"), 9)).collect();
        let f = PathBuf::from("/s/ctb.pem");
        let one = assemble(&[], [(&f, &certs[..])], Policy::default(), now());
        let mut shuffled = certs.clone();
        shuffled.reverse();
        shuffled.swap(1, 4);
        let two = assemble(&[], [(&f, &shuffled[..])], Policy::default(), now());
        assert_eq!(one.pem, two.pem);
        let shas: Vec<&str> = one.entries.iter().map(|e| e.cert.sha256.as_str()).collect();
        let mut sorted = shas.clone();
        sorted.sort();
        assert_eq!(shas, sorted, "a file's certificates by SHA-256");
    }

    #[test]
    fn same_input_same_bytes() {
        let (a, b) = (cert("a", 9), cert("b", 9));
        let f = PathBuf::from("/s/a.crt");
        let certs = [a, b];
        let one = assemble(&[], [(&f, &certs[..])], Policy::default(), now());
        let two = assemble(&[], [(&f, &certs[..])], Policy::default(), now());
        assert_eq!(one.pem, two.pem);
        assert_eq!(one.sha256, two.sha256);
    }

    #[test]
    fn expired_are_dropped_unless_kept_and_next_expiry_is_the_earliest() {
        let (old, soon, later) = (cert("old", -1), cert("soon", 2), cert("later", 30));
        let f = PathBuf::from("/s/a.crt");
        let certs = [old.clone(), later.clone(), soon.clone()];
        let bundle = assemble(&[], [(&f, &certs[..])], Policy::default(), now());
        assert_eq!(bundle.entries.len(), 2);
        assert_eq!(bundle.dropped.len(), 1);
        assert_eq!(bundle.dropped[0].cert.subject, "CN=old");
        assert_eq!(bundle.next_expiry, Some(soon.not_after));

        let kept = assemble(
            &[],
            [(&f, &certs[..])],
            Policy { keep_expired: true },
            now(),
        );
        assert_eq!(kept.entries.len(), 3);
        assert_eq!(kept.next_expiry, None);
    }

    #[test]
    fn hashed_names_number_collisions_in_bundle_order() {
        // Same subject twice (different keys): one hash, numbered .0 and .1.
        let (a, b) = (cert("Same Name", 9), cert("same   name", 9));
        let f = PathBuf::from("/s/a.crt");
        let mut certs = [a, b];
        let bundle = assemble(&[], [(&f, &certs[..])], Policy::default(), now());
        certs.sort_by(|x, y| x.sha256.cmp(&y.sha256));
        let files = bundle.hashed_files();
        for ((_, bytes), cert) in files.iter().zip(&certs) {
            assert_eq!(
                *bytes,
                cert.to_pem().as_bytes(),
                "each file is its certificate's PEM"
            );
        }
        let names: Vec<String> = files.into_iter().map(|(n, _)| n).collect();
        assert_eq!(names.len(), 2);
        assert!(
            names[0].ends_with(".0") && names[1].ends_with(".1"),
            "{names:?}"
        );
        assert_eq!(names[0][..8], names[1][..8]);
    }

    #[test]
    fn rendered_bundle_escapes_subjects_in_comments() {
        let evil = cert("x\n-----BEGIN CERTIFICATE-----", 9);
        let f = PathBuf::from("/s/a.crt");
        let certs = [evil];
        let bundle = assemble(&[], [(&f, &certs[..])], Policy::default(), now());
        let text = String::from_utf8(bundle.pem).unwrap();
        assert_eq!(
            text.lines().filter(|l| l.starts_with("-----BEGIN")).count(),
            1
        );
        assert_eq!(text.lines().filter(|l| l.starts_with('#')).count(), 1);
    }
}
