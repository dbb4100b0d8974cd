//! `memcmp` and `bcmp` for the static musl amd64 binary the image ships.
//!
//! musl's `memcmp` (`src/string/memcmp.c`) compares one byte per iteration,
//! and every `==` between byte slices in Rust ends there: checking that the
//! quarter-megabyte bundle and each certificate file on disk are already what
//! should be published is a comparison of about half a megabyte per
//! reconcile. `perf` put 3.6 % of the daemon's time during swaps in musl's
//! `memcmp` (docs/performance.md). This one compares 16 bytes per SSE2
//! instruction (baseline on x86_64), and short lengths with two overlapping
//! loads, like `memcopy.rs`.
//!
//! Exported under the C names only for `cfg(all(target_env = "musl",
//! target_arch = "x86_64"))` (see `main.rs`); tests call [`compare`]. No loop
//! here is a plain byte loop, which LLVM could turn back into a `memcmp` call.

use core::arch::x86_64::{__m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8};
use core::ptr::read_unaligned;

/// Compares `n` bytes at `a` and `b` as C's `memcmp`: negative, zero or
/// positive as the first differing byte (unsigned) of `a` is below, absent
/// or above `b`'s.
///
/// # Safety
/// As C's `memcmp`: both readable for `n` bytes.
#[inline(always)]
pub unsafe fn compare(a: *const u8, b: *const u8, n: usize) -> i32 {
    // SAFETY (every arm): each helper reads only inside [0, n).
    unsafe {
        if n >= 16 {
            compare_long(a, b, n)
        } else if n >= 8 {
            compare_ends::<u64>(a, b, n)
        } else if n >= 4 {
            compare_ends::<u32>(a, b, n)
        } else {
            compare_tiny(a, b, n)
        }
    }
}

/// 16 bytes at a time; the last block ends at `n` (overlapping the one
/// before it, whose bytes are already known to be equal).
///
/// # Safety
/// `n >= 16`; both readable for `n` bytes.
#[inline(always)]
unsafe fn compare_long(a: *const u8, b: *const u8, n: usize) -> i32 {
    let mut at = 0;
    loop {
        let block = at.min(n - 16);
        // SAFETY: block + 16 <= n.
        let equal = unsafe { equal_mask(a.add(block), b.add(block)) };
        if equal != 0xFFFF {
            let i = block + (!equal).trailing_zeros() as usize;
            // SAFETY: i < block + 16 <= n.
            return unsafe { i32::from(*a.add(i)) - i32::from(*b.add(i)) };
        }
        if block == n - 16 {
            return 0;
        }
        at += 16;
    }
}

/// Bit `i` set when byte `i` of the two 16-byte blocks is equal.
///
/// # Safety
/// Both readable for 16 bytes.
#[inline(always)]
unsafe fn equal_mask(a: *const u8, b: *const u8) -> u32 {
    // SAFETY: the unaligned loads read the 16 bytes the caller guarantees;
    // SSE2 is part of the x86_64 baseline.
    unsafe {
        let x = _mm_loadu_si128(a as *const __m128i);
        let y = _mm_loadu_si128(b as *const __m128i);
        _mm_movemask_epi8(_mm_cmpeq_epi8(x, y)) as u32
    }
}

/// The first and the last `size_of::<T>()` bytes, each read big-endian so
/// that comparing the numbers compares the bytes in order.
///
/// # Safety
/// `size_of::<T>() <= n`; both readable for `n` bytes.
#[inline(always)]
unsafe fn compare_ends<T: Word>(a: *const u8, b: *const u8, n: usize) -> i32 {
    let w = std::mem::size_of::<T>();
    // SAFETY: w <= n, so both windows lie inside the n bytes.
    let (head, tail) = unsafe {
        (
            order(T::load(a), T::load(b)),
            order(T::load(a.add(n - w)), T::load(b.add(n - w))),
        )
    };
    // The windows overlap when n < 2w; if the heads are equal, the bytes
    // they share are too, so the tail decides.
    if head != 0 {
        head
    } else {
        tail
    }
}

