//! AVX-512F kernels of the batch fillers: Philox rounds on 16 blocks at once
//! and the 16-bit inverse CDF on 16 words at once. They compute the same
//! integers and the same IEEE operations as the scalar code in `philox.rs`
//! and `normal.rs`, so the bits match.
//!
//! Every function here is `unsafe` for one reason: it uses AVX-512F
//! intrinsics, so it may only run inside code compiled with that feature on a
//! CPU that has it. The only such code is the `wide` function that
//! `dispatched_filler!` (in `fill.rs`) defines, and `wide` is called only
//! where `cpu::level()` implies AVX-512F, DQ and VL; the
//! kernels are `#[inline(always)]` so that they are compiled into it.

use std::arch::x86_64::{
    __m512, __m512i, _mm512_add_epi32, _mm512_add_epi64, _mm512_castps_si512, _mm512_castsi512_ps,
    _mm512_cvtepi32_ps, _mm512_fmadd_ps, _mm512_loadu_ps, _mm512_mul_epu32,
    _mm512_permutex2var_epi32, _mm512_permutex2var_ps, _mm512_set1_epi32, _mm512_set1_epi64,
    _mm512_set1_ps, _mm512_set_epi32, _mm512_set_epi64, _mm512_setzero_ps, _mm512_setzero_si512,
    _mm512_slli_epi32, _mm512_srli_epi32, _mm512_srli_epi64, _mm512_storeu_ps, _mm512_storeu_si512,
    _mm512_sub_ps, _mm512_ternarylogic_epi32, _mm512_ternarylogic_epi64,
};

use super::fill::BATCH_BLOCKS;
use super::icdf_table::ICDF_COEF;
use super::philox::{M0, M1, W0, W1};

/// Philox rounds on 16 blocks: each word lives in two vectors of eight u64
/// lanes (value in the low half); `vpmuludq` multiplies the low halves
/// directly, the high product half is a shift, the three-way XOR one
/// `vpternlogq`; round keys are broadcast from memory (load ports, not ALU
/// ports). Returns the four words of blocks `first_block..first_block + 16`
/// as 16-lane u32 vectors (one `vpermt2d` per word). The integers are those
/// of [`philox4x32`](super::philox4x32).
#[allow(clippy::needless_range_loop)]
#[inline(always)]
pub(super) unsafe fn philox_words(seed: u64, stream: u64, first_block: u64) -> [__m512i; 4] {
    let mut keys = [[0i64; 2]; 10];
    let mut k = [seed as u32, (seed >> 32) as u32];
    for key in &mut keys {
        *key = [i64::from(k[0]), i64::from(k[1])];
        k = [k[0].wrapping_add(W0), k[1].wrapping_add(W1)];
    }
    let lanes = _mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0);
    let mut c = [[_mm512_setzero_si512(); 2]; 4];
    for (h, half) in [0u64, 8].into_iter().enumerate() {
        let blocks = _mm512_add_epi64(_mm512_set1_epi64((first_block + half) as i64), lanes);
        c[0][h] = blocks;
        c[1][h] = _mm512_srli_epi64::<32>(blocks);
        c[2][h] = _mm512_set1_epi64(i64::from(stream as u32));
        c[3][h] = _mm512_set1_epi64(i64::from((stream >> 32) as u32));
    }
    let (m0, m1) = (
        _mm512_set1_epi64(i64::from(M0)),
        _mm512_set1_epi64(i64::from(M1)),
    );
    for key in &keys {
        let (k0, k1) = (_mm512_set1_epi64(key[0]), _mm512_set1_epi64(key[1]));
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
    }
    // Low dwords of both halves: lanes 0, 2, .., 14 of a, then of b.
    let even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    [
        _mm512_permutex2var_epi32(c[0][0], even, c[0][1]),
        _mm512_permutex2var_epi32(c[1][0], even, c[1][1]),
        _mm512_permutex2var_epi32(c[2][0], even, c[2][1]),
        _mm512_permutex2var_epi32(c[3][0], even, c[3][1]),
    ]
}

