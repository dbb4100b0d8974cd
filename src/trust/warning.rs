//! A certificate warning in the one shape every report uses: `/status`
//! (`custom_certificates[].warnings`), `inspect --json` (`certificates[].warnings`)
//! and the sidecar's log line (fields `code` and the message). The code is a
//! stable name from `docs/diagnosing.md`; the message says it in words. One
//! type, so the three cannot drift apart again (they were bare strings,
//! `{code, message}` and `concern=`).

use crate::trust::cert::Certificate;
use crate::trust::policy::Concern;
use serde::Serialize;

/// One warning about one certificate, for machines (`code`) and people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warning {
    /// Stable name (`missing_root`, `not_ca`, `expires_soon`, `weak_key` …),
    /// the key of `docs/diagnosing.md` and of the metric's `code` label.
    pub code: &'static str,
    /// One sentence: what is wrong and what to do.
    pub message: String,
}

impl Warning {
    /// `concern` about `cert`, as the publish loop words it.
    pub fn of(concern: &Concern, cert: &Certificate) -> Self {
        Warning {
            code: concern.code(),
            message: concern.explain(cert),
        }
    }
}

/// Every code a [`Concern`] can have, in a stable order: the metric
/// `trust_injector_certificate_warnings{code}` exports each, zero included,
/// so that an alert on one code never depends on the series existing.
pub const CODES: [&str; 7] = [
    "missing_root",
    "not_ca",
    "not_yet_valid",
    "expires_soon",
    "expired",
    "weak_key",
    "weak_signature",
];

#[cfg(test)]
mod tests {
    use super::*;

    /// A new `Concern` must get its code listed, or the metric would miss it:
    /// the exhaustive match stops compiling until it is added below.
    #[test]
    fn every_concern_code_is_listed() {
        let _exhaustive = |c: &Concern| match c {
            Concern::NotYetValid
            | Concern::NotCa
            | Concern::MissingRoot
            | Concern::ExpiredKept
            | Concern::ExpiresSoon
            | Concern::WeakKey { .. }
            | Concern::WeakSignature { .. } => (),
        };
        let all = [
            Concern::NotYetValid,
            Concern::NotCa,
            Concern::MissingRoot,
            Concern::ExpiredKept,
            Concern::ExpiresSoon,
            Concern::WeakKey {
                algorithm: "RSA".into(),
                bits: 1024,
            },
            Concern::WeakSignature {
                algorithm: "sha1WithRSAEncryption".into(),
            },
        ];
        let mut codes: Vec<_> = all.iter().map(Concern::code).collect();
        let mut listed = CODES.to_vec();
        codes.sort_unstable();
        listed.sort_unstable();
        assert_eq!(codes, listed);
    }
}
