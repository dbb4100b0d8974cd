//! Hostile certificates built byte by byte: names and extensions no CA tool
//! would write, for the differential test of `tests/hostile_certs.rs`.
//!
//! Each case is a whole DER certificate (CA, basicConstraints critical) with
//! one hostile part: a subject, an issuer or an extension. The signature is a
//! placeholder: no client checks a trust anchor's own signature when it loads
//! a bundle, and what is under test is whether the bundle loads at all.

/// One hostile certificate and what is bent in it.
pub struct Case {
    /// What is hostile in it, for failure messages.
    pub label: String,
    /// The whole certificate.
    pub der: Vec<u8>,
}

/// A DER element with a definite length.
pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = (len as u32).to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | (4 - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

/// A constructed element holding `parts` in order.
pub fn cons(tag: u8, parts: &[Vec<u8>]) -> Vec<u8> {
    tlv(tag, &parts.concat())
}

/// `SEQUENCE { parts }`.
pub fn seq(parts: &[Vec<u8>]) -> Vec<u8> {
    cons(0x30, parts)
}

/// The commonName attribute type.
pub const CN: &[u8] = &[0x55, 0x04, 0x03];
/// The organizationName attribute type.
pub const O: &[u8] = &[0x55, 0x04, 0x0a];

/// `SEQUENCE { OID oid, value }`: one AttributeTypeAndValue.
pub fn atv(oid: &[u8], value: Vec<u8>) -> Vec<u8> {
    seq(&[tlv(0x06, oid), value])
}

/// A Name of one RDN per value, each `CN` with the given encoded value.
pub fn name_of(values: &[Vec<u8>]) -> Vec<u8> {
    let rdns: Vec<Vec<u8>> = values
        .iter()
        .map(|v| cons(0x31, &[atv(CN, v.clone())]))
        .collect();
    seq(&rdns)
}

/// `CN=<text>` as a UTF8String: the good name of the cases that bend something else.
pub fn plain_name(text: &str) -> Vec<u8> {
    name_of(&[tlv(0x0c, text.as_bytes())])
}

/// basicConstraints, critical, cA TRUE.
fn ca_extension() -> Vec<u8> {
    extension(&[0x55, 0x1d, 0x13], true, &seq(&[tlv(0x01, &[0xff])]))
}

/// An Extension with `value` as its extnValue content.
pub fn extension(oid: &[u8], critical: bool, value: &[u8]) -> Vec<u8> {
    let mut parts = vec![tlv(0x06, oid)];
    if critical {
        parts.push(tlv(0x01, &[0xff]));
    }
    parts.push(tlv(0x04, value));
    seq(&parts)
}

/// ecdsa-with-SHA256, the signature algorithm of every case.
fn ecdsa_sha256() -> Vec<u8> {
    seq(&[tlv(0x06, &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02])])
}

/// The TBSCertificate fields of a CA certificate for `spki` (a
/// SubjectPublicKeyInfo), in order: version, serial, signature, issuer,
/// validity, subject, key, then extensions (basicConstraints and `exts`;
/// `None`: no extensions field at all).
pub fn tbs_fields(
    serial: u32,
    subject: &[u8],
    issuer: &[u8],
    spki: &[u8],
    exts: Option<&[Vec<u8>]>,
) -> Vec<Vec<u8>> {
    let mut serial_bytes = vec![0x01];
    serial_bytes.extend_from_slice(&serial.to_be_bytes());
    let validity = seq(&[tlv(0x17, b"200101000000Z"), tlv(0x18, b"20991231235959Z")]);
    let mut tbs = vec![
        tlv(0xa0, &tlv(0x02, &[0x02])),
        tlv(0x02, &serial_bytes),
        ecdsa_sha256(),
        issuer.to_vec(),
        validity,
        subject.to_vec(),
        spki.to_vec(),
    ];
    if let Some(exts) = exts {
        let mut all = vec![ca_extension()];
        all.extend_from_slice(exts);
        tbs.push(tlv(0xa3, &seq(&all)));
    }
    tbs
}

/// The certificate of `tbs` fields, with a placeholder signature.
pub fn signed(tbs: &[Vec<u8>]) -> Vec<u8> {
    let signature = seq(&[tlv(0x02, &[0x01]), tlv(0x02, &[0x01])]);
    let mut bits = vec![0x00];
    bits.extend_from_slice(&signature);
    seq(&[seq(tbs), ecdsa_sha256(), tlv(0x03, &bits)])
}

