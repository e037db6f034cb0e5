//! Counter-based random numbers: Philox4x32-10 (Salmon et al., "Parallel random
//! numbers: as easy as 1, 2, 3", SC 2011).
//!
//! Every draw is a pure function of `(seed, stream, index)`: the 128-bit counter
//! is `(index_lo, index_hi, stream_lo, stream_hi)` and the key is the seed. No
//! state is carried from one draw to the next, so results cannot depend on the
//! thread count, the batch size or how a batch is split.
//!
//! Normals come from the Box–Muller transform of Philox blocks: one block gives
//! four normals (lanes 0, 1 are `r·cos θ`, `r·sin θ` of the word pair
//! `(w0, w1)`, lanes 2, 3 the same of `(w2, w3)`). Element `i` of a stream is
//! lane `(i mod 64) / 16` of block `16·(i div 64) + i mod 16`: a batch of 16
//! consecutive blocks yields 64 consecutive normals as four contiguous
//! 16-lane vectors (structure of arrays), which is what makes batches fast.

const M0: u32 = 0xD251_1F53;
const M1: u32 = 0xCD9E_8D57;
const W0: u32 = 0x9E37_79B9;
const W1: u32 = 0xBB67_AE85;

#[inline(always)]
fn mulhilo(a: u32, b: u32) -> (u32, u32) {
    let p = (a as u64) * (b as u64);
    ((p >> 32) as u32, p as u32)
}

/// One Philox4x32-10 block for a counter and a key.
#[inline(always)]
pub fn philox4x32(ctr: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let mut c = ctr;
    let mut k = key;
    for _ in 0..10 {
        let (hi0, lo0) = mulhilo(M0, c[0]);
        let (hi1, lo1) = mulhilo(M1, c[2]);
        c = [hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0];
        k = [k[0].wrapping_add(W0), k[1].wrapping_add(W1)];
    }
    c
}

/// The four 32-bit words of block `block` of stream `stream` under `seed`.
#[inline(always)]
pub fn block(seed: u64, stream: u64, block: u64) -> [u32; 4] {
    philox4x32(
        [
            block as u32,
            (block >> 32) as u32,
            stream as u32,
            (stream >> 32) as u32,
        ],
        [seed as u32, (seed >> 32) as u32],
    )
}

/// The four normals of one block (see the module docs for the lane order).
#[inline(always)]
pub fn normals4(seed: u64, stream: u64, block_index: u64) -> [f32; 4] {
    let b = block(seed, stream, block_index);
    let (c0, s0) = box_muller(b[0], b[1]);
    let (c1, s1) = box_muller(b[2], b[3]);
    [c0, s0, c1, s1]
}

const SQRT2_F32: f32 = std::f32::consts::SQRT_2;
const LN2_F32: f32 = std::f32::consts::LN_2;

