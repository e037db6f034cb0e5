//! Random-feature nonlinearities and the fused SORF projection.
//!
//! - [`rbf_features`]: `out = scale · [cos(U), sin(U)]` row by row, in one pass
//!   with one shared range reduction per element ([`SinCos`]), threaded over
//!   rows.
//! - [`sorf_project`]: `U = X Wᵀ` for a SORF matrix given by its sign
//!   diagonals, each row padded in a small buffer and pushed through the three
//!   randomised Hadamard stages of every block while it sits in L1 — the
//!   matrix is never formed. For float32 on AVX-512 with n ∈ {16, 32, 64},
//!   16 rows at a time in structure-of-arrays form (`sorf_avx512`), same bits.
//! - [`rbf_features_fused`]: both at once on chunks of 32 rows (dense `W`
//!   through matrixmultiply, or SORF), so `U` never exists as a whole.
//!
//! Large outputs are written under [`parallel::for_each_chunk_mut_populating`]:
//! with two or more threads one of them populates the fresh pages while the
//! others compute.
//!
//! # Accuracy of `sin`/`cos`
//! Cody–Waite reduction by π/2 with a three-part constant, then Taylor
//! polynomials on [−π/4, π/4], all with fused multiply-adds (correctly rounded
//! on every path, so SIMD and scalar agree bitwise): absolute error below 3e-7
//! (f32) and 1e-15 (f64)
//! for |x| ≤ 8192 (f32) / 2^20 (f64), checked against libm in the tests. Larger
//! arguments, rare in random features, are recomputed with libm.

use crate::error::{Error, Result};
use crate::hadamard::{self, Float, FwhtParams};
use crate::parallel;

/// A float type with a vectorisable `sincos`.
pub trait SinCos: Float {
    /// Largest |x| the polynomial path handles; beyond it libm is used.
    const REDUCE_LIMIT: Self;
    /// `(sin x, cos x)` by the polynomial path (valid for |x| ≤ `REDUCE_LIMIT`).
    fn sincos_poly(x: Self) -> (Self, Self);
    /// `(sin x, cos x)` by libm.
    fn sincos_libm(x: Self) -> (Self, Self);
    #[must_use]
    fn abs_val(self) -> Self;
}

impl SinCos for f32 {
    const REDUCE_LIMIT: f32 = 8192.0;
    #[inline(always)]
    fn sincos_poly(x: f32) -> (f32, f32) {
        // π/2 = P1 + P2 + P3 with P1, P2 short enough that j·P exact for |j| < 2^13.
        const P1: f32 = 1.570_312_5;
        const P2: f32 = 4.837_513e-4;
        const P3: f32 = 7.549_79e-8;
        // Round to the nearest integer by adding 1.5·2^23: the integer lands in
        // the low mantissa bits (valid for |x·2/π| < 2^22), which also give the
        // quadrant without a float-to-int conversion.
        const MAGIC: f32 = 12_582_912.0;
        let shifted = x.mul_add(std::f32::consts::FRAC_2_PI, MAGIC);
        let q = shifted.to_bits();
        let j = shifted - MAGIC;
        let r = (-j).mul_add(P3, (-j).mul_add(P2, (-j).mul_add(P1, x)));
        let r2 = r * r;
        let ps = r2.mul_add(1.0 / 362_880.0, -1.0 / 5040.0);
        let ps = r2.mul_add(ps, 1.0 / 120.0);
        let ps = r2.mul_add(ps, -1.0 / 6.0);
        let s = (r * r2).mul_add(ps, r);
        let pc = r2.mul_add(1.0 / 40320.0, -1.0 / 720.0);
        let pc = r2.mul_add(pc, 1.0 / 24.0);
        let pc = r2.mul_add(pc, -0.5);
        let c = r2.mul_add(pc, 1.0);
        quadrant(q, s, c)
    }
    fn sincos_libm(x: f32) -> (f32, f32) {
        x.sin_cos()
    }
    #[inline(always)]
    fn abs_val(self) -> f32 {
        self.abs()
    }
}

