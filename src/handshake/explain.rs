//! Why a path could not be built, in plain words: webpki says what failed,
//! these name which certificate and what to do about it.

use super::diagnose::{names_issuer, q};
use super::Cause;
use crate::trust::cert::{rfc3339, Certificate};
use crate::trust::policy::CertFacts;

/// Role of a certificate in the sent chain, for messages.
fn role(i: usize) -> &'static str {
    if i == 0 {
        "the server's certificate"
    } else {
        "the intermediate sent by the server"
    }
}

/// Turns webpki's verdict into a cause that names the certificate at fault,
/// found from the chain's facts (webpki says what, not which).
pub(super) fn explain_chain_error(
    e: &webpki::Error,
    sent: &[Certificate],
    bundle: &[Certificate],
    now: i64,
) -> Cause {
    use webpki::Error as W;
    match e {
        W::CertExpired { .. } => {
            let (i, c) = sent
                .iter()
                .enumerate()
                .find(|(_, c)| c.not_after < now)
                .unwrap_or((0, &sent[0]));
            Cause::new(
                "expired",
                format!(
                    "{} {} expired at {} ({} day(s) ago)",
                    role(i),
                    q(&c.subject),
                    rfc3339(c.not_after),
                    (now - c.not_after) / 86_400
                ),
                "renew it and install the new certificate on the backend",
            )
        }
        W::CertNotValidYet { .. } => {
            let (i, c) = sent
                .iter()
                .enumerate()
                .find(|(_, c)| c.not_before > now)
                .unwrap_or((0, &sent[0]));
            Cause::new(
                "not_yet_valid",
                format!(
                    "{} {} is not valid before {}",
                    role(i),
                    q(&c.subject),
                    rfc3339(c.not_before)
                ),
                "check the clocks of the issuing CA and of this machine, or wait until it is valid",
            )
        }
        // ring refuses RSA keys under 2048 bits as a bad signature, which
        // would otherwise read as "unknown issuer": rule that out first.
        W::UnknownIssuer | W::InvalidSignatureForPublicKey => {
            weak_cause(sent, bundle).unwrap_or_else(|| missing_issuer(sent, bundle))
        }
        W::EndEntityUsedAsCa => {
            let culprit = sent[1..]
                .iter()
                .chain(bundle)
                .find(|c| !c.is_ca && sent.iter().any(|s| names_issuer(c, s)));
            let name = culprit.map_or("an issuer in the chain".to_string(), |c| q(&c.subject));
            Cause::new(
                "intermediate_not_ca",
                format!(
                    "the intermediate {name} issued the server's certificate but is not a CA \
                     (no basicConstraints CA:TRUE), so clients refuse it as an issuer"
                ),
                "re-issue the intermediate as a CA (basicConstraints CA:TRUE, keyUsage keyCertSign) and the server's certificate from it",
            )
        }
        W::CaUsedAsEndEntity => Cause::new(
            "leaf_is_ca",
            format!(
                "the server presents a CA certificate {} as its own certificate",
                q(&sent[0].subject)
            ),
            "issue a server certificate (CA:FALSE) from that CA and install it on the backend",
        ),
        #[allow(deprecated)] // both spellings exist in webpki 0.103
        W::RequiredEkuNotFound | W::RequiredEkuNotFoundContext(_) => {
            let (i, c, ekus) = sent
                .iter()
                .enumerate()
                .map(|(i, c)| (i, c, CertFacts::of(c)))
                .find(|(_, _, f)| !f.allows_server_auth())
                .map(|(i, c, f)| (i, c, f.extended_key_usage.unwrap_or_default()))
                .unwrap_or((0, &sent[0], Vec::new()));
            Cause::new(
                "missing_server_auth",
                format!(
                    "{} {} may not be used by a TLS server: its extended key usage lists only {} (serverAuth is missing)",
                    role(i),
                    q(&c.subject),
                    if ekus.is_empty() { "nothing".to_string() } else { ekus.join(", ") }
                ),
                "re-issue it with extendedKeyUsage serverAuth",
            )
        }
        #[allow(deprecated)] // both spellings exist in webpki 0.103
        W::UnsupportedSignatureAlgorithm
        | W::UnsupportedSignatureAlgorithmContext(_)
        | W::UnsupportedSignatureAlgorithmForPublicKey
        | W::UnsupportedSignatureAlgorithmForPublicKeyContext(_) => weak_cause(sent, bundle)
            .unwrap_or_else(|| {
                Cause::new(
                    "weak_algorithm",
                    format!("a certificate in the chain uses an algorithm clients refuse: {e:?}"),
                    "re-issue it with SHA-256 and an RSA >= 2048 or EC P-256+ key",
                )
            }),
        other => Cause::new(
            "rejected",
            format!("the chain is refused: {other:?}"),
            "inspect the chain (trust-injector inspect) and re-issue the faulty certificate",
        ),
    }
}

