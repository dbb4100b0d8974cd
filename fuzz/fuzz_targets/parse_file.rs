//! Any bytes a Secret can hold: parse as a source file, and when that works,
//! render what was found. Must never panic or hang.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trust_injector::bundle::assemble;
use trust_injector::parse::{parse_bundle_lenient, parse_file};
use trust_injector::policy::Policy;

fuzz_target!(|data: &[u8]| {
    if let Ok(parsed) = parse_file(data) {
        let path = std::path::PathBuf::from("fuzz.pem");
        let bundle = assemble(&[], [(&path, &parsed.certs[..])], Policy::default(), 0);
        // The rendered bundle must hold exactly one PEM block per certificate:
        // no subject can add a line or a marker.
        let text = String::from_utf8(bundle.pem.clone()).expect("bundle is UTF-8");
        let begins = text.lines().filter(|l| l.starts_with("-----BEGIN")).count();
        assert_eq!(begins, bundle.entries.len());
        let _ = bundle.hashed_files();
    }
    let _ = parse_bundle_lenient(data);
});