impl SinCos for f64 {
    const REDUCE_LIMIT: f64 = 1_048_576.0;
    #[inline(always)]
    fn sincos_poly(x: f64) -> (f64, f64) {
        // fdlibm's three-part π/2 (each part with 33 significant bits).
        const P1: f64 = 1.570_796_326_734_125_6;
        const P2: f64 = 6.077_100_506_303_966e-11;
        const P3: f64 = 2.022_266_248_711_166_5e-21;
        const MAGIC: f64 = 6_755_399_441_055_744.0; // 1.5·2^52, as for f32
                                                    // Horner in r² with fused multiply-adds, highest degree first.
        const SIN: [f64; 7] = [
            -1.0 / 1_307_674_368_000.0,
            1.0 / 6_227_020_800.0,
            -1.0 / 39_916_800.0,
            1.0 / 362_880.0,
            -1.0 / 5040.0,
            1.0 / 120.0,
            -1.0 / 6.0,
        ];
        const COS: [f64; 8] = [
            1.0 / 20_922_789_888_000.0,
            -1.0 / 87_178_291_200.0,
            1.0 / 479_001_600.0,
            -1.0 / 3_628_800.0,
            1.0 / 40320.0,
            -1.0 / 720.0,
            1.0 / 24.0,
            -0.5,
        ];
        let shifted = x.mul_add(std::f64::consts::FRAC_2_PI, MAGIC);
        let q = shifted.to_bits() as u32;
        let j = shifted - MAGIC;
        let r = (-j).mul_add(P3, (-j).mul_add(P2, (-j).mul_add(P1, x)));
        let r2 = r * r;
        let ps = SIN[1..].iter().fold(SIN[0], |p, &k| r2.mul_add(p, k));
        let s = (r * r2).mul_add(ps, r);
        let pc = COS[1..].iter().fold(COS[0], |p, &k| r2.mul_add(p, k));
        let c = r2.mul_add(pc, 1.0);
        quadrant(q, s, c)
    }
    fn sincos_libm(x: f64) -> (f64, f64) {
        x.sin_cos()
    }
    #[inline(always)]
    fn abs_val(self) -> f64 {
        self.abs()
    }
}

/// `(sin, cos)` of `r + q·π/2` from `(sin r, cos r)` (only `q mod 4` matters;
/// two's complement keeps it right for negative `q`).
#[inline(always)]
fn quadrant<T: Float>(q: u32, s: T, c: T) -> (T, T) {
    let swap = q & 1 == 1;
    let (s0, c0) = if swap { (c, s) } else { (s, c) };
    let neg_s = q & 2 == 2;
    let neg_c = q.wrapping_add(1) & 2 == 2;
    (if neg_s { -s0 } else { s0 }, if neg_c { -c0 } else { c0 })
}

/// One row: `out[..s] = scale·cos(u)`, `out[s..] = scale·sin(u)`.
#[inline(always)]
fn rbf_row<T: SinCos>(u: &[T], scale: T, out: &mut [T]) {
    let s = u.len();
    let (cos_out, sin_out) = out.split_at_mut(s);
    let mut all_in_range = true;
    for ((co, so), &x) in cos_out.iter_mut().zip(sin_out.iter_mut()).zip(u) {
        let (sn, cs) = T::sincos_poly(x);
        *co = cs * scale;
        *so = sn * scale;
        // A vector compare folded into one flag (false for NaN too).
        all_in_range &= x.abs_val() <= T::REDUCE_LIMIT;
    }
    if all_in_range {
        return;
    }
    // Rare huge or non-finite arguments: recompute those with libm.
    for (i, &x) in u.iter().enumerate() {
        if x.abs_val() <= T::REDUCE_LIMIT {
            continue;
        }
        let (sn, cs) = T::sincos_libm(x);
        cos_out[i] = cs * scale;
        sin_out[i] = sn * scale;
    }
}

