//! The transform written once over a small vector abstraction ([`Simd`]); each
//! instruction set instantiates it inside a `#[target_feature]` function, where
//! everything below is inlined (`#[inline(always)]`).

use super::{Float, Kernels};

/// The vector operations the transform needs. Implementations are unsafe
/// because they wrap target-feature intrinsics and raw loads/stores.
pub(crate) trait Simd {
    type T: Float;
    type V: Copy;
    const LANES: usize;
    /// Unaligned load of `LANES` elements.
    unsafe fn load(p: *const Self::T) -> Self::V;
    /// Unaligned store of `LANES` elements.
    unsafe fn store(p: *mut Self::T, v: Self::V);
    unsafe fn add(a: Self::V, b: Self::V) -> Self::V;
    unsafe fn sub(a: Self::V, b: Self::V) -> Self::V;
    unsafe fn mul(a: Self::V, b: Self::V) -> Self::V;
    unsafe fn splat(x: Self::T) -> Self::V;
    /// The butterfly stages with `h < LANES`, inside one vector, in increasing
    /// `h`; lane `i` with `i & h == 0` gets `x[i] + x[i+h]`, lane `i + h` gets
    /// `x[i] - x[i+h]` (or `x[i] + (-x[i+h])`, the same IEEE value).
    unsafe fn in_register(v: Self::V) -> Self::V;
    /// `max(acc, |v|)` lane by lane (NaN lanes may give anything: a row with
    /// NaN needs no overflow guard).
    unsafe fn peak(acc: Self::V, v: Self::V) -> Self::V;
    /// Whether some lane of `v` exceeds the same lane of `t`.
    unsafe fn any_gt(v: Self::V, t: Self::V) -> bool;
}

/// `log2(R)` butterfly stages across `R` vectors (half-widths 1, 2, .. R/2).
#[inline(always)]
unsafe fn radix<S: Simd, const R: usize>(v: &mut [S::V; R]) {
    let mut h = 1;
    while h < R {
        let mut i = 0;
        while i < R {
            for j in i..i + h {
                let a = v[j];
                let b = v[j + h];
                v[j] = S::add(a, b);
                v[j + h] = S::sub(a, b);
            }
            i += 2 * h;
        }
        h *= 2;
    }
}

/// One pass of `log2(R)` stages (half-widths `h, 2h, .. R h/2`, in rows) over
/// an `m × stride` matrix, on its first `width` columns; optional scaling.
#[inline(always)]
unsafe fn pass<S: Simd, const R: usize>(
    x: *mut S::T,
    m: usize,
    stride: usize,
    width: usize,
    h: usize,
    scale: Option<S::V>,
) {
    let mut v = [S::splat(S::T::ZERO); R];
    let mut g = 0;
    while g < m {
        for r in 0..h {
            let row0 = x.add((g + r) * stride);
            let mut c = 0;
            while c < width {
                for (k, vk) in v.iter_mut().enumerate() {
                    *vk = S::load(row0.add(k * h * stride + c));
                }
                radix::<S, R>(&mut v);
                if let Some(s) = scale {
                    for vk in &mut v {
                        *vk = S::mul(*vk, s);
                    }
                }
                for (k, vk) in v.iter().enumerate() {
                    S::store(row0.add(k * h * stride + c), *vk);
                }
                c += S::LANES;
            }
        }
        g += R * h;
    }
}

/// The stages of half-width `h0, 2 h0, .. m/2` (in rows) of an `m × stride`
/// matrix on `width` columns, in radix-8 passes (radix 4 or 2 for the rest),
/// scaling in the last pass.
#[inline(always)]
unsafe fn strided_stages<S: Simd>(
    x: *mut S::T,
    m: usize,
    stride: usize,
    width: usize,
    h0: usize,
    scale: Option<S::V>,
) {
    let mut h = h0;
    if h >= m {
        if scale.is_some() {
            pass::<S, 1>(x, m, stride, width, 1, scale);
        }
        return;
    }
    while h < m {
        let remaining = (m / h).trailing_zeros();
        let (radix, last) = match remaining {
            1 => (2, true),
            2 => (4, true),
            3 => (8, true),
            4 => (4, false),
            _ => (8, false),
        };
        let s = if last { scale } else { None };
        match radix {
            2 => pass::<S, 2>(x, m, stride, width, h, s),
            4 => pass::<S, 4>(x, m, stride, width, h, s),
            _ => pass::<S, 8>(x, m, stride, width, h, s),
        }
        h *= radix;
    }
}