/// Box–Muller in f32 with branch-free polynomial `ln`, `sin`, `cos`, so that
/// batches vectorise. Only IEEE-exact operations (no fused multiply-add), so a
/// SIMD lane and the scalar code give the same bits.
///
/// Radius: `u = k / 2^24`, `k = (a >> 8) + 1 ∈ [1, 2^24]`, `ln u = ln k −
/// 24 ln 2` with `ln k` from the exponent and an atanh series of the mantissa
/// centred on 1 (relative error < 1e-7). Angle: `θ = q·π/2 + φ` with the
/// quadrant `q` the top two bits of `b` and `φ ∈ [−π/4, π/4)` from the next 22
/// bits (θ uniform on the circle); `sin φ`, `cos φ` by Taylor polynomials
/// (error < 4e-7).
#[inline(always)]
pub fn box_muller(a: u32, b: u32) -> (f32, f32) {
    let k = ((a >> 8) + 1) as f32;
    let bits = k.to_bits();
    let mut e = ((bits >> 23) as i32 - 127) as f32;
    let mut m = f32::from_bits((bits & 0x007F_FFFF) | 0x3F80_0000);
    let big = m > SQRT2_F32;
    m = if big { m * 0.5 } else { m };
    e = if big { e + 1.0 } else { e };
    let s = (m - 1.0) / (m + 1.0);
    let s2 = s * s;
    let ln_m =
        2.0 * s * (1.0 + s2 * (1.0 / 3.0 + s2 * (0.2 + s2 * (1.0 / 7.0 + s2 * (1.0 / 9.0)))));
    let ln_u = ((e - 24.0) * LN2_F32 + ln_m).min(0.0);
    let r = (-2.0 * ln_u).sqrt();
    let q = b >> 30;
    let f = ((b >> 8) & 0x003F_FFFF) as f32 * (1.0 / 4_194_304.0);
    let phi = (f - 0.5) * std::f32::consts::FRAC_PI_2;
    let p2 = phi * phi;
    let sin = phi * (1.0 + p2 * (-1.0 / 6.0 + p2 * (1.0 / 120.0 + p2 * (-1.0 / 5040.0))));
    let cos = 1.0 + p2 * (-0.5 + p2 * (1.0 / 24.0 + p2 * (-1.0 / 720.0 + p2 * (1.0 / 40320.0))));
    let swap = q & 1 == 1;
    let (c0, s0) = if swap { (sin, cos) } else { (cos, sin) };
    let c = if q == 1 || q == 2 { -c0 } else { c0 };
    let sn = if q >= 2 { -s0 } else { s0 };
    (r * c, r * sn)
}

/// Standard normal number `index` of `stream` under `seed`.
#[inline]
pub fn normal(seed: u64, stream: u64, index: u64) -> f64 {
    let block_index = (index / 64) * 16 + index % 16;
    normals4(seed, stream, block_index)[((index % 64) / 16) as usize] as f64
}

/// Blocks per vectorised batch of [`fill_normals`].
const BATCH_BLOCKS: usize = 16;

/// 16 consecutive blocks in structure-of-arrays form, so that the Philox
/// rounds and Box–Muller run lane-parallel.
// Index loops over the lanes of structure-of-arrays data read best as such.
#[allow(clippy::needless_range_loop)]
#[inline(always)]
fn normals_batch<const AVX512: bool>(seed: u64, stream: u64, first_block: u64, out: &mut [f32]) {
    let c = philox_batch::<AVX512>(seed, stream, first_block);
    box_muller_batch(&c, out);
}

/// Philox words of 16 consecutive blocks, word-major (`c[w][j]` is word `w` of
/// block `first_block + j`).
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
            // SAFETY: AVX512 is set only by `fill_normals_avx512`, which is
            // compiled for and dispatched to AVX-512F CPUs.
            return unsafe { philox_batch_avx512(seed, stream, first_block) };
        }
    }
    philox_batch_portable(seed, stream, first_block)
}

