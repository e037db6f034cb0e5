//! Bindings of `analogkernels_core::pcm`: a private `_PcmArray` wrapped by
//! `analogkernels.pcm.DeviceArray`.

use analogkernels_core::pcm::{DeviceArray, PcmParams, YieldReport};
use numpy::{PyArray1, PyReadonlyArray1};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::{compute, raise, to_py};

fn params_from_dict(d: &Bound<'_, PyDict>) -> PyResult<PcmParams> {
    let py = d.py();
    let get = |name: &str| -> PyResult<Bound<'_, PyAny>> {
        d.get_item(name)?.ok_or_else(|| {
            raise(
                py,
                "ConfigError",
                format!("config field `{name}` is missing"),
            )
        })
    };
    macro_rules! f {
        ($name:literal) => {
            get($name)?.extract().map_err(|_| {
                raise(
                    py,
                    "ConfigError",
                    format!("config field `{}` has the wrong type", $name),
                )
            })?
        };
    }
    Ok(PcmParams {
        g_max: f!("g_max"),
        g_set_mean: f!("g_set_mean"),
        g_set_sd: f!("g_set_sd"),
        g_reset: f!("g_reset"),
        i_low: f!("i_low"),
        i_high: f!("i_high"),
        i_sd: f!("i_sd"),
        i_min: f!("i_min"),
        i_max: f!("i_max"),
        c2c: f!("c2c"),
        additive: f!("additive"),
        relaxation: f!("relaxation"),
        verify_noise: f!("verify_noise"),
        tolerance_counts: f!("tolerance_counts"),
        counts_per_gmax: f!("counts_per_gmax"),
        max_iterations: f!("max_iterations"),
        gain: f!("gain"),
        stuck_reset_prob: f!("stuck_reset_prob"),
        stuck_set_prob: f!("stuck_set_prob"),
        devices_per_polarity: f!("devices_per_polarity"),
        t0: f!("t0"),
        t_read: f!("t_read"),
        seed: f!("seed"),
    })
}

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
    d.set_item("error_std_us", r.error_std)?;
    Ok(d)
}

/// The Rust device array (use `analogkernels.pcm.DeviceArray`).
#[pyclass(module = "analogkernels._core", name = "_PcmArray")]
pub struct PyPcmArray {
    inner: DeviceArray,
}

#[pymethods]
impl PyPcmArray {
    #[new]
    fn new(targets: PyReadonlyArray1<'_, f64>, config: &Bound<'_, PyDict>) -> PyResult<Self> {
        let params = params_from_dict(config)?;
        let t = targets
            .as_slice()
            .map_err(|_| raise(targets.py(), "ShapeError", "targets must be contiguous"))?;
        Ok(PyPcmArray {
            inner: DeviceArray::new(t, &params).map_err(to_py)?,
        })
    }

    /// Runs program-and-verify; returns the yield report.
    fn program<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let n = self.inner.targets().len() * 8;
        let inner = &mut self.inner;
        let report = compute(py, n, || inner.program())?;
        report_dict(py, &report)
    }

    /// Conductances (µS) `t_inference` seconds after programming.
    fn read<'py>(
        &self,
        py: Python<'py>,
        t_inference: f64,
        seed: u64,
        per_read_noise: bool,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let inner = &self.inner;
        let v = compute(py, inner.conductance.len(), || {
            inner.read(t_inference, seed, per_read_noise)
        })?;
        Ok(PyArray1::from_vec(py, v))
    }

    /// The yield report of the last programming.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        report_dict(py, &self.inner.stats())
    }

    /// Per-device arrays: conductance (µS), phase, fault, nu, iterations, pulses,
    /// t_last_pulse (s);
    /// per target: converged.
    fn arrays<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let a = &self.inner;
        let d = PyDict::new(py);
        d.set_item(
            "conductance",
            PyArray1::from_vec(py, a.conductance.iter().map(|&g| g as f64).collect()),
        )?;
        d.set_item("phase", PyArray1::from_slice(py, &a.phase))?;
        d.set_item("fault", PyArray1::from_slice(py, &a.fault))?;
        d.set_item(
            "nu",
            PyArray1::from_vec(py, a.nu.iter().map(|&v| v as f64).collect()),
        )?;
        d.set_item("iterations", PyArray1::from_slice(py, &a.iterations))?;
        d.set_item("pulses", PyArray1::from_slice(py, &a.pulses))?;
        d.set_item(
            "t_last_pulse",
            PyArray1::from_vec(py, a.t_last_pulse.iter().map(|&v| v as f64).collect()),
        )?;
        d.set_item("converged", PyArray1::from_vec(py, a.converged.clone()))?;
        Ok(d)
    }

    #[getter]
    fn programmed(&self) -> bool {
        self.inner.is_programmed()
    }
}
