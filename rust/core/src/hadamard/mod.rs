//! Fast Walsh–Hadamard transform (FWHT), in place, for every row of a matrix.
//!
//! The unnormalised transform of a length-`n` vector (`n` a power of two) is
//! `y = H_n x` with `H_1 = [1]`, `H_2n = [[H_n, H_n], [H_n, -H_n]]` (Sylvester
//! order, the order of `scipy.linalg.hadamard`). It is computed by `log2 n`
//! butterfly stages: the stage of half-width `h` replaces every pair
//! `(a, b) = (x[i], x[i + h])` (with `i & h == 0`) by `(a + b, a - b)`.
//!
//! # Bit-exactness across instruction sets
//! Every path — the scalar reference, SSE2, AVX2, AVX-512F, NEON, one thread or
//! many, blocked or not — applies the stages to each element in increasing `h`
//! and computes each butterfly output as exactly `a + b` or `a - b` (or
//! `a + (-b)`, which IEEE 754 defines to be the same value). The transform only
//! adds and subtracts, so the output bits do not depend on the path taken. The
//! optional pre-multiplication by a diagonal (`signs`) happens before the first
//! stage and the optional scaling after the last one, on every path.
//!
//! # Overflow
//! One intermediate that overflows turns outputs whose exact value is finite
//! into NaN (`inf - inf` in a later butterfly: `fwht([MAX; 4])` is
//! `[inf, 0, 0, 0]`, not `[inf, 0, NaN, 0]`). A row that could overflow (an
//! element within a factor `4 · n · max|diagonal|` of the largest finite
//! value) is therefore transformed scaled by a power of two and scaled back
//! (see `Guard`): every output is then ±inf where its exact value overflows,
//! and otherwise what exact-range arithmetic gives. The kernels check each row
//! as their first pass loads it, so ordinary data pays no extra pass. Such
//! rows keep the bits of exact-range arithmetic on every path as long as the
//! scaling leaves no element subnormal; where it does (elements some 2^100
//! below the row's largest), they may differ between instruction sets in the
//! last bits of outputs far below the row's magnitude.
//!
//! # How it is fast
//! - Stages with `h` smaller than a SIMD vector run inside registers
//!   ([`Simd::in_register`]), fused with the first three cross-vector stages.
//! - The remaining stages run as radix-8 passes (three stages per load/store), so
//!   a row of `n` elements is read and written about `log2(n) / 3` times while it
//!   sits in L1.
//! - Rows longer than [`block_len`] (32 KiB) are transformed block by block in
//!   L1 first; the stages that cross blocks then run on column chunks sized for
//!   L2 (a four-step scheme), so a long vector is streamed from memory twice.
//! - Rows, and blocks and column chunks of one long row, are spread over the
//!   crate's rayon pool ([`crate::parallel`]).
//!
//! Instruction sets are chosen at run time (from [`cpu::level`]), so one
//! binary runs on any x86-64 CPU (SSE2 is part of the x86-64 baseline) and uses
//! AVX-512F where the CPU has it.

mod generic;
#[cfg(target_arch = "aarch64")]
mod neon;
mod reference;
#[cfg(target_arch = "x86_64")]
mod x86;

pub use reference::fwht_reference;

use crate::cpu;
use crate::error::{Error, Result};
use crate::names::Named;
use crate::parallel;

/// Largest supported row length, 2^26 (256 MiB of f32).
pub const MAX_LOG2_LEN: u32 = 26;

/// Below this many elements a call runs on the calling thread: handing work to
/// the pool costs more than the transform itself.
const PARALLEL_MIN_ELEMENTS: usize = 1 << 16;
/// Work per rayon task when many rows are transformed (elements).
const TASK_ELEMENTS: usize = 1 << 15;
/// Bytes of a column chunk in the cross-block phase of a long row (fits L2).
const COLUMN_CHUNK_BYTES: usize = 1 << 20;

