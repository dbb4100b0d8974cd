//! The reconciler's log: each dropped certificate and each concern warned
//! once (a resync every minute must not repeat them), and each publish
//! described by what it changed.

use crate::output::publish::Outcome;
use crate::trust::bundle::Bundle;
use crate::trust::cert::{display_line, Certificate};
use crate::trust::warning::Warning;
use std::collections::HashSet;
use tracing::{debug, info, warn};

/// Subjects listed by name in a publish log line; the rest are counted.
const MAX_NAMES_LOGGED: usize = 20;

/// What has been logged already.
#[derive(Debug)]
pub struct Journal {
    /// Warnings already logged (by key), so a resync every minute does not
    /// repeat them.
    warned: HashSet<String>,
    /// Whether `/status` is served (not with `--once` or `--listen off`), so
    /// a log line points only at a list the user can read.
    serves_status: bool,
}

impl Journal {
    /// A journal for a run that serves `/status` or not.
    pub fn new(serves_status: bool) -> Self {
        Journal {
            warned: HashSet::new(),
            serves_status,
        }
    }

    /// Logs drops and concerns the first time each is seen.
    pub fn warn_once(&mut self, bundle: &Bundle) {
        // Expired base roots are the image's curated list ageing, which the
        // operator cannot act on: one INFO line with a count, not a WARN each.
        let mut base_dropped = 0;
        for d in &bundle.dropped {
            if self.warned.insert(format!("drop:{}", d.cert.sha256)) {
                if d.origin.is_custom() {
                    warn!(subject = %display_line(&d.cert.subject), sha256 = %d.cert.sha256, source = %d.origin.describe(), reason = %d.reason, "certificate dropped");
                } else {
                    base_dropped += 1;
                    debug!(subject = %display_line(&d.cert.subject), sha256 = %d.cert.sha256, reason = %d.reason, "base certificate dropped");
                }
            }
        }
        if base_dropped > 0 && self.serves_status {
            info!(
                dropped = base_dropped,
                "dropped expired base certificates (listed under dropped_certificates in /status)"
            );
        } else if base_dropped > 0 {
            info!(
                dropped = base_dropped,
                "dropped expired base certificates (TRUST_INJECTOR_LOG=debug lists each)"
            );
        }
        for e in &bundle.entries {
            for c in &e.concerns {
                if self.warned.insert(format!("{c:?}:{}", e.cert.sha256)) {
                    // The shape of /status and inspect --json: a code, then the message.
                    let w = Warning::of(c, &e.cert);
                    warn!(code = %w.code, subject = %display_line(&e.cert.subject), sha256 = %e.cert.sha256, source = %e.origin.describe(), "{}", w.message);
                }
            }
        }
    }

    /// Logs a publish: what was written and which certificates it added and
    /// removed compared with `published`, the bundle before it.
    pub fn log_publish(published: Option<&Bundle>, bundle: &Bundle, outcome: Outcome) {
        // The names below are text for this one line; at `warn` nobody reads it.
        if !tracing::enabled!(tracing::Level::INFO) {
            return;
        }
        let old: HashSet<&str> = published
            .iter()
            .flat_map(|b| b.entries.iter().map(|e| e.cert.sha256.as_str()))
            .collect();
        let new: HashSet<&str> = bundle
            .entries
            .iter()
            .map(|e| e.cert.sha256.as_str())
            .collect();
        // On the first publish the whole base is "added"; naming the custom
        // certificates is what an operator wants to see then.
        let first = published.is_none();
        let added = names(
            bundle
                .entries
                .iter()
                .filter(|e| !first || e.origin.is_custom())
                .map(|e| &e.cert)
                .filter(|c| !old.contains(c.sha256.as_str())),
        );
        let removed = names(
            published
                .iter()
                .flat_map(|b| b.entries.iter().map(|e| &e.cert))
                .filter(|c| !new.contains(c.sha256.as_str())),
        );
        let what = match (
            published.map(|b| b.sha256 == bundle.sha256),
            outcome.bundle_written,
        ) {
            (Some(true), _) => "restored published files that were missing or altered",
            (_, true) => "published bundle",
            (_, false) => "rebuilt hashed directory",
        };
        info!(
            certificates = bundle.entries.len(),
            custom = bundle.custom_count(),
            added = %added,
            removed = %removed,
            sha256 = %bundle.sha256,
            bundle_written = outcome.bundle_written,
            certs_dir_written = outcome.certs_written,
            truststore_written = outcome.truststore_written,
            "{what}"
        );
    }
}

/// The first [`MAX_NAMES_LOGGED`] subjects, and how many more there are:
/// only the names shown are made into text.
fn names<'a>(mut certs: impl Iterator<Item = &'a Certificate>) -> String {
    let shown: Vec<String> = certs
        .by_ref()
        .take(MAX_NAMES_LOGGED)
        .map(|c| display_line(&c.subject))
        .collect();
    let more = certs.count();
    if more > 0 {
        format!("{}; and {more} more", shown.join("; "))
    } else {
        shown.join("; ")
    }
}
