//! OpenSSL's `TRUSTED CERTIFICATE`: a certificate followed by its trust
//! settings (`X509_CERT_AUX`), what `openssl x509 -trustout` writes.
//!
//! The bundle carries plain certificates only, so the settings are lost on
//! publishing. That is harmless when they trust the CA for TLS servers, or
//! say nothing; it would widen trust when they reject a use or trust the
//! CA for other uses only (OpenSSL then refuses it for TLS servers). Those
//! are an error of the file instead, naming why.

use crate::trust::der::{self, DerError};

/// `X509_CERT_AUX ::= SEQUENCE { trust SEQUENCE OF OBJECT OPTIONAL, reject
/// [0] SEQUENCE OF OBJECT OPTIONAL, alias, keyid, other }`: the two tags
/// that decide.
const TRUST_LIST: u8 = 0x30;
const REJECT_LIST: u8 = 0xa0;
/// id-kp-serverAuth (1.3.6.1.5.5.7.3.1), as OBJECT IDENTIFIER content.
const SERVER_AUTH: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01];

/// Why a trusted certificate cannot be published as a plain one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrustedError {
    #[error("its OpenSSL trust settings are malformed: {0}")]
    Malformed(#[from] DerError),
    #[error(
        "its OpenSSL trust settings reject some uses, which a plain bundle cannot say; \
         remove them (openssl x509 -clrreject) or drop the certificate"
    )]
    Rejects,
    #[error(
        "its OpenSSL trust settings do not trust it for TLS servers (serverAuth); \
         add it (openssl x509 -addtrust serverAuth) or drop the certificate"
    )]
    NotForServers,
}

/// The certificate DER at the front of a `TRUSTED CERTIFICATE` body, once
/// its trust settings are found to be safe to drop.
pub(crate) fn certificate(body: &[u8]) -> Result<&[u8], TrustedError> {
    let (cert, aux) = der::read_tlv(body)?;
    if aux.is_empty() {
        return Ok(cert.raw);
    }
    let (aux, _) = der::read_tlv(aux)?;
    let mut trust = None;
    for field in der::children(aux.content) {
        let field = field?;
        match field.tag {
            REJECT_LIST if !field.content.is_empty() => return Err(TrustedError::Rejects),
            TRUST_LIST => trust = Some(field.content),
            _ => {}
        }
    }
    if let Some(list) = trust {
        let mut oids = der::children(list);
        if !oids.any(|oid| oid.is_ok_and(|o| o.content == SERVER_AUTH)) {
            return Err(TrustedError::NotForServers);
        }
    }
    Ok(cert.raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(aux: &[u8]) -> Vec<u8> {
        let mut b = vec![0x30, 0x01, 0x00];
        b.extend_from_slice(aux);
        b
    }

    #[test]
    fn settings_that_trust_servers_or_say_nothing_are_dropped() {
        assert_eq!(certificate(&body(&[])), Ok(&[0x30, 0x01, 0x00][..]));
        let server = [&[0x30, 0x0c, 0x30, 0x0a, 0x06, 0x08][..], SERVER_AUTH].concat();
        assert!(certificate(&body(&server)).is_ok());
        let alias_only = [0x30, 0x03, 0x0c, 0x01, b'a'];
        assert!(certificate(&body(&alias_only)).is_ok());
    }

    #[test]
    fn settings_that_would_widen_trust_are_errors() {
        let client_auth = [0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02];
        let only_client = [&[0x30, 0x0c, 0x30, 0x0a, 0x06, 0x08][..], &client_auth].concat();
        assert_eq!(
            certificate(&body(&only_client)),
            Err(TrustedError::NotForServers)
        );
        let empty_trust = [0x30, 0x02, 0x30, 0x00];
        assert_eq!(
            certificate(&body(&empty_trust)),
            Err(TrustedError::NotForServers)
        );
        let rejects = [&[0x30, 0x0c, 0xa0, 0x0a, 0x06, 0x08][..], &client_auth].concat();
        assert_eq!(certificate(&body(&rejects)), Err(TrustedError::Rejects));
        assert!(matches!(
            certificate(&body(&[0x30, 0x05])),
            Err(TrustedError::Malformed(_))
        ));
    }
}
