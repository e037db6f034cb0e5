use proptest::prelude::*;

use super::*;

/// Entry (i, j) of the Sylvester Hadamard matrix: (-1)^popcount(i & j).
fn hadamard_entry(i: usize, j: usize) -> f64 {
    if (i & j).count_ones().is_multiple_of(2) {
        1.0
    } else {
        -1.0
    }
}

fn naive(x: &[f64]) -> Vec<f64> {
    let n = x.len();
    (0..n)
        .map(|i| (0..n).map(|j| hadamard_entry(i, j) * x[j]).sum())
        .collect()
}

/// Deterministic pseudo-random test data with awkward magnitudes, so that
/// rounding differs between summation orders (and a wrong order is caught).
fn data<T: Float>(len: usize, seed: u64) -> Vec<T> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let u = (s >> 11) as f64 / (1u64 << 53) as f64;
            let e = ((s & 31) as i32) - 16;
            T::from_f64((u - 0.5) * 2f64.powi(e))
        })
        .collect()
}

fn bits_equal<T: Float>(a: &[T], b: &[T]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            x.to_f64().to_bits() == y.to_f64().to_bits()
                || (x.to_f64().is_nan() && y.to_f64().is_nan())
        })
}

fn reference_rows<T: Float>(x: &[T], n: usize, signs: Option<&[T]>, scale: Option<T>) -> Vec<T> {
    let mut out = x.to_vec();
    for row in out.chunks_exact_mut(n) {
        fwht_reference(row, signs, scale);
    }
    out
}

fn check_all_isas<T: Float>(n: usize, rows: usize, normalize: bool, with_signs: bool) {
    let x = data::<T>(n * rows, (n * 31 + rows) as u64);
    let signs: Vec<T> = data::<T>(n, 7)
        .into_iter()
        .map(|v| if v > T::ZERO { T::ONE } else { -T::ONE })
        .collect();
    let scale = normalize.then(|| T::from_f64(1.0 / (n as f64).sqrt()));
    let expected = reference_rows(&x, n, with_signs.then_some(&signs[..]), scale);
    for isa in Isa::available() {
        let mut got = x.clone();
        let params = FwhtParams {
            normalize,
            isa: Some(isa),
        };
        if with_signs {
            randomized_hadamard(&mut got, n, &signs, &params).unwrap();
        } else {
            fwht(&mut got, n, &params).unwrap();
        }
        assert!(
            bits_equal(&got, &expected),
            "{} differs from the reference for n={n} rows={rows} normalize={normalize} signs={with_signs}",
            isa.name()
        );
    }
}

#[test]
fn every_isa_matches_reference_bit_for_bit() {
    for log_n in 0..=15 {
        let n = 1usize << log_n;
        let rows = if n <= 64 { 5 } else { 2 };
        for &normalize in &[false, true] {
            for &signs in &[false, true] {
                check_all_isas::<f32>(n, rows, normalize, signs);
                check_all_isas::<f64>(n, rows, normalize, signs);
            }
        }
    }
}

#[test]
fn long_rows_beyond_the_block_use_the_four_step_path_exactly() {
    // 2^17 elements is 4 blocks (f64) / 16 blocks... and exercises the column phase.
    for log_n in [14, 16, 17] {
        check_all_isas::<f32>(1 << log_n, 1, true, true);
        check_all_isas::<f64>(1 << log_n, 1, false, false);
    }
}

#[test]
fn thread_count_does_not_change_bits() {
    let n = 1 << 17;
    let x = data::<f32>(n * 3, 3);
    let mut results = Vec::new();
    for threads in [1, 2, 3] {
        crate::parallel::set_num_threads(threads);
        let mut y = x.clone();
        fwht(&mut y, n, &FwhtParams::default()).unwrap();
        let mut z = data::<f64>(1 << 12, 5).repeat(40);
        fwht(&mut z, 1 << 12, &FwhtParams::default()).unwrap();
        results.push((y, z));
    }
    crate::parallel::set_num_threads(0);
    for r in &results[1..] {
        assert!(bits_equal(&r.0, &results[0].0));
        assert!(bits_equal(&r.1, &results[0].1));
    }
}

