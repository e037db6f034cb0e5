//! Batch fillers: [`fill_normals`] and [`fill_normals16`] write a run of
//! consecutive normals of a stream, 16 Philox blocks per batch, lane-parallel,
//! with the best SIMD instruction set of the CPU chosen at run time. The
//! values are those of the pointwise [`normal`](super::normal) and
//! [`normal16`](super::normal16) on every path; this file only decides how
//! they are computed in bulk.
//!
//! Indices wrap: element `k` of `out` is index `start + k` modulo 2^64, so a
//! fill may start anywhere (a run that passes `u64::MAX` continues at 0) and
//! never overflows. A batch covers an aligned run of 64 or 128 indices, which
//! divides 2^64, so no batch straddles the wrap.

#[cfg(target_arch = "x86_64")]
use super::avx512;
use super::normal::{box_muller, normal_pair16};
use super::philox::{M0, M1, W0, W1};

/// Blocks per vectorised batch.
pub(super) const BATCH_BLOCKS: usize = 16;

/// 64 normals of [`box_muller`] from 16 consecutive blocks, lane-major.
#[inline(always)]
fn normals_batch<const AVX512: bool>(seed: u64, stream: u64, first_block: u64, out: &mut [f32]) {
    let c = philox_batch::<AVX512>(seed, stream, first_block);
    box_muller_batch(&c, out);
}

/// Philox words of 16 consecutive blocks, word-major (`c[w][j]` is word `w` of
/// block `first_block + j`), in structure-of-arrays form so that the Philox
/// rounds run lane-parallel.
/// `AVX512` is true only when inlined into a function compiled with AVX-512F.
#[inline(always)]
fn philox_batch<const AVX512: bool>(
    seed: u64,
    stream: u64,
    first_block: u64,
) -> [[u32; BATCH_BLOCKS]; 4] {
    #[cfg(target_arch = "x86_64")]
    {
        if AVX512 {
            // SAFETY: `AVX512` is true only in `wide` (`dispatched_filler!`),
            // which is compiled with AVX-512F and called only on CPUs whose
            // `cpu::level()` implies it; this function is inlined
            // into it.
            return unsafe { avx512::philox_batch(seed, stream, first_block) };
        }
    }
    philox_batch_portable(seed, stream, first_block)
}

#[allow(clippy::needless_range_loop)]
#[inline(always)]
fn philox_batch_portable(seed: u64, stream: u64, first_block: u64) -> [[u32; BATCH_BLOCKS]; 4] {
    let mut c = [[0u32; BATCH_BLOCKS]; 4];
    for j in 0..BATCH_BLOCKS {
        let b = first_block + j as u64;
        c[0][j] = b as u32;
        c[1][j] = (b >> 32) as u32;
        c[2][j] = stream as u32;
        c[3][j] = (stream >> 32) as u32;
    }
    let mut k = [seed as u32, (seed >> 32) as u32];
    for _ in 0..10 {
        let mut n = [[0u32; BATCH_BLOCKS]; 4];
        for j in 0..BATCH_BLOCKS {
            let p0 = u64::from(M0) * u64::from(c[0][j]);
            let p1 = u64::from(M1) * u64::from(c[2][j]);
            n[0][j] = ((p1 >> 32) as u32) ^ c[1][j] ^ k[0];
            n[1][j] = p1 as u32;
            n[2][j] = ((p0 >> 32) as u32) ^ c[3][j] ^ k[1];
            n[3][j] = p0 as u32;
        }
        c = n;
        k = [k[0].wrapping_add(W0), k[1].wrapping_add(W1)];
    }
    c
}

