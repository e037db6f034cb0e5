//! Tests of the whole module: Philox known answers, every filler against the
//! pointwise functions on every instruction set (including indices that wrap
//! past `u64::MAX`), the accuracy and moments of both samplers, a fingerprint
//! that pins the bits, and a check that every SAFETY comment names real code.

use super::*;

#[test]
fn known_answer_vectors_of_random123() {
    // Random123 kat_vectors, philox4x32 with 10 rounds.
    assert_eq!(
        philox4x32([0, 0, 0, 0], [0, 0]),
        [0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8]
    );
    assert_eq!(
        philox4x32([u32::MAX; 4], [u32::MAX; 2]),
        [0x408f_276d, 0x41c8_3b0e, 0xa20b_c7c6, 0x6d54_51fd]
    );
    assert_eq!(
        philox4x32(
            [0x243f_6a88, 0x85a3_08d3, 0x1319_8a2e, 0x0370_7344],
            [0xa409_3822, 0x299f_31d0]
        ),
        [0xd16c_fe09, 0x94fd_cceb, 0x5001_e420, 0x2412_6ea1]
    );
}

type Filler = fn(u64, u64, u64, &mut [f32]);

/// `fill` and `portable` agree bitwise with `pointwise` for every stream,
/// start and length given (element `i` is index `start + i` modulo 2^64).
fn check_fill(
    fill: Filler,
    portable: Filler,
    pointwise: fn(u64, u64, u64) -> f32,
    streams: &[u64],
    starts: &[u64],
    lens: &[usize],
) {
    for &stream in streams {
        for &start in starts {
            for &len in lens {
                let mut v = vec![0.0f32; len];
                let mut w = vec![0.0f32; len];
                fill(7, stream, start, &mut v);
                portable(7, stream, start, &mut w);
                for (i, x) in v.iter().enumerate() {
                    let index = start.wrapping_add(i as u64);
                    assert_eq!(x.to_bits(), pointwise(7, stream, index).to_bits());
                    assert_eq!(x.to_bits(), w[i].to_bits());
                }
            }
        }
    }
}

#[test]
fn fill_matches_pointwise_for_any_offset_and_isa() {
    let starts: Vec<u64> = (0..9).collect();
    let pointwise = |seed, stream, i| normal(seed, stream, i) as f32;
    check_fill(
        fill_normals,
        fill_normals_portable,
        pointwise,
        &[3],
        &starts,
        &[13, 64, 200],
    );
}

#[test]
fn fill16_matches_pointwise_for_any_offset_and_isa() {
    let starts = [0u64, 1, 5, 127, 128, 250];
    check_fill(
        fill_normals16,
        fill_normals16_portable,
        normal16,
        &[3],
        &starts,
        &[13, 128, 300],
    );
}

/// Starts near `u64::MAX` (runs that wrap to index 0, whole and partial
/// batches on both sides of the wrap) and streams with high bits set.
const WRAP_STARTS: [u64; 7] = [
    u64::MAX - 5,
    u64::MAX - 127,
    u64::MAX - 200,
    u64::MAX - 300,
    u64::MAX,
    (1 << 63) - 3,
    1 << 63,
];
const WIDE_STREAMS: [u64; 3] = [3, 1 << 32, u64::MAX];

#[test]
fn fill_wraps_the_index_modulo_2_64_on_every_isa() {
    let pointwise = |seed, stream, i| normal(seed, stream, i) as f32;
    check_fill(
        fill_normals,
        fill_normals_portable,
        pointwise,
        &WIDE_STREAMS,
        &WRAP_STARTS,
        &[1, 6, 7, 64, 200],
    );
}

#[test]
fn fill16_wraps_the_index_modulo_2_64_on_every_isa() {
    check_fill(
        fill_normals16,
        fill_normals16_portable,
        normal16,
        &WIDE_STREAMS,
        &WRAP_STARTS,
        &[1, 6, 7, 128, 300],
    );
}

#[test]
fn fill_past_u64_max_continues_at_index_0() {
    let fillers: [(Filler, Filler); 2] = [
        (fill_normals, fill_normals_portable),
        (fill_normals16, fill_normals16_portable),
    ];
    for (fill, portable) in fillers {
        for f in [fill, portable] {
            // Six values before the wrap, then indices 0..294.
            let mut across = vec![0.0f32; 300];
            f(7, u64::MAX, u64::MAX - 5, &mut across);
            let mut from_zero = vec![0.0f32; 294];
            f(7, u64::MAX, 0, &mut from_zero);
            let mut before = vec![0.0f32; 6];
            f(7, u64::MAX, u64::MAX - 5, &mut before);
            assert_eq!(across[..6], before[..]);
            assert_eq!(across[6..], from_zero[..]);
        }
    }
}

