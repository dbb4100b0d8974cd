use super::*;
use std::os::unix::fs::symlink;

#[test]
fn missing_source_is_not_an_error() {
    assert!(matches!(
        read_source(Path::new("/nonexistent/trust-injector")),
        SourceRead::Missing
    ));
}

#[test]
fn kubelet_layout_reads_resolved_dir_and_reports_user_paths() {
    let dir = tempfile::tempdir().unwrap();
    let ts = dir.path().join("..2026_01_01_00_00_00.1");
    fs::create_dir(&ts).unwrap();
    fs::write(ts.join("ca.crt"), b"x").unwrap();
    symlink("..2026_01_01_00_00_00.1", dir.path().join("..data")).unwrap();
    symlink("..data/ca.crt", dir.path().join("ca.crt")).unwrap();
    let SourceRead::Files(Listing { files, .. }) = read_source(dir.path()) else {
        panic!("expected files")
    };
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].path, dir.path().join("ca.crt"));
    assert_eq!(files[0].bytes.as_deref().unwrap(), b"x");
}

#[test]
fn plain_dir_does_not_follow_symlinks_outside() {
    let outside = tempfile::tempdir().unwrap();
    fs::write(outside.path().join("secret"), b"s").unwrap();
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("a.crt"), b"a").unwrap();
    fs::write(dir.path().join(".hidden"), b"h").unwrap();
    symlink(outside.path().join("secret"), dir.path().join("evil.crt")).unwrap();
    symlink("a.crt", dir.path().join("b.crt")).unwrap();
    let SourceRead::Files(Listing { files, .. }) = read_source(dir.path()) else {
        panic!("expected files")
    };
    let names: Vec<_> = files.iter().map(|f| f.path.clone()).collect();
    assert_eq!(
        names,
        vec![dir.path().join("a.crt"), dir.path().join("b.crt")]
    );
}

#[test]
fn oversize_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.pem");
    fs::write(&big, vec![b'a'; MAX_FILE_BYTES as usize + 1]).unwrap();
    assert_eq!(
        read_capped(&big, MAX_FILE_BYTES),
        Err(ReadError::TooLarge {
            max: MAX_FILE_BYTES
        })
    );
}

fn listing(dir: &Path, include: &Include) -> Listing {
    match read_source_with(dir, include) {
        SourceRead::Files(l) => l,
        other => panic!("expected files, got {other:?}"),
    }
}

fn reasons(l: &Listing) -> Vec<(PathBuf, String)> {
    l.skipped
        .iter()
        .map(|s| (s.path.clone(), s.reason.to_string()))
        .collect()
}

#[test]
fn data_link_leaving_the_source_fails_the_source_naming_link_and_target() {
    let outside = tempfile::tempdir().unwrap();
    fs::write(outside.path().join("snakeoil.pem"), b"x").unwrap();
    let dir = tempfile::tempdir().unwrap();
    symlink(outside.path(), dir.path().join("..data")).unwrap();
    symlink("..data/snakeoil.pem", dir.path().join("snakeoil.pem")).unwrap();
    let SourceRead::Failed(e) = read_source(dir.path()) else {
        panic!("an escaping ..data must fail the source")
    };
    let msg = e.to_string();
    let target = fs::canonicalize(outside.path()).unwrap();
    assert!(
        msg.contains("..data") && msg.contains(&*target.to_string_lossy()),
        "{msg}"
    );
    // Relative spelling, through `..`, is caught the same way.
    fs::remove_file(dir.path().join("..data")).unwrap();
    symlink("../../../../../../../..", dir.path().join("..data")).unwrap();
    assert!(matches!(
        read_source(dir.path()),
        SourceRead::Failed(ReadError::DataEscapes { .. })
    ));
}

#[test]
fn directory_loops_are_read_once_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let bulk = dir.path().join("bulk");
    fs::create_dir(&bulk).unwrap();
    fs::write(bulk.join("ca.crt"), b"x").unwrap();
    symlink(".", bulk.join("again")).unwrap();
    symlink("..", bulk.join("up")).unwrap();
    let l = listing(dir.path(), &Include::all());
    let files: Vec<_> = l.files.iter().map(|f| f.path.clone()).collect();
    assert_eq!(files, vec![bulk.join("ca.crt")]);
    let r = reasons(&l);
    assert_eq!(r.len(), 2, "{r:?}");
    assert!(r.iter().all(|(_, why)| why.contains("loop")), "{r:?}");
    assert_eq!(r[0].0, bulk.join("again"));
}