/// Box–Muller of 16 blocks' words into 64 normals (lane-major).
// Index loops over the lanes of structure-of-arrays data read best as such.
#[allow(clippy::needless_range_loop)]
#[inline(always)]
fn box_muller_batch(c: &[[u32; BATCH_BLOCKS]; 4], out: &mut [f32]) {
    let mut z = [[0f32; BATCH_BLOCKS]; 4];
    for j in 0..BATCH_BLOCKS {
        let (a0, a1) = box_muller(c[0][j], c[1][j]);
        let (b0, b1) = box_muller(c[2][j], c[3][j]);
        z[0][j] = a0;
        z[1][j] = a1;
        z[2][j] = b0;
        z[3][j] = b1;
    }
    for (lane, zl) in z.iter().enumerate() {
        out[lane * BATCH_BLOCKS..(lane + 1) * BATCH_BLOCKS].copy_from_slice(zl);
    }
}

/// [`normal_pair16`] of 16 blocks' 64 words into 128 normals (lane-major).
// Index loops over the lanes of structure-of-arrays data read best as such.
#[allow(clippy::needless_range_loop)]
#[inline(always)]
fn normals16_batch<const AVX512: bool>(seed: u64, stream: u64, first_block: u64, out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        if AVX512 {
            // SAFETY: as in `philox_batch`: `AVX512` is true only inside
            // `wide` (`dispatched_filler!`), compiled with AVX-512F and called
            // only where `cpu::level()` implies it. The kernel checks
            // that `out` holds the 128 floats it stores.
            unsafe { avx512::normals16_batch(seed, stream, first_block, out) };
            return;
        }
    }
    let c = philox_batch::<AVX512>(seed, stream, first_block);
    for w in 0..4 {
        for j in 0..BATCH_BLOCKS {
            let (hi, lo) = normal_pair16(c[w][j]);
            out[2 * w * BATCH_BLOCKS + j] = hi;
            out[(2 * w + 1) * BATCH_BLOCKS + j] = lo;
        }
    }
}

/// A vectorised batch of normals from 16 consecutive Philox blocks.
trait NormalBatch {
    /// Normals per batch (a power of two, at most `8 * BATCH_BLOCKS`).
    const SIZE: usize;
    /// Writes the batch starting at block `first_block` into `out[..SIZE]`.
    /// `AVX512` is true only inside a function compiled for AVX-512F.
    fn run<const AVX512: bool>(seed: u64, stream: u64, first_block: u64, out: &mut [f32]);
}

/// [`box_muller`] pairs: 64 normals per batch.
struct Pairs24;
impl NormalBatch for Pairs24 {
    const SIZE: usize = 4 * BATCH_BLOCKS;
    #[inline(always)]
    fn run<const AVX512: bool>(seed: u64, stream: u64, first_block: u64, out: &mut [f32]) {
        normals_batch::<AVX512>(seed, stream, first_block, out);
    }
}

/// [`normal_pair16`] words: 128 normals per batch.
struct Words16;
impl NormalBatch for Words16 {
    const SIZE: usize = 8 * BATCH_BLOCKS;
    #[inline(always)]
    fn run<const AVX512: bool>(seed: u64, stream: u64, first_block: u64, out: &mut [f32]) {
        normals16_batch::<AVX512>(seed, stream, first_block, out);
    }
}

/// Fills `out` with elements `start, start + 1, ..` (modulo 2^64) of the
/// stream of `B` batches: whole batches straight into `out`, the partial ones
/// at either end through a scratch batch. (A trait rather than a closure:
/// closures do not inherit the caller's target features, and the intrinsics
/// must inline into the AVX-512 function.)
#[inline(always)]
fn fill_batched<B: NormalBatch, const AVX512: bool>(
    seed: u64,
    stream: u64,
    start: u64,
    out: &mut [f32],
) {
    // A power-of-two batch divides 2^64: batch g covers indices
    // g·SIZE..(g + 1)·SIZE without wrapping, and the last batch ends exactly
    // at u64::MAX, so stepping `index` with wrapping addition walks the
    // indices modulo 2^64. A batch's first block, g·16 < 2^62, never
    // overflows.
    const {
        assert!(B::SIZE.is_power_of_two() && B::SIZE <= 8 * BATCH_BLOCKS);
    }
    let size = B::SIZE;
    let mut scratch = [0f32; 8 * BATCH_BLOCKS];
    let mut index = start;
    let mut rest = out;
    while !rest.is_empty() {
        let offset = (index % size as u64) as usize;
        let len = rest.len().min(size - offset);
        let (dst, tail) = std::mem::take(&mut rest).split_at_mut(len);
        let first_block = index / size as u64 * BATCH_BLOCKS as u64;
        if len == size {
            B::run::<AVX512>(seed, stream, first_block, dst);
        } else {
            B::run::<AVX512>(seed, stream, first_block, &mut scratch);
            dst.copy_from_slice(&scratch[offset..offset + len]);
        }
        index = index.wrapping_add(len as u64);
        rest = tail;
    }
}

