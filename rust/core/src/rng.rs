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
//! These (24-bit radius, 22-bit angle) drive the device states.
//!
//! The per-MVM noise (tens of millions of draws per call) uses a cheaper
//! sampler, [`fill_normals16`]: each 32-bit Philox word gives two normals by an
//! inverse CDF on 16 bits ([`normal_from_bits16`]: a cubic per half-octave of
//! the tail probability, coefficients in registers), 128 normals per batch of
//! 16 blocks, about 0.5 ns per normal on one core against 0.9 ns for the
//! Box–Muller path.

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
    let (c, sn) = cos_sin_of_turn(q, f);
    (r * c, r * sn)
}

/// `(cos θ, sin θ)` for `θ = q·π/2 + (f − ½)·π/2`, `q` a quadrant (0..4) and
/// `f ∈ [0, 1)`: Taylor polynomials on [−π/4, π/4) (error < 4e-7), then the
/// quadrant by swaps and sign flips.
#[inline(always)]
fn cos_sin_of_turn(q: u32, f: f32) -> (f32, f32) {
    let phi = (f - 0.5) * std::f32::consts::FRAC_PI_2;
    let p2 = phi * phi;
    let sin = phi * (1.0 + p2 * (-1.0 / 6.0 + p2 * (1.0 / 120.0 + p2 * (-1.0 / 5040.0))));
    let cos = 1.0 + p2 * (-0.5 + p2 * (1.0 / 24.0 + p2 * (-1.0 / 720.0 + p2 * (1.0 / 40320.0))));
    let swap = q & 1 == 1;
    let (c0, s0) = if swap { (sin, cos) } else { (cos, sin) };
    let c = if q == 1 || q == 2 { -c0 } else { c0 };
    let sn = if q >= 2 { -s0 } else { s0 };
    (c, sn)
}

/// Coefficients `ICDF_COEF[k][j]` of `x^k` of the cubic least-squares fits of
/// `|z| = Φ⁻¹(1 − 2^(E−17)·m)` on the half-octaves `j = 2E + h`, `m ∈ [1 + h/2,
/// 1.5 + h/2)`, with `x = m − 1.25 − h/2` (scipy `norm.isf`, 2000 Chebyshev nodes).
#[allow(clippy::excessive_precision)]
const ICDF_COEF: [[f32; 32]; 4] = [
    [
        4.275458812713623,
        4.1999006271362305,
        4.118414878845215,
        4.040196418762207,
        3.9557418823242188,
        3.874570846557617,
        3.7868077754974365,
        3.702333450317383,
        3.610854387283325,
        3.5226526260375977,
        3.426959753036499,
        3.3345086574554443,
        3.23398494720459,
        3.136632204055786,
        3.0304970741271973,
        2.9274075031280518,
        2.814650774002075,
        2.7047290802001953,
        2.5840046405792236,
        2.4657669067382812,
        2.3352174758911133,
        2.206571102142334,
        2.063511371612549,
        1.9213464260101318,
        1.7616527080535889,
        1.6010040044784546,
        1.4177780151367188,
        1.229853630065918,
        1.0099694728851318,
        0.7764163017272949,
        0.48875483870506287,
        0.15730689465999603,
    ],
    [
        -0.1782018542289734,
        -0.12938107550144196,
        -0.18437272310256958,
        -0.13401085138320923,
        -0.19121216237545013,
        -0.13915979862213135,
        -0.19884811341762543,
        -0.14493094384670258,
        -0.20744511485099792,
        -0.1514580249786377,
        -0.21721896529197693,
        -0.15891820192337036,
        -0.2284589409828186,
        -0.1675519198179245,
        -0.2415630966424942,
        -0.17769475281238556,
        -0.25709646940231323,
        -0.1898314654827118,
        -0.27589213848114014,
        -0.20469233393669128,
        -0.29923754930496216,
        -0.22343710064888,
        -0.3292459547519684,
        -0.24803882837295532,
        -0.3696748912334442,
        -0.28218239545822144,
        -0.4279942214488983,
        -0.3337407410144806,
        -0.5217718482017517,
        -0.42354220151901245,
        -0.7061302661895752,
        -0.634450376033783,
    ],
    [
        0.06924255937337875,
        0.03550408408045769,
        0.07139550894498825,
        0.03664126992225647,
        0.07375404983758926,
        0.03789032623171806,
        0.07635191828012466,
        0.03927015885710716,
        0.07923078536987305,
        0.040804240852594376,
        0.08244270086288452,
        0.04252204671502113,
        0.08605337142944336,
        0.04446098580956459,
        0.09014657884836197,
        0.046668943017721176,
        0.09482991695404053,
        0.049207497388124466,
        0.1002415344119072,
        0.05215524509549141,
        0.10655516386032104,
        0.05560825765132904,
        0.11397130787372589,
        0.059665314853191376,
        0.12264301627874374,
        0.0643431544303894,
        0.1322939693927765,
        0.06914170831441879,
        0.140121191740036,
        0.07034189999103546,
        0.1246064156293869,
        0.032143592834472656,
    ],
    [
        -0.03650430962443352,
        -0.01329467911273241,
        -0.03758993744850159,
        -0.013701463118195534,
        -0.03877450153231621,
        -0.01414638850837946,
        -0.0400734581053257,
        -0.014635587111115456,
        -0.04150574654340744,
        -0.015176607295870781,
        -0.04309479519724846,
        -0.015778835862874985,
        -0.044869907200336456,
        -0.01645408198237419,
        -0.046868156641721725,
        -0.0172173660248518,
        -0.04913695529103279,
        -0.018087999895215034,
        -0.05173755809664726,
        -0.019091039896011353,
        -0.054749730974435806,
        -0.020259199663996696,
        -0.058277834206819534,
        -0.021635418757796288,
        -0.062460191547870636,
        -0.023278361186385155,
        -0.06750431656837463,
        -0.025298628956079483,
        -0.07403559237718582,
        -0.028323039412498474,
        -0.08901131898164749,
        -0.04522553086280823,
    ],
];