/// A CA certificate: [`tbs_fields`], [`signed`].
pub fn certificate(
    serial: u32,
    subject: &[u8],
    issuer: &[u8],
    spki: &[u8],
    exts: Option<&[Vec<u8>]>,
) -> Vec<u8> {
    signed(&tbs_fields(serial, subject, issuer, spki, exts))
}

/// Hostile certificate fields outside the names: `(label, field index in
/// [`tbs_fields`] or `None` to append, replacement)`; an empty replacement
/// removes the field.
fn hostile_fields() -> Vec<(&'static str, Option<usize>, Vec<u8>)> {
    let time = |a: Vec<u8>, b: Vec<u8>| seq(&[a, b]);
    let rsa = seq(&[
        tlv(
            0x06,
            &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01],
        ),
        tlv(0x05, &[]),
    ]);
    vec![
        ("serial with a 0x00 pad", Some(1), tlv(0x02, &[0x00, 0x01])),
        ("serial with a 0xff pad", Some(1), tlv(0x02, &[0xff, 0x80])),
        ("empty serial", Some(1), tlv(0x02, &[])),
        ("negative serial", Some(1), tlv(0x02, &[0x80, 0x01])),
        ("serial of 40 octets", Some(1), tlv(0x02, &[0x11; 40])),
        ("version 5", Some(0), tlv(0xa0, &tlv(0x02, &[0x04]))),
        (
            "version with a pad",
            Some(0),
            tlv(0xa0, &tlv(0x02, &[0x00, 0x02])),
        ),
        ("no version but extensions", Some(0), vec![]),
        ("serial as OCTET STRING", Some(1), tlv(0x04, &[0x01])),
        (
            "notBefore a UTF8String",
            Some(4),
            time(tlv(0x0c, b"x"), tlv(0x18, b"20991231235959Z")),
        ),
        (
            "UTCTime without seconds",
            Some(4),
            time(tlv(0x17, b"2001010000Z"), tlv(0x18, b"20991231235959Z")),
        ),
        (
            "GeneralizedTime with a fraction",
            Some(4),
            time(tlv(0x17, b"200101000000Z"), tlv(0x18, b"20991231235959.5Z")),
        ),
        (
            "UTCTime with a month 13",
            Some(4),
            time(tlv(0x17, b"201301000000Z"), tlv(0x18, b"20991231235959Z")),
        ),
        (
            "GeneralizedTime before 2050",
            Some(4),
            time(tlv(0x18, b"20200101000000Z"), tlv(0x18, b"20991231235959Z")),
        ),
        (
            "signature algorithm OID with a 0x80 pad",
            Some(2),
            seq(&[tlv(
                0x06,
                &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x80, 0x02],
            )]),
        ),
        (
            "signature algorithm OID empty",
            Some(2),
            seq(&[tlv(0x06, &[])]),
        ),
        (
            "extension OID with a 0x80 pad",
            Some(7),
            tlv(
                0xa3,
                &seq(&[seq(&[
                    tlv(0x06, &[0x55, 0x80, 0x1d, 0x13]),
                    tlv(0x04, &seq(&[tlv(0x01, &[0xff])])),
                ])]),
            ),
        ),
        (
            "extension OID ending mid-arc",
            Some(7),
            tlv(
                0xa3,
                &seq(&[seq(&[
                    tlv(0x06, &[0x55, 0x1d, 0x93]),
                    tlv(0x04, &[0x05, 0x00]),
                ])]),
            ),
        ),
        (
            "RSA key that is not a key",
            Some(6),
            seq(&[rsa.clone(), tlv(0x03, &[0x00, 0x30, 0x00])]),
        ),
        (
            "key of an unknown algorithm",
            Some(6),
            seq(&[
                seq(&[tlv(0x06, &[0x2a, 0x03, 0x04, 0x07])]),
                tlv(0x03, &[0x00, 0x01]),
            ]),
        ),
        (
            "key BIT STRING with 8 unused bits",
            Some(6),
            seq(&[rsa, tlv(0x03, &[0x08])]),
        ),
        ("issuerUniqueID", Some(7), tlv(0x81, &[0x00, 0x01])),
        ("extensions field empty", Some(7), tlv(0xa3, &seq(&[]))),
        ("trailing element in the TBS", None, tlv(0x05, &[])),
        (
            "critical BOOLEAN 0x01",
            Some(7),
            tlv(
                0xa3,
                &seq(&[seq(&[
                    tlv(0x06, &[0x55, 0x1d, 0x13]),
                    tlv(0x01, &[0x01]),
                    tlv(0x04, &seq(&[tlv(0x01, &[0xff])])),
                ])]),
            ),
        ),
        (
            "critical BOOLEAN of two octets",
            Some(7),
            tlv(
                0xa3,
                &seq(&[seq(&[
                    tlv(0x06, &[0x55, 0x1d, 0x13]),
                    tlv(0x01, &[0xff, 0xff]),
                    tlv(0x04, &seq(&[tlv(0x01, &[0xff])])),
                ])]),
            ),
        ),
    ]
}

