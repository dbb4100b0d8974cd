//! OpenSSL-style name canonicalisation over arbitrary DER: never panics, and is
//! a function (same input, same output).
#![no_main]

use libfuzzer_sys::fuzz_target;
use trust_injector::subject_hash::{canonical_encoding, subject_hash};

fuzz_target!(|data: &[u8]| {
    let a = canonical_encoding(data);
    let b = subject_hash(data);
    assert_eq!(a.is_ok(), b.is_ok());
    if let Ok(canon) = a {
        // The canonical form of a canonical form's wrapper is itself.
        let mut wrapped = Vec::new();
        trust_injector::der::write_tlv(&mut wrapped, 0x30, &canon);
        assert_eq!(canonical_encoding(&wrapped).ok(), Some(canon));
    }
});
