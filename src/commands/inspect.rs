//! `inspect`: what is in these files, in plain words, with the same warnings
//! the publish loop gives (see [`crate::trust::policy`]).

use crate::clock::now_unix;
use crate::trust::base::embedded_roots;
use crate::trust::bundle_files::read_path;
use crate::trust::cert::{display_line, rfc3339, Certificate};
use crate::trust::parse::parse_file;
use crate::trust::policy::{CertFacts, Concern, Policy};
use crate::trust::summary::CertSummary;
use crate::trust::warning::Warning;
use serde::Serialize;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// One certificate as `inspect` reports it.
#[derive(Debug, Serialize)]
pub struct Row {
    pub file: String,
    /// 1-based position among the file's certificates.
    pub index: usize,
    /// `base`: a public root of the Mozilla list (what the sidecar's base
    /// roots are made of); `custom`: anything else, i.e. a private CA. A
    /// published bundle mixes both, and only the custom ones are yours.
    pub origin: &'static str,
    /// Subject, issuer and validity, as `/status` and `verify` show them.
    #[serde(flatten)]
    pub cert: CertSummary,
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

/// A file that was read but contributes nothing, which the sidecar reports
/// as `empty` with a warning (not an error): mounting a whole
/// `kubernetes.io/tls` Secret puts `tls.key` next to the CA, and that works.
#[derive(Debug, Serialize)]
pub struct FileWarning {
    pub file: String,
    /// `empty`, the sidecar's state for such a file in `/status`.
    pub code: &'static str,
    pub message: String,
}

/// Everything `inspect` found.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub certificates: Vec<Row>,
    pub errors: Vec<Problem>,
    /// Files that hold no certificate but are not broken (only keys, or only
    /// other PEM blocks). They do not change the exit code.
    pub file_warnings: Vec<FileWarning>,
}

