//! Stages 4 to 7, one MVM: the input DAC, exact integer accumulation (the
//! kernels of `mvm_kernels`), per-MVM noise (output noise, PCM read noise,
//! IR drop), ADC, rescaling with drift compensation and affine correction,
//! and the parallel loop over blocks of samples.

use std::sync::atomic::{AtomicBool, Ordering};

use super::mapping::padded;
use super::sums::Digits;
use super::{mvm_kernels, rint, stream, AnalogMatrix};
use crate::error::{Error, Result};
use crate::hadamard::Float;
use crate::parallel;
use crate::rng;

/// `max |x|` (0 for an empty slice) of finite values, with eight independent
/// lanes so that it vectorises (max is exact, so the grouping cannot change it).
#[inline(always)]
fn abs_max<X: Float>(xs: &[X]) -> f64 {
    let mut lanes = [0.0f64; 8];
    let mut chunks = xs.chunks_exact(8);
    for chunk in &mut chunks {
        for (m, &v) in lanes.iter_mut().zip(chunk) {
            let a = v.to_f64().abs();
            *m = if a > *m { a } else { *m };
        }
    }
    for (m, &v) in lanes.iter_mut().zip(chunks.remainder()) {
        let a = v.to_f64().abs();
        *m = if a > *m { a } else { *m };
    }
    lanes.iter().fold(0.0, |a, &m| if m > a { m } else { a })
}

impl AnalogMatrix {
    /// The datapath for the `n` checked samples of `x` into `y`: blocks of
    /// [`SAMPLES_PER_TASK`] samples in parallel; the per-MVM noise of sample
    /// `i` is row `first_row + i` of the streams of `seed`. Fails only when an
    /// output overflows f64 (inputs near the float range).
    pub(super) fn forward_into<X: Float, Y: Float>(
        &self,
        x: &[X],
        n: usize,
        seed: u64,
        first_row: u64,
        y: &mut [Y],
    ) -> Result<()> {
        if self.tiles.is_empty() {
            // No inputs (in_dim = 0): every output is an empty sum. No outputs:
            // nothing to write.
            y.fill(Y::from_f64(0.0));
            return Ok(());
        }
        let keys = NoiseKeys::new(seed);
        let block = SAMPLES_PER_TASK;
        let overflow = AtomicBool::new(false);
        // Task bi: rows [s0, s0 + count) of y (no outputs: nothing to run).
        let y = &mut y[..n * self.out_dim];
        parallel::for_each_chunk_mut_populating(y, block * self.out_dim, |bi, out| {
            let s0 = bi * block;
            let count = out.len() / self.out_dim;
            let xs = &x[s0 * self.in_dim..(s0 + count) * self.in_dim];
            if !self.forward_block(xs, count, first_row + s0 as u64, keys, out) {
                overflow.store(true, Ordering::Relaxed);
            }
        });
        if overflow.into_inner() {
            return Err(Error::Data(
                "the simulated output overflows the float range: inputs this large (up to \
                 ~1e308 times the weights) cannot be represented; scale X down"
                    .into(),
            ));
        }
        Ok(())
    }

    /// The per-MVM noise terms of a pinned read, before the normals are
    /// applied (a test hook: the `NumPy` reference recomputes them).
    pub(super) fn record_read_terms(
        &self,
        x: &[f64],
        n: usize,
        seed: u64,
        first_row: u64,
    ) -> ReadTerms {
        let len = n * self.n_col_tiles * self.out_dim;
        let mut terms = ReadTerms {
            col_tiles: self.n_col_tiles,
            out_dim: self.out_dim,
            sigma: vec![0.0; len],
            ir_drop: vec![0.0; len],
            xi: vec![0.0; len],
        };
        if !self.tiles.is_empty() {
            let mut y = vec![0.0f64; n * self.out_dim];
            forward_block_body(
                self,
                x,
                n,
                first_row,
                NoiseKeys::new(seed),
                &mut y,
                Some(&mut terms),
            );
        }
        terms
    }

