//! The scalar normal samplers, which define the values: Box–Muller on 24 + 22
//! bits of a word pair ([`box_muller`], [`normals4`], [`normal`]) for the
//! device states, and the 16-bit inverse CDF ([`normal_from_bits16`],
//! [`normal_pair16`], [`normal16`]) for the per-MVM noise. The batch fillers
//! in `fill.rs` must reproduce these bit for bit, so everything here is
//! IEEE-exact (or a correctly rounded fused multiply-add).

use super::icdf_table::ICDF_COEF;
use super::philox::block;

/// The four normals of one block (lane order in the [module docs](super)).
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

/// One standard normal from 16 random bits by the inverse CDF: bit 15 is the
/// sign, `t` = bits 0..15 gives the two-sided tail probability
/// `q = (2t + 1)/2^16` (all 2^15 levels equally likely) and `|z| = Φ⁻¹(1 −
/// q/2)`. `n = 2t + 1 = 2^E·m` (exact in f32); a cubic in `m` per half-octave
/// (`2E + h`, `h` the top mantissa bit; table `ICDF_COEF`) gives `|z|` within
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

/// Normal `index` of `stream` under `seed` from [`normal_pair16`] (the values
/// of [`fill_normals16`](super::fill_normals16)): element `i` is the high
/// (even `l`) or low (odd `l`) half of word `l / 2` of block
/// `16·(i div 128) + i mod 16`, `l = (i mod 128) / 16`.
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
    f64::from(normals4(seed, stream, block_index)[((index % 64) / 16) as usize])
}