/// A floating-point element type the transform supports (f32, f64).
pub trait Float:
    Copy
    + Send
    + Sync
    + PartialEq
    + PartialOrd
    + std::fmt::Debug
    + std::ops::Add<Output = Self>
    + std::ops::Sub<Output = Self>
    + std::ops::Mul<Output = Self>
    + std::ops::Neg<Output = Self>
    + 'static
{
    /// Zero.
    const ZERO: Self;
    /// One.
    const ONE: Self;
    /// The largest finite value.
    const MAX: Self;
    /// `max |x_i|` over `x` (0 when empty; NaN or inf when `x` has one).
    fn max_abs(x: &[Self]) -> f64;
    /// Conversion from f64 (rounding to nearest).
    fn from_f64(x: f64) -> Self;
    /// Conversion to f64 (exact).
    fn to_f64(self) -> f64;
    #[doc(hidden)]
    fn kernels(isa: Isa) -> Option<Kernels<Self>>;
}

impl Float for f32 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    const MAX: Self = f32::MAX;
    #[inline(always)]
    fn max_abs(x: &[Self]) -> f64 {
        // The magnitude's bits order like the magnitude (NaN above inf), and
        // an integer max vectorises where a float max does not (signed: the
        // bits are non-negative, and SSE2/AVX2 compare signed integers).
        let bits = x
            .iter()
            .fold(0i32, |m, v| m.max((v.to_bits() & 0x7fff_ffff) as i32));
        f64::from(f32::from_bits(bits as u32))
    }
    fn from_f64(x: f64) -> Self {
        x as f32
    }
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
    fn kernels(isa: Isa) -> Option<Kernels<Self>> {
        match isa {
            Isa::Scalar => Some(generic::scalar_kernels_f32()),
            #[cfg(target_arch = "x86_64")]
            Isa::Sse2 | Isa::Avx2 | Isa::Avx512 => x86::kernels_f32(isa),
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => Some(neon::kernels_f32()),
            #[allow(unreachable_patterns)]
            _ => None,
        }
    }
}

impl Float for f64 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    const MAX: Self = f64::MAX;
    #[inline(always)]
    fn max_abs(x: &[Self]) -> f64 {
        let bits = x.iter().fold(0i64, |m, v| {
            m.max((v.to_bits() & 0x7fff_ffff_ffff_ffff) as i64)
        });
        f64::from_bits(bits as u64)
    }
    fn from_f64(x: f64) -> Self {
        x
    }
    fn to_f64(self) -> f64 {
        self
    }
    fn kernels(isa: Isa) -> Option<Kernels<Self>> {
        match isa {
            Isa::Scalar => Some(generic::scalar_kernels_f64()),
            #[cfg(target_arch = "x86_64")]
            Isa::Sse2 | Isa::Avx2 | Isa::Avx512 => x86::kernels_f64(isa),
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => Some(neon::kernels_f64()),
            #[allow(unreachable_patterns)]
            _ => None,
        }
    }
}

/// An instruction set the transform has a kernel for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Isa {
    /// Portable code, one element at a time (the same generic kernel, width 1).
    Scalar,
    /// x86-64 baseline, 128-bit vectors.
    Sse2,
    /// x86-64 with AVX2, 256-bit vectors.
    Avx2,
    /// x86-64 with AVX-512F, 512-bit vectors and lane masks.
    Avx512,
    /// aarch64 Advanced SIMD, 128-bit vectors.
    Neon,
}

impl Isa {
    /// Every instruction set, best last.
    pub const ALL: [Isa; 5] = [Isa::Scalar, Isa::Sse2, Isa::Neon, Isa::Avx2, Isa::Avx512];

