//! `inspect`: what is in these files, in plain words, with the same warnings
//! the publish loop gives (see [`crate::policy`]).

use crate::cert::{display_line, rfc3339, Certificate};
use crate::parse::parse_file;
use crate::policy::{CertFacts, Policy};
use crate::source::{read_source, FileRead, ReadError, SourceRead};
use crate::status::now_unix;
use serde::Serialize;
use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};

/// A single file named on the command line may be a whole base bundle, so
/// it gets the base's limit rather than a Secret's 1 MiB.
pub const MAX_BUNDLE_BYTES: u64 = 16 * 1024 * 1024;

/// One warning, for machines and people.
#[derive(Debug, Clone, Serialize)]
pub struct Warning {
    /// Stable name (`missing_root`, `not_ca`, `expires_soon`, `weak_key` …).
    pub code: &'static str,
    pub message: String,
}

/// One certificate as `inspect` reports it.
#[derive(Debug, Serialize)]
pub struct Row {
    pub file: String,
    /// 1-based position among the file's certificates.
    pub index: usize,
    pub subject: String,
    pub issuer: String,
    pub not_before: String,
    pub not_after: String,
    pub days_left: i64,
    pub expired: bool,
    pub ca: bool,
    pub self_signed: bool,
    pub sha256: String,
    /// OpenSSL subject hash (the `<hash>` of `certs/<hash>.<n>`).
    pub subject_hash: Option<String>,
    pub issuer_hash: Option<String>,
    pub key_algorithm: String,
    pub key_bits: u32,
    pub signature_algorithm: String,
    /// subjectAltName DNS names and IPs.
    pub names: Vec<String>,
    /// `None`: no extendedKeyUsage extension (every usage allowed).
    pub extended_key_usage: Option<Vec<String>>,
    pub warnings: Vec<Warning>,
}

/// A file that could not be read or parsed.
#[derive(Debug, Serialize)]
pub struct Problem {
    pub file: String,
    pub error: String,
}

/// Everything `inspect` found.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub certificates: Vec<Row>,
    pub errors: Vec<Problem>,
}

impl Report {
    /// 0 when every file parsed, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        u8::from(!self.errors.is_empty())
    }
}

/// Reads the files behind `path`: the file itself (up to
/// [`MAX_BUNDLE_BYTES`]), or every file of a directory the way the sidecar
/// reads a source (kubelet layout, hidden entries skipped, symlinks kept
/// inside; a hashed directory's `certs/` symlink resolves to its version).
pub fn read_path(path: &Path) -> Result<Vec<FileRead>, String> {
    if path.is_file() {
        return Ok(vec![FileRead {
            path: path.to_path_buf(),
            bytes: read_bundle_file(path),
        }]);
    }
    match read_source(path) {
        SourceRead::Missing => Err("no such file or directory".into()),
        SourceRead::Failed(e) => Err(e.to_string()),
        SourceRead::Files(l) if l.files.is_empty() => Err("directory holds no files".into()),
        SourceRead::Files(l) => Ok(l.files),
    }
}

fn read_bundle_file(path: &Path) -> Result<Vec<u8>, ReadError> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(MAX_BUNDLE_BYTES + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_BUNDLE_BYTES {
        return Err(ReadError::Io(format!(
            "file is larger than {MAX_BUNDLE_BYTES} bytes"
        )));
    }
    Ok(bytes)
}

/// Reads every path (files, bundles, hashed directories, Secret volumes).
/// Everything listed together counts as one bundle for the "root not in the
/// bundle" check, as it would once published.
pub fn inspect(paths: &[PathBuf]) -> Report {
    let mut report = Report::default();
    let now = now_unix();
    let mut found: Vec<(PathBuf, usize, Certificate)> = Vec::new();
    for path in paths {
        let files = match read_path(path) {
            Ok(f) => f,
            Err(error) => {
                report.errors.push(Problem {
                    file: path.display().to_string(),
                    error,
                });
                continue;
            }
        };
        for f in files {
            let parsed = f
                .bytes
                .map_err(|e| e.to_string())
                .and_then(|b| parse_file(&b).map_err(|e| e.to_string()));
            match parsed {
                Ok(p) if p.certs.is_empty() => report.errors.push(Problem {
                    file: f.path.display().to_string(),
                    error: format!(
                        "no certificate ({} private key(s), {} other block(s))",
                        p.private_keys, p.other_blocks
                    ),
                }),
                Ok(p) => found.extend(
                    p.certs
                        .into_iter()
                        .enumerate()
                        .map(|(i, c)| (f.path.clone(), i + 1, c)),
                ),
                Err(error) => report.errors.push(Problem {
                    file: f.path.display().to_string(),
                    error,
                }),
            }
        }
    }
    let subjects: HashSet<u32> = found
        .iter()
        .filter_map(|(_, _, c)| c.subject_hash)
        .collect();
    let policy = Policy::default();
    report.certificates = found
        .iter()
        .map(|(file, index, c)| {
            let has_issuer = c.issuer_hash.is_some_and(|h| subjects.contains(&h));
            // Everything inspected is treated as custom: it is what the user
            // is about to publish (or debugging), so every check applies.
            let warnings = policy
                .concerns(c, true, has_issuer, now)
                .iter()
                .map(|k| Warning {
                    code: k.code(),
                    message: k.explain(c),
                })
                .collect();
            row(file, *index, c, now, warnings)
        })
        .collect();
    report
}

