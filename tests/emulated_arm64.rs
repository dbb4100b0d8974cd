//! EMULATED: the linux/arm64 binary (static, aarch64 musl, what the arm64 image ships)
//! run under `qemu-aarch64-static` on this amd64 host. These tests prove the arm64
//! build behaves like the amd64 one; they measure no speed and must never report
//! one (emulation time says nothing about an arm64 node).
//!
//! Which binaries:
//! - arm64: `TRUST_INJECTOR_ARM64_BIN` when set (CI sets it from `.ci/build-static.sh`);
//!   otherwise built here once with `cargo build --release --target
//!   aarch64-unknown-linux-musl` into `target/emulated-arm64`, a target directory of its
//!   own because the `cargo test` that runs us holds the lock on `target/`'s build.
//! - amd64 reference: `TRUST_INJECTOR_AMD64_BIN` when set (in CI the static musl binary
//!   the amd64 image ships), otherwise the binary under test.
//!
//! A missing piece (qemu, the cross compiler, the Rust target) FAILS the test with the
//! command that installs it; `bash tests/run.sh` installs all of them.

mod common;

use common::atomic_writer::AtomicWriter;
use common::daemon::Fixture;
use common::{assert_clean_out_dir, bundle, hermetic_command, pki, s, tools};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

const ARM64_TARGET: &str = "aarch64-unknown-linux-musl";
const QEMU: &str = "qemu-aarch64-static";
const CROSS_GCC: &str = "aarch64-linux-gnu-gcc";
/// ELF `e_machine` of AArch64.
const EM_AARCH64: u16 = 183;
/// A release build of the whole crate on a busy 2-core machine takes minutes; this is
/// an "it finished at all" bound, not a timing.
const BUILD_BOUND: Duration = Duration::from_secs(30 * 60);
/// Emulation is slow; bounds for "it happened", not timings.
const EMULATED_BOUND: Duration = Duration::from_secs(120);

/// The arm64 binary, built at most once per test process.
fn arm64_binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| match std::env::var_os("TRUST_INJECTOR_ARM64_BIN") {
        Some(p) => {
            let p = PathBuf::from(p);
            assert!(
                p.is_file(),
                "TRUST_INJECTOR_ARM64_BIN={} does not exist; build it with `bash .ci/build-static.sh`",
                p.display()
            );
            p
        }
        None => build_arm64(),
    })
}

/// Whether rustc has the standard library for `target` (rustup-installed or not).
fn rust_target_installed(target: &str) -> bool {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = tools::run(
        Command::new(rustc).args(["--print", "sysroot"]),
        Duration::from_secs(60),
    );
    assert!(out.ok(), "rustc --print sysroot failed:\n{}", out.text());
    Path::new(out.stdout.trim())
        .join("lib/rustlib")
        .join(target)
        .join("lib")
        .is_dir()
}

fn build_arm64() -> PathBuf {
    assert!(
        rust_target_installed(ARM64_TARGET),
        "the Rust target {ARM64_TARGET} is not installed; run: rustup target add {ARM64_TARGET} \
         (or `bash tests/run.sh`, which adds it)"
    );
    let gcc = tools::require(CROSS_GCC);
    // CARGO_BIN_EXE is <target>/debug/trust-injector.
    let target_dir = Path::new(common::bin())
        .parent()
        .and_then(Path::parent)
        .expect("binary under test lives in <target>/<profile>/")
        .join("emulated-arm64");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--release", "--locked", "--bin", "trust-injector"])
        .args(["--target", ARM64_TARGET, "--manifest-path"])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", &target_dir)
        // ring's C is compiled with Debian's glibc cross compiler (it needs only
        // freestanding headers); the link is against Rust's self-contained musl.
        .env("CC_aarch64_unknown_linux_musl", &gcc)
        .env("CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER", &gcc);
    eprintln!("building the arm64 binary: {cmd:?}");
    let out = tools::run(&mut cmd, BUILD_BOUND);
    assert!(out.ok(), "arm64 build failed:\n{}", out.text());
    let bin = target_dir.join(ARM64_TARGET).join("release/trust-injector");
    assert!(bin.is_file(), "cargo built no {}", bin.display());
    bin
}

