//! Exact column sums wider than the i32 kernel, and the plan of every integer
//! sum one read needs.
//!
//! The kernels of `mvm_kernels` multiply i16 codes by i16 inputs and
//! accumulate in i32, which is exact only while `Σ_j |g_j|·|u_j| < 2^31`. A
//! sum whose inputs `u` are wider (squared input codes for the PCM read noise,
//! position-weighted codes for IR drop, 16-bit inputs on large tiles) is split
//! into base-`2^w` digit vectors, `u = Σ_d u_d · 2^(w·d)` with every digit
//! carrying the sign of `u` and `|u_d| < 2^w`, the width `w` chosen so that one
//! kernel pass cannot overflow; the passes are recombined exactly in i64/i128.
//! The digit vectors are fed to the kernel as extra "samples", so one call
//! covers all of them and the weights stay register-blocked.
//!
//! The per-MVM noise terms are functions of sums over the tile,
//! `S = Σ|g|·c²` (PCM read noise) and `A = Σ|g|·|c|`, `H = Σ g·c·j(2n−j)` (IR
//! drop). They are taken on a coarser conductance grid, `(|g| + h) >> k` and
//! `(g + h) >> k` (`h = 2^k / 2`), with the smallest `k` (at most
//! `conductance_bits − 8`) for which `S` fits one i32 pass: for the HERMES
//! preset (14-bit codes, 8-bit inputs, 256 columns) `k = 5`, i.e. the noise σ
//! is computed from conductances at 2^-9 of `g_max` — a relative error of σ
//! far below 0.1 %, against one kernel pass instead of two. The noise-free sum
//! `Σ g·c` is always exact at full resolution.

use super::params::CrossbarParams;

/// Signed base-`2^width` digits of integers up to some magnitude.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Digits {
    /// Bits per digit (1..=15: a digit fits i16).
    pub width: u32,
    /// Digits per value (at least 1).
    pub count: usize,
}

impl Digits {
    /// The digits for values `|u| ≤ max_value` summed against codes `|g| ≤
    /// max_code` over `cols` inputs: the widest digit for which one kernel
    /// pass, `Σ_j |g_j|·|u_{j,d}| ≤ cols·max_code·(2^w − 1)`, stays below 2^31.
    pub fn plan(max_value: u64, max_code: u64, cols: u64) -> Digits {
        let limit = i32::MAX as u64 / (cols * max_code).max(1);
        // floor(log2(limit + 1)): the largest w with 2^w − 1 ≤ limit.
        let width = (limit + 1).ilog2().clamp(1, 15);
        let bits = 64 - max_value.leading_zeros();
        Digits {
            width,
            count: (bits.div_ceil(width) as usize).max(1),
        }
    }

    /// Digit `d` of `v`: bits `width·d ..` of `|v|`, with the sign of `v`.
    #[inline(always)]
    pub fn digit(self, v: i64, d: usize) -> i16 {
        let mask = (1u64 << self.width) - 1;
        let digit = ((v.unsigned_abs() >> (self.width as usize * d)) & mask) as i16;
        if v < 0 {
            -digit
        } else {
            digit
        }
    }

    /// `Σ_d acc[d·stride + r] · 2^(width·d)` for the rows `r` of `out`.
    #[inline(always)]
    pub fn combine(self, acc: &[i32], stride: usize, out: &mut [i64]) {
        for (r, o) in out.iter_mut().enumerate() {
            *o = i64::from(acc[r]);
        }
        for d in 1..self.count {
            let shift = self.width as usize * d;
            let part = &acc[d * stride..d * stride + out.len()];
            for (o, &a) in out.iter_mut().zip(part) {
                *o += i64::from(a) << shift;
            }
        }
    }

    /// [`Digits::combine`] in i128, for sums that can exceed i64.
    #[inline(always)]
    pub fn combine_wide(self, acc: &[i32], stride: usize, r: usize) -> i128 {
        (0..self.count)
            .map(|d| i128::from(acc[d * stride + r]) << (self.width as usize * d))
            .sum()
    }
}