impl Report {
    /// 0 when every file parsed, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        u8::from(!self.errors.is_empty())
    }
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
                    error: error.to_string(),
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
                Ok(p) if p.certs.is_empty() => report.file_warnings.push(FileWarning {
                    file: f.path.display().to_string(),
                    code: "empty",
                    message: empty_message(p.private_keys, p.other_blocks),
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
    let public: HashSet<String> = embedded_roots()
        .0
        .into_iter()
        .map(|c| c.sha256.clone())
        .collect();
    report.certificates = found
        .iter()
        .map(|(file, index, c)| {
            let has_issuer = c.issuer_hash.is_some_and(|h| subjects.contains(&h));
            // The checks the sidecar applies: all of them to custom
            // certificates, the few that matter to a base root.
            let custom = !public.contains(&c.sha256);
            let warnings = policy
                .concerns(c, custom, has_issuer, now)
                .iter()
                .map(|k| Warning {
                    code: k.code(),
                    message: explain(k, c),
                })
                .collect();
            let origin = if custom { "custom" } else { "base" };
            row(file, (*index, origin), c, now, warnings)
        })
        .collect();
    report
}

/// The policy's sentence, except where it speaks of the sidecar's flags as if
/// `inspect` had them.
fn explain(concern: &Concern, c: &Certificate) -> String {
    match concern {
        Concern::ExpiredKept => format!(
            "expired at {}; the sidecar drops it (unless run with --keep-expired)",
            rfc3339(c.not_after)
        ),
        other => other.explain(c),
    }
}

/// What the sidecar would make of a file without certificates.
fn empty_message(private_keys: usize, other_blocks: usize) -> String {
    let mut parts = Vec::new();
    if private_keys > 0 {
        parts.push(format!(
            "{private_keys} private key(s) skipped, never published or logged"
        ));
    }
    if other_blocks > 0 {
        parts.push(format!("{other_blocks} other block(s) ignored"));
    }
    format!(
        "no certificate ({}); the sidecar publishes nothing from it, and that is not an error",
        parts.join(", ")
    )
}

/// `at`: the position in the file and the origin.
fn row(
    file: &Path,
    at: (usize, &'static str),
    c: &Certificate,
    now: i64,
    warnings: Vec<Warning>,
) -> Row {
    let facts = CertFacts::of(c);
    Row {
        file: file.display().to_string(),
        index: at.0,
        origin: at.1,
        cert: CertSummary::of(c),
        days_left: c.days_left(now),
        expired: c.is_expired(now),
        ca: c.is_ca,
        self_signed: c.self_signed,
        sha256: c.sha256.clone(),
        subject_hash: c.subject_hash.map(|h| format!("{h:08x}")),
        issuer_hash: c.issuer_hash.map(|h| format!("{h:08x}")),
        key_algorithm: facts.key_algorithm,
        key_bits: facts.key_bits,
        signature_algorithm: facts.signature_algorithm,
        names: facts.names,
        extended_key_usage: facts.extended_key_usage,
        warnings,
    }
}

/// Widest cells of the default table, so that a row fits a 120-column
/// terminal; `--wide` prints everything whole.
const SUBJECT_WIDTH: usize = 28;
const ISSUER_WIDTH: usize = 22;
const FILE_WIDTH: usize = 20;
const SHA_DIGITS: usize = 12;
/// Warnings under a row are wrapped at this width by default.
const LINE_WIDTH: usize = 120;

/// The human table, shortened to fit a terminal: one line per certificate,
/// its warnings under it, then one line per file that could not be read.
pub fn render_table(report: &Report) -> String {
    render(report, false)
}

/// The human table with whole subjects, issuers, dates and paths (`--wide`).
pub fn render_wide(report: &Report) -> String {
    render(report, true)
}

/// One table row's cells.
fn cells(r: &Row, wide: bool) -> [String; 9] {
    let sha = if wide { 16 } else { SHA_DIGITS };
    [
        if wide {
            display_line(&r.cert.subject)
        } else {
            shorten_name(&r.cert.subject, SUBJECT_WIDTH)
        },
        if wide {
            display_line(&r.cert.issuer)
        } else {
            shorten_name(&r.cert.issuer, ISSUER_WIDTH)
        },
        if wide {
            r.cert.not_after.clone()
        } else {
            r.cert.not_after.chars().take(10).collect()
        },
        match (r.expired, wide) {
            (true, true) => format!("EXPIRED {}d ago", -r.days_left),
            (true, false) => "expired".to_string(),
            (false, _) => r.days_left.to_string(),
        },
        yes_no(r.ca),
        yes_no(r.self_signed),
        r.origin.to_string(),
        r.sha256.get(..sha).unwrap_or(&r.sha256).to_string(),
        // Shortened in `render`, which knows the room left.
        display_line(&r.file),
    ]
}

fn render(report: &Report, wide: bool) -> String {
    const HEAD: [&str; 9] = [
        "SUBJECT",
        "ISSUER",
        "NOT AFTER",
        "DAYS",
        "CA",
        "SELF",
        "ORIGIN",
        "SHA256",
        "FILE",
    ];
    let mut rows: Vec<[String; 9]> = report.certificates.iter().map(|r| cells(r, wide)).collect();
    let mut width = HEAD.map(str::len);
    for r in &rows {
        for (w, cell) in width.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    if !wide {
        // The file gets what the other columns leave of the line, and at
        // least FILE_WIDTH characters.
        let used: usize = width[..8].iter().map(|w| w + 2).sum();
        let room = LINE_WIDTH.saturating_sub(used).max(FILE_WIDTH);
        for r in &mut rows {
            r[8] = shorten_path(&r[8], room);
        }
        width[8] = rows.iter().map(|r| r[8].chars().count()).max().unwrap_or(0);
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
    let wrap_at = if wide { usize::MAX } else { LINE_WIDTH };
    let mut out = String::new();
    if !rows.is_empty() {
        out.push_str(&line(&HEAD.map(String::from)));
        for (r, cells) in report.certificates.iter().zip(&rows) {
            out.push_str(&line(cells));
            for w in &r.warnings {
                let text = format!("warning: {}: {}", w.code, display_line(&w.message));
                out.push_str(&wrap(&text, "    ", "      ", wrap_at));
            }
        }
    }
    out.push_str(&files_part(report, wrap_at));
    out
}

/// What follows the table: the totals, then a line per file that holds no
/// certificate and per file that could not be read.
fn files_part(report: &Report, wrap_at: usize) -> String {
    let mut out = format!(
        "{} certificate(s), {} warning(s), {} file(s) with errors\n",
        report.certificates.len(),
        report
            .certificates
            .iter()
            .map(|r| r.warnings.len())
            .sum::<usize>()
            + report.file_warnings.len(),
        report.errors.len()
    );
    for w in &report.file_warnings {
        let text = format!(
            "warning: {}: {}: {}",
            display_line(&w.file),
            w.code,
            w.message
        );
        out.push_str(&wrap(&text, "", "  ", wrap_at));
    }
    for p in &report.errors {
        out.push_str(&format!(
            "error: {}: {}\n",
            display_line(&p.file),
            display_line(&p.error)
        ));
    }
    out
}

/// A distinguished name in at most `max` characters: whole if it fits, else
/// its common name (what people recognise a CA by), cut with `…` if needed.
fn shorten_name(name: &str, max: usize) -> String {
    let name = display_line(name);
    if name.chars().count() <= max {
        return name;
    }
    // The other attributes go first; the CN (up to the next ", ") stays
    // whole, however long: its end is often what tells two CAs apart
    // ("… Issuing CA 1" and "… Issuing CA 2"). The column widens instead.
    match name
        .match_indices("CN=")
        .map(|(i, _)| i)
        .find(|&i| i == 0 || name[..i].ends_with(", "))
    {
        Some(i) => name[i..].split(", ").next().unwrap_or_default().to_string(),
        None => cut(&name, max),
    }
}

/// `text` cut to `max` characters, the last being `…` when something was cut.
fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut s: String = text.chars().take(max.saturating_sub(1)).collect();
    s.push('…');
    s
}

/// A path in at most `max` characters, keeping its end (the file name).
fn shorten_path(path: &str, max: usize) -> String {
    let n = path.chars().count();
    if n <= max {
        return path.to_string();
    }
    let tail: String = path.chars().skip(n - (max - 1)).collect();
    format!("…{tail}")
}

/// Word-wraps `text` at `width` columns: the first line indented by
/// `first`, the others by `rest`.
fn wrap(text: &str, first: &str, rest: &str, width: usize) -> String {
    let mut out = String::new();
    let mut line = first.to_string();
    let mut empty = true;
    for word in text.split(' ') {
        if !empty && line.chars().count() + 1 + word.chars().count() > width {
            out.push_str(&line);
            out.push('\n');
            line = rest.to_string();
            empty = true;
        }
        if !empty {
            line.push(' ');
        }
        line.push_str(word);
        empty = false;
    }
    out.push_str(&line);
    out.push('\n');
    out
}

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.to_string()
}