    /// Whether this CPU can run the kernel.
    pub fn is_available(self) -> bool {
        match self {
            Isa::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Sse2 => true,
            // The kernels enable "avx2" and "avx512f": both implied by the
            // level that selects them.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => cpu::has(cpu::Level::Avx2),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => cpu::has(cpu::Level::Avx512),
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => true,
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }

    /// The instruction sets this CPU can run, best last.
    pub fn available() -> Vec<Isa> {
        Isa::ALL.into_iter().filter(|i| i.is_available()).collect()
    }

    /// The best instruction set of this CPU (from the cached [`cpu::level`]).
    pub fn best() -> Isa {
        Isa::ALL
            .into_iter()
            .rev()
            .find(|i| i.is_available())
            .unwrap_or(Isa::Scalar)
    }

    /// Lower-case name, as accepted by [`Isa::from_name`] (the table is
    /// [`crate::names`]).
    pub fn name(self) -> &'static str {
        <Isa as Named>::name(self)
    }

    /// Parses a name from [`Isa::name`].
    pub fn from_name(name: &str) -> Option<Isa> {
        <Isa as Named>::from_name(name).ok()
    }
}

/// `(data, n, rows, signs, scale, limit) -> elements completed`: see
/// [`Kernels::rows`].
pub(crate) type RowsKernel<T> =
    unsafe fn(*mut T, usize, usize, *const T, Option<T>, Option<T>) -> usize;

/// The kernels of one instruction set for one element type.
#[doc(hidden)]
#[derive(Clone, Copy)]
pub struct Kernels<T> {
    /// Elements per vector; rows shorter than this use the scalar kernels.
    pub(crate) lanes: usize,
    /// Transforms of `rows` contiguous rows of length `n`, `lanes <= n <= block_len`:
    /// optional diagonal pre-multiplication (`signs`, may be null) and scaling.
    /// With a limit (last argument), stops at the first row that has an
    /// element of magnitude above it, as the first pass loads it; returns the
    /// number of elements completed (see `generic::rows_kernel`).
    pub(crate) rows: RowsKernel<T>,
    /// The stages of a length-`m` transform across the rows of an `m × stride`
    /// matrix, on its first `width` columns (a multiple of `lanes`), then scaling.
    pub(crate) columns: unsafe fn(*mut T, usize, usize, usize, Option<T>),
}

/// Largest row length transformed in one piece: 32 KiB of elements (fits L1d).
pub fn block_len<T>() -> usize {
    (32 * 1024) / std::mem::size_of::<T>()
}

/// Parameters of a transform call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FwhtParams {
    /// Multiply the result by `1/sqrt(n)` (orthonormal transform).
    pub normalize: bool,
    /// Force an instruction set (`None`: the best this CPU has). Used by tests
    /// and benchmarks; an unavailable choice is an error, never a crash.
    pub isa: Option<Isa>,
}

/// Checks that `row_len` is a supported power of two and divides `len`.
pub fn check_row_len(len: usize, row_len: usize) -> Result<()> {
    if row_len == 0 {
        if len == 0 {
            return Ok(());
        }
        return Err(Error::Shape(
            "row length 0 with a non-empty array".to_string(),
        ));
    }
    if !row_len.is_power_of_two() {
        return Err(Error::Shape(format!(
            "row length {row_len} is not a power of two; pad each row to {} (the next power of two)",
            row_len.next_power_of_two()
        )));
    }
    if row_len.trailing_zeros() > MAX_LOG2_LEN {
        return Err(Error::Shape(format!(
            "row length {row_len} exceeds the supported maximum 2^{MAX_LOG2_LEN} = {}",
            1usize << MAX_LOG2_LEN
        )));
    }
    if !len.is_multiple_of(row_len) {
        return Err(Error::Shape(format!(
            "array length {len} is not a multiple of the row length {row_len}"
        )));
    }
    Ok(())
}

/// Checks a transform call before anything is written: the row length (as
/// [`check_row_len`]), the length of each diagonal (`(name, length)`, each
/// must equal `row_len`) and the instruction set. The bindings call it before
/// they copy the input into a caller's `out`, so that a call that fails leaves
/// `out` untouched.
pub fn check_transform<T: Float>(
    len: usize,
    row_len: usize,
    diagonals: &[(&str, usize)],
    isa: Option<Isa>,
) -> Result<()> {
    check_row_len(len, row_len)?;
    for &(name, dlen) in diagonals {
        if dlen != row_len {
            return Err(Error::Shape(format!(
                "{name} has length {dlen} but rows have length {row_len}"
            )));
        }
    }
    kernels_for::<T>(isa).map(|_| ())
}