/// Philox rounds on 16 blocks with AVX-512F: each word lives in two vectors
/// of eight u64 lanes (value in the low half); `vpmuludq` multiplies the low
/// halves directly, the high product half is a shift, the three-way XOR one
/// `vpternlogq`. The integers are those of [`philox4x32`].
#[cfg(target_arch = "x86_64")]
#[allow(clippy::needless_range_loop)]
#[inline(always)]
unsafe fn philox_batch_avx512(
    seed: u64,
    stream: u64,
    first_block: u64,
) -> [[u32; BATCH_BLOCKS]; 4] {
    use std::arch::x86_64::*;
    let lanes = _mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0);
    let mut c = [[_mm512_setzero_si512(); 2]; 4];
    for (h, half) in [0u64, 8].into_iter().enumerate() {
        let blocks = _mm512_add_epi64(_mm512_set1_epi64((first_block + half) as i64), lanes);
        c[0][h] = blocks;
        c[1][h] = _mm512_srli_epi64::<32>(blocks);
        c[2][h] = _mm512_set1_epi64((stream as u32) as i64);
        c[3][h] = _mm512_set1_epi64(((stream >> 32) as u32) as i64);
    }
    let (m0, m1) = (_mm512_set1_epi64(M0 as i64), _mm512_set1_epi64(M1 as i64));
    let mut k = [seed as u32, (seed >> 32) as u32];
    for _ in 0..10 {
        let (k0, k1) = (
            _mm512_set1_epi64(k[0] as i64),
            _mm512_set1_epi64(k[1] as i64),
        );
        for h in 0..2 {
            let p0 = _mm512_mul_epu32(c[0][h], m0);
            let p1 = _mm512_mul_epu32(c[2][h], m1);
            let n0 = _mm512_ternarylogic_epi64::<0x96>(_mm512_srli_epi64::<32>(p1), c[1][h], k0);
            let n2 = _mm512_ternarylogic_epi64::<0x96>(_mm512_srli_epi64::<32>(p0), c[3][h], k1);
            c[0][h] = n0;
            c[1][h] = p1;
            c[2][h] = n2;
            c[3][h] = p0;
        }
        k = [k[0].wrapping_add(W0), k[1].wrapping_add(W1)];
    }
    let mut out = [[0u32; BATCH_BLOCKS]; 4];
    for (w, words) in out.iter_mut().enumerate() {
        let lo = _mm512_cvtepi64_epi32(c[w][0]);
        let hi = _mm512_cvtepi64_epi32(c[w][1]);
        _mm256_storeu_si256(words.as_mut_ptr() as *mut __m256i, lo);
        _mm256_storeu_si256(words.as_mut_ptr().add(8) as *mut __m256i, hi);
    }
    out
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
            let p0 = (M0 as u64) * (c[0][j] as u64);
            let p1 = (M1 as u64) * (c[2][j] as u64);
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