macro_rules! dispatch_rows {
    ($name:ident, $body:ident) => {
        /// Runs the body compiled for AVX-512F / AVX2+FMA when the CPU has them
        /// (IEEE operations and correctly rounded fused multiply-adds only:
        /// the bits do not depend on the choice).
        fn $name<T: SinCos>(u: &[T], scale: T, out: &mut [T]) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512dq,avx512vl")]
                unsafe fn wide<T: SinCos>(u: &[T], scale: T, out: &mut [T]) {
                    $body(u, scale, out)
                }
                #[target_feature(enable = "avx2,fma")]
                unsafe fn mid<T: SinCos>(u: &[T], scale: T, out: &mut [T]) {
                    $body(u, scale, out)
                }
                match crate::cpu::level() {
                    // SAFETY: `wide` needs AVX-512F, DQ and VL, implied by
                    // the level.
                    crate::cpu::Level::Avx512 | crate::cpu::Level::Avx512Vnni => {
                        return unsafe { wide(u, scale, out) };
                    }
                    // SAFETY: `mid` needs AVX2 and FMA, implied by the level.
                    crate::cpu::Level::Avx2 => return unsafe { mid(u, scale, out) },
                    crate::cpu::Level::Baseline => {}
                }
            }
            $body(u, scale, out)
        }
    };
}

dispatch_rows!(rbf_row_dispatch, rbf_row);

/// Rows per parallel task.
const ROWS_PER_TASK: usize = 256;

/// `out (rows × 2s) = scale · [cos(U), sin(U)]` for `u (rows × s)`.
pub fn rbf_features<T: SinCos>(
    u: &[T],
    rows: usize,
    s: usize,
    scale: T,
    out: &mut [T],
) -> Result<()> {
    if u.len() != rows * s || out.len() != rows * 2 * s {
        return Err(Error::Shape(format!(
            "rbf_features: U has {} elements and out {}, expected {rows} × {s} and {rows} × {}",
            u.len(),
            out.len(),
            2 * s
        )));
    }
    // Task t: rows [t·R, (t+1)·R) of out.
    parallel::for_each_chunk_mut_populating(out, ROWS_PER_TASK * 2 * s, |t, dst| {
        let r0 = t * ROWS_PER_TASK;
        for (j, o) in dst.chunks_exact_mut(2 * s).enumerate() {
            let r = r0 + j;
            rbf_row_dispatch(&u[r * s..(r + 1) * s], scale, o);
        }
    });
    Ok(())
}

/// A SORF projection matrix `W` (`n_components × d`), given by its diagonals:
/// block `b` is `scale · sqrt(n)·Ĥ D1 Ĥ D2 Ĥ D3` with `D1, D2, D3 =
/// signs[b][0..3]` (`signs`: blocks × 3 × n, C order), restricted to the first
/// `d` columns (inputs zero-padded to `n`); the blocks are stacked and cut to
/// `n_components` rows.
#[derive(Clone, Copy, Debug)]
pub struct SorfMatrix<'a, T> {
    pub signs: &'a [T],
    pub n: usize,
    pub n_components: usize,
    pub scale: T,
}

/// Checks a [`SorfMatrix`] against an input width `d`.
fn check_sorf<T>(w: &SorfMatrix<'_, T>, d: usize) -> Result<()> {
    let (n, s) = (w.n, w.n_components);
    hadamard::check_row_len(n, n)?;
    if d > n {
        return Err(Error::Shape(format!(
            "input width {d} exceeds the SORF size {n}"
        )));
    }
    let blocks = s.div_ceil(n.max(1));
    let needed = blocks.checked_mul(3 * n).ok_or_else(|| {
        Error::Shape(format!(
            "{s} SORF features are too many for the addressable memory"
        ))
    })?;
    if w.signs.len() < needed {
        return Err(Error::Shape(format!(
            "signs has {} entries, {s} features need {blocks} blocks × 3 × {n}",
            w.signs.len()
        )));
    }
    Ok(())
}

