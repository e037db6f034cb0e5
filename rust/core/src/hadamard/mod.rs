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
//! Instruction sets are chosen at run time (`is_x86_feature_detected!`), so one
//! binary runs on any x86-64 CPU (SSE2 is part of the x86-64 baseline) and uses
//! AVX-512F where the CPU has it.

mod generic;
#[cfg(target_arch = "aarch64")]
mod neon;
mod reference;
#[cfg(target_arch = "x86_64")]
mod x86;

pub use reference::fwht_reference;

use crate::error::{Error, Result};
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
    fn max_abs(x: &[Self]) -> f64 {
        // The magnitude's bits order like the magnitude (NaN above inf), and
        // an integer max vectorises where a float max does not.
        let bits = x.iter().fold(0u32, |m, v| m.max(v.to_bits() & 0x7fff_ffff));
        f32::from_bits(bits) as f64
    }
    fn from_f64(x: f64) -> Self {
        x as f32
    }
    fn to_f64(self) -> f64 {
        self as f64
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
    fn max_abs(x: &[Self]) -> f64 {
        let bits = x
            .iter()
            .fold(0u64, |m, v| m.max(v.to_bits() & 0x7fff_ffff_ffff_ffff));
        f64::from_bits(bits)
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
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => std::arch::is_x86_feature_detected!("avx2"),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => std::arch::is_x86_feature_detected!("avx512f"),
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

    /// The best instruction set of this CPU.
    pub fn best() -> Isa {
        // Cached in an atomic rather than a OnceLock: a fork() while another
        // thread initialises a OnceLock leaves it locked in the child.
        static BEST: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(u8::MAX);
        let cached = BEST.load(std::sync::atomic::Ordering::Relaxed);
        if let Some(&isa) = Isa::ALL.get(cached as usize) {
            return isa;
        }
        let best = *Isa::available().last().unwrap_or(&Isa::Scalar);
        let index = Isa::ALL.iter().position(|&i| i == best).unwrap_or(0);
        BEST.store(index as u8, std::sync::atomic::Ordering::Relaxed);
        best
    }

    /// Lower-case name, as accepted by [`Isa::from_name`].
    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Sse2 => "sse2",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512f",
            Isa::Neon => "neon",
        }
    }

    /// Parses a name from [`Isa::name`].
    pub fn from_name(name: &str) -> Option<Isa> {
        Isa::ALL.into_iter().find(|i| i.name() == name)
    }
}

/// The kernels of one instruction set for one element type.
#[doc(hidden)]
#[derive(Clone, Copy)]
pub struct Kernels<T> {
    /// Elements per vector; rows shorter than this use the scalar kernels.
    pub(crate) lanes: usize,
    /// Transforms of `rows` contiguous rows of length `n`, `lanes <= n <= block_len`:
    /// optional diagonal pre-multiplication (`signs`, may be null) and scaling.
    pub(crate) rows: unsafe fn(*mut T, usize, usize, *const T, Option<T>),
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

/// A raw pointer that may cross threads. Safety rests with the caller: the tasks
/// that share it touch disjoint elements.
#[derive(Clone, Copy)]
struct SendPtr<T>(*mut T);
// SAFETY: used only to hand disjoint parts of one buffer to rayon tasks.
unsafe impl<T> Send for SendPtr<T> {}
unsafe impl<T> Sync for SendPtr<T> {}

impl<T> SendPtr<T> {
    /// The pointer (a method, so closures capture the whole wrapper).
    fn get(self) -> *mut T {
        self.0
    }

    /// Offsets the pointer.
    fn at(self, offset: usize) -> *mut T {
        // SAFETY: callers stay inside the buffer the pointer came from.
        unsafe { self.0.add(offset) }
    }
}

/// Transforms `count` consecutive rows of any supported length,
/// `threads_inside` allowing the blocks and column chunks of a long row to run
/// in parallel.
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
    threads_inside: bool,
) {
    if n < k.lanes {
        let signs = (!signs.is_null()).then(|| std::slice::from_raw_parts(signs, n));
        for r in 0..count {
            let slice = std::slice::from_raw_parts_mut(data.add(r * n), n);
            reference::fwht_reference(slice, signs, scale);
        }
        return;
    }
    if n <= block_len::<T>() {
        (k.rows)(data, n, count, signs, scale);
        return;
    }
    for r in 0..count {
        long_row(k, data.add(r * n), n, signs, scale, threads_inside);
    }
}