#[inline(always)]
fn fill_normals_body<const AVX512: bool>(seed: u64, stream: u64, start: u64, out: &mut [f32]) {
    let batch = (4 * BATCH_BLOCKS) as u64;
    let end = start + out.len() as u64;
    let mut group = start / batch;
    let mut scratch = [0f32; 4 * BATCH_BLOCKS];
    while group * batch < end {
        let g0 = group * batch;
        let lo = start.max(g0);
        let hi = end.min(g0 + batch);
        let dst = &mut out[(lo - start) as usize..(hi - start) as usize];
        if lo == g0 && hi == g0 + batch {
            normals_batch::<AVX512>(seed, stream, group * BATCH_BLOCKS as u64, dst);
        } else {
            normals_batch::<AVX512>(seed, stream, group * BATCH_BLOCKS as u64, &mut scratch);
            dst.copy_from_slice(&scratch[(lo - g0) as usize..(hi - g0) as usize]);
        }
        group += 1;
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq,avx512vl")]
unsafe fn fill_normals_avx512(seed: u64, stream: u64, start: u64, out: &mut [f32]) {
    fill_normals_body::<true>(seed, stream, start, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn fill_normals_avx2(seed: u64, stream: u64, start: u64, out: &mut [f32]) {
    fill_normals_body::<false>(seed, stream, start, out)
}

/// Fills `out` with normals `start, start + 1, ..` of `stream` under `seed`
/// (the same values as [`normal`], computed 64 at a time with the best SIMD
/// instruction set of the CPU; the bits do not depend on it).
pub fn fill_normals(seed: u64, stream: u64, start: u64, out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512dq")
            && std::arch::is_x86_feature_detected!("avx512vl")
        {
            // SAFETY: the CPU has the features.
            return unsafe { fill_normals_avx512(seed, stream, start, out) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has the features.
            return unsafe { fill_normals_avx2(seed, stream, start, out) };
        }
    }
    fill_normals_body::<false>(seed, stream, start, out)
}

/// [`fill_normals`] through the portable code only (tests compare the two).
pub fn fill_normals_portable(seed: u64, stream: u64, start: u64, out: &mut [f32]) {
    fill_normals_body::<false>(seed, stream, start, out)
}

/// Uniform number in [0, 1) `index` of `stream` under `seed` (24-bit resolution).
#[inline]
pub fn uniform(seed: u64, stream: u64, index: u64) -> f64 {
    let b = block(seed, stream, index >> 2);
    (b[(index & 3) as usize] >> 8) as f64 * (1.0 / 16_777_216.0)
}

/// Derives an independent seed for a named purpose (SplitMix64 finaliser), so
/// that one user seed can drive several streams without overlap.
pub fn derive_seed(seed: u64, purpose: u64) -> u64 {
    let mut z = seed ^ purpose.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answer_vectors_of_random123() {
        // Random123 kat_vectors, philox4x32 with 10 rounds.
        assert_eq!(
            philox4x32([0, 0, 0, 0], [0, 0]),
            [0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8]
        );
        assert_eq!(
            philox4x32([u32::MAX; 4], [u32::MAX; 2]),
            [0x408f_276d, 0x41c8_3b0e, 0xa20b_c7c6, 0x6d54_51fd]
        );
        assert_eq!(
            philox4x32(
                [0x243f_6a88, 0x85a3_08d3, 0x1319_8a2e, 0x0370_7344],
                [0xa409_3822, 0x299f_31d0]
            ),
            [0xd16c_fe09, 0x94fd_cceb, 0x5001_e420, 0x2412_6ea1]
        );
    }

    #[test]
    fn fill_matches_pointwise_for_any_offset_and_isa() {
        for start in 0..9u64 {
            for len in [13usize, 64, 200] {
                let mut v = vec![0.0f32; len];
                let mut w = vec![0.0f32; len];
                fill_normals(7, 3, start, &mut v);
                fill_normals_portable(7, 3, start, &mut w);
                for (i, x) in v.iter().enumerate() {
                    assert_eq!(
                        x.to_bits(),
                        (normal(7, 3, start + i as u64) as f32).to_bits()
                    );
                    assert_eq!(x.to_bits(), w[i].to_bits());
                }
            }
        }
    }

    #[test]
    fn polynomial_box_muller_matches_libm() {
        for i in 0..100_000u32 {
            let a = i.wrapping_mul(2_654_435_761);
            let b = i.wrapping_mul(40_503).rotate_left(13) ^ a;
            let (z0, z1) = box_muller(a, b);
            let u = ((a >> 8) + 1) as f64 / 16_777_216.0;
            let r = (-2.0 * u.ln()).sqrt();
            let q = (b >> 30) as f64;
            let f = ((b >> 8) & 0x003F_FFFF) as f64 / 4_194_304.0;
            let theta = q * std::f64::consts::FRAC_PI_2 + (f - 0.5) * std::f64::consts::FRAC_PI_2;
            assert!(
                (z0 as f64 - r * theta.cos()).abs() < 2e-6 * (1.0 + r),
                "{i}"
            );
            assert!(
                (z1 as f64 - r * theta.sin()).abs() < 2e-6 * (1.0 + r),
                "{i}"
            );
        }
    }

    #[test]
    fn normals_have_unit_moments() {
        let n = 400_000;
        let mut v32 = vec![0.0f32; n];
        fill_normals(42, 0, 0, &mut v32);
        let v: Vec<f64> = v32.iter().map(|&x| x as f64).collect();
        let mean = v.iter().sum::<f64>() / n as f64;
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        let kurt = v.iter().map(|x| (x - mean).powi(4)).sum::<f64>() / n as f64 / (var * var);
        // Standard errors: mean 1/sqrt(n) = 0.0016, var sqrt(2/n) = 0.0022, kurtosis sqrt(24/n) = 0.008.
        assert!(mean.abs() < 0.008, "mean {mean}");
        assert!((var - 1.0).abs() < 0.011, "var {var}");
        assert!((kurt - 3.0).abs() < 0.05, "kurtosis {kurt}");
    }

    #[test]
    fn streams_and_seeds_differ() {
        assert_ne!(normal(1, 0, 0), normal(2, 0, 0));
        assert_ne!(normal(1, 0, 0), normal(1, 1, 0));
        assert_ne!(derive_seed(1, 1), derive_seed(1, 2));
    }
}
