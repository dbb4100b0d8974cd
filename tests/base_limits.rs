//! `--base` holds the same per-file cap as every other file
//! (docs/security.md): more than 10,000 certificates are refused, with an
//! error naming the file; 10,000 are read.

mod common;

use common::{pki, run_once_on, s};

#[test]
fn a_base_of_more_than_ten_thousand_certificates_is_refused_naming_it() {
    let root = pki::root("Base Limit");
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("source");
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    common::write_file(&source.join("ca.pem"), root.pem());

    let at_cap = dir.path().join("at-cap.pem");
    std::fs::write(&at_cap, root.pem().repeat(10_000)).unwrap();
    let run = run_once_on(&source, s(&at_cap), &out, &[]);
    assert_eq!(run.code(), Some(0), "10,000 are read:\n{}", run.text());

    let over = dir.path().join("over-cap.pem");
    std::fs::write(&over, root.pem().repeat(10_001)).unwrap();
    let run = run_once_on(&source, s(&over), &out, &[]);
    assert_eq!(run.code(), Some(1), "10,001 are refused:\n{}", run.text());
    let said = run.text();
    assert!(
        said.contains(&format!("{}: more than 10000 certificates", over.display())),
        "the error names the file:\n{said}"
    );
}