/// The hostile attribute values: `(label, encoded value)`.
fn hostile_values() -> Vec<(&'static str, Vec<u8>)> {
    let utf8 = |b: &[u8]| tlv(0x0c, b);
    vec![
        ("UTF8String with 0xff", utf8(b"bad \xff CA")),
        ("UTF8String truncated sequence", utf8(b"bad \xc3")),
        ("UTF8String overlong '/'", utf8(b"a\xc0\xafb")),
        ("UTF8String overlong 3-byte", utf8(b"a\xe0\x80\xafb")),
        ("UTF8String surrogate", utf8(b"a\xed\xa0\x80b")),
        ("UTF8String above U+10FFFF", utf8(b"a\xf4\x90\x80\x80b")),
        ("UTF8String 5-byte form", utf8(b"a\xf8\x88\x80\x80\x80b")),
        ("UTF8String lone continuation", utf8(b"a\x80b")),
        ("UTF8String with NUL", utf8(b"nul\x00inside")),
        ("UTF8String empty", utf8(b"")),
        ("UTF8String white space only", utf8(b" \t \n ")),
        (
            "UTF8String valid 4-byte",
            utf8("emoji \u{1f512} CA".as_bytes()),
        ),
        ("VisibleString", tlv(0x1a, b"Visible CA")),
        ("GeneralString", tlv(0x1b, b"General CA")),
        ("VideotexString", tlv(0x15, b"Videotex CA")),
        ("GraphicString", tlv(0x19, b"Graphic CA")),
        ("INTEGER", tlv(0x02, &[0x01, 0x00])),
        ("OCTET STRING", tlv(0x04, b"octets")),
        ("NULL", tlv(0x05, b"")),
        ("BOOLEAN", tlv(0x01, &[0xff])),
        ("OBJECT IDENTIFIER", tlv(0x06, CN)),
        ("ENUMERATED", tlv(0x0a, &[0x01])),
        ("UTCTime", tlv(0x17, b"200101000000Z")),
        ("GeneralizedTime", tlv(0x18, b"20200101000000Z")),
        ("SET", cons(0x31, &[tlv(0x0c, b"x")])),
        ("SEQUENCE", seq(&[tlv(0x0c, b"x")])),
        ("BIT STRING", tlv(0x03, &[0x00, 0x41])),
        ("ObjectDescriptor (tag 7)", tlv(0x07, b"desc")),
        ("context-specific [0]", tlv(0x80, b"ctx")),
        ("application [1]", tlv(0x41, b"app")),
        (
            "constructed UTF8String",
            cons(0x2c, &[utf8(b"ab"), utf8(b"cd")]),
        ),
        ("NumericString with letters", tlv(0x12, b"12ab")),
        ("PrintableString with '@' and 0xff", tlv(0x13, b"a@b\xff")),
        ("PrintableString with NUL", tlv(0x13, b"a\x00b")),
        ("IA5String with 0xe9", tlv(0x16, b"caf\xe9")),
        ("T61String with 0xff", tlv(0x14, b"t61 \xff")),
        ("BMPString odd length", tlv(0x1e, &[0x00, 0x41, 0x00])),
        (
            "BMPString lone high surrogate",
            tlv(0x1e, &[0x00, 0x41, 0xd8, 0x00]),
        ),
        ("BMPString lone low surrogate", tlv(0x1e, &[0xdc, 0x00])),
        (
            "BMPString surrogate pair",
            tlv(0x1e, &[0xd8, 0x3d, 0xde, 0x00]),
        ),
        ("BMPString valid", tlv(0x1e, &[0x00, 0x41, 0x00, 0xe9])),
        (
            "UniversalString above U+10FFFF",
            tlv(0x1c, &[0x00, 0x11, 0x00, 0x00]),
        ),
        (
            "UniversalString surrogate",
            tlv(0x1c, &[0x00, 0x00, 0xd8, 0x00]),
        ),
        ("UniversalString length 3", tlv(0x1c, &[0x00, 0x00, 0x41])),
        (
            "UniversalString valid",
            tlv(0x1c, &[0x00, 0x01, 0xf5, 0x12]),
        ),
        ("UTF8String of 60000 bytes", utf8(&vec![b'x'; 60_000])),
    ]
}

