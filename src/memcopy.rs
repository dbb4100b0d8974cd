//! `memcpy` and `memmove` for the static musl amd64 binary the image ships.
//!
//! musl's x86_64 `memcpy` (`src/string/x86_64/memcpy.s`) copies up to seven bytes
//! one at a time, then the rest with `rep movsq`, then the tail one byte at a time.
//! `rep movsq` has a start-up cost of tens of cycles, and this program makes
//! about 120 000 copies per `run --once` at N = 500 (parsing, `core::fmt`, paths),
//! almost all under 100 bytes: `perf` put 12 % of the musl build's time there,
//! against 1.8 % for glibc's vectorised copy, which is most of the gap between the
//! two builds (docs/performance.md). The copies here do what glibc's do for the
//! sizes that matter: up to 32 bytes as two overlapping unaligned loads and
//! stores of the same width (no loop, no branch per byte), anything larger with
//! `rep movsb`, which CPUs with ERMS/FSRM (every x86_64 server CPU since 2013)
//! run at full speed.
//!
//! Only `cfg(all(target_env = "musl", target_arch = "x86_64"))` exports them
//! under the C names (see `main.rs`); musl's `memmove` calls a helper inside
//! musl's `memcpy.o`, so both are replaced together or the link has two
//! `memcpy`s. Every other build, and the tests, call them by their Rust names.
//!
//! No loop here may be written in plain Rust: LLVM recognises a byte-copy loop
//! and turns it into a call to `memcpy`, which would be this function calling
//! itself. The fixed-size `read_unaligned`/`write_unaligned` pairs become single
//! moves, and the long copies are inline assembly.

use core::arch::asm;
use core::ptr::{read_unaligned, write_unaligned};

/// Copies `n` bytes from `src` to `dst`; the regions may overlap (all loads of
/// a short copy happen before its stores, and a long copy picks its direction).
///
/// # Safety
/// As C's `memmove`: `src` readable and `dst` writable for `n` bytes.
#[inline(always)]
pub unsafe fn copy(dst: *mut u8, src: *const u8, n: usize) {
    if n <= 32 {
        // SAFETY: the caller's contract covers n bytes; copy_short reads and
        // writes only inside [0, n).
        unsafe { copy_short(dst, src, n) }
    } else if (dst as usize).wrapping_sub(src as usize) >= n {
        // dst is before src, or after the end of src: a forward copy never
        // overwrites a byte it has yet to read.
        // SAFETY: as above; rep movsb with DF clear (the ABI's state) copies
        // rcx bytes forwards from rsi to rdi.
        unsafe {
            asm!("rep movsb",
                inout("rcx") n => _, inout("rdi") dst => _, inout("rsi") src => _,
                options(nostack, preserves_flags))
        }
    } else {
        // dst overlaps the end of src: copy backwards, from the last byte.
        // SAFETY: as above; with DF set, rep movsb walks down from the
        // addresses given, and cld restores the flag the ABI requires.
        unsafe {
            asm!("std", "rep movsb", "cld",
                inout("rcx") n => _, inout("rdi") dst.add(n - 1) => _,
                inout("rsi") src.add(n - 1) => _,
                options(nostack))
        }
    }
}

/// 0 to 32 bytes: two copies of the widest power of two not above `n`, one at
/// the start and one ending at the end, overlapping in the middle. Loads first.
#[inline(always)]
unsafe fn copy_short(dst: *mut u8, src: *const u8, n: usize) {
    // SAFETY (every arm): the width is at most n, inside the n bytes the
    // caller guarantees.
    unsafe {
        if n >= 16 {
            copy_ends::<u128>(dst, src, n);
        } else if n >= 8 {
            copy_ends::<u64>(dst, src, n);
        } else if n >= 4 {
            copy_ends::<u32>(dst, src, n);
        } else if n > 0 {
            // 1 to 3 bytes: first, middle, last (some the same byte).
            let (a, m, z) = (*src, *src.add(n / 2), *src.add(n - 1));
            *dst = a;
            *dst.add(n / 2) = m;
            *dst.add(n - 1) = z;
        }
    }
}