/// First pass over a contiguous row: diagonal pre-multiplication, the
/// in-register stages and `log2(R)` cross-vector stages, `R` vectors at a time.
/// With a `limit`, each group of `R` vectors is checked as it is loaded: if an
/// element's magnitude exceeds the limit, the pass stops before storing that
/// group and returns the number of elements it completed (groups before it).
#[inline(always)]
unsafe fn first_pass<S: Simd, const R: usize>(
    x: *mut S::T,
    m: usize,
    signs: *const S::T,
    scale: Option<S::V>,
    limit: Option<S::V>,
) -> Option<usize> {
    let mut v = [S::splat(S::T::ZERO); R];
    let mut g = 0;
    while g < m {
        let p = x.add(g * S::LANES);
        for (k, vk) in v.iter_mut().enumerate() {
            *vk = S::load(p.add(k * S::LANES));
        }
        if let Some(t) = limit {
            let mut acc = S::splat(S::T::ZERO);
            for vk in &v {
                acc = S::peak(acc, *vk);
            }
            if S::any_gt(acc, t) {
                return Some(g * S::LANES);
            }
        }
        if !signs.is_null() {
            let q = signs.add(g * S::LANES);
            for (k, vk) in v.iter_mut().enumerate() {
                *vk = S::mul(*vk, S::load(q.add(k * S::LANES)));
            }
        }
        for vk in &mut v {
            *vk = S::in_register(*vk);
        }
        radix::<S, R>(&mut v);
        if let Some(s) = scale {
            for vk in &mut v {
                *vk = S::mul(*vk, s);
            }
        }
        for (k, vk) in v.iter().enumerate() {
            S::store(p.add(k * S::LANES), *vk);
        }
        g += R;
    }
    None
}

/// Full transforms of `rows` contiguous rows of length `n`
/// (`LANES <= n <= block_len`, a power of two). One call covers many rows so
/// that short rows (n = 32) do not pay a dispatch per row.
///
/// With a `limit`, stops at the first row with an element of magnitude above
/// it, as its first pass meets it (see [`first_pass`]). Returns the number of
/// elements completed: `rows · n` when every row is done; otherwise
/// `r · n + k` where row `r` is the one stopped and `k` is 0 (row untouched:
/// always when `n <= 8 · LANES`) or a multiple of `8 · LANES` (its first `k`
/// elements have had the first pass: the transform of length `8 · LANES` of
/// each group, after the diagonal; the rest is untouched).
#[inline(always)]
pub(crate) unsafe fn rows_kernel<S: Simd>(
    x: *mut S::T,
    n: usize,
    rows: usize,
    signs: *const S::T,
    scale: Option<S::T>,
    limit: Option<S::T>,
) -> usize {
    let sv = scale.map(|s| S::splat(s));
    let lv = limit.map(|l| S::splat(l));
    for r in 0..rows {
        if let Some(k) = row_kernel::<S>(x.add(r * n), n, signs, sv, lv) {
            return r * n + k;
        }
    }
    rows * n
}

/// Full transform of a contiguous row, `LANES <= n`, `n` a power of two; as
/// [`first_pass`] with a limit.
#[inline(always)]
unsafe fn row_kernel<S: Simd>(
    x: *mut S::T,
    n: usize,
    signs: *const S::T,
    sv: Option<S::V>,
    lv: Option<S::V>,
) -> Option<usize> {
    let m = n / S::LANES;
    match m {
        // The whole row is in registers before anything is stored.
        1 => first_pass::<S, 1>(x, m, signs, sv, lv),
        2 => first_pass::<S, 2>(x, m, signs, sv, lv),
        4 => first_pass::<S, 4>(x, m, signs, sv, lv),
        8 => first_pass::<S, 8>(x, m, signs, sv, lv),
        _ => {
            if let Some(k) = first_pass::<S, 8>(x, m, signs, None, lv) {
                return Some(k);
            }
            // A vector is one "row" of an (n/LANES) × LANES matrix.
            strided_stages::<S>(x, m, S::LANES, S::LANES, 8, sv);
            None
        }
    }
}