#[test]
fn matches_naive_product() {
    for log_n in 0..=8 {
        let n = 1 << log_n;
        let x = data::<f64>(n, log_n as u64);
        let mut y = x.clone();
        fwht(&mut y, n, &FwhtParams::default()).unwrap();
        let z = naive(&x);
        let norm: f64 = x.iter().map(|v| v.abs()).sum();
        for (a, b) in y.iter().zip(&z) {
            assert!(
                (a - b).abs() <= 1e-12 * norm.max(1e-300),
                "n={n}: {a} vs {b}"
            );
        }
    }
}

#[test]
fn rejects_bad_lengths_with_clear_messages() {
    let mut x = vec![0f32; 12];
    let err = fwht(&mut x, 6, &FwhtParams::default()).unwrap_err();
    assert!(err
        .to_string()
        .contains("row length 6 is not a power of two"));
    assert!(err.to_string().contains('8'));
    let err = fwht(&mut x, 8, &FwhtParams::default()).unwrap_err();
    assert!(err.to_string().contains("not a multiple"));
    let mut big = vec![0f32; 0];
    let err = fwht(&mut big, 1 << 27, &FwhtParams::default()).unwrap_err();
    assert!(err.to_string().contains("exceeds the supported maximum"));
    let err = randomized_hadamard(&mut x, 4, &[1.0; 3], &FwhtParams::default()).unwrap_err();
    assert!(err.to_string().contains("signs has length 3"));
    let mut empty: Vec<f64> = Vec::new();
    fwht(&mut empty, 0, &FwhtParams::default()).unwrap();
    fwht(&mut empty, 4, &FwhtParams::default()).unwrap();
}

#[test]
fn unavailable_isa_is_an_error_not_a_crash() {
    for isa in Isa::ALL {
        let mut x = vec![1f32; 16];
        let r = fwht(
            &mut x,
            16,
            &FwhtParams {
                normalize: false,
                isa: Some(isa),
            },
        );
        assert_eq!(r.is_ok(), isa.is_available());
    }
}