/// Copies [0, w) and [n - w, n) with `w` the width of `T`, both loads before
/// both stores, so the copy is right when the regions overlap.
///
/// # Safety
/// `size_of::<T>() <= n`; `src` readable and `dst` writable for `n` bytes.
#[inline(always)]
unsafe fn copy_ends<T: Copy>(dst: *mut u8, src: *const u8, n: usize) {
    let w = std::mem::size_of::<T>();
    // SAFETY: w <= n, so both accesses lie inside the caller's n bytes; the
    // unaligned forms need no alignment.
    unsafe {
        let (a, b) = (
            read_unaligned(src as *const T),
            read_unaligned(src.add(n - w) as *const T),
        );
        write_unaligned(dst as *mut T, a);
        write_unaligned(dst.add(n - w) as *mut T, b);
    }
}

/// The C symbols, for the static musl amd64 binary only (`main.rs` includes
/// this module there). Linked before musl's `libc.a`, so musl's own `memcpy.o`
/// and `memmove.o` are never pulled in, and musl's internal calls, mimalloc's
/// and Rust's all come here.
#[cfg(all(target_env = "musl", target_arch = "x86_64"))]
mod exported {
    /// # Safety
    /// C's `memcpy`.
    #[no_mangle]
    pub unsafe extern "C" fn memcpy(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
        // SAFETY: memcpy's contract is narrower than copy's (no overlap).
        unsafe { super::copy(dst, src, n) };
        dst
    }

    /// # Safety
    /// C's `memmove`.
    #[no_mangle]
    pub unsafe extern "C" fn memmove(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
        // SAFETY: the same contract as copy's.
        unsafe { super::copy(dst, src, n) };
        dst
    }
}

#[cfg(test)]
mod tests {
    use super::copy;

    /// Every length from 0 to 300 at every alignment of source and
    /// destination within 16, against slice copies.
    #[test]
    fn copies_every_length_and_alignment() {
        let src: Vec<u8> = (0..400u32).map(|i| (i * 7 + 3) as u8).collect();
        for n in 0..300 {
            for s in 0..16 {
                for d in 0..16 {
                    let mut dst = vec![0xAAu8; 400];
                    // SAFETY: s + n and d + n are below 400.
                    unsafe { copy(dst.as_mut_ptr().add(d), src.as_ptr().add(s), n) };
                    assert_eq!(&dst[d..d + n], &src[s..s + n], "n={n} s={s} d={d}");
                    assert!(dst[..d].iter().all(|&b| b == 0xAA), "wrote before: n={n}");
                    assert!(
                        dst[d + n..].iter().all(|&b| b == 0xAA),
                        "wrote after: n={n}"
                    );
                }
            }
        }
    }

    /// Overlapping moves in both directions, against `copy_within`
    /// (memmove's reference semantics).
    #[test]
    fn moves_overlapping_regions_like_memmove() {
        let start: Vec<u8> = (0..600u32).map(|i| (i * 13 + 1) as u8).collect();
        for n in (0..300).chain([511, 512, 513]) {
            for shift in [1usize, 2, 3, 7, 8, 15, 16, 17, 31, 33, 64] {
                for (from, to) in [(0, shift), (shift, 0)] {
                    if from.max(to) + n > start.len() {
                        continue;
                    }
                    let mut ours = start.clone();
                    let mut want = start.clone();
                    want.copy_within(from..from + n, to);
                    let p = ours.as_mut_ptr();
                    // SAFETY: both ranges are inside the 600-byte buffer.
                    unsafe { copy(p.add(to), p.add(from), n) };
                    assert_eq!(ours, want, "n={n} from={from} to={to}");
                }
            }
        }
    }
}
