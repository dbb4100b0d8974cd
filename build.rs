//! A link setting Cargo.toml cannot express, for the static musl binaries (what
//! the image ships): `-z pack-relative-relocs`.
//!
//! The binaries are static PIEs, so at start musl relocates them itself,
//! reading one `Elf64_Rela` per pointer, and those pages stay resident,
//! private to each process, for its whole life. DT_RELR stores the same
//! relocations as bitmaps; musl applies them (since 1.2.4, older than the one
//! Rust ships) and address randomisation is kept. What it saves each pod:
//! docs/performance.md, "Idle memory".

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    if var("CARGO_CFG_TARGET_OS") == "linux" && var("CARGO_CFG_TARGET_ENV") == "musl" {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}