/// Cross-row stages of an `m × stride` matrix on `width` columns.
#[inline(always)]
pub(crate) unsafe fn columns_kernel<S: Simd>(
    x: *mut S::T,
    m: usize,
    stride: usize,
    width: usize,
    scale: Option<S::T>,
) {
    strided_stages::<S>(x, m, stride, width, 1, scale.map(|s| S::splat(s)));
}

/// Width-1 "vectors": the portable path, built from the same generic code.
#[derive(Clone, Copy)]
pub(crate) struct Scalar<T>(std::marker::PhantomData<T>);

impl<T: Float> Simd for Scalar<T> {
    type T = T;
    type V = T;
    const LANES: usize = 1;
    #[inline(always)]
    unsafe fn load(p: *const T) -> T {
        *p
    }
    #[inline(always)]
    unsafe fn store(p: *mut T, v: T) {
        *p = v;
    }
    #[inline(always)]
    unsafe fn add(a: T, b: T) -> T {
        a + b
    }
    #[inline(always)]
    unsafe fn sub(a: T, b: T) -> T {
        a - b
    }
    #[inline(always)]
    unsafe fn mul(a: T, b: T) -> T {
        a * b
    }
    #[inline(always)]
    unsafe fn splat(x: T) -> T {
        x
    }
    #[inline(always)]
    unsafe fn in_register(v: T) -> T {
        v
    }
    #[inline(always)]
    unsafe fn peak(acc: T, v: T) -> T {
        let a = if v < T::ZERO { -v } else { v };
        if a > acc {
            a
        } else {
            acc
        }
    }
    #[inline(always)]
    unsafe fn any_gt(v: T, t: T) -> bool {
        v > t
    }
}

/// Defines the `#[target_feature]` entry points (rows, columns) for one
/// [`Simd`] implementation, and returns them as a [`Kernels`] table.
macro_rules! kernel_table {
    ($simd:ty, $t:ty, $feature:literal) => {{
        #[target_feature(enable = $feature)]
        unsafe fn rows(
            x: *mut $t,
            n: usize,
            count: usize,
            signs: *const $t,
            scale: Option<$t>,
            limit: Option<$t>,
        ) -> usize {
            $crate::hadamard::generic::rows_kernel::<$simd>(x, n, count, signs, scale, limit)
        }
        #[target_feature(enable = $feature)]
        unsafe fn columns(x: *mut $t, m: usize, stride: usize, width: usize, scale: Option<$t>) {
            $crate::hadamard::generic::columns_kernel::<$simd>(x, m, stride, width, scale)
        }
        $crate::hadamard::Kernels::<$t> {
            lanes: <$simd as $crate::hadamard::generic::Simd>::LANES,
            rows,
            columns,
        }
    }};
}
pub(crate) use kernel_table;

unsafe fn scalar_rows<T: Float>(
    x: *mut T,
    n: usize,
    rows: usize,
    signs: *const T,
    scale: Option<T>,
    limit: Option<T>,
) -> usize {
    rows_kernel::<Scalar<T>>(x, n, rows, signs, scale, limit)
}

unsafe fn scalar_columns<T: Float>(
    x: *mut T,
    m: usize,
    stride: usize,
    width: usize,
    scale: Option<T>,
) {
    columns_kernel::<Scalar<T>>(x, m, stride, width, scale);
}

pub(crate) fn scalar_kernels_f32() -> Kernels<f32> {
    Kernels {
        lanes: 1,
        rows: scalar_rows::<f32>,
        columns: scalar_columns::<f32>,
    }
}

pub(crate) fn scalar_kernels_f64() -> Kernels<f64> {
    Kernels {
        lanes: 1,
        rows: scalar_rows::<f64>,
        columns: scalar_columns::<f64>,
    }
}
