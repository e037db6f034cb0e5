//! `analogkernels-core`: the numerical engines of analogkernels, in pure Rust.
//!
//! Each engine lives in one module:
//! - [`hadamard`]: SIMD fast Walsh–Hadamard transform and the fused SORF helpers;
//! - [`parallel`]: the crate's thread pool (size, fork safety).
//!
//! No Python here: the PyO3 bindings live in the `analogkernels-python` crate and
//! only convert, validate and release the GIL.

pub mod crossbar;
pub mod error;
pub mod features;
pub mod hadamard;
pub mod noise_models;
pub mod parallel;
pub mod pcm;
pub mod rng;

pub use error::{Error, Result};
