//! Link settings Cargo.toml cannot express, for the static musl binaries (what
//! the image ships). Measured effects: docs/performance.md, "Idle RSS".
//!
//! - `-z pack-relative-relocs`: the binaries are static PIEs; at start musl
//!   relocates them itself, reading one 24-byte `Elf64_Rela` per pointer
//!   (148 KB of them), and those pages stay mapped for the process's life.
//!   DT_RELR stores the same relocations as bitmaps (about 2 KB); musl applies
//!   them since 1.2.4 (Rust ships 1.2.5). Address randomisation is kept.
//! - Linked by Rust's own lld (`rust-lld`, shipped with every rustup toolchain)
//!   with `link/text-order-ARCH.txt` as its `--symbol-ordering-file`: the functions
//!   the daemon runs (about 0.8 MB of a 3 MB text) are laid out together, so
//!   the kernel's 64 KB fault-around windows map little beyond them. The file is
//!   a profile (`.ci/text-order.py` regenerates it); a function it does not
//!   name is merely placed elsewhere, so a stale file costs memory, never
//!   correctness. Without rust-lld the build goes on with the default linker
//!   and says so.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    if var("CARGO_CFG_TARGET_OS") != "linux" || var("CARGO_CFG_TARGET_ENV") != "musl" {
        return;
    }
    println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");

    let order = Path::new(&var("CARGO_MANIFEST_DIR")).join(format!(
        "link/text-order-{}.txt",
        var("CARGO_CFG_TARGET_ARCH")
    ));
    println!("cargo:rerun-if-changed={}", order.display());
    let Some(gcc_ld) = rust_lld_dir(&var("RUSTC"), &var("HOST")) else {
        println!(
            "cargo:warning=rust-lld not found in the toolchain; linking without \
             link/text-order-*.txt (idle RSS about 1.5 MB higher)"
        );
        return;
    };
    // `-B` makes the C compiler driver find the `ld.lld` wrapper that runs
    // rust-lld; `-fuse-ld=lld` makes it use it.
    println!("cargo:rustc-link-arg-bins=-B{}", gcc_ld.display());
    println!("cargo:rustc-link-arg-bins=-fuse-ld=lld");
    if order.is_file() {
        println!(
            "cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}",
            order.display()
        );
        // Names in the profile that this build does not define (code changed
        // since) are expected; .ci/build-static.sh counts them instead.
        println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
    } else {
        println!(
            "cargo:warning={} is missing; linking without a text order",
            order.display()
        );
    }
    // A link map per target in this directory: `.ci/text-order.py` names the
    // addresses of the stripped binary it profiles from it (the shipped
    // profile, because the symbol hashes depend on the profile), and
    // `.ci/build-static.sh` checks from it that the profile still names this
    // build's functions.
    println!("cargo:rerun-if-env-changed=TRUST_INJECTOR_LINK_MAP_DIR");
    if let Ok(dir) = std::env::var("TRUST_INJECTOR_LINK_MAP_DIR") {
        let map = Path::new(&dir).join(format!("{}.map", var("TARGET")));
        println!(
            "cargo:rustc-link-arg-bins=-Wl,-Map={},--no-demangle",
            map.display()
        );
    }
}

/// The toolchain's `gcc-ld` directory (its `ld.lld` runs `rust-lld`), found
/// from the sysroot of the `rustc` Cargo runs.
fn rust_lld_dir(rustc: &str, host: &str) -> Option<PathBuf> {
    let out = Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()?;
    let sysroot = String::from_utf8(out.stdout).ok()?;
    let dir = Path::new(sysroot.trim())
        .join("lib/rustlib")
        .join(host)
        .join("bin/gcc-ld");
    dir.join("ld.lld").is_file().then_some(dir)
}
