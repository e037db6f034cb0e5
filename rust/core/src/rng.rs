//! Counter-based random numbers: Philox4x32-10 (Salmon et al., "Parallel random
//! numbers: as easy as 1, 2, 3", SC 2011).
//!
//! Every draw is a pure function of `(seed, stream, index)`: the 128-bit counter
//! is `(index_lo, index_hi, stream_lo, stream_hi)` and the key is the seed. No
//! state is carried from one draw to the next, so results cannot depend on the
//! thread count, the batch size or how a batch is split.
//!
//! Normals come from the Box–Muller transform of one Philox block: element `i`
//! of a stream is lane `i % 4` of block `i / 4`; lanes 0, 1 are `r·cos θ`,
//! `r·sin θ` of the pair `(u0, u1)` and lanes 2, 3 the same of `(u2, u3)`.

const M0: u32 = 0xD251_1F53;
const M1: u32 = 0xCD9E_8D57;
const W0: u32 = 0x9E37_79B9;
const W1: u32 = 0xBB67_AE85;

#[inline(always)]
fn mulhilo(a: u32, b: u32) -> (u32, u32) {
    let p = (a as u64) * (b as u64);
    ((p >> 32) as u32, p as u32)
}

/// One Philox4x32-10 block for a counter and a key.
#[inline(always)]
pub fn philox4x32(ctr: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let mut c = ctr;
    let mut k = key;
    for _ in 0..10 {
        let (hi0, lo0) = mulhilo(M0, c[0]);
        let (hi1, lo1) = mulhilo(M1, c[2]);
        c = [hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0];
        k = [k[0].wrapping_add(W0), k[1].wrapping_add(W1)];
    }
    c
}

/// The four 32-bit words of block `block` of stream `stream` under `seed`.
#[inline(always)]
pub fn block(seed: u64, stream: u64, block: u64) -> [u32; 4] {
    philox4x32(
        [
            block as u32,
            (block >> 32) as u32,
            stream as u32,
            (stream >> 32) as u32,
        ],
        [seed as u32, (seed >> 32) as u32],
    )
}

/// A uniform in (0, 1] from 32 random bits (24 significant bits, never 0).
#[inline(always)]
pub fn unit_open0(bits: u32) -> f64 {
    ((bits >> 8) as f64 + 1.0) * (1.0 / 16_777_216.0)
}

/// The four normals of one block (see the module docs for the lane order).
#[inline(always)]
pub fn normals4(seed: u64, stream: u64, block_index: u64) -> [f64; 4] {
    let b = block(seed, stream, block_index);
    let (c0, s0) = box_muller(b[0], b[1]);
    let (c1, s1) = box_muller(b[2], b[3]);
    [c0, s0, c1, s1]
}

#[inline(always)]
fn box_muller(a: u32, b: u32) -> (f64, f64) {
    let r = (-2.0 * unit_open0(a).ln()).sqrt();
    let theta = std::f64::consts::TAU * ((b >> 8) as f64 * (1.0 / 16_777_216.0));
    let (s, c) = theta.sin_cos();
    (r * c, r * s)
}

/// Standard normal number `index` of `stream` under `seed`.
#[inline]
pub fn normal(seed: u64, stream: u64, index: u64) -> f64 {
    normals4(seed, stream, index >> 2)[(index & 3) as usize]
}

/// Fills `out` with normals `start, start + 1, ..` of `stream` under `seed`.
pub fn fill_normals(seed: u64, stream: u64, start: u64, out: &mut [f64]) {
    let mut i = 0usize;
    let mut idx = start;
    // Leading partial block.
    while i < out.len() && idx & 3 != 0 {
        out[i] = normal(seed, stream, idx);
        i += 1;
        idx += 1;
    }
    while i + 4 <= out.len() {
        let z = normals4(seed, stream, idx >> 2);
        out[i..i + 4].copy_from_slice(&z);
        i += 4;
        idx += 4;
    }
    while i < out.len() {
        out[i] = normal(seed, stream, idx);
        i += 1;
        idx += 1;
    }
}

/// Uniform number in [0, 1) `index` of `stream` under `seed` (24-bit resolution).
#[inline]
pub fn uniform(seed: u64, stream: u64, index: u64) -> f64 {
    let b = block(seed, stream, index >> 2);
    (b[(index & 3) as usize] >> 8) as f64 * (1.0 / 16_777_216.0)
}

/// Derives an independent seed for a named purpose (SplitMix64 finaliser), so
/// that one user seed can drive several streams without overlap.
pub fn derive_seed(seed: u64, purpose: u64) -> u64 {
    let mut z = seed ^ purpose.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
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

    #[test]
    fn fill_matches_pointwise_for_any_offset() {
        for start in 0..9u64 {
            let mut v = vec![0.0; 13];
            fill_normals(7, 3, start, &mut v);
            for (i, x) in v.iter().enumerate() {
                assert_eq!(x.to_bits(), normal(7, 3, start + i as u64).to_bits());
            }
        }
    }

    #[test]
    fn normals_have_unit_moments() {
        let n = 400_000;
        let mut v = vec![0.0; n];
        fill_normals(42, 0, 0, &mut v);
        let mean = v.iter().sum::<f64>() / n as f64;
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        let kurt = v.iter().map(|x| (x - mean).powi(4)).sum::<f64>() / n as f64 / (var * var);
        // Standard errors: mean 1/sqrt(n) = 0.0016, var sqrt(2/n) = 0.0022, kurtosis sqrt(24/n) = 0.008.
        assert!(mean.abs() < 0.008, "mean {mean}");
        assert!((var - 1.0).abs() < 0.011, "var {var}");
        assert!((kurt - 3.0).abs() < 0.05, "kurtosis {kurt}");
    }

    #[test]
    fn streams_and_seeds_differ() {
        assert_ne!(normal(1, 0, 0), normal(2, 0, 0));
        assert_ne!(normal(1, 0, 0), normal(1, 1, 0));
        assert_ne!(derive_seed(1, 1), derive_seed(1, 2));
    }
}
