//! Bindings of `analogkernels_core::pcm`: a private `_PcmArray` wrapped by
//! `analogkernels.pcm.DeviceArray`.

use std::sync::{Mutex, MutexGuard, TryLockError};

use analogkernels_core::pcm::{DeviceArray, YieldReport};
use numpy::PyArray1;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::arrays::{as_float_array, int_in_range, real_value, vector_len};
use crate::config::pcm_params_from_dict;
use crate::errors::{compute, config_error, guarded, to_py};

fn report_dict<'py>(py: Python<'py>, r: &YieldReport) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("n_targets", r.n_targets)?;
    d.set_item("n_devices", r.n_devices)?;
    d.set_item("stuck_reset", r.stuck_reset)?;
    d.set_item("stuck_set", r.stuck_set)?;
    d.set_item("converged_healthy", r.converged_healthy)?;
    d.set_item("converged_all", r.converged_all)?;
    d.set_item("total_pulses", r.total_pulses)?;
    d.set_item("mean_iterations", r.mean_iterations)?;
    d.set_item(
        "iterations_histogram",
        PyArray1::from_vec(py, r.iterations_histogram.clone()),
    )?;
    d.set_item("error_std_us", r.error_std_us)?;
    Ok(d)
}

/// The Rust device array (use `analogkernels.pcm.DeviceArray`).
///
/// Safe to share between threads: the state sits behind a mutex. A thread
/// never waits for it while holding the GIL (it waits with the GIL released),
/// because the thread that holds it may need the GIL to check for Ctrl-C.
#[pyclass(module = "analogkernels._core", name = "_PcmArray", frozen)]
pub struct PyPcmArray {
    inner: Mutex<DeviceArray>,
}

impl PyPcmArray {
    fn lock(&self, py: Python<'_>) -> MutexGuard<'_, DeviceArray> {
        loop {
            match self.inner.try_lock() {
                Ok(guard) => return guard,
                Err(TryLockError::Poisoned(p)) => return p.into_inner(),
                Err(TryLockError::WouldBlock) => {
                    // Wait for the holder without the GIL, then try again.
                    py.detach(|| drop(self.inner.lock()));
                }
            }
        }
    }
}

#[pymethods]
impl PyPcmArray {
    #[new]
    fn new(targets: &Bound<'_, PyAny>, config: &Bound<'_, PyAny>) -> PyResult<Self> {
        let py = targets.py();
        guarded(py, || {
            let config = config
                .cast::<PyDict>()
                .map_err(|_| config_error("config must be a dict of PCMConfig fields"))?;
            let params = pcm_params_from_dict(config)?;
            let arr = as_float_array(targets, "targets")?;
            vector_len(&arr.shape(), "targets")?;
            let t: Vec<f64> = arr.to_vec()?;
            Ok(PyPcmArray {
                inner: Mutex::new(DeviceArray::new(&t, &params).map_err(to_py)?),
            })
        })
    }

    /// Runs program-and-verify; returns the yield report.
    fn program<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        guarded(py, || {
            let mut guard = self.lock(py);
            let inner = &mut *guard;
            let n = inner.targets().len().saturating_mul(8);
            let report = compute(py, n, || inner.program())?;
            report_dict(py, &report)
        })
    }

    /// Conductances (µS) `t_inference` seconds after programming.
    fn read<'py>(
        &self,
        py: Python<'py>,
        t_inference: &Bound<'py, PyAny>,
        seed: &Bound<'py, PyAny>,
        per_read_noise: bool,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        guarded(py, || {
            let t_inference = real_value(t_inference, "t_inference")?;
            let seed = int_in_range(seed, "seed", u64::MAX)?;
            let guard = self.lock(py);
            let inner = &*guard;
            let v = compute(py, inner.conductance.len(), || {
                inner.read(t_inference, seed, per_read_noise)
            })?;
            Ok(PyArray1::from_vec(py, v))
        })
    }

    /// The yield report of the last programming.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let stats = self.lock(py).stats();
        report_dict(py, &stats)
    }

    /// Per-device arrays: conductance (µS), phase, fault, nu, iterations, pulses,
    /// `t_last_pulse` (s);
    /// per target: converged.
    fn arrays<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let a = self.lock(py);
        let d = PyDict::new(py);
        d.set_item(
            "conductance",
            PyArray1::from_vec(py, a.conductance.iter().map(|&g| f64::from(g)).collect()),
        )?;
        d.set_item("phase", PyArray1::from_slice(py, &a.phase))?;
        d.set_item("fault", PyArray1::from_slice(py, &a.fault))?;
        d.set_item(
            "nu",
            PyArray1::from_vec(py, a.nu.iter().map(|&v| f64::from(v)).collect()),
        )?;
        d.set_item("iterations", PyArray1::from_slice(py, &a.iterations))?;
        d.set_item("pulses", PyArray1::from_slice(py, &a.pulses))?;
        d.set_item(
            "t_last_pulse",
            PyArray1::from_vec(py, a.t_last_pulse.iter().map(|&v| f64::from(v)).collect()),
        )?;
        d.set_item("converged", PyArray1::from_vec(py, a.converged.clone()))?;
        Ok(d)
    }

    #[getter]
    fn programmed(&self, py: Python<'_>) -> bool {
        self.lock(py).is_programmed()
    }
}