/// `qemu-aarch64-static <arm64 binary>` with the tests' hermetic environment.
fn emulated() -> Command {
    let qemu = tools::require(QEMU);
    let mut cmd = hermetic_command(s(&qemu));
    cmd.arg(arm64_binary());
    cmd
}

/// The amd64 reference binary (see the module comment).
fn amd64() -> Command {
    match std::env::var("TRUST_INJECTOR_AMD64_BIN") {
        Ok(p) => hermetic_command(&p),
        Err(_) => common::trust_injector(),
    }
}

/// (e_machine, has a PT_INTERP program header) of a 64-bit little-endian ELF file.
fn elf_machine_and_interp(path: &Path) -> (u16, bool) {
    let b = std::fs::read(path).unwrap();
    assert!(
        b.len() > 64 && &b[..4] == b"\x7fELF" && b[4] == 2 && b[5] == 1,
        "{} is not a 64-bit little-endian ELF file",
        path.display()
    );
    let u16_at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]);
    let phoff = u64::from_le_bytes(b[32..40].try_into().unwrap()) as usize;
    let (phentsize, phnum) = (u16_at(54) as usize, u16_at(56) as usize);
    const PT_INTERP: u32 = 3;
    let interp = (0..phnum).any(|i| {
        let o = phoff + i * phentsize;
        u32::from_le_bytes(b[o..o + 4].try_into().unwrap()) == PT_INTERP
    });
    (u16_at(18), interp)
}

#[test]
fn emulated_arm64_binary_is_static_aarch64() {
    let bin = arm64_binary();
    let (machine, interp) = elf_machine_and_interp(bin);
    assert_eq!(
        machine,
        EM_AARCH64,
        "{} is not an AArch64 binary",
        bin.display()
    );
    assert!(
        !interp,
        "{} is dynamically linked; the image has no libc",
        bin.display()
    );
    let out = tools::run(emulated().arg("--version"), EMULATED_BOUND);
    assert!(out.ok(), "emulated --version:\n{}", out.text());
    assert!(
        out.stdout.contains(env!("CARGO_PKG_VERSION")),
        "{}",
        out.text()
    );
}

/// Everything `run --once` published, as comparable bytes: each regular file, and
/// `certs/` entry by entry. The versioned directory behind `certs` is named
/// `.certs-<content hash>-<time stamp>`; only the content hash is compared.
fn published(out_dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut m = BTreeMap::new();
    for e in std::fs::read_dir(out_dir).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        let ft = e.file_type().unwrap();
        if ft.is_symlink() {
            let target = std::fs::read_link(e.path()).unwrap();
            let t = target.to_string_lossy();
            let stable = t.rsplit_once('-').map_or(&*t, |(head, _stamp)| head);
            m.insert(format!("{name} ->"), stable.as_bytes().to_vec());
            for c in std::fs::read_dir(out_dir.join(&target)).unwrap() {
                let c = c.unwrap();
                let key = format!("{name}/{}", c.file_name().to_string_lossy());
                m.insert(key, std::fs::read(c.path()).unwrap());
            }
        } else if ft.is_file() {
            m.insert(name, std::fs::read(e.path()).unwrap());
        }
    }
    m
}