/// 0 to 3 bytes, in order.
///
/// # Safety
/// `n <= 3`; both readable for `n` bytes.
#[inline(always)]
unsafe fn compare_tiny(a: *const u8, b: *const u8, n: usize) -> i32 {
    // SAFETY: every index read is below n.
    unsafe {
        let at = |i: usize| i32::from(*a.add(i)) - i32::from(*b.add(i));
        if n == 0 {
            return 0;
        }
        let d = at(0);
        if d != 0 || n == 1 {
            return d;
        }
        let d = at(1);
        if d != 0 || n == 2 {
            return d;
        }
        at(2)
    }
}

fn order<T: Ord>(x: T, y: T) -> i32 {
    match x.cmp(&y) {
        std::cmp::Ordering::Less => -1,
        std::cmp::Ordering::Equal => 0,
        std::cmp::Ordering::Greater => 1,
    }
}

/// An unsigned word read big-endian from unaligned memory.
trait Word: Ord + Copy {
    /// # Safety
    /// `p` readable for `size_of::<Self>()` bytes.
    unsafe fn load(p: *const u8) -> Self;
}

impl Word for u64 {
    unsafe fn load(p: *const u8) -> Self {
        // SAFETY: the caller guarantees 8 readable bytes.
        u64::from_be(unsafe { read_unaligned(p as *const u64) })
    }
}

impl Word for u32 {
    unsafe fn load(p: *const u8) -> Self {
        // SAFETY: the caller guarantees 4 readable bytes.
        u32::from_be(unsafe { read_unaligned(p as *const u32) })
    }
}

/// The C symbols, for the static musl amd64 binary only, linked before
/// musl's `libc.a` as `memcopy.rs`'s are. musl's `bcmp` is `memcmp` too.
#[cfg(all(target_env = "musl", target_arch = "x86_64"))]
mod exported {
    /// # Safety
    /// C's `memcmp`.
    #[no_mangle]
    pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
        // SAFETY: the same contract.
        unsafe { super::compare(a, b, n) }
    }

    /// # Safety
    /// C's `bcmp` (zero when equal; any other value when not).
    #[no_mangle]
    pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
        // SAFETY: the same contract.
        unsafe { super::compare(a, b, n) }
    }
}

#[cfg(test)]
mod tests {
    use super::compare;
    use std::cmp::Ordering;

    fn ours(a: &[u8], b: &[u8]) -> Ordering {
        assert_eq!(a.len(), b.len());
        // SAFETY: both slices hold len bytes.
        unsafe { compare(a.as_ptr(), b.as_ptr(), a.len()) }.cmp(&0)
    }

    /// Every length 0–300 at every alignment within 16, equal, and with one
    /// byte differing at every position in both directions; 0x00 against
    /// 0xFF shows the bytes compare unsigned.
    #[test]
    fn orders_like_slices_at_every_length_position_and_alignment() {
        let base: Vec<u8> = (0..340u32).map(|i| (i * 7 + 3) as u8).collect();
        for n in 0..300 {
            for align in [0usize, 1, 3, 8, 15] {
                let a = &base[align..align + n];
                let mut other = base.clone();
                assert_eq!(ours(a, &other[align..align + n]), Ordering::Equal, "n={n}");
                for pos in 0..n {
                    for (x, y) in [(0x00, 0xFF), (0xFF, 0x00), (0x41, 0x42)] {
                        let mut mine = base.clone();
                        mine[align + pos] = x;
                        other[align + pos] = y;
                        let (l, r) = (&mine[align..align + n], &other[align..align + n]);
                        assert_eq!(ours(l, r), l.cmp(r), "n={n} pos={pos} align={align}");
                        other[align + pos] = base[align + pos];
                    }
                }
            }
        }
    }

    /// A difference early and a later one of the other sign: the first wins.
    #[test]
    fn the_first_difference_decides() {
        for n in 2..64 {
            for first in 0..n - 1 {
                let a = vec![5u8; n];
                let mut b = a.clone();
                b[first] = 6;
                b[n - 1] = 0;
                assert_eq!(ours(&a, &b), Ordering::Less, "n={n} first={first}");
            }
        }
    }
}