/// Four-step transform of one row longer than [`block_len`].
///
/// # Safety
/// As [`transform_rows`] with `count = 1`.
unsafe fn long_row<T: Float>(
    k: &Kernels<T>,
    row: *mut T,
    n: usize,
    signs: *const T,
    scale: Option<T>,
    threads_inside: bool,
) {
    let block = block_len::<T>();
    // Four-step scheme: full transforms of each L1 block, then the stages that
    // cross blocks on column chunks (an m × block matrix, transformed along m).
    let m = n / block;
    let width = (COLUMN_CHUNK_BYTES / (m * std::mem::size_of::<T>()))
        .clamp(k.lanes.max(64 / std::mem::size_of::<T>()), block);
    let ptr = SendPtr(row);
    let sgn = SendPtr(signs as *mut T);
    let kk = *k;
    let do_block = move |b: usize| {
        let s = if sgn.get().is_null() {
            std::ptr::null()
        } else {
            sgn.at(b * block) as *const T
        };
        // SAFETY: block b covers elements [b*block, (b+1)*block) of the row.
        unsafe { (kk.rows)(ptr.at(b * block), block, 1, s, None) };
    };
    let do_chunk = move |c: usize| {
        // SAFETY: chunk c covers columns [c*width, (c+1)*width) of every block.
        unsafe { (kk.columns)(ptr.at(c * width), m, block, width, scale) };
    };
    if threads_inside {
        parallel::for_each_index(m, do_block);
        parallel::for_each_index(block / width, do_chunk);
    } else {
        (0..m).for_each(do_block);
        (0..block / width).for_each(do_chunk);
    }
}

/// Core driver: every row of `data` (rows of `row_len`), optionally
/// pre-multiplied by the diagonal `signs` and scaled by `scale`. With
/// `guard = Some(log2_growth)`, rows that could overflow are prescaled (see
/// [`overflow_prescale`]); each task scans its own rows just before it
/// transforms them, while they are in cache, so the check costs little.
fn run_rows<T: Float>(
    data: &mut [T],
    row_len: usize,
    signs: Option<&[T]>,
    scale: Option<T>,
    isa: Option<Isa>,
    guard: Option<f64>,
) -> Result<()> {
    let diagonal = signs.map(|s| ("signs", s.len()));
    check_transform::<T>(data.len(), row_len, diagonal.as_slice(), isa)?;
    let k = kernels_for::<T>(isa)?;
    if data.is_empty() {
        return Ok(());
    }
    let n = row_len;
    let rows = data.len() / n;
    let sp = signs.map_or(std::ptr::null(), |s| s.as_ptr());
    let sgn = SendPtr(sp as *mut T);
    let total = data.len();
    let threads = parallel::num_threads();
    let guarded = |chunk: &mut [T], count: usize| {
        let hot = guard.map_or_else(Vec::new, |g| hot_rows(chunk, n, g));
        scale_rows(chunk, n, &hot, -1);
        // SAFETY: `chunk` has count * n elements, `sgn` is null or has n.
        unsafe { transform_rows(&k, chunk.as_mut_ptr(), n, count, sgn.get(), scale, false) };
        scale_rows(chunk, n, &hot, 1);
    };
    if total < PARALLEL_MIN_ELEMENTS {
        guarded(data, rows);
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
        let tasks = rows.div_ceil(rows_per_task);
        let base = SendPtr(data.as_mut_ptr());
        parallel::for_each_index(tasks, |t| {
            let first = t * rows_per_task;
            let count = rows_per_task.min(rows - first); // SAFETY: task t owns rows [first, first + count).
            let chunk = unsafe { std::slice::from_raw_parts_mut(base.at(first * n), count * n) };
            guarded(chunk, count);
        });
    } else {
        // A few long rows, parallel inside each: one scan of them first.
        let hot = guard.map_or_else(Vec::new, |g| overflow_prescale(data, n, g));
        scale_rows(data, n, &hot, -1);
        // SAFETY: as above; parallelism is inside each row.
        unsafe { transform_rows(&k, data.as_mut_ptr(), n, rows, sgn.get(), scale, true) };
        scale_rows(data, n, &hot, 1);
    }
    Ok(())
}