fn kernels_for<T: Float>(isa: Option<Isa>) -> Result<Kernels<T>> {
    let isa = isa.unwrap_or_else(Isa::best);
    if !isa.is_available() {
        return Err(Error::value(
            "isa",
            format!(
                "instruction set {} is not available on this CPU (available: {})",
                isa.name(),
                Isa::available()
                    .iter()
                    .map(|i| i.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    T::kernels(isa).ok_or_else(|| Error::value("isa", format!("no kernel for {}", isa.name())))
}

/// Transforms `count` consecutive rows of length `n <= block_len`. With a
/// `limit`, stops at the first row with an element of magnitude above it;
/// returns the number of elements completed, as [`Kernels::rows`] (rows
/// shorter than a vector are stopped untouched).
///
/// # Safety
/// `data` points to `count * n` valid elements; `signs` is null or points to `n`.
unsafe fn transform_rows<T: Float>(
    k: &Kernels<T>,
    data: *mut T,
    n: usize,
    count: usize,
    signs: *const T,
    scale: Option<T>,
    limit: Option<T>,
) -> usize {
    debug_assert!(n <= block_len::<T>());
    if n < k.lanes {
        // Rows shorter than a vector: the portable kernel (the same
        // operations, so the same bits), many rows per call.
        if let Some(scalar) = T::kernels(Isa::Scalar) {
            return (scalar.rows)(data, n, count, signs, scale, limit);
        }
    }
    (k.rows)(data, n, count, signs, scale, limit)
}

/// Completes the transform of a row (`n <= block_len`) that the kernel
/// stopped after the first pass of its first `done` elements (see
/// [`Kernels::rows`]), scaling the whole row by `2^-e` first: the part
/// already done after its first pass, the rest before. Without a limit, the
/// same operations as an uninterrupted transform.
fn finish_row<T: Float>(
    k: &Kernels<T>,
    row: &mut [T],
    done: usize,
    diag: Option<&[T]>,
    scale: Option<T>,
    e: i32,
) {
    let n = row.len();
    scale_pow2(row, -e);
    let diag_at = |j: usize| diag.map_or(std::ptr::null(), |d| d[j..].as_ptr());
    if done == 0 {
        // SAFETY: one row of n elements; the diagonal has n.
        unsafe { transform_rows(k, row.as_mut_ptr(), n, 1, diag_at(0), scale, None) };
        return;
    }
    // The first pass works on groups of 8 vectors; `done` is a multiple.
    // (Rows shorter than a vector, which go to the portable kernel, are
    // always stopped untouched.)
    let group = 8 * k.lanes;
    debug_assert!(done.is_multiple_of(group) && n > group);
    for j in (done..n).step_by(group) {
        // SAFETY: [j, j + group) is inside the row; so is the diagonal's.
        // A row of one group is transformed by its first pass alone.
        unsafe { (k.rows)(row[j..].as_mut_ptr(), group, 1, diag_at(j), None, None) };
    }
    // The remaining stages (half-widths from one group up), as the columns
    // of the (n / group) × group matrix: the same butterflies, same bits.
    // SAFETY: the matrix is the row.
    unsafe { (k.columns)(row.as_mut_ptr(), n / group, group, group, scale) };
}

/// Runs `f(0..count)`, on the pool when `parallel`.
fn for_each<F: Fn(usize) + Sync>(count: usize, parallel: bool, f: F) {
    if parallel {
        parallel::for_each_index(count, f);
    } else {
        (0..count).for_each(f);
    }
}

/// One transform of a chain: `x ← scale · H · diag(diag) · x`, with an
/// optional overflow guard.
#[derive(Clone, Copy)]
struct Stage<'a, T> {
    /// The diagonal (`n` elements), if any.
    diag: Option<&'a [T]>,
    /// The scaling after the last butterfly stage, if any.
    scale: Option<T>,
    /// Prescaling of the rows that could overflow (see [`Guard`]).
    guard: Option<Guard>,
}

impl<T: Float> Stage<'_, T> {
    fn diag_ptr(&self) -> *const T {
        self.diag.map_or(std::ptr::null(), <[T]>::as_ptr)
    }

    /// The limit on `|x|` the kernels check (see [`Guard`]).
    fn limit(&self) -> Option<T> {
        self.guard.map(|g| T::from_f64(g.threshold))
    }
}

/// Largest exponent of one prescaling, far beyond what any input needs (at
/// most `log2(MAX) + 3 + log2_growth`, under 1100 for f64 with the largest
/// diagonal): it only bounds the scaling loop.
const MAX_PRESCALE_EXP: i32 = 1 << 12;
/// Largest power of two applied in one multiplication: `2^±100` are normal
/// numbers in f32.
const SCALE_STEP: i32 = 100;

/// Overflow guard of one transform.
///
/// Every intermediate value of a Walsh–Hadamard transform is bounded by the
/// largest output of that transform (an intermediate is an average of outputs
/// of the remaining stages), and an output by `n · max|d| · max|x|`. Yet one
/// output that overflows turns others whose exact value is finite into NaN
/// (`inf - inf` in a later butterfly). So a row with an element above
/// `threshold` (a power of two, at most `MAX / (4 · 2^log2_growth)`) is
/// transformed scaled by `2^-e` and scaled back by `2^e` afterwards: where
/// the exact result overflows it becomes ±inf, and elsewhere the result is
/// that of exact-range arithmetic. Powers of two only change exponents, so
/// the bits are the unscaled ones except where the scaling makes an element
/// subnormal; the difference is then below `2^e` times the smallest
/// subnormal, far below the rounding error of the row's transform. Rows
/// below the threshold (all rows of ordinary data) are untouched: the
/// kernels check each row as their first pass loads it, before storing
/// anything of it, so the check costs no extra pass over the data.
#[derive(Clone, Copy, Debug)]
struct Guard {
    /// `log2` of the growth bound: `|intermediates|, |outputs| <= 2^log2_growth · max|x|`.
    log2_growth: f64,
    /// `log2` of the largest magnitude allowed to arise (`MAX / 4`).
    limit: f64,
    /// `max|x|` of a row above which it is prescaled.
    threshold: f64,
}

impl Guard {
    /// The guard of a transform with this growth; `None` where the growth is
    /// not finite (a diagonal with inf or NaN gives a non-finite result
    /// anyway, an all-zero one a zero result).
    fn new<T: Float>(log2_growth: f64) -> Option<Guard> {
        if !log2_growth.is_finite() {
            return None;
        }
        let limit = T::MAX.to_f64().log2() - 2.0;
        Some(Guard {
            log2_growth,
            limit,
            // A power of two, so that it is exact in T (or 0 or inf).
            threshold: (limit - log2_growth).floor().exp2(),
        })
    }

    /// The prescaling exponent of a row whose largest magnitude is `m` (0:
    /// none; non-finite rows give non-finite results anyway).
    fn exponent(&self, m: f64) -> i32 {
        if !(m.is_finite() && m > self.threshold) {
            return 0;
        }
        let need = m.log2() + self.log2_growth - self.limit;
        (need.ceil() as i32).clamp(1, MAX_PRESCALE_EXP)
    }
}

/// Multiplies `x` by `2^e`, in steps that are exact powers of two of `T`
/// (an overflow gives ±inf, as the exact product would).
fn scale_pow2<T: Float>(x: &mut [T], e: i32) {
    let mut rest = e;
    while rest != 0 {
        let step = rest.clamp(-SCALE_STEP, SCALE_STEP);
        let f = T::from_f64(f64::from(step).exp2());
        for v in x.iter_mut() {
            *v = *v * f;
        }
        rest -= step;
    }
}

/// Applies `stages` in order to every row of `data` (rows of `n`, a supported
/// length). A guarded stage transforms rows until the kernel meets one above
/// the guard's threshold, transforms that row prescaled (see [`Guard`]), and
/// goes on; the prescaled rows are scaled back once, after the last stage.
/// Rows longer than [`block_len`] go through [`long_row`], whose blocks may
/// run in parallel (`threads_inside`).
///
/// Panics if a stage's diagonal does not have `n` elements (callers check).
fn chain_rows<T: Float>(
    k: &Kernels<T>,
    data: &mut [T],
    n: usize,
    stages: &[Stage<'_, T>],
    threads_inside: bool,
) {
    assert!(stages.iter().all(|s| s.diag.is_none_or(|d| d.len() == n)));
    if n == 0 {
        return;
    }
    if n > block_len::<T>() {
        for row in data.chunks_exact_mut(n) {
            let applied: i32 = stages
                .iter()
                .map(|st| long_row(k, row, st, threads_inside))
                .sum();
            if applied != 0 {
                scale_pow2(row, applied);
            }
        }
        return;
    }
    let count = data.len() / n;
    // (row, exponent) of the rows left scaled, sorted by row.
    let mut applied: Vec<(usize, i32)> = Vec::new();
    for st in stages {
        let (diag, limit) = (st.diag_ptr(), st.limit());
        let mut r = 0;
        while r < count {
            // SAFETY: rows [r, count) are inside `data`; the diagonal has n.
            let done = unsafe {
                transform_rows(
                    k,
                    data[r * n..].as_mut_ptr(),
                    n,
                    count - r,
                    diag,
                    st.scale,
                    limit,
                )
            };
            if done == (count - r) * n {
                break;
            }
            // Row r has an element above the threshold; its first `off`
            // elements have had the first pass, the rest is untouched.
            r += done / n;
            let off = done % n;
            let row = &mut data[r * n..(r + 1) * n];
            // The row's largest magnitude is in the untouched part (the part
            // done is below the threshold).
            let e = st.guard.map_or(0, |g| g.exponent(T::max_abs(&row[off..])));
            finish_row(k, row, off, st.diag, st.scale, e);
            if e != 0 {
                match applied.binary_search_by_key(&r, |p| p.0) {
                    Ok(i) => applied[i].1 += e,
                    Err(i) => applied.insert(i, (r, e)),
                }
            }
            r += 1;
        }
    }
    for &(r, e) in &applied {
        scale_pow2(&mut data[r * n..(r + 1) * n], e);
    }
}

/// Four-step transform of one row longer than [`block_len`]: full transforms
/// of each L1 block, then the stages that cross blocks on column chunks (an
/// `m × block` matrix, transformed along `m`). With a guard, the kernel checks
/// each block as it transforms it and leaves a block above the threshold
/// untouched; if there is one, the whole row is scaled by `2^-e` before the
/// cross-block stages (the blocks already transformed after their transform,
/// the others before). Returns `e` (0 when nothing was scaled): the row is
/// left scaled by `2^-e`.
fn long_row<T: Float>(
    k: &Kernels<T>,
    row: &mut [T],
    st: &Stage<'_, T>,
    threads_inside: bool,
) -> i32 {
    let n = row.len();
    let block = block_len::<T>();
    let m = n / block;
    let width = (COLUMN_CHUNK_BYTES / (m * std::mem::size_of::<T>()))
        .clamp(k.lanes.max(64 / std::mem::size_of::<T>()), block);
    let shared = parallel::DisjointMut::new(row);
    let kk = *k;
    let (diag, scale, guard, limit) = (st.diag, st.scale, st.guard, st.limit());
    // SAFETY (all closures below): block b covers elements
    // [b*block, (b+1)*block) of the row, and each task touches only its own
    // block (or, in the column phase, its own columns of every block).
    let block_mut = move |b: usize| unsafe { shared.slice(b * block, block) };
    let diag_at = move |j: usize| diag.map_or(std::ptr::null(), |d| d[j..].as_ptr());
    // (block, elements done) of the blocks the kernel stopped in.
    let pending = std::sync::Mutex::new(Vec::new());
    for_each(m, threads_inside, |b| {
        // SAFETY: block b, and the diagonal's elements for it.
        let done = unsafe {
            (kk.rows)(
                block_mut(b).as_mut_ptr(),
                block,
                1,
                diag_at(b * block),
                None,
                limit,
            )
        };
        if done < block {
            pending
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push((b, done));
        }
    });
    let pending = pending
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    // The row's exponent: that of its largest element, in the untouched part
    // of a pending block.
    let e = pending
        .iter()
        .map(|&(b, done)| guard.map_or(0, |g| g.exponent(T::max_abs(&block_mut(b)[done..]))))
        .max()
        .unwrap_or(0);
    if !pending.is_empty() {
        let mut left = vec![None; m];
        for &(b, done) in &pending {
            left[b] = Some(done);
        }
        for_each(m, threads_inside, |b| match left[b] {
            Some(done) => {
                let s = diag.map(|d| &d[b * block..(b + 1) * block]);
                finish_row(&kk, block_mut(b), done, s, None, e);
            }
            None => scale_pow2(block_mut(b), -e),
        });
    }
    for_each(block / width, threads_inside, |c| unsafe {
        (kk.columns)(shared.ptr_at(c * width), m, block, width, scale);
    });
    e
}

/// Core driver: the `stages` on every row of `data` (rows of `n`; callers
/// have run [`check_transform`]), spread over the pool for large calls.
fn run_chain<T: Float>(
    data: &mut [T],
    n: usize,
    stages: &[Stage<'_, T>],
    isa: Option<Isa>,
) -> Result<()> {
    let k = kernels_for::<T>(isa)?;
    if data.is_empty() {
        return Ok(());
    }
    let rows = data.len() / n;
    let threads = parallel::num_threads();
    if data.len() < PARALLEL_MIN_ELEMENTS {
        chain_rows(&k, data, n, stages, false);
        return Ok(());
    }
    // Large calls go through `parallel::for_each_index` even on one thread:
    // it polls for interruption (Ctrl-C) between its tasks.
    if rows >= 2 * threads || n <= block_len::<T>() {
        // A few tasks per thread for balance, none so small that the hand-off
        // shows.
        let rows_per_task = (TASK_ELEMENTS / n)
            .max(rows / threads.saturating_mul(4))
            .max(1);
        parallel::for_each_chunk_mut(data, rows_per_task * n, |_, chunk| {
            chain_rows(&k, chunk, n, stages, false);
        });
    } else {
        // A few long rows, parallel inside each.
        chain_rows(&k, data, n, stages, true);
    }
    Ok(())
}

/// `log2` of the growth bound of one transform of length `n` after a
/// diagonal whose largest magnitude is `diagonal_max`.
fn log2_growth(n: usize, diagonal_max: Option<f64>) -> f64 {
    (n.max(1) as f64).log2() + diagonal_max.map_or(0.0, f64::log2)
}

fn normalization<T: Float>(normalize: bool, n: usize) -> Option<T> {
    normalize.then(|| T::from_f64(1.0 / (n as f64).sqrt()))
}

/// Unnormalised (or, with `params.normalize`, orthonormal) Walsh–Hadamard
/// transform of every row of `data`, in place.
///
/// `data` holds `data.len() / row_len` rows of `row_len` elements, C order;
/// `row_len` is a power of two from 1 to 2^26. Where the exact result
/// overflows the element type the output is ±inf, and every output whose
/// exact value is finite is computed as in exact-range arithmetic (never
/// inf or NaN from an overflow elsewhere in the row).
pub fn fwht<T: Float>(data: &mut [T], row_len: usize, params: &FwhtParams) -> Result<()> {
    check_transform::<T>(data.len(), row_len, &[], params.isa)?;
    let stage = Stage {
        diag: None,
        scale: normalization(params.normalize, row_len),
        guard: Guard::new::<T>(log2_growth(row_len, None)),
    };
    run_chain(data, row_len, &[stage], params.isa)
}

/// `H · diag(signs) · x` for every row `x` of `data`, in one pass (the
/// multiplication is fused into the first butterfly stage); overflow as
/// [`fwht`].
pub fn randomized_hadamard<T: Float>(
    data: &mut [T],
    row_len: usize,
    signs: &[T],
    params: &FwhtParams,
) -> Result<()> {
    check_transform::<T>(data.len(), row_len, &[("signs", signs.len())], params.isa)?;
    let stage = Stage {
        diag: Some(signs),
        scale: normalization(params.normalize, row_len),
        guard: Guard::new::<T>(log2_growth(row_len, Some(T::max_abs(signs)))),
    };
    run_chain(data, row_len, &[stage], params.isa)
}

/// One structured-orthogonal block of SORF (Yu et al., `NeurIPS` 2016), applied to
/// every row `x` of `data` without forming a matrix:
/// `sqrt(n) · Ĥ D1 Ĥ D2 Ĥ D3 x` with `Ĥ = H/sqrt(n)` the orthonormal transform,
/// i.e. `(1/n) · H D1 H D2 H D3 x`. The factor `1/n` is a power of two, so the
/// scaling is exact. Each of the three transforms is guarded as [`fwht`]'s,
/// and a prescaled row stays scaled until the end: the result overflows only
/// where the exact one does (intermediate underflow, as in any floating-point
/// chain, is not guarded).
pub fn sorf_block<T: Float>(
    data: &mut [T],
    row_len: usize,
    d1: &[T],
    d2: &[T],
    d3: &[T],
    isa: Option<Isa>,
) -> Result<()> {
    check_transform::<T>(
        data.len(),
        row_len,
        &[("d1", d1.len()), ("d2", d2.len()), ("d3", d3.len())],
        isa,
    )?;
    let stage = |d: &[T]| Guard::new::<T>(log2_growth(row_len, Some(T::max_abs(d))));
    let last = (row_len > 0).then(|| T::from_f64(1.0 / row_len as f64));
    let stages = [
        Stage {
            diag: Some(d3),
            scale: None,
            guard: stage(d3),
        },
        Stage {
            diag: Some(d2),
            scale: None,
            guard: stage(d2),
        },
        Stage {
            diag: Some(d1),
            scale: last,
            guard: stage(d1),
        },
    ];
    run_chain(data, row_len, &stages, isa)
}

/// [`sorf_block`] on the calling thread only, for callers that already
/// parallelise (same bits: the transform does not depend on threads).
pub fn sorf_block_serial<T: Float>(
    data: &mut [T],
    row_len: usize,
    d1: &[T],
    d2: &[T],
    d3: &[T],
    params: &FwhtParams,
) -> Result<()> {
    check_row_len(data.len(), row_len)?;
    for (name, d) in [("d1", d1), ("d2", d2), ("d3", d3)] {
        if d.len() != row_len {
            return Err(Error::Shape(format!(
                "{name} has length {} but rows have length {row_len}",
                d.len()
            )));
        }
    }
    let k = kernels_for::<T>(params.isa)?;
    let last = Some(T::from_f64(1.0 / row_len.max(1) as f64));
    let stages = [d3, d2, d1].map(|d| Stage {
        diag: Some(d),
        scale: None,
        guard: None,
    });
    let stages = [
        stages[0],
        stages[1],
        Stage {
            scale: last,
            ..stages[2]
        },
    ];
    chain_rows(&k, data, row_len, &stages, false);
    Ok(())
}

#[cfg(test)]
mod tests;