/// [`philox_words`] stored word-major (`c[w][j]` is word `w` of block
/// `first_block + j`).
#[inline(always)]
pub(super) unsafe fn philox_batch(
    seed: u64,
    stream: u64,
    first_block: u64,
) -> [[u32; BATCH_BLOCKS]; 4] {
    let words = philox_words(seed, stream, first_block);
    let mut out = [[0u32; BATCH_BLOCKS]; 4];
    for (dst, v) in out.iter_mut().zip(words) {
        _mm512_storeu_si512(dst.as_mut_ptr().cast::<__m512i>(), v);
    }
    out
}

/// [`normal_from_bits16`](super::normal_from_bits16) on the high (`HIGH`) or
/// low 16-bit halves of 16 words, each 32-entry coefficient table held in a
/// register pair and indexed by `vpermt2ps`; bit selections by `vpternlogd`
/// (18 operations per 16 normals).
#[inline(always)]
unsafe fn normals_from_bits16<const HIGH: bool>(w: __m512i, c: &[[__m512; 2]; 4]) -> __m512 {
    // (a & b) | c and a ^ (b & c) as vpternlogd truth tables.
    const AND_OR: i32 = 0xEA;
    const XOR_AND: i32 = 0x78;
    // n = 2t + 1 with t the 15 magnitude bits of the half, in place.
    let shifted = if HIGH {
        _mm512_srli_epi32::<15>(w)
    } else {
        _mm512_slli_epi32::<1>(w)
    };
    let n = _mm512_ternarylogic_epi32::<AND_OR>(
        shifted,
        _mm512_set1_epi32(0xFFFE),
        _mm512_set1_epi32(1),
    );
    let bits = _mm512_castps_si512(_mm512_cvtepi32_ps(n));
    // The permute reads the low 5 bits: (bits >> 22) − 254 ≡ (bits >> 22) + 2.
    let j = _mm512_add_epi32(_mm512_srli_epi32::<22>(bits), _mm512_set1_epi32(2));
    let m = _mm512_ternarylogic_epi32::<AND_OR>(
        bits,
        _mm512_set1_epi32(0x003F_FFFF),
        _mm512_set1_epi32(0x3F80_0000),
    );
    let x = _mm512_sub_ps(_mm512_castsi512_ps(m), _mm512_set1_ps(1.25));
    let mut z = _mm512_permutex2var_ps(c[3][0], j, c[3][1]);
    for k in (0..3).rev() {
        z = _mm512_fmadd_ps(z, x, _mm512_permutex2var_ps(c[k][0], j, c[k][1]));
    }
    // The sign is the half's bit 15: bit 31 of the word, or bit 15 moved up.
    let sign_source = if HIGH { w } else { _mm512_slli_epi32::<16>(w) };
    _mm512_castsi512_ps(_mm512_ternarylogic_epi32::<XOR_AND>(
        _mm512_castps_si512(z),
        sign_source,
        _mm512_set1_epi32(i32::MIN),
    ))
}

/// [`normal_pair16`](super::normal_pair16) of the 64 words of blocks
/// `first_block..first_block + 16` into `out[..128]`, lane-major (16 high
/// halves of word 0, 16 low halves of word 0, then word 1, ..). Panics if
/// `out` is shorter than 128.
#[inline(always)]
pub(super) unsafe fn normals16_batch(seed: u64, stream: u64, first_block: u64, out: &mut [f32]) {
    // The stores below write out[..128] through a raw pointer.
    assert!(out.len() >= 8 * BATCH_BLOCKS);
    // A loop, not `map` with a closure: closures do not inherit the caller's
    // target features.
    let mut coef = [[_mm512_setzero_ps(); 2]; 4];
    for (k, pair) in coef.iter_mut().enumerate() {
        pair[0] = _mm512_loadu_ps(ICDF_COEF[k].as_ptr());
        pair[1] = _mm512_loadu_ps(ICDF_COEF[k].as_ptr().add(16));
    }
    let all = philox_words(seed, stream, first_block);
    for (w, &words) in all.iter().enumerate() {
        let hi = normals_from_bits16::<true>(words, &coef);
        let lo = normals_from_bits16::<false>(words, &coef);
        _mm512_storeu_ps(out.as_mut_ptr().add(2 * w * BATCH_BLOCKS), hi);
        _mm512_storeu_ps(out.as_mut_ptr().add((2 * w + 1) * BATCH_BLOCKS), lo);
    }
}