/// Largest exponent of the overflow prescaling: `2^±e` stay normal numbers
/// in f32 for `e <= 100`.
const MAX_PRESCALE_EXP: i32 = 100;

/// Rows whose transform could overflow although its exact result is finite,
/// each with the exponent `e` of the exact power of two `2^-e` that keeps it
/// in range.
///
/// Every intermediate value of a Walsh–Hadamard transform is bounded by the
/// largest output of that transform (an intermediate is an average of outputs
/// of the remaining stages), and an output by `n · max|x|`. So a row whose
/// `max|x| · 2^log2_growth` stays below `MAX / 4` cannot overflow, and one
/// above it is brought below by `2^-e` (exact: it only changes exponents,
/// except for elements that fall below the smallest normal number, which are
/// then far too small to change the result's rounding).
fn overflow_prescale<T: Float>(data: &[T], n: usize, log2_growth: f64) -> Vec<(usize, i32)> {
    if data.is_empty() || n == 0 || !log2_growth.is_finite() {
        return Vec::new();
    }
    let rows = data.len() / n;
    let rows_per_task = (TASK_ELEMENTS / n).max(1);
    let found = std::sync::Mutex::new(Vec::new());
    let scan = |t: usize| {
        let first = t * rows_per_task;
        let last = (first + rows_per_task).min(rows);
        let hot = hot_rows(&data[first * n..last * n], n, log2_growth);
        if !hot.is_empty() {
            let mut all = found.lock().unwrap_or_else(|e| e.into_inner());
            all.extend(hot.into_iter().map(|(r, e)| (first + r, e)));
        }
    };
    let tasks = rows.div_ceil(rows_per_task);
    if data.len() < PARALLEL_MIN_ELEMENTS {
        (0..tasks).for_each(scan);
    } else {
        parallel::for_each_index(tasks, scan);
    }
    let mut hot = found.into_inner().unwrap_or_else(|e| e.into_inner());
    hot.sort_unstable();
    hot
}

/// The rows of `chunk` (rows of `n`) that need prescaling, as
/// [`overflow_prescale`], on the calling thread; no allocation when none does.
fn hot_rows<T: Float>(chunk: &[T], n: usize, log2_growth: f64) -> Vec<(usize, i32)> {
    let mut hot = Vec::new();
    if n == 0 || !log2_growth.is_finite() {
        return hot;
    }
    let limit = T::MAX.to_f64().log2() - 2.0;
    for (r, row) in chunk.chunks_exact(n).enumerate() {
        let m = T::max_abs(row);
        // Non-finite input gives non-finite output anyway; zero rows are safe.
        if m.is_finite() && m > 0.0 {
            let need = m.log2() + log2_growth - limit;
            if need > 0.0 {
                hot.push((r, (need.ceil() as i32).clamp(1, MAX_PRESCALE_EXP)));
            }
        }
    }
    hot
}

/// Multiplies each listed row `(r, e)` of `data` by `2^(sign·e)` (exact).
fn scale_rows<T: Float>(data: &mut [T], n: usize, hot: &[(usize, i32)], sign: i32) {
    for &(r, e) in hot {
        let f = T::from_f64(2f64.powi(sign * e));
        data[r * n..(r + 1) * n]
            .iter_mut()
            .for_each(|v| *v = *v * f);
    }
}

