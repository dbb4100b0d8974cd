//! A minimal DER reader and writer, just enough to walk a certificate and an
//! X.509 `Name` and re-encode it in OpenSSL's canonical form, with OpenSSL's
//! rules for the primitives it refuses (INTEGER, OBJECT IDENTIFIER).
//!
//! Why not `x509-parser` for this: the subject hash must reproduce OpenSSL's
//! bytes exactly, so we need the raw tag and content of every attribute value,
//! and a reader this small is easy to fuzz and to reason about.

/// One tag-length-value element borrowed from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tlv<'a> {
    /// The identifier octet. Only low-tag-number form occurs in names.
    pub tag: u8,
    /// The content octets.
    pub content: &'a [u8],
    /// The whole element, header included, as it appeared in the input.
    pub raw: &'a [u8],
}

/// Why a DER element could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DerError {
    #[error("truncated DER element")]
    Truncated,
    #[error("unsupported DER length encoding")]
    BadLength,
    #[error("high-tag-number form is not expected here")]
    HighTag,
}

/// Reads one element from the front of `input`, returning it and the rest.
pub fn read_tlv(input: &[u8]) -> Result<(Tlv<'_>, &[u8]), DerError> {
    let (&tag, rest) = input.split_first().ok_or(DerError::Truncated)?;
    if tag & 0x1f == 0x1f {
        return Err(DerError::HighTag);
    }
    let (&first, rest) = rest.split_first().ok_or(DerError::Truncated)?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        // Four length octets cover anything a 1 MiB file can hold; more (or the
        // indefinite form, n == 0) is not DER we accept.
        if n == 0 || n > 4 || rest.len() < n {
            return Err(DerError::BadLength);
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return Err(DerError::Truncated);
    }
    let header_len = input.len() - rest.len();
    let (content, after) = rest.split_at(len);
    Ok((
        Tlv {
            tag,
            content,
            raw: &input[..header_len + len],
        },
        after,
    ))
}

/// Iterates the elements inside a constructed element's content.
pub fn children(mut content: &[u8]) -> impl Iterator<Item = Result<Tlv<'_>, DerError>> {
    std::iter::from_fn(move || {
        if content.is_empty() {
            return None;
        }
        match read_tlv(content) {
            Ok((tlv, rest)) => {
                content = rest;
                Some(Ok(tlv))
            }
            Err(e) => {
                content = &[];
                Some(Err(e))
            }
        }
    })
}

/// Appends a DER element with `tag` and `content` to `out`.
pub fn write_tlv(out: &mut Vec<u8>, tag: u8, content: &[u8]) {
    write_header(out, tag, content.len());
    out.extend_from_slice(content);
}

/// Appends the tag and length of an element whose content of `len` bytes
/// the caller appends next.
pub fn write_header(out: &mut Vec<u8>, tag: u8, len: usize) {
    out.push(tag);
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = leading_zeros(&bytes);
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

/// The size of a whole element (tag, length and content) whose content is
/// `len` bytes: what [`write_tlv`] appends.
pub fn encoded_len(len: usize) -> usize {
    let bytes = len.to_be_bytes();
    let long_form = if len < 0x80 {
        0
    } else {
        bytes.len() - leading_zeros(&bytes)
    };
    2 + long_form + len
}

fn leading_zeros(bytes: &[u8]) -> usize {
    bytes.iter().take_while(|&&b| b == 0).count()
}

/// OpenSSL's `c2i_ibuf`: some content, and no leading octet that only
/// repeats the sign of the next one.
pub fn integer_ok(c: &[u8]) -> bool {
    match c {
        [] => false,
        [_] => true,
        [0x00, next, ..] => next & 0x80 != 0,
        [0xff, next, rest @ ..] => {
            let padded = *next != 0 || rest.iter().any(|&b| b != 0);
            !padded || next & 0x80 == 0
        }
        _ => true,
    }
}

/// OpenSSL's `ossl_c2i_ASN1_OBJECT` checks: some content, a last octet that
/// ends a sub-identifier, and no sub-identifier padded with a leading 0x80.
pub fn oid_ok(c: &[u8]) -> bool {
    let ends_arc = c.last().is_some_and(|&b| b & 0x80 == 0);
    let padded = c
        .iter()
        .enumerate()
        .any(|(i, &b)| b == 0x80 && (i == 0 || c[i - 1] & 0x80 == 0));
    ends_arc && !padded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_len_is_what_write_tlv_appends() {
        for len in [0, 1, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x1_0000] {
            let mut out = Vec::new();
            write_tlv(&mut out, 0x04, &vec![0; len]);
            assert_eq!(encoded_len(len), out.len(), "{len}");
        }
    }

    #[test]
    fn round_trips_short_and_long_lengths() {
        for len in [0usize, 1, 127, 128, 255, 256, 70_000] {
            let content = vec![7u8; len];
            let mut out = Vec::new();
            write_tlv(&mut out, 0x04, &content);
            let (tlv, rest) = read_tlv(&out).unwrap();
            assert!(rest.is_empty());
            assert_eq!(tlv.tag, 0x04);
            assert_eq!(tlv.content.len(), len);
            assert_eq!(tlv.raw, &out[..]);
        }
    }

    #[test]
    fn rejects_truncation_and_indefinite_length() {
        assert_eq!(read_tlv(&[0x30]), Err(DerError::Truncated));
        assert_eq!(read_tlv(&[0x30, 0x05, 1]), Err(DerError::Truncated));
        assert_eq!(read_tlv(&[0x30, 0x80]), Err(DerError::BadLength));
        assert_eq!(read_tlv(&[0x1f, 0x01, 0x00]), Err(DerError::HighTag));
    }

    #[test]
    fn integers_as_openssl_decodes_them() {
        for ok in [
            &[0x00][..],
            &[0x7f],
            &[0x00, 0x80],
            &[0xff, 0x00],
            &[0xff, 0x7f],
            &[0x01, 0x00],
        ] {
            assert!(integer_ok(ok), "{ok:x?}");
        }
        for bad in [&[][..], &[0x00, 0x01], &[0xff, 0x80], &[0xff, 0xff, 0x01]] {
            assert!(!integer_ok(bad), "{bad:x?}");
        }
    }

    #[test]
    fn oids_as_openssl_decodes_them() {
        assert!(oid_ok(&[0x55, 0x04, 0x03]));
        assert!(oid_ok(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d]));
        for bad in [&[][..], &[0x55, 0x84], &[0x80, 0x01], &[0x55, 0x80, 0x01]] {
            assert!(!oid_ok(bad), "{bad:x?}");
        }
    }
}
