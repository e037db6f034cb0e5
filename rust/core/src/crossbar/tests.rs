use super::*;
use crate::noise_models::NoiseModel;
use crate::rng;

/// The HERMES preset with the switches of the Python `CrossbarConfig.ideal()`
/// (and the `none` model's t0 and `t_read`; `g_max` stays HERMES's), and a
/// 12-unit output range.
fn ideal() -> CrossbarParams {
    CrossbarParams {
        noise_model: NoiseModel::None,
        t0: NoiseModel::None.default_t0(2),
        t_read: NoiseModel::None.default_t_read(),
        out_noise: 0.0,
        w_noise: 0.0,
        output_bits: 0,
        out_bound: 12.0,
        drift_compensation: DriftCompensation::None,
        ..CrossbarParams::hermes()
    }
}

/// [`ideal`] with the HERMES preset's device model, read noise, ADC and
/// drift compensation, and a lower output noise and range.
fn noisy() -> CrossbarParams {
    let hermes = CrossbarParams::hermes();
    CrossbarParams {
        noise_model: hermes.noise_model,
        out_noise: 0.04,
        w_noise: hermes.w_noise,
        output_bits: hermes.output_bits,
        out_bound: 20.0,
        drift_compensation: hermes.drift_compensation,
        ..ideal()
    }
}

fn data(len: usize, seed: u64) -> Vec<f64> {
    (0..len).map(|i| rng::normal(seed, 9, i as u64)).collect()
}

#[test]
fn ideal_crossbar_is_close_to_the_product() {
    let (o, i, n) = (70, 300, 5);
    let w = data(o * i, 1);
    let x = data(n * i, 2);
    let mut p = ideal();
    p.tile_rows = 64;
    p.tile_cols = 128;
    let m = AnalogMatrix::program(&w, o, i, &p, 0).unwrap();
    let y = m.matmul(&x, n, 0, 0).unwrap();
    for s in 0..n {
        for r in 0..o {
            let exact: f64 = (0..i).map(|c| w[r * i + c] * x[s * i + c]).sum();
            // 8-bit inputs: error per tile ≲ Σ|w|·s/(2·127).
            assert!(
                (y[s * o + r] - exact).abs() < 0.05 * (i as f64).sqrt() * 3.0,
                "{} vs {}",
                y[s * o + r],
                exact
            );
        }
    }
}

#[test]
fn same_seed_same_bits_any_thread_count_and_split() {
    let (o, i, n) = (300, 40, 37);
    let w = data(o * i, 3);
    let x = data(n * i, 4);
    let mut results = Vec::new();
    for threads in [1, 2, 3] {
        crate::parallel::set_num_threads(threads);
        let mut m = AnalogMatrix::program(&w, o, i, &noisy(), 11).unwrap();
        m.drift_to(3600.0, 5).unwrap();
        let full = m.matmul(&x, n, 99, 0).unwrap();
        let a = m.matmul(&x[..10 * i], 10, 99, 0).unwrap();
        let b = m.matmul(&x[10 * i..], n - 10, 99, 10).unwrap();
        let split: Vec<f64> = a.into_iter().chain(b).collect();
        assert_eq!(
            full.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            split.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        );
        results.push(full);
    }
    crate::parallel::set_num_threads(0);
    assert!(results.windows(2).all(|w| w[0] == w[1]));
    let m = AnalogMatrix::program(&w, o, i, &noisy(), 12).unwrap();
    assert_ne!(m.matmul(&x, n, 99, 0).unwrap(), results[0]);
}