/// Runs `transform` on `data` with the rows that could overflow (see
/// [`overflow_prescale`]) scaled by `2^-e` before and `2^e` after: the
/// result is what exact-range arithmetic would give, bit for bit, and only
/// rows that need it pay more than one read of the data.
fn without_overflow<T: Float>(
    data: &mut [T],
    n: usize,
    log2_growth: f64,
    transform: impl FnOnce(&mut [T]) -> Result<()>,
) -> Result<()> {
    let hot = overflow_prescale(data, n, log2_growth);
    scale_rows(data, n, &hot, -1);
    transform(data)?;
    scale_rows(data, n, &hot, 1);
    Ok(())
}

/// `log2` of the growth bound of `stages` transforms of length `n`, each after
/// a diagonal of the given largest magnitude.
fn log2_growth(n: usize, stages: u32, diagonal_max: &[f64]) -> f64 {
    stages as f64 * (n.max(1) as f64).log2() + diagonal_max.iter().map(|m| m.log2()).sum::<f64>()
}

fn normalization<T: Float>(normalize: bool, n: usize) -> Option<T> {
    normalize.then(|| T::from_f64(1.0 / (n as f64).sqrt()))
}

/// Unnormalised (or, with `params.normalize`, orthonormal) Walsh–Hadamard
/// transform of every row of `data`, in place.
///
/// `data` holds `data.len() / row_len` rows of `row_len` elements, C order;
/// `row_len` is a power of two from 1 to 2^26. The normalised transform never
/// overflows where its exact result is finite (the unnormalised one cannot:
/// its intermediates are bounded by its outputs).
pub fn fwht<T: Float>(data: &mut [T], row_len: usize, params: &FwhtParams) -> Result<()> {
    let scale = normalization(params.normalize, row_len);
    // Only the scaled transform can overflow where its result is finite.
    let guard = scale.map(|_| log2_growth(row_len, 1, &[]));
    run_rows(data, row_len, None, scale, params.isa, guard)
}

/// `H · diag(signs) · x` for every row `x` of `data`, in one pass (the
/// multiplication is fused into the first butterfly stage).
pub fn randomized_hadamard<T: Float>(
    data: &mut [T],
    row_len: usize,
    signs: &[T],
    params: &FwhtParams,
) -> Result<()> {
    let scale = normalization(params.normalize, row_len);
    let guard = scale.map(|_| log2_growth(row_len, 1, &[T::max_abs(signs)]));
    run_rows(data, row_len, Some(signs), scale, params.isa, guard)
}

/// One structured-orthogonal block of SORF (Yu et al., NeurIPS 2016), applied to
/// every row `x` of `data` without forming a matrix:
/// `sqrt(n) · Ĥ D1 Ĥ D2 Ĥ D3 x` with `Ĥ = H/sqrt(n)` the orthonormal transform,
/// i.e. `(1/n) · H D1 H D2 H D3 x`. The factor `1/n` is a power of two, so the
/// scaling is exact; rows large enough for the unscaled intermediates to
/// overflow are computed prescaled (same bits as exact-range arithmetic).
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
    let scale = (row_len > 0).then(|| T::from_f64(1.0 / row_len as f64));
    let growth = log2_growth(
        row_len,
        3,
        &[T::max_abs(d1), T::max_abs(d2), T::max_abs(d3)],
    );
    without_overflow(data, row_len, growth, |data| {
        run_rows(data, row_len, Some(d3), None, isa, None)?;
        run_rows(data, row_len, Some(d2), None, isa, None)?;
        run_rows(data, row_len, Some(d1), scale, isa, None)
    })
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
    if data.is_empty() {
        return Ok(());
    }
    let rows = data.len() / row_len;
    let scale = Some(T::from_f64(1.0 / row_len as f64));
    for (d, sc) in [(d3, None), (d2, None), (d1, scale)] {
        // SAFETY: data has rows · row_len elements, d has row_len.
        unsafe { transform_rows(&k, data.as_mut_ptr(), row_len, rows, d.as_ptr(), sc, false) };
    }
    Ok(())
}

#[cfg(test)]
mod tests;
