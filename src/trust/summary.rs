//! A certificate's name and validity as every JSON report shows them:
//! `/status` (`custom_certificates`), `inspect --json` (`certificates`) and
//! `verify --json` (`chain`, `anchor`). One projection, so that the three
//! cannot come to spell a subject or a date differently. Each report
//! flattens it (`#[serde(flatten)]`) where these four fields stand, which
//! keeps their names and position in every output.

use crate::trust::cert::{rfc3339, Certificate};
use serde::Serialize;

/// The fields that open every report of a certificate, in this order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CertSummary {
    /// The subject DN, as OpenSSL prints it (`CN=…, O=…`).
    pub subject: String,
    /// The issuer DN, same form: with the subject, what people recognise.
    pub issuer: String,
    /// RFC 3339, UTC: machines parse it, people read it.
    pub not_before: String,
    /// RFC 3339, UTC.
    pub not_after: String,
}

impl CertSummary {
    /// The summary of `c`.
    pub fn of(c: &Certificate) -> Self {
        CertSummary {
            subject: c.subject.clone(),
            issuer: c.issuer.clone(),
            not_before: rfc3339(c.not_before),
            not_after: rfc3339(c.not_after),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_four_fields_in_their_order() {
        let (roots, _) = crate::trust::base::embedded_roots();
        let s = CertSummary::of(&roots[0]);
        let json = serde_json::to_string(&s).unwrap();
        let keys: Vec<&str> = ["subject", "issuer", "not_before", "not_after"].to_vec();
        let at: Vec<usize> = keys
            .iter()
            .map(|k| json.find(&format!("\"{k}\"")).unwrap())
            .collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "{json}");
        assert_eq!(s.not_after, rfc3339(roots[0].not_after));
    }
}
