//! Counter-based random numbers: Philox4x32-10 (Salmon et al., "Parallel random
//! numbers: as easy as 1, 2, 3", SC 2011).
//!
//! Every draw is a pure function of `(seed, stream, index)`: the 128-bit counter
//! is `(index_lo, index_hi, stream_lo, stream_hi)` and the key is the seed. No
//! state is carried from one draw to the next, so results cannot depend on the
//! thread count, the batch size or how a batch is split.
//!
//! Normals come from the Box–Muller transform of Philox blocks: one block gives
//! four normals (lanes 0, 1 are `r·cos θ`, `r·sin θ` of the word pair
//! `(w0, w1)`, lanes 2, 3 the same of `(w2, w3)`). Element `i` of a stream is
//! lane `(i mod 64) / 16` of block `16·(i div 64) + i mod 16`: a batch of 16
//! consecutive blocks yields 64 consecutive normals as four contiguous
//! 16-lane vectors (structure of arrays), which is what makes batches fast.
//! These (24-bit radius, 22-bit angle) drive the device states.
//!
//! The per-MVM noise (tens of millions of draws per call) uses a cheaper
//! sampler, [`fill_normals16`]: each 32-bit Philox word gives two normals by an
//! inverse CDF on 16 bits ([`normal_from_bits16`]: a cubic per half-octave of
//! the tail probability, coefficients in registers), 128 normals per batch of
//! 16 blocks, about 0.5 ns per normal on one core against 0.9 ns for the
//! Box–Muller path.
//!
//! Every `u64` seed, stream and index is valid. The fillers take indices
//! modulo 2^64: a fill from `start` whose run passes `u64::MAX` continues at
//! index 0, exactly as the pointwise functions at `start.wrapping_add(k)`.
//!
//! # Layout
//! - `philox.rs`: the generator ([`philox4x32`], [`block`]) and what is read
//!   straight off its words ([`uniform`], [`derive_seed`]).
//! - `normal.rs`: the scalar samplers that define the values ([`normal`],
//!   [`normal16`] and their building blocks).
//! - `icdf_table.rs`: the coefficient tables of the 16-bit inverse CDF.
//! - `fill.rs`: the batch fillers ([`fill_normals`], [`fill_normals16`]) and
//!   their run-time choice of instruction set.
//! - `avx512.rs`: the AVX-512F kernels the fillers use on x86-64.
//! - `tests.rs`: known answers, SIMD == scalar == pointwise, moments.

#[cfg(target_arch = "x86_64")]
mod avx512;
mod fill;
mod icdf_table;
mod normal;
mod philox;
#[cfg(test)]
mod tests;

pub use fill::{fill_normals, fill_normals16, fill_normals16_portable, fill_normals_portable};
pub use normal::{box_muller, normal, normal16, normal_from_bits16, normal_pair16, normals4};
pub use philox::{block, derive_seed, philox4x32, uniform};
