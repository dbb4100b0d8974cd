//! Assembles the bundle: base first, then sources in flag order, files by
//! name, blocks in file order; the first occurrence of a certificate wins.
//! The order is stable so that an unchanged input gives the same bytes, and
//! "nothing rewritten when nothing changed" falls out of a byte comparison.

use crate::cert::{escape_line, Certificate};
use crate::policy::{Concern, Policy};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
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

    /// The hashed-directory file names (`<hash>.<n>`) and the entry each holds,
    /// numbered exactly as `openssl rehash` numbers a directory whose files
    /// sort in bundle order. Certificates whose name cannot be hashed are left
    /// out of the directory (they stay in the PEM bundle).
    pub fn hashed_names(&self) -> Vec<(String, &Entry)> {
        let mut next: HashMap<u32, usize> = HashMap::new();
        self.entries
            .iter()
            .filter_map(|e| {
                let hash = e.cert.subject_hash?;
                let n = next.entry(hash).or_insert(0);
                let name = format!("{hash:08x}.{n}");
                *n += 1;
                Some((name, e))
            })
            .collect()
    }
}

/// Builds the bundle from the base and the custom certificates (already in
/// source/file/block order) at time `now`.
pub fn assemble<'a>(
    base: &'a [Certificate],
    custom: impl IntoIterator<Item = (&'a PathBuf, &'a [Certificate])>,
    policy: Policy,
    now: i64,
) -> Bundle {
    let mut seen: HashSet<&[u8]> = HashSet::new();
    let mut entries = Vec::new();
    let mut dropped = Vec::new();
    let candidates = base.iter().map(|c| (c, Origin::Base)).chain(
        custom
            .into_iter()
            .flat_map(|(path, certs)| certs.iter().map(move |c| (c, Origin::File(path.clone())))),
    );
    for (cert, origin) in candidates {
        if !seen.insert(&cert.der) {
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
                reason: format!("expired at {}", crate::cert::rfc3339(cert.not_after)),
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

    let pem = render(&entries);
    let next_expiry = if policy.keep_expired {
        None
    } else {
        entries.iter().map(|e| e.cert.not_after).min()
    };
    Bundle {
        sha256: crate::cert::hex(&Sha256::digest(&pem)),
        entries,
        dropped,
        pem,
        next_expiry,
    }
}

/// The PEM bundle: each certificate preceded by a comment naming it. The
/// subject is escaped so a crafted name can never add a line or a marker.
pub fn render(entries: &[Entry]) -> Vec<u8> {
    let mut out = String::with_capacity(entries.len() * 2048);
    for e in entries {
        out.push_str("# ");
        out.push_str(&escape_line(&e.cert.subject));
        out.push('\n');
        out.push_str(&e.cert.to_pem());
    }
    out.into_bytes()
}