/// A weak signature on a sent certificate, or a weak key on a certificate
/// that issues one of them (sent or in the bundle), named.
fn weak_cause(sent: &[Certificate], bundle: &[Certificate]) -> Option<Cause> {
    let fix = "re-issue it with SHA-256 and an RSA >= 2048 or EC P-256+ key";
    for c in sent {
        let f = CertFacts::of(c);
        if f.weak_signature && !c.self_signed {
            return Some(Cause::new(
                "weak_algorithm",
                format!(
                    "{} is signed with {}, which clients refuse",
                    q(&c.subject),
                    f.signature_algorithm
                ),
                fix,
            ));
        }
    }
    let issuers = sent
        .iter()
        .chain(bundle)
        .filter(|i| sent.iter().any(|c| names_issuer(i, c)));
    for i in issuers {
        let f = CertFacts::of(i);
        if f.weak_key() {
            return Some(Cause::new(
                "weak_algorithm",
                format!(
                    "{} has a weak key ({} {} bits): clients refuse the signatures it makes",
                    q(&i.subject),
                    f.key_algorithm,
                    f.key_bits
                ),
                fix,
            ));
        }
    }
    None
}

/// Walks up the sent chain by issuer name to the first certificate whose
/// issuer is in neither the chain nor the bundle, and says who is missing.
fn missing_issuer(sent: &[Certificate], bundle: &[Certificate]) -> Cause {
    let mut i = 0;
    let mut visited = vec![0];
    loop {
        let cur = &sent[i];
        if let Some(b) = bundle
            .iter()
            .find(|b| names_issuer(b, cur) && b.der != cur.der)
        {
            // The bundle has the issuer's name, yet no path: its key did not
            // sign this certificate (a CA re-created with the same name).
            return Cause::new(
                "issuer_key_mismatch",
                format!(
                    "the bundle holds {} but that certificate did not sign {} {}: same name, different key (the CA was re-created or re-keyed)",
                    q(&b.subject),
                    role(i),
                    q(&cur.subject)
                ),
                "put the CA certificate that actually issued it in the bundle (compare the key identifiers with trust-injector inspect)",
            );
        }
        if cur.self_signed {
            return root_not_in_bundle(i, cur);
        }
        match sent
            .iter()
            .enumerate()
            .find(|(j, s)| !visited.contains(j) && names_issuer(s, cur))
        {
            Some((j, _)) => {
                visited.push(j);
                i = j;
            }
            None => return issuer_not_found(i, cur, sent.len()),
        }
    }
}

/// The walk up the chain ended on `cur`, the `i`-th certificate sent,
/// self-signed and not in the bundle.
fn root_not_in_bundle(i: usize, cur: &Certificate) -> Cause {
    if i == 0 {
        Cause::new(
            "self_signed_leaf",
            format!(
                "the server's certificate {} is self-signed and not in the bundle",
                q(&cur.subject)
            ),
            "have the backend use a certificate issued by your CA, or (to pin this one) add it to the bundle",
        )
    } else {
        Cause::new(
            "unknown_issuer",
            format!(
                "the server sends its root {} but the bundle does not hold it",
                q(&cur.subject)
            ),
            format!(
                "add the root {} to the bundle (with trust-injector: to the CA Secret)",
                q(&cur.subject)
            ),
        )
    }
}

/// The walk up the chain ended on `cur`, the `i`-th of the `sent`
/// certificates, whose issuer neither the server nor the bundle has.
fn issuer_not_found(i: usize, cur: &Certificate, sent: usize) -> Cause {
    if i > 0 {
        return Cause::new(
            "unknown_issuer",
            format!(
                "the bundle has no certificate for {}, which issued {}",
                q(&cur.issuer),
                q(&cur.subject)
            ),
            format!(
                "add {} (and its root, if it is not one) to the bundle (with trust-injector: to the CA Secret)",
                q(&cur.issuer)
            ),
        );
    }
    let others = if sent > 1 {
        format!(
            "the server sends {} other certificate(s) but not it",
            sent - 1
        )
    } else {
        "the server sends no intermediate".to_string()
    };
    Cause::new(
        "missing_intermediate",
        format!(
            "{others}, and the bundle lacks {}, the issuer of the server's certificate {}",
            q(&cur.issuer),
            q(&cur.subject)
        ),
        format!(
            "configure the backend to send its full chain (certificate + intermediate), or add {} to the bundle together with its root",
            q(&cur.issuer)
        ),
    )
}