/// Every integer sum of one read, fixed per matrix by its parameters.
#[derive(Clone, Copy, Debug)]
pub(super) struct SumPlan {
    /// The input codes `c` against the exact cell codes (one digit unless
    /// the exact sum can overflow i32: large tiles with wide inputs).
    pub main: Digits,
    /// Shift `k` of the coarse grid of the noise terms.
    pub shift: u32,
    /// `c²` against `(|g| + h) >> k` (PCM read noise; `None` when off).
    pub squares: Option<Digits>,
    /// `|c|` against `(|g| + h) >> k` (IR drop; `None` when off).
    pub magnitudes: Option<Digits>,
    /// `c·j(2n−j)` against `(g + h) >> k` (IR drop; `None` when off).
    pub shaped: Option<Digits>,
    /// Whether that sum can exceed i64 (16-bit inputs on 4096-column tiles):
    /// it is then recombined in i128.
    pub shaped_wide: bool,
}

impl SumPlan {
    pub fn new(p: &CrossbarParams) -> SumPlan {
        let cols = p.tile_cols as u64;
        let m = p.input_max_code() as u64;
        let cell = p.max_cell_code() as u64;
        let cap = p.conductance_bits.saturating_sub(8);
        let coarse = |k: u32| (cell + ((1u64 << k) >> 1)) >> k;
        let mut shift = 0;
        if p.w_noise > 0.0 || p.ir_drop > 0.0 {
            while shift < cap && cols * coarse(shift) * m * m > i32::MAX as u64 {
                shift += 1;
            }
        }
        let q = coarse(shift);
        let max_weight = cols * cols - 1; // max_j j(2n − j) = n² − 1 for n ≤ tile_cols
        SumPlan {
            main: Digits::plan(m, cell, cols),
            shift,
            squares: (p.w_noise > 0.0).then(|| Digits::plan(m * m, q, cols)),
            magnitudes: (p.ir_drop > 0.0).then(|| Digits::plan(m, q, cols)),
            shaped: (p.ir_drop > 0.0).then(|| Digits::plan(m * max_weight, q, cols)),
            shaped_wide: u128::from(cols) * u128::from(q) * u128::from(m) * u128::from(max_weight)
                > i64::MAX as u128,
        }
    }

    /// Digit vectors per sample against the coarse |g| grid.
    pub fn abs_vectors(&self) -> usize {
        self.squares.map_or(0, |d| d.count) + self.magnitudes.map_or(0, |d| d.count)
    }

    /// Digit vectors per sample against the coarse signed grid.
    pub fn signed_vectors(&self) -> usize {
        self.shaped.map_or(0, |d| d.count)
    }

    /// Coarse |g| code.
    #[inline(always)]
    pub fn coarse_abs(&self, g: i32) -> i16 {
        ((g.abs() + ((1 << self.shift) >> 1)) >> self.shift) as i16
    }

    /// Coarse signed code (rounding half up, as an arithmetic shift).
    #[inline(always)]
    pub fn coarse_signed(&self, g: i32) -> i16 {
        ((g + ((1 << self.shift) >> 1)) >> self.shift) as i16
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_round_trip_and_never_overflow_a_pass() {
        for (max_value, max_code, cols) in [
            (127u64, 16384u64, 256u64),
            (16129, 512, 256),
            (127 * 65535, 512, 256),
            (32767, 24576, 4096),
            (32767u64 * 32767, 24576, 4096),
            (1, 1, 1),
        ] {
            let d = Digits::plan(max_value, max_code, cols);
            assert!(i32::try_from(cols * max_code * ((1 << d.width) - 1)).is_ok());
            assert!((d.width as usize * d.count) as u32 >= 64 - max_value.leading_zeros());
            for v in [
                0i64,
                1,
                -1,
                max_value as i64,
                -(max_value as i64),
                12345 % (max_value as i64 + 1),
            ] {
                let out: Vec<i16> = (0..d.count).map(|k| d.digit(v, k)).collect();
                let acc: Vec<i32> = out.iter().map(|&x| i32::from(x)).collect();
                let mut back = [0i64];
                // One "row" per digit: stride 1.
                d.combine(&acc, 1, &mut back);
                assert_eq!(back[0], v, "{v} with {d:?}");
                assert_eq!(d.combine_wide(&acc, 1, 0), i128::from(v));
            }
        }
    }

    #[test]
    fn hermes_noise_terms_take_one_pass_on_a_5_bit_coarser_grid() {
        let p = CrossbarParams {
            ir_drop: 1.0,
            ..CrossbarParams::hermes()
        };
        let plan = SumPlan::new(&p);
        assert_eq!(plan.main.count, 1);
        assert_eq!(plan.shift, 5);
        assert_eq!(plan.squares.unwrap().count, 1);
        assert_eq!(plan.magnitudes.unwrap().count, 1);
        assert_eq!(plan.shaped.unwrap().count, 2);
    }
}