#[test]
fn a_link_back_to_the_volume_from_its_data_directory_is_a_loop() {
    let dir = tempfile::tempdir().unwrap();
    let ts = dir.path().join("..2026_01_01_00_00_00.1");
    fs::create_dir(&ts).unwrap();
    fs::write(ts.join("ca.crt"), b"x").unwrap();
    symlink("..", ts.join("up")).unwrap();
    symlink("..2026_01_01_00_00_00.1", dir.path().join("..data")).unwrap();
    symlink("..data/ca.crt", dir.path().join("ca.crt")).unwrap();
    let l = listing(dir.path(), &Include::all());
    assert_eq!(l.files.len(), 1, "{:?}", l.files);
    let r = reasons(&l);
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0].0, dir.path().join("up"));
    assert!(r[0].1.contains("loop"), "{r:?}");
}

#[test]
fn file_loops_dangling_and_outside_links_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    symlink("b.crt", dir.path().join("a.crt")).unwrap();
    symlink("a.crt", dir.path().join("b.crt")).unwrap();
    symlink("nothing", dir.path().join("c.crt")).unwrap();
    symlink("/etc/hostname", dir.path().join("d.crt")).unwrap();
    let l = listing(dir.path(), &Include::all());
    assert!(l.files.is_empty());
    let r = reasons(&l);
    let why: Vec<&str> = r.iter().map(|(_, w)| w.as_str()).collect();
    assert!(
        why[0].contains("loop") && why[1].contains("loop"),
        "{why:?}"
    );
    assert!(why[2].contains("dangling"), "{why:?}");
    assert!(why[3].contains("outside"), "{why:?}");
}

#[test]
fn fifos_and_sockets_are_never_opened() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe.crt");
    crate::trust::read::tests::make_fifo(&fifo);
    let _sock = std::os::unix::net::UnixListener::bind(dir.path().join("sock.crt")).unwrap();
    fs::write(dir.path().join("real.crt"), b"x").unwrap();
    let l = listing(dir.path(), &Include::all());
    assert_eq!(l.files.len(), 1);
    let r = reasons(&l);
    assert!(
        r[0].1.contains("FIFO") && r[1].1.contains("socket"),
        "{r:?}"
    );
    // Named as a source itself: an error for that file, without blocking.
    let SourceRead::Files(l) = read_source(&fifo) else {
        panic!()
    };
    assert_eq!(l.files[0].bytes, Err(ReadError::NotRegular("a FIFO")));
}

#[test]
fn a_directory_swapped_for_a_symlink_after_the_check_is_refused_by_the_kernel() {
    // What a racing writer leaves behind once the path check has passed:
    // `sub` is now a symlink out of the source. The open must not follow it.
    let outside = tempfile::tempdir().unwrap();
    fs::write(outside.path().join("ca.crt"), b"outside").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let root = fs::canonicalize(dir.path()).unwrap();
    symlink(outside.path(), root.join("sub")).unwrap();
    let root_dir = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
        .open(&root)
        .unwrap();
    let walk = Walk {
        root: &root,
        root_dir,
        canonical_root: root.clone(),
        kubelet: false,
        include: &Include::all(),
        visited: HashSet::new(),
        out: Listing::default(),
    };
    let opened = walk.open(&root.join("sub/ca.crt"));
    assert!(
        !NO_OPENAT2.load(Ordering::Relaxed),
        "openat2 is not available here (Linux >= 5.6 without a seccomp profile refusing it)"
    );
    let err = opened.expect_err("followed a symlink out of the source");
    assert_eq!(
        err,
        ReadError::Io(io::Error::from_raw_os_error(libc::ELOOP).into())
    );
    // A plain file inside opens.
    fs::write(root.join("ok.crt"), b"x").unwrap();
    assert_eq!(
        read_open(walk.open(&root.join("ok.crt")).unwrap(), MAX_FILE_BYTES).unwrap(),
        b"x"
    );
}

#[test]
fn include_takes_only_matching_keys_of_a_kubelet_volume() {
    let dir = tempfile::tempdir().unwrap();
    let ts = dir.path().join("..2026_01_01_00_00_00.1");
    fs::create_dir(&ts).unwrap();
    for key in ["ca.crt", "token", "namespace"] {
        fs::write(ts.join(key), b"x").unwrap();
        symlink(format!("..data/{key}"), dir.path().join(key)).unwrap();
    }
    symlink("..2026_01_01_00_00_00.1", dir.path().join("..data")).unwrap();
    let inc = Include::new(&["*.crt".into()]).unwrap();
    let l = listing(dir.path(), &inc);
    let files: Vec<_> = l.files.iter().map(|f| f.path.clone()).collect();
    assert_eq!(files, vec![dir.path().join("ca.crt")]);
    assert_eq!(
        reasons(&l),
        vec![
            (
                dir.path().join("namespace"),
                "not matched by --include".into()
            ),
            (dir.path().join("token"), "not matched by --include".into()),
        ]
    );
}