#[test]
fn validation_names_fields() {
    let mut p = ideal();
    p.devices_per_polarity = 3;
    assert!(p
        .validate()
        .unwrap_err()
        .to_string()
        .contains("devices_per_polarity"));
    let mut p = ideal();
    p.g_max = f64::NAN;
    assert!(p.validate().unwrap_err().to_string().contains("g_max"));
    let err = AnalogMatrix::program(&[1.0, f64::INFINITY], 1, 2, &ideal(), 0).unwrap_err();
    assert!(err.to_string().contains("non-finite"));
    let m = AnalogMatrix::program(&[1.0, 2.0], 1, 2, &ideal(), 0).unwrap();
    assert!(m.matmul(&[1.0], 1, 0, 0).is_err());
}

#[test]
fn iterative_programming_plugs_in() {
    let (o, i, n) = (64, 64, 8);
    let w = data(o * i, 21);
    let x = data(n * i, 22);
    let p = CrossbarParams {
        noise_model: NoiseModel::Pcm,
        programming: Programming::Iterative,
        g_max: 50.0,
        ..noisy()
    };
    let m = AnalogMatrix::program(&w, o, i, &p, 3).unwrap();
    let eff = m.effective_weights();
    let wmax = w.iter().fold(0f64, |a, v| a.max(v.abs()));
    let rms = (eff
        .iter()
        .zip(&w)
        .map(|(a, b)| (a - b).powi(2))
        .sum::<f64>()
        / w.len() as f64)
        .sqrt();
    // Programming error a few per cent of w_max, as the statistical model.
    assert!(rms / wmax < 0.1, "relative rms {}", rms / wmax);
    let again = AnalogMatrix::program(&w, o, i, &p, 3).unwrap();
    assert_eq!(
        m.matmul(&x, n, 1, 0).unwrap(),
        again.matmul(&x, n, 1, 0).unwrap()
    );
}

#[test]
fn fresh_reads_advance_the_cursor_and_split_freely() {
    let (o, i, n) = (70, 300, 40);
    let w = data(o * i, 31);
    let x = data(n * i, 32);
    let mut p = noisy();
    p.tile_rows = 64;
    p.tile_cols = 128;
    p.ir_drop = 0.5;
    let m = AnalogMatrix::program(&w, o, i, &p, 7).unwrap();
    let whole = m.read(&x, n).unwrap();
    assert_eq!(m.read_position(), n as u64);
    // A second read of the same input draws new noise.
    let again = m.read(&x, n).unwrap();
    assert_ne!(whole, again);
    // Replaying from 0 in three calls gives the first read's bits.
    m.set_read_position(0);
    let mut split = Vec::new();
    for (a, b) in [(0, 9), (9, 10), (10, n)] {
        split.extend(m.read(&x[a * i..b * i], b - a).unwrap());
    }
    assert_eq!(split, whole);
    // A fresh read at position p is the pinned read (own seed, row p).
    assert_eq!(m.matmul(&x, n, m.seed(), n as u64).unwrap(), again);
    // Rejected input leaves the cursor where it was.
    let before = m.read_position();
    assert!(m.read(&[f64::NAN; 300], 1).is_err());
    assert_eq!(m.read_position(), before);
}

#[test]
fn empty_matrices_read_zeros_and_stream_limits_are_errors() {
    let p = noisy();
    let m = AnalogMatrix::program(&[], 3, 0, &p, 0).unwrap();
    let mut y = vec![f64::NAN; 15];
    m.matmul_into::<f64, f64>(&[], 5, 0, 0, &mut y).unwrap();
    assert_eq!(y, vec![0.0; 15]);
    let m = AnalogMatrix::program(&[], 0, 4, &p, 0).unwrap();
    assert_eq!(m.matmul(&[1.0; 8], 2, 0, 0).unwrap(), Vec::<f64>::new());
    let m = AnalogMatrix::program(&[1.0, 2.0], 1, 2, &p, 0).unwrap();
    let err = m.matmul(&[1.0, 1.0], 1, 0, u64::MAX).unwrap_err();
    assert!(err.to_string().contains("row_offset"), "{err}");
    assert!(m.matmul(&[1.0, 1.0], 1, 0, u64::MAX - 1).is_ok());
    m.set_read_position(u64::MAX);
    assert!(m
        .read(&[1.0, 1.0], 1)
        .unwrap_err()
        .to_string()
        .contains("read_position"));
}