fn row(file: &Path, index: usize, c: &Certificate, now: i64, warnings: Vec<Warning>) -> Row {
    let facts = CertFacts::of(c);
    Row {
        file: file.display().to_string(),
        index,
        subject: c.subject.clone(),
        issuer: c.issuer.clone(),
        not_before: rfc3339(c.not_before),
        not_after: rfc3339(c.not_after),
        days_left: (c.not_after - now).div_euclid(86_400),
        expired: c.is_expired(now),
        ca: c.is_ca,
        self_signed: c.self_signed,
        sha256: c.sha256.clone(),
        subject_hash: c.subject_hash.map(|h| format!("{h:08x}")),
        issuer_hash: c.issuer_hash.map(|h| format!("{h:08x}")),
        key_algorithm: facts
            .as_ref()
            .map_or_else(String::new, |f| f.key_algorithm.clone()),
        key_bits: facts.as_ref().map_or(0, |f| f.key_bits),
        signature_algorithm: facts
            .as_ref()
            .map_or_else(String::new, |f| f.signature_algorithm.clone()),
        names: facts.as_ref().map_or_else(Vec::new, |f| f.names.clone()),
        extended_key_usage: facts.and_then(|f| f.extended_key_usage),
        warnings,
    }
}

/// The human table: one line per certificate, its warnings under it, then
/// one line per file that could not be read.
pub fn render_table(report: &Report) -> String {
    const HEAD: [&str; 8] = [
        "SUBJECT",
        "ISSUER",
        "NOT AFTER",
        "DAYS",
        "CA",
        "SELF",
        "SHA256",
        "FILE",
    ];
    let rows: Vec<[String; 8]> = report
        .certificates
        .iter()
        .map(|r| {
            [
                display_line(&r.subject),
                display_line(&r.issuer),
                r.not_after.clone(),
                if r.expired {
                    format!("EXPIRED {}d ago", -r.days_left)
                } else {
                    r.days_left.to_string()
                },
                yes_no(r.ca),
                yes_no(r.self_signed),
                r.sha256.get(..16).unwrap_or(&r.sha256).to_string(),
                display_line(&r.file),
            ]
        })
        .collect();
    let mut width = HEAD.map(str::len);
    for r in &rows {
        for (w, cell) in width.iter_mut().zip(r) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: &[String]| {
        let mut s = String::new();
        for (i, (cell, w)) in cells.iter().zip(width).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(cell);
            } else {
                s.push_str(&format!("{cell:<w$}  "));
            }
        }
        s.push('\n');
        s
    };
    let mut out = String::new();
    if !rows.is_empty() {
        out.push_str(&line(&HEAD.map(String::from)));
        for (r, cells) in report.certificates.iter().zip(&rows) {
            out.push_str(&line(cells));
            for w in &r.warnings {
                out.push_str(&format!(
                    "    warning: {}: {}\n",
                    w.code,
                    display_line(&w.message)
                ));
            }
        }
    }
    out.push_str(&format!(
        "{} certificate(s), {} warning(s), {} file(s) with errors\n",
        report.certificates.len(),
        report
            .certificates
            .iter()
            .map(|r| r.warnings.len())
            .sum::<usize>(),
        report.errors.len()
    ));
    for p in &report.errors {
        out.push_str(&format!(
            "error: {}: {}\n",
            display_line(&p.file),
            display_line(&p.error)
        ));
    }
    out
}

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.to_string()
}