    /// Runs [`forward_block_body`] compiled for the best instruction set (the
    /// arithmetic is integer or IEEE-exact, so the bits do not depend on it).
    fn forward_block<X: Float, Y: Float>(
        &self,
        x: &[X],
        count: usize,
        first: u64,
        keys: NoiseKeys,
        out: &mut [Y],
    ) -> bool {
        #[cfg(target_arch = "x86_64")]
        match crate::cpu::level() {
            // SAFETY: the kernel needs AVX-512 F, BW, DQ and VL: the level.
            crate::cpu::Level::Avx512 | crate::cpu::Level::Avx512Vnni => {
                return unsafe { forward_block_avx512(self, x, count, first, keys, out) };
            }
            // SAFETY: the kernel needs AVX2 and FMA: the level.
            crate::cpu::Level::Avx2 => {
                return unsafe { forward_block_avx2(self, x, count, first, keys, out) };
            }
            crate::cpu::Level::Baseline => {}
        }
        forward_block_body(self, x, count, first, keys, out, None)
    }
}

/// The per-MVM noise terms of a read, per (sample, input tile, output), as
/// the datapath applies them (see [`AnalogMatrix::read_terms`]). With PCM read
/// noise or IR drop on, `v = acc·unit − ir_drop + f64(sigma·xi)` with `sigma =
/// sqrt(S·var_w + var_out)` in f32; otherwise the output noise `sigma·xi`
/// enters the per-output stage by a fused multiply-add (`sigma = σ_out`).
#[derive(Clone, Debug)]
pub struct ReadTerms {
    /// Input tiles (the middle dimension).
    pub col_tiles: usize,
    /// Outputs (the last dimension).
    pub out_dim: usize,
    /// σ of the per-MVM noise (normalised units).
    pub sigma: Vec<f64>,
    /// IR-drop correction subtracted from the column value (normalised units).
    pub ir_drop: Vec<f64>,
    /// The normals.
    pub xi: Vec<f64>,
}

/// An upper bound of |output| per unit of input scale, so that a read checks
/// its outputs for overflow only when inputs come near the float range: every
/// output is a sum over input tiles of `v · s_in · gain + offset` with `|v|`
/// at most `value_per_input` (the ADC's range, or without ADC the largest
/// column value `cols · max|ĝ|` plus 4.34 σ of the per-MVM noise — the
/// 16-bit sampler's largest normal is 4.33; IR drop without ADC: unbounded).
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct ReadBound {
    pub value_per_input: f64,
    pub gain: f64,
    pub offset: f64,
}

impl ReadBound {
    pub(super) fn new(m: &AnalogMatrix) -> ReadBound {
        let max_abs = |v: &[f64]| v.iter().fold(0.0f64, |a, &x| a.max(x.abs()));
        let p = &m.params;
        let full = p.full_code() as f64;
        let value_per_input = if p.output_bits > 0 {
            p.out_bound
        } else if p.ir_drop > 0.0 {
            f64::INFINITY
        } else {
            let cells =
                p.tile_cols as f64 * (p.max_cell_code() + (1 << m.plan.shift)) as f64 / full;
            let sigma = (p.w_noise * p.w_noise * cells + p.out_noise * p.out_noise).sqrt();
            (cells + 4.34 * sigma) * max_abs(&m.adc_gain) + max_abs(&m.adc_offset)
        };
        ReadBound {
            value_per_input,
            gain: max_abs(&m.gain),
            offset: max_abs(&m.affine_offset),
        }
    }
}

/// The seed of the per-MVM noise of one read (one normal per row, input
/// tile and output).
#[derive(Clone, Copy)]
struct NoiseKeys {
    noise: u64,
}

impl NoiseKeys {
    fn new(seed: u64) -> NoiseKeys {
        NoiseKeys {
            noise: rng::derive_seed(seed, stream::MVM_NOISE),
        }
    }
}

