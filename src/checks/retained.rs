//! Rotation impact: which trusted backends only a CA in its
//! `--retain-removed` grace still anchors, so the operator fixes the
//! backend or the Secret before that CA leaves the bundle.

use crate::handshake::{diagnose, Report, Target, Verdict};
use crate::trust::cert::Certificate;
use serde::Serialize;

/// A CA in its grace period, as the daemon's status knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetainedCa {
    pub subject: String,
    /// SHA-256 of the DER, hex, as the bundle's certificates have it.
    pub sha256: String,
    /// RFC 3339: when it leaves the bundle.
    pub leaves_at: String,
}

/// The retained CA a backend depends on: "trusted only through retained CA
/// X until T".
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RetainedAnchor {
    pub subject: String,
    pub sha256: String,
    /// RFC 3339: when the backend stops being trusted unless fixed.
    pub until: String,
}

/// The retained CA without which `report`'s trusted chain would not be
/// trusted by `bundle`; `None` when the rest of the bundle anchors it too.
/// Judged again with the same diagnosis as `verify`, on the chain the
/// server sent, so both anchor rules count.
pub fn only_by_retained(
    report: &Report,
    target: &Target,
    bundle: &[Certificate],
    retained: &[RetainedCa],
    now: i64,
) -> Option<RetainedAnchor> {
    if report.verdict != Verdict::Trusted || retained.is_empty() {
        return None;
    }
    let is_retained = |c: &Certificate| retained.iter().any(|r| r.sha256 == c.sha256);
    let kept: Vec<Certificate> = bundle.iter().filter(|c| !is_retained(c)).cloned().collect();
    if kept.len() == bundle.len() {
        return None;
    }
    let trusted_by = |certs: &[Certificate]| {
        diagnose(&report.chain_der, certs, &target.server_name, now)
            .causes
            .is_empty()
    };
    if trusted_by(&kept) {
        return None;
    }
    // Name the retained CA that is enough on its own; the first one if it
    // takes several (a retained root and its retained intermediate).
    let needed = retained
        .iter()
        .filter(|r| bundle.iter().any(|c| c.sha256 == r.sha256))
        .find(|r| {
            let mut with_one = kept.clone();
            with_one.extend(bundle.iter().filter(|c| c.sha256 == r.sha256).cloned());
            trusted_by(&with_one)
        })
        .or_else(|| retained.first())?;
    Some(RetainedAnchor {
        subject: needed.subject.clone(),
        sha256: needed.sha256.clone(),
        until: needed.leaves_at.clone(),
    })
}