#[inline(always)]
fn fill_normals_body<const AVX512: bool>(seed: u64, stream: u64, start: u64, out: &mut [f32]) {
    fill_batched::<Pairs24, AVX512>(seed, stream, start, out);
}

#[inline(always)]
fn fill_normals16_body<const AVX512: bool>(seed: u64, stream: u64, start: u64, out: &mut [f32]) {
    fill_batched::<Words16, AVX512>(seed, stream, start, out);
}

/// Defines a public filler that runs `$body` compiled for the best SIMD
/// instruction set of the CPU (IEEE-exact arithmetic: the bits do not depend
/// on it), and its portable twin for the tests.
macro_rules! dispatched_filler {
    ($(#[$doc:meta])* $name:ident, $portable:ident, $body:ident) => {
        $(#[$doc])*
        pub fn $name(seed: u64, stream: u64, start: u64, out: &mut [f32]) {
            #[cfg(target_arch = "x86_64")]
            {
                // The only caller of the AVX-512 kernels (`$body::<true>`).
                #[target_feature(enable = "avx512f,avx512dq,avx512vl")]
                unsafe fn wide(seed: u64, stream: u64, start: u64, out: &mut [f32]) {
                    $body::<true>(seed, stream, start, out)
                }
                #[target_feature(enable = "avx2,fma")]
                unsafe fn mid(seed: u64, stream: u64, start: u64, out: &mut [f32]) {
                    $body::<false>(seed, stream, start, out)
                }
                match $crate::cpu::level() {
                    // SAFETY: `wide` needs AVX-512F, DQ and VL, implied by
                    // the level.
                    $crate::cpu::Level::Avx512 | $crate::cpu::Level::Avx512Vnni => {
                        return unsafe { wide(seed, stream, start, out) };
                    }
                    // SAFETY: `mid` needs AVX2 and FMA, implied by the level.
                    $crate::cpu::Level::Avx2 => return unsafe { mid(seed, stream, start, out) },
                    $crate::cpu::Level::Baseline => {}
                }
            }
            $body::<false>(seed, stream, start, out)
        }

        /// The same values through the portable code only (tests compare the two).
        pub fn $portable(seed: u64, stream: u64, start: u64, out: &mut [f32]) {
            $body::<false>(seed, stream, start, out)
        }
    };
}

dispatched_filler!(
    /// Fills `out` with normals `start, start + 1, ..` of `stream` under `seed`
    /// (the values of [`normal`](super::normal), 64 at a time). Indices are taken modulo
    /// 2^64: any `start` is valid, and a run past `u64::MAX` continues at 0.
    fill_normals,
    fill_normals_portable,
    fill_normals_body
);

dispatched_filler!(
    /// Fills `out` with normals `start, start + 1, ..` of `stream` under `seed`
    /// from [`normal_pair16`] (the values of [`normal16`](super::normal16), 128 at a time).
    /// Indices are taken modulo 2^64: any `start` is valid, and a run past
    /// `u64::MAX` continues at 0.
    fill_normals16,
    fill_normals16_portable,
    fill_normals16_body
);