#[test]
fn outputs_that_overflow_f64_are_an_error_not_inf() {
    let m = AnalogMatrix::program(&[0.1, 0.1, 0.0, 0.0, 0.1, 0.0, 0.0, 0.0], 2, 4, &ideal(), 0)
        .unwrap();
    // The exact product is finite (2e307) but the datapath scales by s_in·w_max.
    let big = [1e308, 1e308, 0.0, 0.0];
    let err = m.matmul(&big, 1, 0, 0).unwrap_err();
    assert!(err.to_string().contains("overflows"), "{err}");
    // Large but representable inputs pass (the bound skips the check).
    assert!(m.matmul(&[1e300, 1e300, 0.0, 0.0], 1, 0, 0).unwrap()[0] > 1e299);
}

#[test]
fn magic_number_conversion_is_exact_for_every_dac_code() {
    for q in -32767i32..=32767 {
        assert_eq!(super::datapath::exact_int(f64::from(q)), q);
    }
    assert_eq!(super::datapath::exact_int(-0.0), 0);
}

#[test]
fn weights_below_the_inverse_code_scale_still_program() {
    // 2^14 / 1e-306 overflows f64: the codes come from w / w_max first.
    let m = AnalogMatrix::program(&[1e-306, 5e-307], 1, 2, &ideal(), 0).unwrap();
    let y = m.matmul(&[1.0, 1.0], 1, 0, 0).unwrap();
    assert!((y[0] / 1.5e-306 - 1.0).abs() < 1e-2, "{y:?}");
}

#[test]
fn hermes_preset_is_valid_and_every_numeric_field_is_named() {
    use crate::fields::FieldTables;
    let mut p = CrossbarParams::hermes();
    p.validate().unwrap();
    assert_eq!(
        (p.g_max, p.t0, p.t_read),
        (
            NoiseModel::Hermes.default_g_max(2),
            NoiseModel::Hermes.default_t0(2),
            NoiseModel::Hermes.default_t_read()
        )
    );
    // The bindings convert by these tables: every name reaches its field.
    for &name in CrossbarParams::REAL_FIELDS {
        *p.real_field_mut(name).unwrap() += 1.0;
    }
    assert_eq!(p.adc_gain_std, 1.0);
    for &(name, max) in CrossbarParams::INT_FIELDS {
        assert!(p.set_int_field(name, 3), "{name}");
        assert_eq!(p.int_field(name), Some(3));
        assert!(max == u64::MAX || !p.set_int_field(name, max + 1), "{name}");
    }
    assert_eq!((p.tile_rows, p.output_bits), (3, 3));
    assert!(!p.set_int_field("g_max", 1) && p.real_field("tile_rows").is_none());
}

#[test]
fn input_range_quantile_is_checked_and_must_be_resolved_before_programming() {
    let quantile = |q: f64, range: Option<f64>| CrossbarParams {
        input_range_quantile: Some(q),
        input_range: range,
        ..ideal()
    };
    assert!(quantile(0.999, None).validate().is_ok());
    for bad in [0.4, 1.01, f64::NAN] {
        let err = quantile(bad, None).validate().unwrap_err().to_string();
        assert!(err.contains("input_range_quantile"), "{err}");
    }
    let err = quantile(0.99, Some(3.0))
        .validate()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("input_range_quantile") && err.contains("input_range"),
        "{err}"
    );
    // Valid, but the engine needs the range itself: resolving it needs data.
    let Err(err) = AnalogMatrix::program(&[1.0, 2.0], 1, 2, &quantile(0.99, None), 0) else {
        panic!("an unresolved quantile must be refused");
    };
    let err = err.to_string();
    assert!(err.contains("resolved"), "{err}");
}