/// `U (rows × n_components) = X Wᵀ` for `x (rows × d)` and a [`SorfMatrix`],
/// bit-identical to [`hadamard::sorf_block`] on the padded rows times `scale`.
pub fn sorf_project<T: Float>(
    x: &[T],
    rows: usize,
    d: usize,
    w: &SorfMatrix<'_, T>,
    out: &mut [T],
) -> Result<()> {
    check_sorf(w, d)?;
    let s = w.n_components;
    if x.len() != rows * d || out.len() != rows * s {
        return Err(Error::Shape(format!(
            "sorf_project: X has {} elements and out {}, expected {rows} × {d} and {rows} × {s}",
            x.len(),
            out.len()
        )));
    }
    let failed = std::sync::atomic::AtomicBool::new(false);
    // Task t: rows [r0, r0 + count) of out.
    parallel::for_each_chunk_mut_populating(out, ROWS_PER_TASK * s, |t, dst| {
        let r0 = t * ROWS_PER_TASK;
        let count = dst.len() / s;
        let mut buf = Vec::new();
        if sorf_chunk(&x[r0 * d..(r0 + count) * d], d, w, &mut buf, dst).is_err() {
            failed.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    });
    if failed.into_inner() {
        return Err(Error::value("n", "SORF transform failed"));
    }
    Ok(())
}

/// `dst (count × n_components) = X Wᵀ` for the `count` rows of `x` (`count`
/// taken from `dst`), with
/// `buf` as scratch (resized to `count × n`). Single-threaded.
fn sorf_chunk<T: Float>(
    x: &[T],
    d: usize,
    w: &SorfMatrix<'_, T>,
    buf: &mut Vec<T>,
    dst: &mut [T],
) -> Result<()> {
    if sorf_chunk_fast(x, d, w, dst) {
        return Ok(());
    }
    sorf_chunk_rowwise(x, d, w, buf, dst)
}

/// [`sorf_chunk`] row by row through the Hadamard kernels (any type, any n).
fn sorf_chunk_rowwise<T: Float>(
    x: &[T],
    d: usize,
    w: &SorfMatrix<'_, T>,
    buf: &mut Vec<T>,
    dst: &mut [T],
) -> Result<()> {
    let (signs, n, s, scale) = (w.signs, w.n, w.n_components, w.scale);
    let count = dst.len() / s.max(1);
    let params = FwhtParams::default();
    // Every row of buf is rewritten (copy and zero padding) per block.
    buf.resize(count * n, T::ZERO);
    let buf = &mut buf[..count * n];
    for b in 0..s.div_ceil(n) {
        for (i, row) in buf.chunks_exact_mut(n).enumerate() {
            row[..d].copy_from_slice(&x[i * d..(i + 1) * d]);
            row[d..].fill(T::ZERO);
        }
        let sg = &signs[b * 3 * n..(b + 1) * 3 * n];
        hadamard::sorf_block_serial(buf, n, &sg[..n], &sg[n..2 * n], &sg[2 * n..], &params)?;
        let lo = b * n;
        let width = n.min(s - lo);
        for (row, o) in buf.chunks_exact(n).zip(dst.chunks_exact_mut(s)) {
            for (dst, &v) in o[lo..lo + width].iter_mut().zip(&row[..width]) {
                *dst = v * scale;
            }
        }
    }
    Ok(())
}

/// The structure-of-arrays SORF path (float32, AVX-512F, n ∈ {16, 32, 64}):
/// runs it and returns true, or returns false for the row-wise path. Same
/// bits either way (tested).
fn sorf_chunk_fast<T: Float>(x: &[T], d: usize, w: &SorfMatrix<'_, T>, dst: &mut [T]) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        use std::any::TypeId;
        if TypeId::of::<T>() != TypeId::of::<f32>() || !crate::cpu::has(crate::cpu::Level::Avx512) {
            return false;
        }
        // SAFETY: T is f32 (checked above), so the slices and the matrix
        // reinterpret as f32 without any change.
        let (x, dst, w) = unsafe {
            (
                std::slice::from_raw_parts(x.as_ptr().cast::<f32>(), x.len()),
                std::slice::from_raw_parts_mut(dst.as_mut_ptr().cast::<f32>(), dst.len()),
                &*std::ptr::from_ref::<SorfMatrix<'_, T>>(w).cast::<SorfMatrix<'_, f32>>(),
            )
        };
        // SAFETY: the CPU has AVX-512F; shapes were checked by the callers.
        unsafe {
            match w.n {
                16 => sorf_avx512::sorf_chunk::<16>(x, d, w, dst),
                32 => sorf_avx512::sorf_chunk::<32>(x, d, w, dst),
                64 => sorf_avx512::sorf_chunk::<64>(x, d, w, dst),
                _ => return false,
            }
        }
        true
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (x, d, w, dst);
        false
    }
}