#[test]
fn empty_fill_is_a_no_op_at_any_start() {
    for start in [0, 5, u64::MAX] {
        fill_normals(7, 3, start, &mut []);
        fill_normals16(7, 3, start, &mut []);
    }
}

/// Every sampler's bits, pinned: an FNV-1a hash of fills, pointwise values,
/// uniforms, derived seeds, all 2^16 inverse-CDF levels and 10^5 Box–Muller
/// pairs. Recorded from the implementation before the module was split into
/// files; any change to any output bit changes it.
#[test]
fn fingerprint_of_all_outputs_is_unchanged() {
    fn fnv(h: &mut u64, x: u32) {
        for b in x.to_le_bytes() {
            *h ^= u64::from(b);
            *h = h.wrapping_mul(0x100_0000_01b3);
        }
    }
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    let cases = [
        (0u64, 0u64, 0u64),
        (7, 3, 5),
        (u64::MAX, u64::MAX, 1 << 40),
        (123, 1 << 33, 77),
    ];
    for (seed, stream, start) in cases {
        let mut v = vec![0f32; 1000];
        fill_normals(seed, stream, start, &mut v);
        for x in &v {
            fnv(&mut h, x.to_bits());
        }
        fill_normals16(seed, stream, start, &mut v);
        for x in &v {
            fnv(&mut h, x.to_bits());
        }
        for i in 0..200u64 {
            let u = uniform(seed, stream, start + i).to_bits();
            fnv(&mut h, u as u32);
            fnv(&mut h, (u >> 32) as u32);
            fnv(&mut h, normal(seed, stream, start + i).to_bits() as u32);
            fnv(&mut h, normal16(seed, stream, start + i).to_bits());
            fnv(&mut h, derive_seed(seed ^ i, stream) as u32);
            fnv(
                &mut h,
                normals4(seed, stream, start + i)[(i % 4) as usize].to_bits(),
            );
        }
    }
    for t in 0..65_536u32 {
        fnv(&mut h, normal_from_bits16(t).to_bits());
    }
    for i in 0..100_000u32 {
        let (a, b) = box_muller(i.wrapping_mul(2_654_435_761), i.rotate_left(7));
        fnv(&mut h, a.to_bits());
        fnv(&mut h, b.to_bits());
    }
    assert_eq!(h, 0x00b6_35c9_9aae_2a44);
}