/// One standard normal from 16 random bits by the inverse CDF: bit 15 is the
/// sign, `t` = bits 0..15 gives the two-sided tail probability
/// `q = (2t + 1)/2^16` (all 2^15 levels equally likely) and `|z| = Φ⁻¹(1 −
/// q/2)`. `n = 2t + 1 = 2^E·m` (exact in f32); a cubic in `m` per half-octave
/// (`2E + h`, `h` the top mantissa bit; [`ICDF_COEF`]) gives `|z|` within
/// 3e-5 of scipy's `norm.isf` for every level. `|z| ≤ 4.33` (the tail
/// beyond, probability 1.5e-5, is folded into the last level); the 2^-16
/// resolution in probability is far below any ADC step it feeds. No log,
/// square root or divide: with the 32-entry coefficient tables in register
/// pairs (`vpermt2ps`) this is 18 vector operations per 16 normals.
/// Horner steps are fused multiply-adds (correctly rounded whether done by
/// the FMA unit or by libm's `fmaf`), everything else IEEE-exact, so SIMD and
/// scalar agree bitwise.
#[inline(always)]
pub fn normal_from_bits16(h: u32) -> f32 {
    let n = (((h & 0x7FFF) << 1) | 1) as f32;
    let bits = n.to_bits();
    // (biased exponent, top mantissa bit) − (127, 0): the half-octave 2E + h.
    let j = ((bits >> 22) - 254) as usize & 31;
    let x = f32::from_bits((bits & 0x003F_FFFF) | 0x3F80_0000) - 1.25;
    let c = &ICDF_COEF;
    let mut z = c[3][j];
    z = z.mul_add(x, c[2][j]);
    z = z.mul_add(x, c[1][j]);
    z = z.mul_add(x, c[0][j]);
    f32::from_bits(z.to_bits() ^ ((h >> 15 & 1) << 31))
}

/// Two normals from one 32-bit word: [`normal_from_bits16`] of the high and
/// of the low half.
#[inline(always)]
pub fn normal_pair16(w: u32) -> (f32, f32) {
    (normal_from_bits16(w >> 16), normal_from_bits16(w & 0xFFFF))
}

