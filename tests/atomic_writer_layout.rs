//! The test helper that stands in for the kubelet must itself lay volumes out the
//! way the kubelet does, or every test built on it proves less than it claims.

mod common;

use common::atomic_writer::AtomicWriter;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn ts_dirs(dir: &Path) -> Vec<String> {
    entries(dir)
        .into_iter()
        .filter(|n| n.starts_with("..") && n != "..data")
        .collect()
}

#[test]
fn layout_and_updates_match_the_kubelet() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("vol");
    let w = AtomicWriter::new(&dir);
    assert!(
        entries(&dir).is_empty(),
        "an absent optional Secret is an empty dir"
    );

    w.write(&[
        ("ca.crt", b"one".as_slice()),
        ("tls.crt", b"two".as_slice()),
    ]);
    let ts = ts_dirs(&dir);
    assert_eq!(ts.len(), 1, "one timestamped dir: {:?}", entries(&dir));
    let name = &ts[0];
    // ..YYYY_MM_DD_HH_MM_SS.<digits>
    let stamp = name.trim_start_matches("..");
    let (date, rand) = stamp.split_once('.').unwrap();
    assert_eq!(date.len(), 19, "{name}");
    assert!(
        date.chars().all(|c| c.is_ascii_digit() || c == '_'),
        "{name}"
    );
    assert!(
        !rand.is_empty() && rand.chars().all(|c| c.is_ascii_digit()),
        "{name}"
    );
    assert_eq!(
        fs::read_link(dir.join("..data")).unwrap(),
        PathBuf::from(name)
    );
    for key in ["ca.crt", "tls.crt"] {
        assert_eq!(
            fs::read_link(dir.join(key)).unwrap(),
            PathBuf::from("..data").join(key)
        );
        let mode = fs::metadata(dir.join(name).join(key))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o644);
    }
    assert_eq!(fs::read(dir.join("ca.crt")).unwrap(), b"one");

    // Update: a key changes, one goes, one comes.
    w.write(&[
        ("ca.crt", b"three".as_slice()),
        ("new.crt", b"four".as_slice()),
    ]);
    let ts2 = ts_dirs(&dir);
    assert_eq!(
        ts2.len(),
        1,
        "old timestamped dir removed: {:?}",
        entries(&dir)
    );
    assert_ne!(&ts2[0], name);
    assert_eq!(
        entries(&dir),
        {
            let mut v = vec![
                ts2[0].clone(),
                "..data".to_string(),
                "ca.crt".to_string(),
                "new.crt".to_string(),
            ];
            v.sort();
            v
        },
        "no ..data_tmp, no removed key left"
    );
    assert_eq!(fs::read(dir.join("ca.crt")).unwrap(), b"three");
    assert_eq!(fs::read(dir.join("new.crt")).unwrap(), b"four");
    assert!(fs::symlink_metadata(dir.join("tls.crt")).is_err());
}
