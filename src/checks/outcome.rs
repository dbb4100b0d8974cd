//! One backend's check, as `/status`, the metrics and the log see it.

use super::retained::RetainedAnchor;
use crate::handshake::{Cause, CertInfo, Report, Verdict};
use crate::trust::cert::{rfc3339, Certificate};
use serde::Serialize;

/// How a check ended: the `result` label of `checks_total`. Unreachable is
/// not untrusted (issue 29): a refused connection, a timeout and a port
/// that does not speak TLS each have their own, so they never fire the
/// trust alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckResult {
    Trusted,
    NotTrusted,
    /// Nothing listens on the port.
    Refused,
    /// No answer to the connect or during the handshake.
    Timeout,
    /// The port answers, but not with TLS (plain HTTP, another protocol).
    NotTls,
    /// TLS, but the handshake failed before a chain could be judged.
    HandshakeFailed,
    /// No address, or the network said no.
    Unreachable,
}

impl CheckResult {
    /// Every result, so each backend's counter exists from the start.
    pub const ALL: [CheckResult; 7] = [
        CheckResult::Trusted,
        CheckResult::NotTrusted,
        CheckResult::Refused,
        CheckResult::Timeout,
        CheckResult::NotTls,
        CheckResult::HandshakeFailed,
        CheckResult::Unreachable,
    ];

    /// The label value, the same word `/status` shows.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckResult::Trusted => "trusted",
            CheckResult::NotTrusted => "not_trusted",
            CheckResult::Refused => "refused",
            CheckResult::Timeout => "timeout",
            CheckResult::NotTls => "not_tls",
            CheckResult::HandshakeFailed => "handshake_failed",
            CheckResult::Unreachable => "unreachable",
        }
    }

    /// Whether the server's chain was seen and judged.
    pub fn reachable(self) -> bool {
        matches!(self, CheckResult::Trusted | CheckResult::NotTrusted)
    }

    /// The result of `verify`'s report: its verdict, and for a connection
    /// that failed its cause code.
    pub fn of(report: &Report) -> CheckResult {
        match report.verdict {
            Verdict::Trusted => CheckResult::Trusted,
            Verdict::NotTrusted => CheckResult::NotTrusted,
            Verdict::CouldNotConnect => match report.causes.first().map(|c| c.code) {
                Some("connection_refused") => CheckResult::Refused,
                Some("timeout") => CheckResult::Timeout,
                Some("not_tls") => CheckResult::NotTls,
                Some("handshake_refused" | "handshake_failed" | "no_certificate") => {
                    CheckResult::HandshakeFailed
                }
                _ => CheckResult::Unreachable,
            },
        }
    }
}

/// One backend's last check: what `/status` lists under `backends`.
#[derive(Debug, Clone, Serialize)]
pub struct BackendStatus {
    /// The URL as configured: the `backend` label.
    pub url: String,
    /// `verify`'s verdict: trusted, not_trusted or could_not_connect.
    pub verdict: Verdict,
    /// The verdict in more detail: why it could not connect.
    pub result: CheckResult,
    /// Why it is not trusted or not reachable, with what to do (`verify`'s
    /// causes and codes); empty when trusted.
    pub causes: Vec<Cause>,
    /// The chain the server sent, leaf first.
    pub chain: Vec<CertInfo>,
    /// The bundle certificate that anchored the chain.
    pub anchor: Option<CertInfo>,
    /// RFC 3339.
    pub leaf_expires_at: Option<String>,
    /// Set when only a CA in its `--retain-removed` grace still anchors the
    /// backend: it breaks when that CA leaves the bundle.
    pub trusted_only_by_retained: Option<RetainedAnchor>,
    /// Things worth fixing that do not break trust today.
    pub warnings: Vec<String>,
    /// RFC 3339.
    pub checked_at: String,
    /// Checks in a row that did not end trusted (they are spaced out).
    pub consecutive_failures: u32,
    #[serde(skip)]
    pub checked_at_unix: i64,
    #[serde(skip)]
    pub leaf_expiry_unix: Option<i64>,
}

impl BackendStatus {
    /// The status of one check of `report` at `now`.
    pub fn of(report: Report, retained: Option<RetainedAnchor>, now: i64) -> BackendStatus {
        let leaf_expiry_unix = report
            .chain_der
            .first()
            .and_then(|d| Certificate::from_der(d.as_ref()).ok())
            .map(|c| c.not_after);
        BackendStatus {
            result: CheckResult::of(&report),
            verdict: report.verdict,
            url: report.url,
            causes: report.causes,
            chain: report.chain,
            anchor: report.anchor,
            leaf_expires_at: leaf_expiry_unix.map(rfc3339),
            trusted_only_by_retained: retained,
            warnings: report.warnings,
            checked_at: rfc3339(now),
            consecutive_failures: 0,
            checked_at_unix: now,
            leaf_expiry_unix,
        }
    }

    /// A check that could not even start (the TLS client could not be set
    /// up): said as a cause, so that it is seen rather than skipped.
    pub fn failed(url: &str, why: String, now: i64) -> BackendStatus {
        let cause = Cause {
            code: "check_failed",
            message: why,
            fix: "see the sidecar's log; this is a bug or a build without TLS".into(),
        };
        BackendStatus {
            url: url.to_string(),
            verdict: Verdict::CouldNotConnect,
            result: CheckResult::HandshakeFailed,
            causes: vec![cause],
            chain: Vec::new(),
            anchor: None,
            leaf_expires_at: None,
            trusted_only_by_retained: None,
            warnings: Vec::new(),
            checked_at: rfc3339(now),
            consecutive_failures: 0,
            checked_at_unix: now,
            leaf_expiry_unix: None,
        }
    }

    /// What a log line says changed: the result, and whether only a
    /// retained CA still holds it.
    pub fn verdict_key(&self) -> (CheckResult, Option<&str>, Option<&str>) {
        (
            self.result,
            self.causes.first().map(|c| c.code),
            self.trusted_only_by_retained
                .as_ref()
                .map(|r| r.sha256.as_str()),
        )
    }
}
