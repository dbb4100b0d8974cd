//! What is allowed into the bundle, and what deserves a warning.

use crate::cert::Certificate;

/// The knobs of the policy.
#[derive(Debug, Clone, Copy, Default)]
pub struct Policy {
    /// Keep expired certificates instead of dropping them (`--keep-expired`).
    pub keep_expired: bool,
}

/// Why a certificate is worth a warning. Kept certificates only; dropping is
/// reported separately.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Concern {
    /// Valid only from `not_before` on: clients refuse it until then.
    NotYetValid,
    /// Not a CA certificate: useless as an issuer, and a sign that a leaf was
    /// put into the CA Secret by mistake.
    NotCa,
    /// An intermediate whose issuer is not in the bundle. OpenSSL would accept
    /// it as an anchor only with X509_V_FLAG_PARTIAL_CHAIN; .NET on Linux
    /// anchors only self-signed certificates, so it trusts nothing alone.
    MissingRoot,
    /// Expired but kept because of `--keep-expired`.
    ExpiredKept,
}

impl Concern {
    /// One sentence for logs and `/status`.
    pub fn explain(&self, cert: &Certificate) -> String {
        match self {
            Concern::NotYetValid => format!(
                "not valid before {}; clients will refuse it until then",
                crate::cert::rfc3339(cert.not_before)
            ),
            Concern::NotCa => {
                "not a CA certificate (no basicConstraints CA:TRUE); it cannot issue anything"
                    .to_string()
            }
            Concern::MissingRoot => format!(
                "intermediate whose root ({}) is not in the bundle; .NET anchors only \
                 self-signed certificates, so add the root to the Secret",
                crate::cert::escape_line(&cert.issuer)
            ),
            Concern::ExpiredKept => format!(
                "expired at {} (kept because of --keep-expired)",
                crate::cert::rfc3339(cert.not_after)
            ),
        }
    }
}

impl Policy {
    /// Whether `cert` is published at `now`.
    pub fn admits(&self, cert: &Certificate, now: i64) -> bool {
        self.keep_expired || !cert.is_expired(now)
    }

    /// Concerns about a certificate that is published. `custom` says whether
    /// it came from a source (anchor checks apply to those only: the base is
    /// somebody else's curated list). `has_issuer` says whether the bundle
    /// holds a certificate whose subject is this one's issuer.
    pub fn concerns(
        &self,
        cert: &Certificate,
        custom: bool,
        has_issuer: bool,
        now: i64,
    ) -> Vec<Concern> {
        let mut out = Vec::new();
        if cert.is_expired(now) {
            out.push(Concern::ExpiredKept);
        }
        if cert.not_before > now {
            out.push(Concern::NotYetValid);
        }
        if custom && !cert.is_ca {
            out.push(Concern::NotCa);
        }
        if custom && cert.is_ca && !cert.self_signed && !has_issuer {
            out.push(Concern::MissingRoot);
        }
        out
    }
}
