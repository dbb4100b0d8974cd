//! `inspect`: what is in these files, in plain words.

use crate::cert::{escape_line, rfc3339, Certificate};
use crate::parse::parse_file;
use crate::source::{read_source, SourceRead};
use crate::status::now_unix;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// One certificate as `inspect` reports it.
#[derive(Debug, Serialize)]
pub struct Row {
    pub file: String,
    pub subject: String,
    pub issuer: String,
    pub not_before: String,
    pub not_after: String,
    pub days_left: i64,
    pub ca: bool,
    pub self_signed: bool,
    pub sha256: String,
    pub subject_hash: Option<String>,
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

/// Reads every path (files, bundles, hashed directories, Secret volumes).
pub fn inspect(paths: &[PathBuf]) -> Report {
    let mut report = Report::default();
    let now = now_unix();
    for path in paths {
        match read_source(path) {
            SourceRead::Missing => report.errors.push(Problem {
                file: path.display().to_string(),
                error: "no such file or directory".into(),
            }),
            SourceRead::Failed(e) => report.errors.push(Problem {
                file: path.display().to_string(),
                error: e.to_string(),
            }),
            SourceRead::Files(files) => {
                for f in files {
                    let parsed = f
                        .bytes
                        .map_err(|e| e.to_string())
                        .and_then(|b| parse_file(&b).map_err(|e| e.to_string()));
                    match parsed {
                        Ok(p) => report
                            .certificates
                            .extend(p.certs.iter().map(|c| row(&f.path, c, now))),
                        Err(error) => report.errors.push(Problem {
                            file: f.path.display().to_string(),
                            error,
                        }),
                    }
                }
            }
        }
    }
    report
}

fn row(file: &Path, c: &Certificate, now: i64) -> Row {
    Row {
        file: file.display().to_string(),
        subject: c.subject.clone(),
        issuer: c.issuer.clone(),
        not_before: rfc3339(c.not_before),
        not_after: rfc3339(c.not_after),
        days_left: (c.not_after - now).div_euclid(86_400),
        ca: c.is_ca,
        self_signed: c.self_signed,
        sha256: c.sha256.clone(),
        subject_hash: c.subject_hash.map(|h| format!("{h:08x}")),
    }
}

/// The human table.
pub fn render_table(report: &Report) -> String {
    let mut out = String::new();
    for r in &report.certificates {
        out.push_str(&format!(
            "{}\n  issuer:      {}\n  not after:   {} ({} days left){}\n  CA: {}  self-signed: {}  sha256: {}  file: {}\n",
            escape_line(&r.subject),
            escape_line(&r.issuer),
            r.not_after,
            r.days_left,
            if r.days_left < 0 { "  EXPIRED" } else { "" },
            if r.ca { "yes" } else { "no" },
            if r.self_signed { "yes" } else { "no" },
            &r.sha256[..16],
            escape_line(&r.file),
        ));
    }
    out.push_str(&format!(
        "{} certificate(s), {} file(s) with errors\n",
        report.certificates.len(),
        report.errors.len()
    ));
    for p in &report.errors {
        out.push_str(&format!("error: {}: {}\n", escape_line(&p.file), p.error));
    }
    out
}
