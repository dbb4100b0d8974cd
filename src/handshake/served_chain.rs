//! What a trusted chain still owes to the bundle: intermediates the server
//! does not send. Trusted today, because the bundle holds them, but it breaks
//! at the next renewal of that intermediate (the bundle keeps the old one)
//! and on every client whose store lacks it.

use crate::trust::cert::{display_line, Certificate};

/// Whether `issuer` is named as `cert`'s issuer (the canonical name hash
/// when both have one, as OpenSSL looks issuers up).
fn issues(issuer: &Certificate, cert: &Certificate) -> bool {
    let hashes_agree = match (issuer.subject_hash, cert.issuer_hash) {
        (Some(a), Some(b)) => a == b,
        _ => true,
    };
    hashes_agree && issuer.subject == cert.issuer
}

/// The warning for a trusted chain (`sent`, leaf first) that needs
/// intermediates only the bundle has; `None` when the server sends every
/// certificate below the root.
pub(super) fn omitted_intermediates(
    sent: &[Certificate],
    bundle: &[Certificate],
) -> Option<String> {
    let mut missing: Vec<&Certificate> = Vec::new();
    let mut cur = sent.last()?;
    // Bounded by the bundle's size: each step takes a certificate not yet taken.
    while !cur.self_signed && missing.len() < bundle.len() {
        let Some(next) = bundle
            .iter()
            .find(|b| issues(b, cur) && !missing.iter().any(|m| m.der == b.der))
        else {
            break;
        };
        if next.self_signed {
            break;
        }
        missing.push(next);
        cur = next;
    }
    if missing.is_empty() {
        return None;
    }
    let names: Vec<String> = missing
        .iter()
        .map(|c| format!("\"{}\"", display_line(&c.subject)))
        .collect();
    Some(format!(
        "the server omits its intermediate: it is trusted only because the bundle holds {}; \
         when that intermediate is renewed the bundle's copy no longer matches, and clients \
         without it in their store fail today: configure the backend to send its full chain \
         (certificate + intermediate)",
        names.join(", ")
    ))
}
