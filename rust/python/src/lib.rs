//! `analogkernels._core`: thin `PyO3` bindings over `analogkernels-core`.
//! Each binding converts its arguments, validates them, runs the core through
//! [`errors::compute`] (GIL released, panics caught) and converts back.

// PyO3 extracts every argument by value (arrays, bound objects).
#![allow(clippy::needless_pass_by_value)]

mod analog;
mod arrays;
mod config;
mod errors;
mod features;
mod hadamard;
mod pcm;

use pyo3::prelude::*;

/// Sets the number of worker threads of the Rust core (0 restores the default:
/// `ANALOGKERNELS_NUM_THREADS`, else the CPU count); at most
/// `parallel::MAX_THREADS`. Anything else is a `ConfigError` naming `n`.
#[pyfunction]
fn set_num_threads(n: &Bound<'_, PyAny>) -> PyResult<()> {
    use analogkernels_core::parallel;
    errors::guarded(n.py(), || {
        let n = arrays::int_in_range(n, "n", parallel::MAX_THREADS as u64)?;
        parallel::try_set_num_threads(n as usize).map_err(errors::to_py)
    })
}

/// The number of worker threads the Rust core uses.
#[pyfunction]
fn get_num_threads() -> usize {
    analogkernels_core::parallel::num_threads()
}

/// Why `ANALOGKERNELS_NUM_THREADS` is ignored, if it is set to an invalid
/// value (`None` otherwise); the package warns with it on import.
#[pyfunction]
fn _num_threads_env_problem() -> Option<String> {
    analogkernels_core::parallel::num_threads_env_problem()
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    // Before any thread can use the pool: a fork must never find its lock held.
    analogkernels_core::parallel::register_fork_handlers();
    errors::init_caches(m.py())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("MAX_THREADS", analogkernels_core::parallel::MAX_THREADS)?;
    m.add_function(wrap_pyfunction!(set_num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(get_num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(_num_threads_env_problem, m)?)?;
    m.add_function(wrap_pyfunction!(hadamard::fwht, m)?)?;
    m.add_function(wrap_pyfunction!(hadamard::randomized_hadamard, m)?)?;
    m.add_function(wrap_pyfunction!(hadamard::sorf_block, m)?)?;
    m.add_function(wrap_pyfunction!(hadamard::available_isas, m)?)?;
    m.add_function(wrap_pyfunction!(features::rbf_features, m)?)?;
    m.add_function(wrap_pyfunction!(features::sorf_project, m)?)?;
    m.add_function(wrap_pyfunction!(features::rbf_features_fused, m)?)?;
    m.add_class::<analog::PyAnalogMatrix>()?;
    m.add_class::<pcm::PyPcmArray>()?;
    m.add_function(wrap_pyfunction!(config::_pcm_preset, m)?)?;
    m.add_function(wrap_pyfunction!(config::_noise_model_defaults, m)?)?;
    m.add_function(wrap_pyfunction!(config::_choices, m)?)?;
    m.add_function(wrap_pyfunction!(config::_crossbar_config, m)?)?;
    m.add_function(wrap_pyfunction!(config::_crossbar_hermes, m)?)?;
    m.add_function(wrap_pyfunction!(config::_device_codes, m)?)?;
    Ok(())
}
