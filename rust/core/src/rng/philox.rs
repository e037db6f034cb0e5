//! The Philox4x32-10 generator itself: one block per `(seed, stream, block)`
//! counter, plus what is built directly on the raw words (uniforms, seed
//! derivation). Everything random in the crate starts here; the SIMD kernels
//! in `avx512.rs` and `fill.rs` repeat these rounds lane-parallel with the same
//! constants.

/// Philox4x32 round multipliers (Random123).
pub(super) const M0: u32 = 0xD251_1F53;
pub(super) const M1: u32 = 0xCD9E_8D57;
/// Philox4x32 key increments per round (Weyl sequence, Random123).
pub(super) const W0: u32 = 0x9E37_79B9;
pub(super) const W1: u32 = 0xBB67_AE85;

#[inline(always)]
fn mulhilo(a: u32, b: u32) -> (u32, u32) {
    let p = u64::from(a) * u64::from(b);
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

/// Uniform number in [0, 1) `index` of `stream` under `seed` (24-bit resolution).
#[inline]
pub fn uniform(seed: u64, stream: u64, index: u64) -> f64 {
    let b = block(seed, stream, index >> 2);
    f64::from(b[(index & 3) as usize] >> 8) * (1.0 / 16_777_216.0)
}

/// Derives an independent seed for a named purpose (`SplitMix64` finaliser), so
/// that one user seed can drive several streams without overlap.
pub fn derive_seed(seed: u64, purpose: u64) -> u64 {
    let mut z = seed ^ purpose.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