#[cfg(target_arch = "x86_64")]
mod sorf_avx512;

/// Per-thread scratch vectors of a float type, so that parallel tasks neither
/// allocate nor zero their chunk buffers (that cost 2–4 % of a transform).
pub trait Scratch: Sized + 'static {
    /// Runs `f` with this thread's two scratch vectors (contents unspecified).
    fn with_scratch<R>(f: impl FnOnce(&mut Vec<Self>, &mut Vec<Self>) -> R) -> R;
}

macro_rules! impl_scratch {
    ($t:ty, $key:ident) => {
        thread_local! {
            static $key: std::cell::Cell<(Vec<$t>, Vec<$t>)> =
                const { std::cell::Cell::new((Vec::new(), Vec::new())) };
        }
        impl Scratch for $t {
            fn with_scratch<R>(f: impl FnOnce(&mut Vec<$t>, &mut Vec<$t>) -> R) -> R {
                let (mut a, mut b) = $key.with(|c| c.take());
                let r = f(&mut a, &mut b);
                $key.with(|c| c.set((a, b)));
                r
            }
        }
    };
}
impl_scratch!(f32, SCRATCH_F32);
impl_scratch!(f64, SCRATCH_F64);

/// A float type with a dense matrix product (matrixmultiply's blocked,
/// runtime-dispatched AVX/FMA kernels; single-threaded, so the bits do not
/// depend on the thread count).
pub trait Gemm: Float {
    /// `c (m × n, row-major) = a (m × k, row-major) · bᵀ` with `b` (n × k,
    /// row-major).
    fn gemm_abt(m: usize, k: usize, n: usize, a: &[Self], b: &[Self], c: &mut [Self]);
}

macro_rules! impl_gemm {
    ($t:ty, $f:ident) => {
        impl Gemm for $t {
            fn gemm_abt(m: usize, k: usize, n: usize, a: &[$t], b: &[$t], c: &mut [$t]) {
                assert!(a.len() >= m * k && b.len() >= n * k && c.len() >= m * n);
                // SAFETY: the strides describe buffers of the asserted sizes.
                unsafe {
                    matrixmultiply::$f(
                        m,
                        k,
                        n,
                        1.0,
                        a.as_ptr(),
                        k as isize,
                        1,
                        b.as_ptr(),
                        1,
                        k as isize,
                        0.0,
                        c.as_mut_ptr(),
                        n as isize,
                        1,
                    )
                }
            }
        }
    };
}
impl_gemm!(f32, sgemm);
impl_gemm!(f64, dgemm);

/// The random projection `U = X Wᵀ` in front of a feature function.
#[derive(Clone, Copy, Debug)]
pub enum Projection<'a, T> {
    /// A dense `W` (`s × d`, row-major).
    Dense {
        weights: &'a [T],
        n_components: usize,
    },
    /// A SORF matrix, never formed.
    Sorf(SorfMatrix<'a, T>),
}

impl<T> Projection<'_, T> {
    /// `s`, the number of projections.
    pub fn n_components(&self) -> usize {
        match self {
            Projection::Dense { n_components, .. } => *n_components,
            Projection::Sorf(w) => w.n_components,
        }
    }
}

/// Rows per task of [`rbf_features_fused`]: the projection of a chunk
/// (`FUSED_ROWS × s`, 45 KB at s = 352 in float32) stays in L1/L2 between the
/// projection and the sincos (64 rows measured 5–10 % slower, 16 rows no
/// better).
const FUSED_ROWS: usize = 32;

