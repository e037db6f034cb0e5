//! Stages 4 to 7, one MVM: the input DAC, exact integer accumulation (the
//! kernels of `mvm_kernels`), per-MVM noise (output noise, PCM read noise,
//! IR drop), ADC, rescaling with drift compensation and affine correction,
//! and the parallel loop over blocks of samples.

use super::mapping::{padded, Tile};
use super::{mvm_kernels, rint, stream, AnalogMatrix, SendSlice};
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
    /// [`SAMPLES_PER_TASK`] samples in parallel, per-MVM noise drawn with `seed`.
    pub(super) fn forward_into<X: Float, Y: Float>(
        &self,
        x: &[X],
        n: usize,
        seed: u64,
        row_offset: u64,
        y: &mut [Y],
    ) {
        let yp = SendSlice(y.as_mut_ptr());
        let seeds = (
            rng::derive_seed(seed, stream::OUT_NOISE),
            rng::derive_seed(seed, stream::W_NOISE),
        );
        let block = SAMPLES_PER_TASK;
        let bytes = std::mem::size_of_val(y);
        parallel::for_each_index_populating(n.div_ceil(block), yp.0 as *mut u8, bytes, |bi| {
            let s0 = bi * block;
            let count = block.min(n - s0);
            // SAFETY: task bi owns rows [s0, s0 + count) of y.
            let out = unsafe {
                std::slice::from_raw_parts_mut(yp.at(s0 * self.out_dim), count * self.out_dim)
            };
            let xs = &x[s0 * self.in_dim..(s0 + count) * self.in_dim];
            self.forward_block(xs, count, row_offset + s0 as u64, seeds, out);
        });
    }

    /// Runs [`forward_block_body`] compiled for the best instruction set (the
    /// arithmetic is integer or IEEE-exact, so the bits do not depend on it).
    fn forward_block<X: Float, Y: Float>(
        &self,
        x: &[X],
        count: usize,
        first: u64,
        seeds: (u64, u64),
        out: &mut [Y],
    ) {
        #[cfg(target_arch = "x86_64")]
        {
            if *HAS_AVX512 {
                // SAFETY: the CPU has the features.
                return unsafe { forward_block_avx512(self, x, count, first, seeds, out) };
            }
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                // SAFETY: the CPU has the features.
                return unsafe { forward_block_avx2(self, x, count, first, seeds, out) };
            }
        }
        forward_block_body(self, x, count, first, seeds, out)
    }

    /// PCM read noise and IR drop on one column value (aihwkit formulas,
    /// hardware-facts §3.5), in normalised units.
    #[allow(clippy::too_many_arguments)]
    fn analog_extras(
        &self,
        mut v: f64,
        gtile: &[i32],
        t: &Tile,
        r: usize,
        codes_in: &[i32],
        m: i64,
        full: i64,
        xi: f64,
    ) -> f64 {
        let p = &self.params;
        let row = &gtile[r * t.cols..(r + 1) * t.cols];
        let (mf, ff) = (m as f64, full as f64);
        if p.w_noise > 0.0 {
            let s: f64 = row
                .iter()
                .zip(codes_in)
                .map(|(&g, &c)| (g as f64 / ff).abs() * (c as f64 / mf).powi(2))
                .sum();
            v += p.w_noise * s.sqrt() * xi;
        }
        if p.ir_drop > 0.0 {
            let n = t.cols as f64;
            let a_sum: f64 = row
                .iter()
                .zip(codes_in)
                .map(|(&g, &c)| (g as f64 / ff).abs() * (c as f64 / mf).abs())
                .sum();
            let a = n / p.ir_drop_g_ratio * a_sum;
            let cfac = a * (a * (0.05 * a - 0.2) + 0.5);
            let shaped: f64 = row
                .iter()
                .zip(codes_in)
                .enumerate()
                .map(|(j, (&g, &c))| {
                    let frac = 1.0 - j as f64 / n;
                    (g as f64 / ff) * (c as f64 / mf) * (1.0 - frac * frac)
                })
                .sum();
            v -= p.ir_drop * cfac * shaped;
        }
        v
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
    fn apply<const ADC: bool, const FRESH: bool, D: Float>(
        &self,
        acc: impl Iterator<Item = f64>,
        dst: &mut [D],
        c: PostConsts,
    ) {
        let terms = acc.zip(self.noise).zip(self.gain).zip(self.offset);
        for (d, (((a, &z), &g), &b)) in dst.iter_mut().zip(terms) {
            // One rounding for the noise term (fused multiply-add, correctly
            // rounded on every path); without output noise z is 0 and the
            // result is a·acc_factor exactly (which is never −0).
            let mut v = (z as f64).mul_add(c.noise_factor, a * c.acc_factor);
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

    /// [`PostTerms::apply`] with the ADC switch resolved.
    #[inline(always)]
    fn run<const FRESH: bool, D: Float>(
        &self,
        adc: bool,
        acc: impl Iterator<Item = f64>,
        dst: &mut [D],
        c: PostConsts,
    ) {
        if adc {
            self.apply::<true, FRESH, D>(acc, dst, c)
        } else {
            self.apply::<false, FRESH, D>(acc, dst, c)
        }
    }
}

static MVM_KERNEL: std::sync::LazyLock<mvm_kernels::MultiKernel> =
    std::sync::LazyLock::new(mvm_kernels::best_multi);

/// Samples per parallel task of `matmul`.
const SAMPLES_PER_TASK: usize = 32;

#[cfg(target_arch = "x86_64")]
static HAS_AVX512: std::sync::LazyLock<bool> = std::sync::LazyLock::new(|| {
    std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512bw")
        && std::arch::is_x86_feature_detected!("avx512dq")
        && std::arch::is_x86_feature_detected!("avx512vl")
});

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl")]
unsafe fn forward_block_avx512<X: Float, Y: Float>(
    m: &AnalogMatrix,
    x: &[X],
    count: usize,
    first: u64,
    seeds: (u64, u64),
    out: &mut [Y],
) {
    forward_block_body(m, x, count, first, seeds, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn forward_block_avx2<X: Float, Y: Float>(
    m: &AnalogMatrix,
    x: &[X],
    count: usize,
    first: u64,
    seeds: (u64, u64),
    out: &mut [Y],
) {
    forward_block_body(m, x, count, first, seeds, out)
}

/// The datapath for `count` samples (rows of `x`), written so that the inner
/// loops vectorise: input-tile outer loop (the DAC runs once per sample and
/// input tile), output tiles inner; each output receives its tile partial sums
/// in increasing input-tile order.
#[inline(always)]
fn forward_block_body<X: Float, Y: Float>(
    m: &AnalogMatrix,
    x: &[X],
    count: usize,
    first: u64,
    (seed_out, seed_w): (u64, u64),
    out: &mut [Y],
) {
    let p = &m.params;
    let mc = p.input_max_code();
    let full = p.full_code();
    let unit = 1.0 / (mc as f64 * full as f64);
    let adc = p.output_bits > 0;
    let k_adc = if adc {
        ((1i64 << (p.output_bits - 1)) - 1).max(1) as f64
    } else {
        1.0
    };
    let (to_code, from_code) = (k_adc / p.out_bound, p.out_bound / k_adc);
    let sigma_out = p.out_noise * p.out_bound;
    let extras = p.w_noise > 0.0 || p.ir_drop > 0.0;
    let fits_i32 = (p.tile_cols as i64) * mc * p.max_cell_code() < i32::MAX as i64;
    let max_rows = padded(p.tile_rows);
    let kernel = *MVM_KERNEL;
    let tc = p.tile_cols;
    let tc_even = tc.next_multiple_of(2);
    let (n_ct, in_dim, out_dim) = (m.n_col_tiles, m.in_dim, m.out_dim);
    let out_pad = out_dim.next_multiple_of(128);
    // Per block of samples: DAC codes, integer sums, and (several input
    // tiles) the running f64 output sums — in this thread's reused scratch
    // (every element read below is written first in this block).
    let mut guard = SCRATCH.with(|cell| cell.take());
    let Scratch {
        s_ins,
        codes_in,
        codes16,
        acc32,
        acc,
        noise,
        wnoise,
        o_all,
    } = &mut guard;
    s_ins.resize(count, 0.0);
    codes_in.resize(count * tc, 0);
    codes16.resize(count * tc_even, 0);
    acc32.resize(count * max_rows, 0);
    acc.resize(max_rows, 0.0);
    noise.resize(max_rows, 0.0);
    wnoise.resize(max_rows, 0.0);
    if sigma_out == 0.0 {
        noise.fill(0.0);
    }
    o_all.clear();
    if n_ct > 1 {
        o_all.resize(count * out_dim, 0.0);
    }
    for ct in 0..n_ct {
        let t0 = &m.tiles[ct];
        let (cols, xl) = (t0.cols, t0.cols.next_multiple_of(2));
        // Input DAC of every sample of the block for this input tile.
        for s in 0..count {
            let xs = &x[s * in_dim + t0.col0..s * in_dim + t0.col0 + cols];
            let s_in = match p.input_range {
                Some(r) => r,
                None => abs_max(xs),
            };
            // A scale whose reciprocal overflows counts as an all-zero input.
            let s_in = if (mc as f64 / s_in).is_finite() {
                s_in
            } else {
                0.0
            };
            s_ins[s] = s_in;
            let ci = &mut codes_in[s * tc..s * tc + cols];
            if s_in > 0.0 {
                let r = mc as f64 / s_in;
                let lim = mc as f64;
                for (c, &v) in ci.iter_mut().zip(xs) {
                    let q = rint(v.to_f64() * r).clamp(-lim, lim);
                    // SAFETY: q is an integer in [−lim, lim] ⊂ i32 (inputs are
                    // checked finite), so the unchecked conversion is exact;
                    // unlike `as`, it vectorises.
                    *c = unsafe { q.to_int_unchecked::<i32>() };
                }
            } else {
                ci.fill(0);
            }
            if fits_i32 {
                // Input codes fit i16 (|code| ≤ 2^15 − 1); an odd tile gets a zero pad.
                let c16 = &mut codes16[s * xl..(s + 1) * xl];
                c16[cols..].fill(0);
                for (d, &c) in c16.iter_mut().zip(ci.iter()) {
                    *d = c as i16;
                }
            }
        }
        for t in m.tiles.iter().skip(ct).step_by(n_ct) {
            let rows = t.rows;
            let rp = padded(rows);
            if fits_i32 {
                let len = rp * xl;
                // SAFETY: `kernel` comes from a CPU feature check.
                unsafe {
                    kernel(
                        &m.codes_cm[t.cm0..t.cm0 + len],
                        rp,
                        &codes16[..count * xl],
                        xl,
                        count,
                        acc32,
                        max_rows,
                    )
                };
            }
            for s in 0..count {
                let sample = first + s as u64;
                let ci = &codes_in[s * tc..s * tc + cols];
                let sums = &acc32[s * max_rows..s * max_rows + rows];
                if fits_i32 {
                    if extras {
                        for (a, &v) in acc[..rows].iter_mut().zip(sums) {
                            *a = v as f64 * unit;
                        }
                    }
                } else {
                    let g = &m.codes[t.cell0..t.cell0 + rows * t.cols];
                    for (r, a) in acc[..rows].iter_mut().enumerate() {
                        let row = &g[r * t.cols..(r + 1) * t.cols];
                        let sum: i64 = row
                            .iter()
                            .zip(ci.iter())
                            .map(|(&g, &c)| g as i64 * c as i64)
                            .sum();
                        // Exact: |sum| < 2^53 for every valid configuration.
                        *a = if extras {
                            sum as f64 * unit
                        } else {
                            sum as f64
                        };
                    }
                }
                // Rows of a (sample, input tile) pair own a range of the noise
                // streams, padded to 128 so that 256-row tiles stay batch-aligned.
                let noise_index =
                    (sample * n_ct as u64 + ct as u64) * out_pad as u64 + t.row0 as u64;
                if extras {
                    if p.w_noise > 0.0 {
                        rng::fill_normals16(seed_w, 0, noise_index, &mut wnoise[..rows]);
                    }
                    let g = &m.codes[t.cell0..t.cell0 + rows * t.cols];
                    for (r, a) in acc[..rows].iter_mut().enumerate() {
                        *a = m.analog_extras(*a, g, t, r, ci, mc, full, wnoise[r] as f64);
                    }
                }
                if sigma_out > 0.0 {
                    rng::fill_normals16(seed_out, 0, noise_index, &mut noise[..rows]);
                }
                let o = t.out0;
                let post = PostTerms {
                    noise: &noise[..rows],
                    gain: &m.gain[o..o + rows],
                    offset: &m.affine_offset[o..o + rows],
                };
                let from_ints = fits_i32 && !extras;
                // Raw integer sums (i32 kernel or the i64 fallback) are scaled
                // by `unit` inside the pass; with read noise or IR drop the
                // float path holds acc·unit plus those terms.
                let (acc_unit, scale_to_code) = if adc {
                    (unit * to_code, to_code)
                } else {
                    (unit, 1.0)
                };
                let c = PostConsts {
                    acc_factor: if extras { scale_to_code } else { acc_unit },
                    noise_factor: sigma_out * scale_to_code,
                    k_adc,
                    out_factor: if adc { from_code * s_ins[s] } else { s_ins[s] },
                };
                let ints = sums.iter().map(|&v| v as f64);
                let floats = acc[..rows].iter().copied();
                let lo = s * out_dim + t.row0;
                if n_ct == 1 {
                    // One input tile: straight into the caller's output.
                    let dst = &mut out[lo..lo + rows];
                    if from_ints {
                        post.run::<true, Y>(adc, ints, dst, c);
                    } else {
                        post.run::<true, Y>(adc, floats, dst, c);
                    }
                } else {
                    let dst = &mut o_all[lo..lo + rows];
                    if from_ints {
                        post.run::<false, f64>(adc, ints, dst, c);
                    } else {
                        post.run::<false, f64>(adc, floats, dst, c);
                    }
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
}

/// Buffers of [`forward_block_body`], kept per thread between blocks (a
/// block allocating and zeroing them cost 3 % of an MVM).
#[derive(Default)]
struct Scratch {
    s_ins: Vec<f64>,
    codes_in: Vec<i32>,
    codes16: Vec<i16>,
    acc32: Vec<i32>,
    acc: Vec<f64>,
    noise: Vec<f32>,
    wnoise: Vec<f32>,
    o_all: Vec<f64>,
}

thread_local! {
    static SCRATCH: std::cell::Cell<Scratch> = std::cell::Cell::new(Scratch::default());
}