/// The per-output stage after accumulation, fused into one pass: output
/// noise, ADC, rescaling to weight units (with drift compensation), affine
/// correction, and the addition to the output's running sum. In formulas,
/// with `acc` the exact integer column sum, `z` the output-noise normal and
/// `g = w_max·compensation·a` (one factor per tile output):
///
/// - ADC: `code = clamp(rint(acc·(unit·to_code) + z·(σ·to_code)), ±k)`,
///   `v = code · (from_code·s_in) · g + b`;
/// - no ADC: `v = (acc·unit + z·σ) · s_in · g + b`;
///
/// each product of constants rounded once in f64 (the reference in
/// `tests/crossbar_reference.py` groups them the same way).
struct PostTerms<'a> {
    noise: &'a [f32],
    gain: &'a [f64],
    offset: &'a [f64],
    /// The ADC's residual gain and offset (codes), applied to the column
    /// value before rounding: `v·adc_gain + adc_offset`.
    adc_gain: &'a [f64],
    adc_offset: &'a [f64],
}

/// Per-sample constants of the per-output stage.
#[derive(Clone, Copy)]
struct PostConsts {
    /// Multiplies the column value: `unit·to_code` (ADC) or `unit`.
    acc_factor: f64,
    /// Multiplies the noise normal: `σ·to_code` (ADC) or `σ`.
    noise_factor: f64,
    /// ADC bound `k` (codes).
    k_adc: f64,
    /// `from_code·s_in` (ADC) or `s_in`.
    out_factor: f64,
}

impl PostTerms<'_> {
    /// `dst[i] (+)= v_i` (see the type docs): with `FRESH` the running sum
    /// starts at `0.0` (the first input tile written straight to the caller's
    /// output), otherwise it continues from `dst`.
    #[inline(always)]
    fn apply<const ADC: bool, const NOISE: bool, const FRESH: bool, D: Float>(
        &self,
        acc: impl Iterator<Item = f64>,
        dst: &mut [D],
        c: PostConsts,
    ) {
        let adc_mismatch = self.adc_gain.iter().zip(self.adc_offset);
        let terms = acc.zip(self.noise).zip(self.gain).zip(self.offset);
        for (d, ((((a, &z), &g), &b), (&ga, &ob))) in dst.iter_mut().zip(terms.zip(adc_mismatch)) {
            // One rounding for the noise term (fused multiply-add, correctly
            // rounded on every path). Without it (no output noise, or the
            // noise already in `a`) the result is a·acc_factor, which is what
            // the multiply-add with z = 0 gives (a·acc_factor is never −0).
            let mut v = if NOISE {
                f64::from(z).mul_add(c.noise_factor, a * c.acc_factor)
            } else {
                a * c.acc_factor
            };
            // The ADC's residual gain and offset (1 and 0 when off: then
            // this changes no bit, −0 becoming +0 only where `+ b` would).
            v = v * ga + ob;
            if ADC {
                v = rint(v).clamp(-c.k_adc, c.k_adc);
            }
            let v = v * c.out_factor * g + b;
            // v is never −0 (b is stored canonical, so x + b = −0 needs
            // x = −0 and b = −0), hence 0.0 + v == v for the first tile.
            *d = if FRESH {
                D::from_f64(v)
            } else {
                D::from_f64(d.to_f64() + v)
            };
        }
    }

    /// [`PostTerms::apply`] with the ADC and noise switches resolved.
    #[inline(always)]
    fn run<const FRESH: bool, D: Float>(
        &self,
        (adc, noise): (bool, bool),
        acc: impl Iterator<Item = f64>,
        dst: &mut [D],
        c: PostConsts,
    ) {
        match (adc, noise) {
            (true, true) => self.apply::<true, true, FRESH, D>(acc, dst, c),
            (true, false) => self.apply::<true, false, FRESH, D>(acc, dst, c),
            (false, true) => self.apply::<false, true, FRESH, D>(acc, dst, c),
            (false, false) => self.apply::<false, false, FRESH, D>(acc, dst, c),
        }
    }
}