/// `out (rows × 2s) = scale · [cos(X Wᵀ), sin(X Wᵀ)]` for `x (rows × d)`,
/// chunk by chunk, so `U` never exists as a whole: the only large memory
/// traffic is the output itself. Bit-identical to [`rbf_features`] applied
/// to the projection of the same chunk.
pub fn rbf_features_fused<T: SinCos + Gemm + Scratch>(
    x: &[T],
    rows: usize,
    d: usize,
    projection: &Projection<'_, T>,
    scale: T,
    out: &mut [T],
) -> Result<()> {
    let s = projection.n_components();
    if x.len() != rows * d || out.len() != rows * 2 * s {
        return Err(Error::Shape(format!(
            "rbf_features_fused: X has {} elements and out {}, expected {rows} × {d} and {rows} × {}",
            x.len(),
            out.len(),
            2 * s
        )));
    }
    match projection {
        Projection::Dense { weights, .. } => {
            if weights.len() != s * d {
                return Err(Error::Shape(format!(
                    "W has {} elements, expected {s} × {d}",
                    weights.len()
                )));
            }
        }
        Projection::Sorf(w) => check_sorf(w, d)?,
    }
    let failed = std::sync::atomic::AtomicBool::new(false);
    // Task t: rows [r0, r0 + count) of out.
    parallel::for_each_chunk_mut_populating(out, FUSED_ROWS * 2 * s, |t, dst| {
        let r0 = t * FUSED_ROWS;
        let count = dst.len() / (2 * s);
        let xc = &x[r0 * d..(r0 + count) * d];
        T::with_scratch(|u, buf| {
            // Every element of u is written by the projection before it is read.
            u.resize(count * s, T::ZERO);
            let u = &mut u[..count * s];
            match projection {
                Projection::Dense { weights, .. } => T::gemm_abt(count, d, s, xc, weights, u),
                Projection::Sorf(w) => {
                    if sorf_chunk(xc, d, w, buf, u).is_err() {
                        failed.store(true, std::sync::atomic::Ordering::Relaxed);
                        return;
                    }
                }
            }
            for (ur, o) in u
                .chunks_exact(s.max(1))
                .zip(dst.chunks_exact_mut(2 * s.max(1)))
            {
                rbf_row_dispatch(ur, scale, o);
            }
        });
    });
    if failed.into_inner() {
        return Err(Error::value("n", "SORF transform failed"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sincos_matches_libm() {
        let mut worst32 = 0f64;
        let mut worst64 = 0f64;
        for i in 0..200_000 {
            let x = (f64::from(i) - 100_000.0) * 0.0137;
            let (s, c) = f64::sincos_poly(x);
            worst64 = worst64.max((s - x.sin()).abs()).max((c - x.cos()).abs());
            let xf = x as f32;
            let (sf, cf) = f32::sincos_poly(xf);
            let xd = f64::from(xf);
            worst32 = worst32
                .max((f64::from(sf) - xd.sin()).abs())
                .max((f64::from(cf) - xd.cos()).abs());
        }
        assert!(worst64 < 1e-15, "f64 error {worst64}");
        assert!(worst32 < 3e-7, "f32 error {worst32}");
    }

    #[test]
    fn structure_of_arrays_sorf_matches_the_row_wise_transform() {
        for (n, d, s, rows) in [
            (16usize, 9usize, 40usize, 37usize),
            (32, 22, 352, 64),
            (32, 32, 20, 5),
            (64, 50, 130, 17),
        ] {
            let x: Vec<f32> = (0..rows * d)
                .map(|i| ((i * 37 % 101) as f32 - 50.0) * 0.013)
                .collect();
            let blocks = s.div_ceil(n);
            let signs: Vec<f32> = (0..blocks * 3 * n)
                .map(|i| if (i * 7919 + 3) % 5 < 2 { -1.0 } else { 1.0 })
                .collect();
            let w = SorfMatrix {
                signs: &signs,
                n,
                n_components: s,
                scale: 0.3,
            };
            let mut fast = vec![0f32; rows * s];
            let mut slow = vec![0f32; rows * s];
            let ran = sorf_chunk_fast(&x, d, &w, &mut fast);
            sorf_chunk_rowwise(&x, d, &w, &mut Vec::new(), &mut slow).unwrap();
            #[cfg(target_arch = "x86_64")]
            assert_eq!(ran, crate::cpu::has(crate::cpu::Level::Avx512));
            if ran {
                for (i, (a, b)) in fast.iter().zip(&slow).enumerate() {
                    assert_eq!(a.to_bits(), b.to_bits(), "n {n} d {d} element {i}");
                }
            }
        }
    }

    #[test]
    fn simd_and_scalar_sincos_agree_bitwise() {
        let u32s: Vec<f32> = (0..4099).map(|i| (i as f32 - 2049.0) * 0.731).collect();
        let u64s: Vec<f64> = u32s.iter().map(|&v| f64::from(v) * 1.0001).collect();
        let mut o32 = vec![0f32; 2 * u32s.len()];
        let mut o64 = vec![0f64; 2 * u64s.len()];
        rbf_features(&u32s, 1, u32s.len(), 0.5, &mut o32).unwrap();
        rbf_features(&u64s, 1, u64s.len(), 0.5, &mut o64).unwrap();
        let n = u32s.len();
        for i in 0..n {
            let (s, c) = f32::sincos_poly(u32s[i]);
            assert_eq!(o32[i].to_bits(), (c * 0.5).to_bits(), "{i}");
            assert_eq!(o32[n + i].to_bits(), (s * 0.5).to_bits(), "{i}");
            let (s, c) = f64::sincos_poly(u64s[i]);
            assert_eq!(o64[i].to_bits(), (c * 0.5).to_bits(), "{i}");
            assert_eq!(o64[n + i].to_bits(), (s * 0.5).to_bits(), "{i}");
        }
    }

    #[test]
    fn features_and_huge_arguments() {
        let u = [0.0f64, 1.0, -2.5, 1e9, f64::NAN];
        let mut out = vec![0.0; 10];
        rbf_features(&u, 1, 5, 0.5, &mut out).unwrap();
        for (i, &x) in u.iter().enumerate() {
            if x.is_nan() {
                assert!(out[i].is_nan() && out[5 + i].is_nan());
            } else {
                assert!((out[i] - 0.5 * x.cos()).abs() < 1e-15);
                assert!((out[5 + i] - 0.5 * x.sin()).abs() < 1e-15);
            }
        }
    }

    #[test]
    fn sorf_project_equals_blockwise_transform() {
        let (rows, d, n, s) = (5usize, 13usize, 16usize, 40usize);
        let x: Vec<f64> = (0..rows * d)
            .map(|i| ((i * 37) % 11) as f64 - 5.0)
            .collect();
        let signs: Vec<f64> = (0..3 * 3 * n)
            .map(|i| if (i * 7919) % 3 == 0 { -1.0 } else { 1.0 })
            .collect();
        let mut out = vec![0.0; rows * s];
        let w = SorfMatrix {
            signs: &signs,
            n,
            n_components: s,
            scale: 2.0,
        };
        sorf_project(&x, rows, d, &w, &mut out).unwrap();
        for b in 0..3 {
            let mut pad = vec![0.0; rows * n];
            for r in 0..rows {
                pad[r * n..r * n + d].copy_from_slice(&x[r * d..(r + 1) * d]);
            }
            let sg = &signs[b * 3 * n..(b + 1) * 3 * n];
            hadamard::sorf_block(&mut pad, n, &sg[..n], &sg[n..2 * n], &sg[2 * n..], None).unwrap();
            for r in 0..rows {
                for j in 0..n.min(s - b * n) {
                    assert_eq!(
                        out[r * s + b * n + j].to_bits(),
                        (pad[r * n + j] * 2.0).to_bits()
                    );
                }
            }
        }
    }
}