#[test]
fn emulated_arm64_run_once_publishes_byte_identical_output() {
    let tmp = tempfile::tempdir().unwrap();
    let chain = pki::Chain::new("Emulated");
    let other = pki::root("Emulated Second Root");
    // A kubelet-style Secret (root + intermediate in one key, a DER key beside it) and a
    // plain file source, on top of the embedded Mozilla roots: every parser path.
    let secret = AtomicWriter::new(&tmp.path().join("secret"));
    let pem = format!("{}{}", chain.root.pem(), chain.intermediate.pem());
    secret.write(&[
        ("ca.crt", pem.as_bytes()),
        ("second.der", other.der().as_slice()),
    ]);
    let file = tmp.path().join("extra.pem");
    common::write_file(&file, pki::root("Emulated File Root").pem());
    let args = |out: &Path| {
        let mut a = vec![
            "run", "--once", "--listen", "off", "--base", "embedded", "--pkcs12",
        ]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
        a.extend(["--source", s(secret.dir()), "--source", s(&file)].map(String::from));
        a.extend(["--out-dir".to_string(), s(out).to_string()]);
        a
    };
    let (out_amd64, out_arm64) = (tmp.path().join("amd64"), tmp.path().join("arm64"));
    for (out, mut cmd, what) in [
        (&out_amd64, amd64(), "amd64"),
        (&out_arm64, emulated(), "arm64 (emulated)"),
    ] {
        std::fs::create_dir(out).unwrap();
        let r = tools::run(cmd.args(args(out)), EMULATED_BOUND);
        assert_eq!(r.code(), Some(0), "{what} run --once:\n{}", r.text());
        assert_clean_out_dir_but_truststore(out);
    }
    let (a, b) = (published(&out_amd64), published(&out_arm64));
    let fps = bundle::read_bundle(&out_arm64).expect("arm64 bundle");
    for c in [&chain.root, &chain.intermediate, &other] {
        assert!(
            fps.contains(&c.sha256()),
            "arm64 bundle lacks a source certificate"
        );
    }
    assert!(fps.len() > 100, "arm64 bundle lacks the embedded roots");
    let names = |m: &BTreeMap<String, Vec<u8>>| m.keys().cloned().collect::<Vec<_>>();
    assert_eq!(names(&a), names(&b), "same published entries");
    for (k, v) in &a {
        assert!(
            b[k] == *v,
            "{k} differs between the amd64 and the arm64 build"
        );
    }
}

/// Like `assert_clean_out_dir`, allowing the `truststore.p12` that `--pkcs12` adds.
fn assert_clean_out_dir_but_truststore(out: &Path) {
    let p12 = out.join("truststore.p12");
    assert!(p12.is_file(), "--pkcs12 published no truststore.p12");
    let keep = tempfile::tempdir().unwrap();
    std::fs::rename(&p12, keep.path().join("t")).unwrap();
    assert_clean_out_dir(out);
    std::fs::rename(keep.path().join("t"), &p12).unwrap();
}

#[test]
fn emulated_arm64_daemon_follows_rotation_and_stops_on_sigterm() {
    let (old, new) = (
        pki::root("Emulated Old CA"),
        pki::Chain::new("Emulated New"),
    );
    let f = Fixture::with_ca(&old.pem());
    let (out, secret) = (&f.out, &f.secret);
    let mut d = f.daemon_with(emulated()).no_debounce().start();
    d.wait_bundle("emulated daemon published the first CA", |b| {
        b == [old.sha256()]
    });
    // The usual rotation: the Secret's content replaced, swapped in through ..data.
    let pem = format!("{}{}", new.root.pem(), new.intermediate.pem());
    secret.write(&[("ca.crt", pem.as_bytes())]);
    let want = [new.root.sha256(), new.intermediate.sha256()];
    d.wait_bundle("emulated daemon followed the rotation", |b| {
        b.len() == 2 && want.iter().all(|w| b.contains(w))
    });
    let hashed = bundle::hashed_dir_map(&out.join(bundle::CERTS), true);
    assert_eq!(hashed.len(), 2, "certs/ after rotation: {hashed:?}");
    let (code, body) = d.get("/readyz");
    assert_eq!(code, 200, "/readyz after rotation: {body}");
    d.signal(libc::SIGTERM);
    let st = d
        .wait_exit(EMULATED_BOUND)
        .unwrap_or_else(|| panic!("emulated daemon still running after SIGTERM"));
    assert_eq!(
        st.code(),
        Some(0),
        "emulated daemon exit after SIGTERM: {st}"
    );
    assert_clean_out_dir(out);
}