/// Whole hostile names (structure, not one value): `(label, Name DER)`.
fn hostile_names() -> Vec<(&'static str, Vec<u8>)> {
    let cn = |t: &[u8]| atv(CN, tlv(0x0c, t));
    let rdn = |atvs: &[Vec<u8>]| cons(0x31, atvs);
    vec![
        ("empty Name", seq(&[])),
        ("one empty RDN", seq(&[rdn(&[])])),
        (
            "empty RDN before CN",
            seq(&[rdn(&[]), rdn(&[cn(b"after empty")])]),
        ),
        (
            "empty RDN after CN",
            seq(&[rdn(&[cn(b"before empty")]), rdn(&[])]),
        ),
        (
            "duplicate RDNs",
            seq(&[rdn(&[cn(b"twice")]), rdn(&[cn(b"twice")])]),
        ),
        (
            "duplicate values in one RDN",
            seq(&[rdn(&[cn(b"same"), cn(b"same")])]),
        ),
        (
            "multi-valued RDN out of DER order",
            seq(&[rdn(&[atv(O, tlv(0x0c, b"zz")), cn(b"a")])]),
        ),
        (
            "1000 RDNs",
            seq(&(0..1000)
                .map(|i| rdn(&[cn(format!("r{i}").as_bytes())]))
                .collect::<Vec<_>>()),
        ),
        (
            "AttributeTypeAndValue with a third element",
            seq(&[rdn(&[seq(&[
                tlv(0x06, CN),
                tlv(0x0c, b"a"),
                tlv(0x0c, b"b"),
            ])])]),
        ),
        (
            "AttributeTypeAndValue without a value",
            seq(&[rdn(&[seq(&[tlv(0x06, CN)])])]),
        ),
        (
            "attribute OID with a 0x80 pad",
            seq(&[rdn(&[atv(&[0x55, 0x80, 0x04, 0x03], tlv(0x0c, b"a"))])]),
        ),
        (
            "empty attribute OID",
            seq(&[rdn(&[atv(&[], tlv(0x0c, b"a"))])]),
        ),
        (
            "attribute OID ending mid-arc",
            seq(&[rdn(&[atv(&[0x55, 0x04, 0x83], tlv(0x0c, b"a"))])]),
        ),
        (
            "unknown attribute OID",
            seq(&[rdn(&[atv(&[0x2a, 0x03, 0x04, 0x05], tlv(0x0c, b"a"))])]),
        ),
        ("RDN as a SEQUENCE", seq(&[seq(&[cn(b"not a set")])])),
        (
            "NUL in an OID-keyed PrintableString",
            seq(&[rdn(&[atv(O, tlv(0x13, b"Org\x00Evil"))])]),
        ),
    ]
}

/// Hostile extensions (after a good basicConstraints): `(label, extensions)`.
fn hostile_extensions() -> Vec<(&'static str, Vec<Vec<u8>>)> {
    let bc = [0x55, 0x1d, 0x13];
    let san = [0x55, 0x1d, 0x11];
    let ku = [0x55, 0x1d, 0x0f];
    let ski = [0x55, 0x1d, 0x0e];
    let aki = [0x55, 0x1d, 0x23];
    let nc = [0x55, 0x1d, 0x1e];
    let dir_name = |value: Vec<u8>| cons(0xa4, &[name_of(&[value])]);
    vec![
        (
            "basicConstraints twice",
            vec![extension(&bc, true, &seq(&[tlv(0x01, &[0xff])]))],
        ),
        (
            "keyUsage not a BIT STRING",
            vec![extension(&ku, true, &tlv(0x04, b"x"))],
        ),
        ("keyUsage garbage", vec![extension(&ku, true, b"\xff\xff")]),
        (
            "subjectKeyIdentifier garbage",
            vec![extension(&ski, false, b"\x30")],
        ),
        (
            "authorityKeyIdentifier garbage",
            vec![extension(&aki, false, b"\x04\x05ab")],
        ),
        (
            "subjectAltName dirName with invalid UTF-8",
            vec![extension(
                &san,
                false,
                &seq(&[dir_name(tlv(0x0c, b"\xff"))]),
            )],
        ),
        (
            "subjectAltName dirName with VisibleString",
            vec![extension(&san, false, &seq(&[dir_name(tlv(0x1a, b"v"))]))],
        ),
        (
            "subjectAltName dNSName invalid UTF-8",
            vec![extension(&san, false, &seq(&[tlv(0x82, b"a\xff.example")]))],
        ),
        (
            "subjectAltName empty",
            vec![extension(&san, false, &seq(&[]))],
        ),
        (
            "nameConstraints garbage",
            vec![extension(&nc, true, b"\x30\x03\xa0\x01")],
        ),
        (
            "unknown critical extension",
            vec![extension(&[0x2a, 0x03, 0x04, 0x06], true, b"\x05\x00")],
        ),
        (
            "critical FALSE spelt out",
            vec![seq(&[
                tlv(0x06, &ski),
                tlv(0x01, &[0x00]),
                tlv(0x04, &tlv(0x04, b"k")),
            ])],
        ),
        (
            "extnValue not an OCTET STRING",
            vec![seq(&[tlv(0x06, &ski), tlv(0x0c, b"k")])],
        ),
    ]
}