/// Samples per parallel task of `matmul`.
const SAMPLES_PER_TASK: usize = 32;

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl")]
unsafe fn forward_block_avx512<X: Float, Y: Float>(
    m: &AnalogMatrix,
    x: &[X],
    count: usize,
    first: u64,
    keys: NoiseKeys,
    out: &mut [Y],
) -> bool {
    forward_block_body(m, x, count, first, keys, out, None)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn forward_block_avx2<X: Float, Y: Float>(
    m: &AnalogMatrix,
    x: &[X],
    count: usize,
    first: u64,
    keys: NoiseKeys,
    out: &mut [Y],
) -> bool {
    forward_block_body(m, x, count, first, keys, out, None)
}

/// An integer-valued `q` with `|q| < 2^31` as i32, by the magic-number
/// conversion: `q + 1.5·2^52` holds `q` in the low bits of its mantissa (two's
/// complement). Unlike `as i32` (whose NaN/saturation checks keep the loop
/// scalar) it vectorises, and unlike `to_int_unchecked` it has no undefined
/// case: any input, even NaN, gives some i32.
#[inline(always)]
pub(super) fn exact_int(q: f64) -> i32 {
    const MAGIC: f64 = 6_755_399_441_055_744.0; // 1.5 · 2^52
    (q + MAGIC).to_bits() as i32
}

/// Writes the digits of `value(j)` for `j < cols` as `digits.count` vectors of
/// `xl` i16 (an odd tile's pad element stays 0).
#[inline(always)]
fn write_digits(
    digits: Digits,
    cols: usize,
    xl: usize,
    dst: &mut [i16],
    value: impl Fn(usize) -> i64,
) {
    if digits.count == 1 {
        for (j, d) in dst[..cols].iter_mut().enumerate() {
            // One digit: |value| < 2^width ≤ 2^15.
            *d = value(j) as i16;
        }
    } else {
        // One pass per digit: each vectorises.
        for d in 0..digits.count {
            for (j, out) in dst[d * xl..d * xl + cols].iter_mut().enumerate() {
                *out = digits.digit(value(j), d);
            }
        }
    }
    for d in 0..digits.count {
        dst[d * xl + cols..(d + 1) * xl].fill(0);
    }
}

/// The datapath for `count` samples (rows of `x`; sample `i` reads row
/// `first + i` of the noise streams), written so that the inner loops
/// vectorise: input-tile outer loop (the DAC and the digit vectors are formed
/// once per sample and input tile), output tiles inner; each output receives
/// its tile partial sums in increasing input-tile order. Returns whether every
/// output is finite. `record` (the test hook) receives the noise terms.
#[inline(always)]
fn forward_block_body<X: Float, Y: Float>(
    m: &AnalogMatrix,
    x: &[X],
    count: usize,
    first: u64,
    keys: NoiseKeys,
    out: &mut [Y],
    mut record: Option<&mut ReadTerms>,
) -> bool {
    let p = &m.params;
    let plan = m.plan;
    let mc = p.input_max_code();
    let (mf, ff) = (mc as f64, p.full_code() as f64);
    let unit = 1.0 / (mf * ff);
    let adc = p.output_bits > 0;
    let k_adc = if adc {
        ((1i64 << (p.output_bits - 1)) - 1).max(1) as f64
    } else {
        1.0
    };
    let (to_code, from_code) = (k_adc / p.out_bound, p.out_bound / k_adc);
    let sigma_out = p.out_noise;
    let extras = p.w_noise > 0.0 || p.ir_drop > 0.0;
    // Sums wider than one i32 pass (see `sums`) are recombined in i64.
    let main_wide = plan.main.count > 1;
    let (km, ka, ks) = (plan.main.count, plan.abs_vectors(), plan.signed_vectors());
    let n_sq = plan.squares.map_or(0, |d| d.count);
    // The coarse grid step of the noise terms in normalised conductance units.
    let step = (1u64 << plan.shift) as f64 / ff;
    // Variances of the combined per-MVM noise, normalised units squared.
    let var_w = (p.w_noise * p.w_noise * (step / (mf * mf))) as f32;
    let var_out = (sigma_out * sigma_out) as f32;
    let max_rows = padded(p.tile_rows);
    // One atomic load (the cached `cpu::level`), no LazyLock: fork-safe.
    let kernel = mvm_kernels::best_multi();
    let tc = p.tile_cols;
    let xl_max = tc.next_multiple_of(2);
    let (n_ct, in_dim, out_dim) = (m.n_col_tiles, m.in_dim, m.out_dim);
    // Each (input tile, output) owns an index of a row's noise streams;
    // padded to 128 so that 256-row tiles stay aligned to the sampler's batches.
    let out_pad = out_dim.next_multiple_of(128) as u64;
    // Per block of samples: DAC codes, digit vectors, integer sums, and
    // (several input tiles) the running f64 output sums — in this thread's
    // reused scratch (every element read below is written first in this block).
    let mut guard = SCRATCH.with(std::cell::Cell::take);
    let Scratch {
        s_ins,
        codes_in,
        x_main,
        x_abs,
        x_signed,
        acc_main,
        acc_abs,
        acc_signed,
        zeros,
        wide,
        acc,
        sigma,
        ir,
        noise,
        xi,
        o_all,
    } = &mut guard;
    s_ins.resize(count, 0.0);
    codes_in.resize(count * tc, 0);
    x_main.resize(count * km * xl_max, 0);
    x_abs.resize(count * ka * xl_max, 0);
    x_signed.resize(count * ks * xl_max, 0);
    acc_main.resize(count * km * max_rows, 0);
    acc_abs.resize(count * ka * max_rows, 0);
    acc_signed.resize(count * ks * max_rows, 0);
    wide.resize(max_rows, 0);
    zeros.clear();
    zeros.resize(max_rows, 0);
    acc.resize(max_rows, 0.0);
    sigma.resize(max_rows, 0.0);
    ir.resize(max_rows, 0.0);
    noise.resize(max_rows, 0.0);
    xi.resize(max_rows, 0.0);
    if sigma_out == 0.0 || extras {
        // No output noise, or all of it drawn in the extras path: the
        // per-output stage adds 0·0.
        noise.fill(0.0);
    }
    ir.fill(0.0);
    // An upper bound of |output| over the block (see `ReadBound`).
    let mut bound = 0.0f64;
    o_all.clear();
    if n_ct > 1 {
        o_all.resize(count * out_dim, 0.0);
    }
    for ct in 0..n_ct {
        let t0 = &m.tiles[ct];
        let (cols, xl) = (t0.cols, t0.cols.next_multiple_of(2));
        let n_f = cols as f64;
        let a_factor = (n_f / p.ir_drop_g_ratio) * (step / mf);
        let h_factor = (step / mf) / (n_f * n_f);
        // Input DAC of every sample of the block for this input tile, and the
        // digit vectors of every sum.
        for s in 0..count {
            let xs = &x[s * in_dim + t0.col0..s * in_dim + t0.col0 + cols];
            let s_in = match p.input_range {
                Some(r) => r,
                None => abs_max(xs),
            };
            // A scale whose reciprocal overflows counts as an all-zero input.
            let s_in = if (mf / s_in).is_finite() { s_in } else { 0.0 };
            s_ins[s] = s_in;
            let ci = &mut codes_in[s * tc..s * tc + cols];
            if s_in > 0.0 {
                let r = mf / s_in;
                for (c, &v) in ci.iter_mut().zip(xs) {
                    *c = exact_int(rint(v.to_f64() * r).clamp(-mf, mf));
                }
            } else {
                ci.fill(0);
            }
            let ci = &codes_in[s * tc..s * tc + cols];
            let code = |j: usize| i64::from(ci[j]);
            write_digits(plan.main, cols, xl, &mut x_main[s * km * xl..], code);
            if let Some(sq) = plan.squares {
                write_digits(sq, cols, xl, &mut x_abs[s * ka * xl..], |j| {
                    code(j) * code(j)
                });
            }
            if let Some(mg) = plan.magnitudes {
                let dst = &mut x_abs[(s * ka + n_sq) * xl..];
                write_digits(mg, cols, xl, dst, |j| code(j).abs());
            }
            if let Some(sh) = plan.shaped {
                // Position weight of IR drop, 1 − (1 − j/n)² = j(2n − j)/n².
                let weight = |j: usize| (j * (2 * cols - j)) as i64;
                let dst = &mut x_signed[s * ks * xl..];
                write_digits(sh, cols, xl, dst, |j| code(j) * weight(j));
            }
        }
        let s_max = s_ins[..count].iter().fold(0.0f64, |a, &v| a.max(v));
        bound += s_max * m.read_bound.value_per_input * m.read_bound.gain + m.read_bound.offset;
        for t in m.tiles.iter().skip(ct).step_by(n_ct) {
            let rows = t.rows;
            let rp = padded(rows);
            let len = rp * xl;
            // One kernel pass: `vectors` digit vectors per sample against one
            // code layout (none when those terms are off).
            let pass = |codes: &[i16], x: &[i16], vectors: usize, acc: &mut [i32]| {
                if vectors > 0 {
                    let x = &x[..count * vectors * xl];
                    // SAFETY: `kernel` comes from a CPU feature check; the sums
                    // cannot overflow i32 (the digit widths of `SumPlan`).
                    unsafe {
                        kernel(
                            &codes[t.cm0..t.cm0 + len],
                            rp,
                            x,
                            xl,
                            count * vectors,
                            acc,
                            max_rows,
                        );
                    };
                }
            };
            pass(&m.codes_cm, x_main, km, acc_main);
            pass(&m.abs_cm, x_abs, ka, acc_abs);
            pass(&m.signed_cm, x_signed, ks, acc_signed);
            let index = ct as u64 * out_pad + t.row0 as u64;
            // With one digit per sum (two for IR drop's position-weighted
            // sum: the HERMES presets), the column values of the read-noise
            // path are formed inside the per-output pass (one pass over the
            // outputs); the general path, which the test hook records, gives
            // the same bits.
            let fused = extras
                && record.is_none()
                && !main_wide
                && plan.squares.is_none_or(|d| d.count == 1)
                && plan.magnitudes.is_none_or(|d| d.count == 1)
                && plan.shaped.is_none_or(|d| d.count <= 2)
                && !plan.shaped_wide;
            for s in 0..count {
                let row = first + s as u64;
                let sums = &acc_main[s * km * max_rows..(s + 1) * km * max_rows];
                if main_wide {
                    plan.main.combine(sums, max_rows, &mut wide[..rows]);
                    let scale = if extras { unit } else { 1.0 };
                    for (a, &v) in acc[..rows].iter_mut().zip(&wide[..rows]) {
                        // Exact: |sum| < 2^53 for every valid configuration.
                        *a = v as f64 * scale;
                    }
                } else if extras && !fused {
                    for (a, &v) in acc[..rows].iter_mut().zip(sums) {
                        *a = f64::from(v) * unit;
                    }
                }
                if extras {
                    if let (Some(mg), Some(sh), false) = (plan.magnitudes, plan.shaped, fused) {
                        let abs_sums = &acc_abs[(s * ka + n_sq) * max_rows..];
                        mg.combine(abs_sums, max_rows, &mut wide[..rows]);
                        for (f, &v) in ir[..rows].iter_mut().zip(&wide[..rows]) {
                            *f = v as f64 * a_factor;
                        }
                        let signed_sums = &acc_signed[s * ks * max_rows..];
                        if plan.shaped_wide {
                            for (r, f) in ir[..rows].iter_mut().enumerate() {
                                // i128 → f64 rounds once, like the i64 path.
                                let h = sh.combine_wide(signed_sums, max_rows, r) as f64;
                                let a = *f;
                                let cfac = a * (a * (0.05 * a - 0.2) + 0.5);
                                *f = (p.ir_drop * cfac) * (h * h_factor);
                            }
                        } else {
                            sh.combine(signed_sums, max_rows, &mut wide[..rows]);
                            for (f, &h) in ir[..rows].iter_mut().zip(&wide[..rows]) {
                                let a = *f;
                                let cfac = a * (a * (0.05 * a - 0.2) + 0.5);
                                *f = (p.ir_drop * cfac) * (h as f64 * h_factor);
                            }
                        }
                        for (v, &f) in acc[..rows].iter_mut().zip(&ir[..rows]) {
                            *v -= f;
                        }
                    }
                    // The PCM read noise and the output noise are independent
                    // Gaussians added to the same column value before the
                    // ADC: one normal with the summed variance has exactly
                    // their joint law, at half the draws. σ in f32 (IEEE
                    // sqrt: the same bits on every path; its rounding, 6e-8
                    // relative, is far below any physical significance).
                    rng::fill_normals16(keys.noise, row, index, &mut xi[..rows]);
                    match plan.squares {
                        Some(_) if fused => {} // in the per-output pass
                        Some(sq) if sq.count == 1 => {
                            let abs_sums = &acc_abs[s * ka * max_rows..];
                            for (sg, &v) in sigma[..rows].iter_mut().zip(abs_sums) {
                                *sg = (v as f32 * var_w + var_out).sqrt();
                            }
                        }
                        Some(sq) => {
                            let abs_sums = &acc_abs[s * ka * max_rows..];
                            sq.combine(abs_sums, max_rows, &mut wide[..rows]);
                            for (sg, &v) in sigma[..rows].iter_mut().zip(&wide[..rows]) {
                                *sg = (v as f32 * var_w + var_out).sqrt();
                            }
                        }
                        None => sigma[..rows].fill(var_out.sqrt()),
                    }
                    if !fused {
                        let terms = acc[..rows].iter_mut().zip(&sigma[..rows]).zip(&xi[..rows]);
                        for ((v, &sg), &z) in terms {
                            *v += f64::from(sg * z);
                        }
                    }
                } else if sigma_out > 0.0 {
                    rng::fill_normals16(keys.noise, row, index, &mut noise[..rows]);
                }
                if let Some(rec) = record.as_deref_mut() {
                    let at = (s * n_ct + ct) * out_dim + t.row0;
                    for r in 0..rows {
                        rec.sigma[at + r] = if extras {
                            f64::from(sigma[r])
                        } else {
                            sigma_out
                        };
                        rec.ir_drop[at + r] = ir[r];
                        rec.xi[at + r] = f64::from(if extras { xi[r] } else { noise[r] });
                    }
                }
                let o = t.out0;
                let post = PostTerms {
                    noise: &noise[..rows],
                    gain: &m.gain[o..o + rows],
                    offset: &m.affine_offset[o..o + rows],
                    adc_gain: &m.adc_gain[o..o + rows],
                    adc_offset: &m.adc_offset[o..o + rows],
                };
                let from_ints = !main_wide && !extras;
                // Raw integer sums are scaled by `unit` inside the pass; with
                // read noise or IR drop the float path holds acc·unit plus
                // those terms.
                let (acc_unit, scale_to_code) = if adc {
                    (unit * to_code, to_code)
                } else {
                    (unit, 1.0)
                };
                let c = PostConsts {
                    acc_factor: if extras { scale_to_code } else { acc_unit },
                    noise_factor: if extras {
                        0.0
                    } else {
                        sigma_out * scale_to_code
                    },
                    k_adc,
                    out_factor: if adc { from_code * s_ins[s] } else { s_ins[s] },
                };
                let lo = s * out_dim + t.row0;
                let switches = (adc, !extras && sigma_out > 0.0);
                // One input tile: straight into the caller's output.
                macro_rules! post_from {
                    ($values:expr) => {
                        if n_ct == 1 {
                            post.run::<true, Y>(switches, $values, &mut out[lo..lo + rows], c)
                        } else {
                            post.run::<false, f64>(switches, $values, &mut o_all[lo..lo + rows], c)
                        }
                    };
                }
                if fused {
                    // Digit vector k of n of this sample (absent ones read as zeros).
                    let at = |k: usize, n: usize| (k < n).then_some((s * n + k) * max_rows);
                    let n_squares = if plan.squares.is_some() { ka } else { 0 };
                    let squares = sums_or_zeros(acc_abs, zeros, at(0, n_squares), rows);
                    let terms = sums[..rows].iter().zip(squares).zip(&xi[..rows]);
                    if let (Some(_), Some(sh)) = (plan.magnitudes, plan.shaped) {
                        let magnitudes = sums_or_zeros(acc_abs, zeros, at(n_sq, ka), rows);
                        let h0 = sums_or_zeros(acc_signed, zeros, at(0, ks), rows);
                        let h1 = sums_or_zeros(acc_signed, zeros, at(1, ks), rows);
                        let shift = sh.width;
                        let ir_terms = magnitudes.iter().zip(h0).zip(h1);
                        post_from!(terms.zip(ir_terms).map(
                            |(((&a, &q), &z), ((&m, &lo), &hi))| {
                                let am = f64::from(m) * a_factor;
                                let cfac = am * (am * (0.05 * am - 0.2) + 0.5);
                                let h = i64::from(lo) + (i64::from(hi) << shift);
                                let f = (p.ir_drop * cfac) * (h as f64 * h_factor);
                                let sg = (q as f32 * var_w + var_out).sqrt();
                                (f64::from(a) * unit - f) + f64::from(sg * z)
                            }
                        ));
                    } else {
                        post_from!(terms.map(|((&a, &q), &z)| {
                            let sg = (q as f32 * var_w + var_out).sqrt();
                            f64::from(a) * unit + f64::from(sg * z)
                        }));
                    }
                } else if from_ints {
                    post_from!(sums[..rows].iter().map(|&v| f64::from(v)));
                } else {
                    post_from!(acc[..rows].iter().copied());
                }
            }
        }
    }
    if n_ct > 1 {
        for (d, &v) in out.iter_mut().zip(o_all.iter()) {
            *d = Y::from_f64(v);
        }
    }
    SCRATCH.with(|cell| cell.replace(guard));
    // Outputs can only overflow for inputs near the float range: below the
    // block's bound nothing is checked; above it the outputs, still in cache.
    (bound.is_finite() && bound < Y::MAX.to_f64() / 4.0) || all_finite(out)
}

/// Whether every value is finite, as a branch-free reduction that vectorises:
/// `v − v` is 0 for a finite value and NaN for ±inf or NaN, and any NaN makes
/// the lane sums NaN.
#[allow(clippy::eq_op)] // `v - v` is the point: 0 or NaN
#[inline(always)]
fn all_finite<D: Float>(values: &[D]) -> bool {
    let mut lanes = [D::ZERO; 16];
    let mut chunks = values.chunks_exact(16);
    for chunk in &mut chunks {
        for (l, &v) in lanes.iter_mut().zip(chunk) {
            *l = *l + (v - v);
        }
    }
    for (l, &v) in lanes.iter_mut().zip(chunks.remainder()) {
        *l = *l + (v - v);
    }
    lanes.iter().all(|&l| l == D::ZERO)
}

/// `rows` sums from `at` in `sums`, or zeros.
#[inline(always)]
fn sums_or_zeros<'a>(
    sums: &'a [i32],
    zeros: &'a [i32],
    at: Option<usize>,
    rows: usize,
) -> &'a [i32] {
    match at {
        Some(i) => &sums[i..i + rows],
        None => &zeros[..rows],
    }
}

/// Buffers of [`forward_block_body`], kept per thread between blocks (a
/// block allocating and zeroing them cost 3 % of an MVM).
#[derive(Default)]
struct Scratch {
    s_ins: Vec<f64>,
    codes_in: Vec<i32>,
    /// Digit vectors against the exact codes, the coarse |g| and the coarse g.
    x_main: Vec<i16>,
    x_abs: Vec<i16>,
    x_signed: Vec<i16>,
    /// Their kernel sums, `max_rows` per digit vector.
    acc_main: Vec<i32>,
    acc_abs: Vec<i32>,
    acc_signed: Vec<i32>,
    /// `max_rows` zeros: the sums a fused pass reads for terms that are off.
    zeros: Vec<i32>,
    wide: Vec<i64>,
    acc: Vec<f64>,
    sigma: Vec<f32>,
    ir: Vec<f64>,
    noise: Vec<f32>,
    xi: Vec<f32>,
    o_all: Vec<f64>,
}

thread_local! {
    static SCRATCH: std::cell::Cell<Scratch> = std::cell::Cell::new(Scratch::default());
}