/// Every `// SAFETY:` comment of the module names real code: each identifier
/// it quotes in backticks occurs in the module's code outside comments. (A
/// justification that cites a function which does not exist justifies
/// nothing.)
#[test]
fn safety_comments_name_real_code() {
    let sources = [
        include_str!("mod.rs"),
        include_str!("philox.rs"),
        include_str!("normal.rs"),
        include_str!("icdf_table.rs"),
        include_str!("fill.rs"),
        include_str!("avx512.rs"),
    ];
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let code: Vec<&str> = sources
        .iter()
        .flat_map(|s| s.lines())
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect();
    let in_code = |name: &str| {
        code.iter().any(|line| {
            line.match_indices(name).any(|(at, _)| {
                let before = line[..at].chars().next_back();
                let after = line[at + name.len()..].chars().next();
                !before.is_some_and(is_ident) && !after.is_some_and(is_ident)
            })
        })
    };
    let mut names = Vec::new();
    for src in sources {
        // The text of each SAFETY comment, continuation lines included.
        let mut comments: Vec<String> = Vec::new();
        let mut open = false;
        for line in src.lines().map(str::trim_start) {
            if let Some(text) = line.strip_prefix("// SAFETY:") {
                comments.push(text.to_string());
                open = true;
            } else if let (true, Some(text)) = (open, line.strip_prefix("//")) {
                comments.last_mut().unwrap().push_str(text);
            } else {
                open = false;
            }
        }
        for comment in comments {
            // Odd-numbered pieces between backticks are quoted code.
            for quoted in comment.split('`').skip(1).step_by(2) {
                names.extend(
                    quoted
                        .split(|c: char| !is_ident(c))
                        .filter(|w| w.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_'))
                        .map(str::to_string),
                );
            }
        }
    }
    assert!(!names.is_empty(), "no quoted code in any SAFETY comment");
    for name in &names {
        assert!(
            in_code(name),
            "a SAFETY comment cites `{name}`, which is not in the code"
        );
    }
}

#[test]
fn inverse_cdf16_matches_the_exact_quantiles() {
    // Reference quantiles Φ⁻¹(1 − q/2) by bisection on erfc (libm-free:
    // Abramowitz–Stegun-free, exact to 1e-12 via a continued fraction is
    // overkill; the series of erfc below converges for every |z| ≤ 4.4).
    fn tail(z: f64) -> f64 {
        // P(|Z| > z) = erfc(z/√2) by the Taylor series of erf (|z| ≤ 4.4).
        let x = z / std::f64::consts::SQRT_2;
        let (mut term, mut sum, mut k) = (x, x, 0.0f64);
        while term.abs() > 1e-17 * sum.abs().max(1e-300) {
            k += 1.0;
            term *= -x * x / k;
            sum += term / (2.0 * k + 1.0);
        }
        1.0 - 2.0 / std::f64::consts::PI.sqrt() * sum
    }
    let mut worst = 0f64;
    for t in 0..32_768u32 {
        let q = f64::from(2 * t + 1) / 65_536.0;
        let (mut lo, mut hi) = (0.0f64, 5.0f64);
        for _ in 0..60 {
            let mid = 0.5 * (lo + hi);
            if tail(mid) > q {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        let z = f64::from(normal_from_bits16(t));
        let zn = f64::from(normal_from_bits16(t | 0x8000));
        assert_eq!(zn, -z);
        worst = worst.max((z - lo).abs());
    }
    assert!(worst < 3e-5, "worst quantile error {worst}");
}

#[test]
fn normals16_have_unit_moments() {
    // Standard errors as for `normals_have_unit_moments`; the 4.33 cut
    // changes the variance by -2e-4 and the kurtosis by -6e-3.
    let v = check_unit_moments(fill_normals16);
    let n = v.len();
    // Tail: P(|z| > 3) = 0.0027 (4.5 standard errors at 0.0027 ± 0.00008).
    let tail = v.iter().filter(|x| x.abs() > 3.0).count() as f64 / n as f64;
    assert!((tail - 0.0027).abs() < 0.0004, "tail {tail}");
}

#[test]
fn polynomial_box_muller_matches_libm() {
    for i in 0..100_000u32 {
        let a = i.wrapping_mul(2_654_435_761);
        let b = i.wrapping_mul(40_503).rotate_left(13) ^ a;
        let (z0, z1) = box_muller(a, b);
        let u = f64::from((a >> 8) + 1) / 16_777_216.0;
        let r = (-2.0 * u.ln()).sqrt();
        let q = f64::from(b >> 30);
        let f = f64::from((b >> 8) & 0x003F_FFFF) / 4_194_304.0;
        let theta = q * std::f64::consts::FRAC_PI_2 + (f - 0.5) * std::f64::consts::FRAC_PI_2;
        assert!(
            (f64::from(z0) - r * theta.cos()).abs() < 2e-6 * (1.0 + r),
            "{i}"
        );
        assert!(
            (f64::from(z1) - r * theta.sin()).abs() < 2e-6 * (1.0 + r),
            "{i}"
        );
    }
}

#[test]
fn normals_have_unit_moments() {
    check_unit_moments(fill_normals);
}

/// 400,000 draws of `fill` have mean 0, variance 1 and kurtosis 3 within
/// about 5 standard errors (mean 1/sqrt(n) = 0.0016, variance sqrt(2/n) =
/// 0.0022, kurtosis sqrt(24/n) = 0.008); returns the draws.
fn check_unit_moments(fill: Filler) -> Vec<f64> {
    let n = 400_000;
    let mut v32 = vec![0.0f32; n];
    fill(42, 0, 0, &mut v32);
    let v: Vec<f64> = v32.iter().map(|&x| f64::from(x)).collect();
    let mean = v.iter().sum::<f64>() / n as f64;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
    let kurt = v.iter().map(|x| (x - mean).powi(4)).sum::<f64>() / n as f64 / (var * var);
    assert!(mean.abs() < 0.008, "mean {mean}");
    assert!((var - 1.0).abs() < 0.011, "var {var}");
    assert!((kurt - 3.0).abs() < 0.05, "kurtosis {kurt}");
    v
}

#[test]
fn streams_and_seeds_differ() {
    assert_ne!(normal(1, 0, 0), normal(2, 0, 0));
    assert_ne!(normal(1, 0, 0), normal(1, 1, 0));
    assert_ne!(derive_seed(1, 1), derive_seed(1, 2));
}