/// Every case: each hostile value as the subject (self-issued), and as the
/// issuer under a good subject; each hostile name likewise; each hostile
/// extension under good names. Serials are unique, so no two certificates
/// are one.
pub fn cases(spki: &[u8]) -> Vec<Case> {
    let mut out = Vec::new();
    let mut add = |label: String, subject: Vec<u8>, issuer: Vec<u8>, exts: Vec<Vec<u8>>| {
        let serial = out.len() as u32 + 1;
        let der = certificate(serial, &subject, &issuer, spki, Some(&exts));
        out.push(Case { label, der });
    };
    let mut names: Vec<(String, Vec<u8>)> = hostile_values()
        .into_iter()
        .map(|(l, v)| (format!("CN {l}"), name_of(&[v])))
        .collect();
    names.extend(hostile_names().into_iter().map(|(l, n)| (l.to_string(), n)));
    for (i, (label, name)) in names.into_iter().enumerate() {
        add(
            format!("subject: {label}"),
            name.clone(),
            name.clone(),
            vec![],
        );
        let good = plain_name(&format!("Issued by hostile {i}"));
        add(format!("issuer: {label}"), good, name, vec![]);
    }
    for (i, (label, exts)) in hostile_extensions().into_iter().enumerate() {
        let good = plain_name(&format!("Hostile extension {i}"));
        add(format!("extension: {label}"), good.clone(), good, exts);
    }
    let good = plain_name("Hostile outer");
    let tbs = seq(&tbs_fields(0, &good, &good, spki, Some(&[])));
    let padded_alg = seq(&[tlv(
        0x06,
        &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x80, 0x03, 0x02],
    )]);
    let outer = [
        (
            "signature BIT STRING with 8 unused bits",
            ecdsa_sha256(),
            tlv(0x03, &[0x08, 0x01]),
        ),
        ("empty signature BIT STRING", ecdsa_sha256(), tlv(0x03, &[])),
        (
            "outer algorithm OID with a 0x80 pad",
            padded_alg,
            tlv(0x03, &[0x00, 0x01]),
        ),
        (
            "outer algorithm with a NULL of one octet",
            seq(&[
                tlv(0x06, &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02]),
                tlv(0x05, &[0]),
            ]),
            tlv(0x03, &[0x00, 0x01]),
        ),
        (
            "outer algorithm with a padded INTEGER parameter",
            seq(&[
                tlv(0x06, &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02]),
                tlv(0x02, &[0, 1]),
            ]),
            tlv(0x03, &[0x00, 0x01]),
        ),
    ];
    for (label, alg, signature) in outer {
        out.push(Case {
            label: format!("outer: {label}"),
            der: seq(&[tbs.clone(), alg, signature]),
        });
    }
    for (i, (label, at, field)) in hostile_fields().into_iter().enumerate() {
        let good = plain_name(&format!("Hostile field {i}"));
        let serial = out.len() as u32 + 1;
        let mut tbs = tbs_fields(serial, &good, &good, spki, Some(&[]));
        match at {
            Some(at) if field.is_empty() => drop(tbs.remove(at)),
            Some(at) => tbs[at] = field,
            None => tbs.push(field),
        }
        out.push(Case {
            label: format!("field: {label}"),
            der: signed(&tbs),
        });
    }
    out
}