#[test]
fn sorf_block_is_orthogonal_times_sqrt_n() {
    let n = 64;
    let d: Vec<Vec<f64>> = (0..3)
        .map(|k| {
            data::<f64>(n, 11 + k)
                .into_iter()
                .map(|v| if v > 0.0 { 1.0 } else { -1.0 })
                .collect()
        })
        .collect();
    // The matrix: apply to the identity, rows are images of basis vectors.
    let mut eye = vec![0f64; n * n];
    for i in 0..n {
        eye[i * n + i] = 1.0;
    }
    sorf_block(&mut eye, n, &d[0], &d[1], &d[2], None).unwrap();
    // eye now holds M^T row by row (row i = M e_i); check M^T M = n I.
    for i in 0..n {
        for j in 0..n {
            let dot: f64 = (0..n).map(|k| eye[i * n + k] * eye[j * n + k]).sum();
            let want = if i == j { n as f64 } else { 0.0 };
            assert!((dot - want).abs() < 1e-9, "({i},{j}): {dot}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn involution_up_to_n(log_n in 0u32..12, rows in 1usize..4, seed in any::<u64>()) {
        let n = 1usize << log_n;
        let x = data::<f64>(n * rows, seed);
        let mut y = x.clone();
        fwht(&mut y, n, &FwhtParams::default()).unwrap();
        fwht(&mut y, n, &FwhtParams::default()).unwrap();
        let scale = x.iter().fold(0f64, |m, v| m.max(v.abs()));
        for (a, b) in x.iter().zip(&y) {
            prop_assert!((a * n as f64 - b).abs() <= 1e-12 * scale * (n * n) as f64);
        }
    }

    #[test]
    fn linear(log_n in 0u32..10, seed in any::<u64>(), alpha in -4.0f64..4.0) {
        let n = 1usize << log_n;
        let x = data::<f64>(n, seed);
        let y = data::<f64>(n, seed ^ 0xABCD);
        let mut combo: Vec<f64> = x.iter().zip(&y).map(|(a, b)| alpha * a + b).collect();
        let (mut hx, mut hy) = (x.clone(), y.clone());
        let p = FwhtParams::default();
        fwht(&mut combo, n, &p).unwrap();
        fwht(&mut hx, n, &p).unwrap();
        fwht(&mut hy, n, &p).unwrap();
        let scale = x.iter().chain(&y).fold(0f64, |m, v| m.max(v.abs())) * (1.0 + alpha.abs());
        for i in 0..n {
            prop_assert!((combo[i] - (alpha * hx[i] + hy[i])).abs() <= 1e-12 * scale * n as f64);
        }
    }

    #[test]
    fn simd_equals_scalar(log_n in 0u32..14, rows in 1usize..5, seed in any::<u64>(), normalize in any::<bool>()) {
        let n = 1usize << log_n;
        let x32 = data::<f32>(n * rows, seed);
        let x64 = data::<f64>(n * rows, seed);
        let scalar = FwhtParams { normalize, isa: Some(Isa::Scalar) };
        let (mut r32, mut r64) = (x32.clone(), x64.clone());
        fwht(&mut r32, n, &scalar).unwrap();
        fwht(&mut r64, n, &scalar).unwrap();
        for isa in Isa::available() {
            let p = FwhtParams { normalize, isa: Some(isa) };
            let (mut y32, mut y64) = (x32.clone(), x64.clone());
            fwht(&mut y32, n, &p).unwrap();
            fwht(&mut y64, n, &p).unwrap();
            prop_assert!(bits_equal(&y32, &r32), "f32 {}", isa.name());
            prop_assert!(bits_equal(&y64, &r64), "f64 {}", isa.name());
        }
    }
}

#[test]
fn scaled_transforms_do_not_overflow_where_the_result_is_finite() {
    // Exact results: normalised H [a, a, 0, 0] = [a, 0, a, 0] (n = 4).
    let a = 3e38f32;
    for isa in Isa::available() {
        let params = FwhtParams {
            normalize: true,
            isa: Some(isa),
        };
        let mut x = vec![a, a, 0.0, 0.0];
        fwht(&mut x, 4, &params).unwrap();
        assert_eq!(x, vec![a, 0.0, a, 0.0], "{}", isa.name());
        let mut y = vec![a, -a, 0.0, 0.0];
        randomized_hadamard(&mut y, 4, &[1.0, -1.0, 1.0, 1.0], &params).unwrap();
        assert_eq!(y, vec![a, 0.0, a, 0.0], "{}", isa.name());
    }
    // SORF with unit diagonals is sqrt(n)·Ĥ³ = sqrt(n)·Ĥ = H: for n = 4,
    // [b, b, 0, 0] → [2b, 0, 2b, 0] (the unscaled H H H x reaches 8b).
    let ones = [1.0f64; 4];
    let big = 5e307;
    let mut z = vec![big, big, 0.0, 0.0, 1.0, 2.0, 3.0, 4.0];
    sorf_block(&mut z, 4, &ones, &ones, &ones, None).unwrap();
    assert_eq!(&z[..4], &[2.0 * big, 0.0, 2.0 * big, 0.0]);
    // The ordinary row next to it is untouched by the prescaling.
    let mut w = vec![1.0, 2.0, 3.0, 4.0];
    sorf_block(&mut w, 4, &ones, &ones, &ones, None).unwrap();
    assert_eq!(&z[4..], &w[..]);
    // A result that is itself beyond range still overflows, and NaN stays NaN.
    let mut v = vec![f32::MAX, f32::MAX, f32::MAX, f32::MAX];
    fwht(&mut v, 4, &FwhtParams::default()).unwrap();
    assert!(v[0].is_infinite());
    let mut nan = vec![f64::NAN, 1e308, 0.0, 0.0];
    fwht(
        &mut nan,
        4,
        &FwhtParams {
            normalize: true,
            isa: None,
        },
    )
    .unwrap();
    assert!(nan.iter().all(|v| v.is_nan()));
}

#[test]
fn prescaling_is_per_row_and_leaves_ordinary_bits_alone() {
    // Many rows, large enough for the parallel path: one hot row among them.
    let n = 256;
    let mut x = data::<f32>(n * 600, 11);
    let ordinary = x.clone();
    // H·[c; n] = [n·c, 0, ...]: normalised 16c = 1.6e38, unscaled 2.6e39.
    x[n * 300..n * 301].fill(1e37);
    let params = FwhtParams {
        normalize: true,
        isa: None,
    };
    let mut expected = ordinary.clone();
    fwht(&mut expected, n, &params).unwrap();
    for threads in [1, 3] {
        crate::parallel::set_num_threads(threads);
        let mut got = x.clone();
        fwht(&mut got, n, &params).unwrap();
        assert!(got.iter().all(|v| v.is_finite()));
        assert_eq!(got[n * 300], 16.0 * 1e37);
        assert!(got[n * 300 + 1..n * 301].iter().all(|&v| v == 0.0));
        assert!(bits_equal(&got[..n * 300], &expected[..n * 300]));
        assert!(bits_equal(&got[n * 301..], &expected[n * 301..]));
    }
    crate::parallel::set_num_threads(0);
}

/// Small integers (exact in any sum of up to 2^26 of them).
fn small_ints<T: Float>(len: usize, seed: u64) -> Vec<T> {
    data::<f64>(len, seed)
        .into_iter()
        .enumerate()
        .map(|(i, v)| T::from_f64(((v.to_bits() >> 20) % 17) as f64 - 8.0 + (i % 3) as f64))
        .collect()
}

/// `x · 2^e` in f64, then to `T` (exact, or ±inf where it overflows `T`).
fn scaled<T: Float>(x: &[T], e: i32) -> Vec<T> {
    x.iter()
        .map(|v| T::from_f64(v.to_f64() * 2f64.powi(e)))
        .collect()
}

/// Checks `transform` (every instruction set, one and three threads) against
/// the same transform in exact-range arithmetic, bit for bit: the reference
/// transform of the input scaled down by `2^-down` (exact for these inputs),
/// scaled back up (±inf where the exact result overflows).
fn check_guarded<T: Float>(
    x: &[T],
    down: i32,
    reference: impl Fn(&mut [T]),
    transform: impl Fn(&mut [T], Isa),
    what: &str,
) {
    let mut expected = scaled(x, -down);
    reference(&mut expected);
    let expected = scaled(&expected, down);
    // Threads matter only from the size at which calls go parallel.
    let threads: &[usize] = if x.len() >= PARALLEL_MIN_ELEMENTS {
        &[1, 3]
    } else {
        &[1]
    };
    for &threads in threads {
        crate::parallel::set_num_threads(threads);
        for isa in Isa::available() {
            let mut got = x.to_vec();
            transform(&mut got, isa);
            assert!(
                bits_equal(&got, &expected),
                "{what}, {} thread(s), {}: first difference at {:?}",
                threads,
                isa.name(),
                got.iter()
                    .zip(&expected)
                    .position(|(a, b)| !bits_equal(&[*a], &[*b]))
                    .map(|i| (i, got[i], expected[i]))
            );
        }
    }
    crate::parallel::set_num_threads(0);
}

/// Rows near the top of the range: every element just below the guard's
/// threshold (so that rounding mixes all of them), and some above it, anywhere
/// in the row (so that the kernels stop in the first group, in the middle of
/// a row, or in a later block of a long row); ordinary rows around them. The
/// result is that of exact-range arithmetic: ±inf exactly where that
/// overflows, never NaN, and the same bits elsewhere.
fn guarded_case<T: Float>(n: usize, normalizes: &[bool]) {
    let rows = 3;
    let log_n = n.trailing_zeros() as i32;
    // log2 of the guard's threshold with a diagonal of largest magnitude 4.
    let limit = T::MAX.to_f64().log2() - 2.0;
    let below = (limit - f64::from(log_n) - 2.0).floor() as i32 - 5;
    let top = T::MAX.to_f64().log2().ceil() as i32;
    let mut spans = vec![(0, n), (n / 2, n / 2 + 1), (n - 1, n)];
    if n >= 16 {
        spans.push((3 * n / 4, 3 * n / 4 + 2));
    }
    // Just above the guard (results in range), and far above (some overflow);
    // the inputs themselves finite (|ints| < 16).
    for hot_exp in [(below + 8).min(top - 5), top - 5] {
        for (j0, j1) in spans.iter().copied() {
            let ints = small_ints::<T>(n * rows, (n + j0) as u64);
            let mut x = scaled(&ints, below);
            for j in n + j0..n + j1 {
                let v = if ints[j] == T::ZERO { T::ONE } else { ints[j] };
                x[j] = scaled(&[v], hot_exp)[0];
            }
            let signs: Vec<T> = small_ints::<T>(n, 5)
                .iter()
                .map(|v| T::from_f64(if v.to_f64() > 0.0 { 4.0 } else { -1.0 }))
                .collect();
            for &normalize in normalizes {
                let params = |isa| FwhtParams {
                    normalize,
                    isa: Some(isa),
                };
                let scale = normalize.then(|| T::from_f64(1.0 / (n as f64).sqrt()));
                let what = format!("n {n}, 2^{hot_exp} at {j0}..{j1}, normalize {normalize}");
                check_guarded(
                    &x,
                    60,
                    |y| {
                        y.chunks_exact_mut(n)
                            .for_each(|r| fwht_reference(r, None, scale));
                    },
                    |y, isa| fwht(y, n, &params(isa)).unwrap(),
                    &format!("fwht {what}"),
                );
                check_guarded(
                    &x,
                    60,
                    |y| {
                        y.chunks_exact_mut(n)
                            .for_each(|r| fwht_reference(r, Some(&signs), scale));
                    },
                    |y, isa| randomized_hadamard(y, n, &signs, &params(isa)).unwrap(),
                    &format!("randomized_hadamard {what}"),
                );
            }
        }
    }
}

#[test]
fn guarded_transforms_are_exact_range_arithmetic_near_overflow() {
    for n in [1usize, 2, 4, 8, 16, 32, 64, 128, 256, 2048] {
        guarded_case::<f32>(n, &[false, true]);
        guarded_case::<f64>(n, &[false, true]);
    }
}

#[test]
fn guarded_long_rows_are_exact_range_arithmetic_near_overflow() {
    // Rows of one and of several L1 blocks; three rows of four blocks run
    // parallel inside each row with three threads.
    guarded_case::<f32>(block_len::<f32>(), &[true]);
    guarded_case::<f64>(2 * block_len::<f64>(), &[false, true]);
    guarded_case::<f32>(4 * block_len::<f32>(), &[false]);
}

#[test]
fn the_reported_overflow_gives_inf_and_exact_zeros() {
    // fwht([MAX; 4]) = [4 MAX, 0, 0, 0]: inf where the exact result
    // overflows, and exact zeros (was NaN at index 2: inf - inf).
    for isa in Isa::available() {
        let params = FwhtParams {
            normalize: false,
            isa: Some(isa),
        };
        let mut x = vec![f32::MAX; 4];
        fwht(&mut x, 4, &params).unwrap();
        assert_eq!(x, vec![f32::INFINITY, 0.0, 0.0, 0.0], "{}", isa.name());
        let mut y = vec![f64::MAX; 4];
        fwht(&mut y, 4, &params).unwrap();
        assert_eq!(y, vec![f64::INFINITY, 0.0, 0.0, 0.0], "{}", isa.name());
        // The diagonal's product itself overflows: H·[2 MAX, 2 MAX] = [4 MAX, 0].
        let mut z = vec![f32::MAX, f32::MAX];
        randomized_hadamard(&mut z, 2, &[2.0, 2.0], &params).unwrap();
        assert_eq!(z, vec![f32::INFINITY, 0.0], "{}", isa.name());
    }
}

#[test]
fn sorf_block_scales_each_transform_as_needed() {
    // Diagonals far from 1: D3 = 2^900 lifts a row of 2^100 to 2^1000, D2 =
    // 2^-900 brings it back; exact result (1/n)·H D1 H D2 H D3 x = H x for
    // n = 4, D1 = 1 (H H = n I): finite, though D3 x · n overflows f64.
    let n = 4;
    let x: Vec<f64> = [1.0, 2.0, -3.0, 0.5]
        .iter()
        .map(|v| v * 2f64.powi(100))
        .collect();
    let (d1, d2, d3) = (
        vec![1.0; n],
        vec![2f64.powi(-900); n],
        vec![2f64.powi(900); n],
    );
    let mut expected = x.clone();
    fwht_reference(&mut expected, None, None);
    for isa in Isa::available() {
        let mut y = x.clone();
        sorf_block(&mut y, n, &d1, &d2, &d3, Some(isa)).unwrap();
        assert_eq!(y, expected, "{}", isa.name());
    }
    // And a result that overflows is ±inf, never NaN.
    let mut y = vec![f64::MAX, f64::MAX, f64::MAX, -f64::MAX];
    sorf_block(&mut y, n, &d1, &d1, &[4.0; 4], None).unwrap();
    assert!(y.iter().all(|v| v.is_infinite()), "{y:?}");
}