/// [`normal_from_bits16`] on the high (`HIGH`) or low 16-bit halves of 16
/// words, each 32-entry coefficient table held in a register pair and indexed
/// by `vpermt2ps`; bit selections by `vpternlogd` (18 operations per 16
/// normals).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn normals_from_bits16_avx512<const HIGH: bool>(
    w: std::arch::x86_64::__m512i,
    c: &[[std::arch::x86_64::__m512; 2]; 4],
) -> std::arch::x86_64::__m512 {
    use std::arch::x86_64::*;
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

/// Normal `index` of `stream` under `seed` from [`normal_pair16`] (the values
/// of [`fill_normals16`]): element `i` is the high (even `l`) or low (odd `l`)
/// half of word `l / 2` of block `16·(i div 128) + i mod 16`, `l = (i mod 128) / 16`.
#[inline]
pub fn normal16(seed: u64, stream: u64, index: u64) -> f32 {
    let block_index = (index / 128) * 16 + index % 16;
    let l = (index % 128) / 16;
    let (hi, lo) = normal_pair16(block(seed, stream, block_index)[(l / 2) as usize]);
    if l.is_multiple_of(2) {
        hi
    } else {
        lo
    }
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
/// `vpternlogq`; round keys are broadcast from memory (load ports, not ALU
/// ports). Returns the four words of the 16 blocks as 16-lane u32 vectors
/// (one `vpermt2d` per word). The integers are those of [`philox4x32`].
#[cfg(target_arch = "x86_64")]
#[allow(clippy::needless_range_loop)]
#[inline(always)]
unsafe fn philox_words_avx512(
    seed: u64,
    stream: u64,
    first_block: u64,
) -> [std::arch::x86_64::__m512i; 4] {
    use std::arch::x86_64::*;
    let mut keys = [[0i64; 2]; 10];
    let mut k = [seed as u32, (seed >> 32) as u32];
    for key in keys.iter_mut() {
        *key = [k[0] as i64, k[1] as i64];
        k = [k[0].wrapping_add(W0), k[1].wrapping_add(W1)];
    }
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

/// [`philox_words_avx512`] stored word-major (`c[w][j]`).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn philox_batch_avx512(
    seed: u64,
    stream: u64,
    first_block: u64,
) -> [[u32; BATCH_BLOCKS]; 4] {
    use std::arch::x86_64::*;
    let words = philox_words_avx512(seed, stream, first_block);
    let mut out = [[0u32; BATCH_BLOCKS]; 4];
    for (dst, v) in out.iter_mut().zip(words) {
        _mm512_storeu_si512(dst.as_mut_ptr() as *mut __m512i, v);
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

/// [`normal_pair16`] of 16 blocks' 64 words into 128 normals (lane-major).
#[allow(clippy::needless_range_loop)]
#[inline(always)]
fn normals16_batch<const AVX512: bool>(seed: u64, stream: u64, first_block: u64, out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        if AVX512 {
            use std::arch::x86_64::*;
            assert!(out.len() >= 8 * BATCH_BLOCKS);
            // SAFETY: AVX512 is set only inside functions compiled for and
            // dispatched to AVX-512F CPUs; `out` holds 128 floats.
            unsafe {
                // A loop, not `map` with a closure: closures do not inherit
                // the caller's target features.
                let mut coef = [[_mm512_setzero_ps(); 2]; 4];
                for (k, pair) in coef.iter_mut().enumerate() {
                    pair[0] = _mm512_loadu_ps(ICDF_COEF[k].as_ptr());
                    pair[1] = _mm512_loadu_ps(ICDF_COEF[k].as_ptr().add(16));
                }
                let all = philox_words_avx512(seed, stream, first_block);
                for (w, &words) in all.iter().enumerate() {
                    let hi = normals_from_bits16_avx512::<true>(words, &coef);
                    let lo = normals_from_bits16_avx512::<false>(words, &coef);
                    _mm512_storeu_ps(out.as_mut_ptr().add(2 * w * BATCH_BLOCKS), hi);
                    _mm512_storeu_ps(out.as_mut_ptr().add((2 * w + 1) * BATCH_BLOCKS), lo);
                }
            }
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
    /// Normals per batch.
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
        normals_batch::<AVX512>(seed, stream, first_block, out)
    }
}

/// [`normal_pair16`] words: 128 normals per batch.
struct Words16;
impl NormalBatch for Words16 {
    const SIZE: usize = 8 * BATCH_BLOCKS;
    #[inline(always)]
    fn run<const AVX512: bool>(seed: u64, stream: u64, first_block: u64, out: &mut [f32]) {
        normals16_batch::<AVX512>(seed, stream, first_block, out)
    }
}

/// Fills `out` with elements `start..` of the stream of `B` batches. (A trait
/// rather than a closure: closures do not inherit the caller's target
/// features, and the intrinsics must inline into the AVX-512 function.)
#[inline(always)]
fn fill_batched<B: NormalBatch, const AVX512: bool>(
    seed: u64,
    stream: u64,
    start: u64,
    out: &mut [f32],
) {
    let size = B::SIZE as u64;
    let end = start + out.len() as u64;
    let mut group = start / size;
    let mut scratch = [0f32; 8 * BATCH_BLOCKS];
    while group * size < end {
        let g0 = group * size;
        let lo = start.max(g0);
        let hi = end.min(g0 + size);
        let dst = &mut out[(lo - start) as usize..(hi - start) as usize];
        let first_block = group * BATCH_BLOCKS as u64;
        if lo == g0 && hi == g0 + size {
            B::run::<AVX512>(seed, stream, first_block, dst);
        } else {
            B::run::<AVX512>(seed, stream, first_block, &mut scratch);
            dst.copy_from_slice(&scratch[(lo - g0) as usize..(hi - g0) as usize]);
        }
        group += 1;
    }
}

#[inline(always)]
fn fill_normals_body<const AVX512: bool>(seed: u64, stream: u64, start: u64, out: &mut [f32]) {
    fill_batched::<Pairs24, AVX512>(seed, stream, start, out)
}

#[inline(always)]
fn fill_normals16_body<const AVX512: bool>(seed: u64, stream: u64, start: u64, out: &mut [f32]) {
    fill_batched::<Words16, AVX512>(seed, stream, start, out)
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
                #[target_feature(enable = "avx512f,avx512dq,avx512vl")]
                unsafe fn wide(seed: u64, stream: u64, start: u64, out: &mut [f32]) {
                    $body::<true>(seed, stream, start, out)
                }
                #[target_feature(enable = "avx2,fma")]
                unsafe fn mid(seed: u64, stream: u64, start: u64, out: &mut [f32]) {
                    $body::<false>(seed, stream, start, out)
                }
                if std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512dq")
                    && std::arch::is_x86_feature_detected!("avx512vl")
                {
                    // SAFETY: the CPU has the features.
                    return unsafe { wide(seed, stream, start, out) };
                }
                if std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                {
                    // SAFETY: the CPU has the features.
                    return unsafe { mid(seed, stream, start, out) };
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
    /// (the values of [`normal`], 64 at a time).
    fill_normals,
    fill_normals_portable,
    fill_normals_body
);

dispatched_filler!(
    /// Fills `out` with normals `start, start + 1, ..` of `stream` under `seed`
    /// from [`normal_pair16`] (the values of [`normal16`], 128 at a time).
    fill_normals16,
    fill_normals16_portable,
    fill_normals16_body
);

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

    type Filler = fn(u64, u64, u64, &mut [f32]);

    /// `fill` and `portable` agree bitwise with `pointwise` for every start
    /// and length given.
    fn check_fill(
        fill: Filler,
        portable: Filler,
        pointwise: fn(u64, u64, u64) -> f32,
        starts: &[u64],
        lens: &[usize],
    ) {
        for &start in starts {
            for &len in lens {
                let mut v = vec![0.0f32; len];
                let mut w = vec![0.0f32; len];
                fill(7, 3, start, &mut v);
                portable(7, 3, start, &mut w);
                for (i, x) in v.iter().enumerate() {
                    assert_eq!(x.to_bits(), pointwise(7, 3, start + i as u64).to_bits());
                    assert_eq!(x.to_bits(), w[i].to_bits());
                }
            }
        }
    }

    #[test]
    fn fill_matches_pointwise_for_any_offset_and_isa() {
        let starts: Vec<u64> = (0..9).collect();
        let pointwise = |seed, stream, i| normal(seed, stream, i) as f32;
        check_fill(
            fill_normals,
            fill_normals_portable,
            pointwise,
            &starts,
            &[13, 64, 200],
        );
    }

    #[test]
    fn fill16_matches_pointwise_for_any_offset_and_isa() {
        let starts = [0u64, 1, 5, 127, 128, 250];
        check_fill(
            fill_normals16,
            fill_normals16_portable,
            normal16,
            &starts,
            &[13, 128, 300],
        );
    }

    #[test]
    fn inverse_cdf16_matches_the_exact_quantiles() {
        // Reference quantiles Φ⁻¹(1 − q/2) by bisection on erfc (libm-free:
        // Abramowitz–Stegun-free, exact to 1e-12 via a continued fraction is
        // overkill; the series of erfc below converges for every |z| ≤ 4.4).
        fn tail(z: f64) -> f64 {
            // P(|Z| > z) = erfc(z/√2) by the Taylor series of erf (|z| ≤ 4.4).
            let x = z / std::f64::consts::SQRT_2;
            let (mut term, mut sum, mut k) = (x, x, 0.0f64);
            while term.abs() > 1e-17 * sum.abs().max(1e-300) {
                k += 1.0;
                term *= -x * x / k;
                sum += term / (2.0 * k + 1.0);
            }
            1.0 - 2.0 / std::f64::consts::PI.sqrt() * sum
        }
        let mut worst = 0f64;
        for t in 0..32_768u32 {
            let q = (2 * t + 1) as f64 / 65_536.0;
            let (mut lo, mut hi) = (0.0f64, 5.0f64);
            for _ in 0..60 {
                let mid = 0.5 * (lo + hi);
                if tail(mid) > q {
                    lo = mid
                } else {
                    hi = mid
                }
            }
            let z = normal_from_bits16(t) as f64;
            let zn = normal_from_bits16(t | 0x8000) as f64;
            assert_eq!(zn, -z);
            worst = worst.max((z - lo).abs());
        }
        assert!(worst < 3e-5, "worst quantile error {worst}");
    }

    #[test]
    fn normals16_have_unit_moments() {
        // Standard errors as for `normals_have_unit_moments`; the 4.33 cut
        // changes the variance by -2e-4 and the kurtosis by -6e-3.
        let v = check_unit_moments(fill_normals16);
        let n = v.len();
        // Tail: P(|z| > 3) = 0.0027 (4.5 standard errors at 0.0027 ± 0.00008).
        let tail = v.iter().filter(|x| x.abs() > 3.0).count() as f64 / n as f64;
        assert!((tail - 0.0027).abs() < 0.0004, "tail {tail}");
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
        check_unit_moments(fill_normals);
    }

    /// 400,000 draws of `fill` have mean 0, variance 1 and kurtosis 3 within
    /// about 5 standard errors (mean 1/sqrt(n) = 0.0016, variance sqrt(2/n) =
    /// 0.0022, kurtosis sqrt(24/n) = 0.008); returns the draws.
    fn check_unit_moments(fill: Filler) -> Vec<f64> {
        let n = 400_000;
        let mut v32 = vec![0.0f32; n];
        fill(42, 0, 0, &mut v32);
        let v: Vec<f64> = v32.iter().map(|&x| x as f64).collect();
        let mean = v.iter().sum::<f64>() / n as f64;
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        let kurt = v.iter().map(|x| (x - mean).powi(4)).sum::<f64>() / n as f64 / (var * var);
        assert!(mean.abs() < 0.008, "mean {mean}");
        assert!((var - 1.0).abs() < 0.011, "var {var}");
        assert!((kurt - 3.0).abs() < 0.05, "kurtosis {kurt}");
        v
    }

    #[test]
    fn streams_and_seeds_differ() {
        assert_ne!(normal(1, 0, 0), normal(2, 0, 0));
        assert_ne!(normal(1, 0, 0), normal(1, 1, 0));
        assert_ne!(derive_seed(1, 1), derive_seed(1, 2));
    }
}
