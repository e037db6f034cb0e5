//! `analogkernels-core`: the numerical engines of analogkernels, in pure Rust.
//!
//! Each engine lives in one module:
//! - [`hadamard`]: SIMD fast Walsh–Hadamard transform and the fused SORF helpers;
//! - [`features`]: random-feature nonlinearities, fused SORF/dense projections;
//! - [`crossbar`]: the bit-accurate tiled crossbar MVM engine (DAC, exact
//!   integer accumulation, noise, ADC, affine correction, drift compensation);
//! - [`pcm`]: the PCM device state machine (program-and-verify, drift, faults);
//! - [`noise_models`]: aihwkit's statistical PCM/HERMES noise laws;
//! - [`rng`]: counter-based Philox4x32-10 and the vectorised normal samplers;
//! - [`parallel`]: the crate's thread pool (size, fork safety, page population)
//!   and its safe parallel loop over disjoint chunks;
//! - [`cpu`]: the CPU's SIMD feature level, detected once for every dispatcher;
//! - [`names`]: the user-facing names of every mode enum, parsed in one place;
//! - [`check`]: the value checks the engines share (one message per rule);
//! - [`fields`]: the numeric fields of the parameter structs by name.
//!
//! No Python here: the `PyO3` bindings live in the `analogkernels-python` crate and
//! only convert, validate and release the GIL.

pub mod check;
pub mod cpu;
pub mod crossbar;
pub mod error;
pub mod features;
pub mod fields;
pub mod hadamard;
pub mod names;
pub mod noise_models;
pub mod parallel;
pub mod pcm;
pub mod rng;

pub use error::{Error, Result};
