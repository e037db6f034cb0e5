//! Bindings of `analogkernels_core::crossbar`: a private `_AnalogMatrix` that
//! the Python class `analogkernels.analog.AnalogMatrix` wraps. Arrays arrive as
//! C-contiguous float64 (the Python layer converts); every computation runs
//! through `errors::compute`.

use analogkernels_core::crossbar::{
    AnalogMatrix, CrossbarParams, DriftCompensation, Programming, WeightScaling,
};
use analogkernels_core::hadamard::Float;
use analogkernels_core::noise_models::NoiseModel;
use numpy::{
    Element, PyArray1, PyArray2, PyArrayDyn, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2,
    PyUntypedArrayMethods,
};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::arrays::{as_float_array, FloatArray};
use crate::errors::{compute, raise};

fn field<'py, T: FromPyObjectOwned<'py>>(d: &Bound<'py, PyDict>, name: &str) -> PyResult<T> {
    let py = d.py();
    let v = d.get_item(name)?.ok_or_else(|| {
        raise(
            py,
            "ConfigError",
            format!("config field `{name}` is missing"),
        )
    })?;
    v.extract::<T>().map_err(|_| {
        raise(
            py,
            "ConfigError",
            format!("config field `{name}` has the wrong type: {v}"),
        )
    })
}

fn choice<T>(py: Python<'_>, name: &str, value: &str, options: &[(&str, T)]) -> PyResult<T>
where
    T: Copy,
{
    options
        .iter()
        .find(|(k, _)| *k == value)
        .map(|(_, v)| *v)
        .ok_or_else(|| {
            raise(
                py,
                "ConfigError",
                format!(
                    "invalid value for `{name}`: {value:?}; expected one of {}",
                    options
                        .iter()
                        .map(|(k, _)| format!("{k:?}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })
}

/// Builds the core parameters from the dict of a Python `CrossbarConfig`.
fn params_from_dict(d: &Bound<'_, PyDict>) -> PyResult<CrossbarParams> {
    let py = d.py();
    let noise: String = field(d, "noise_model")?;
    let noise_model = NoiseModel::from_name(&noise).ok_or_else(|| {
        raise(
            py,
            "ConfigError",
            format!("invalid value for `noise_model`: {noise:?}; expected \"none\", \"pcm\" or \"hermes\""),
        )
    })?;
    let scaling: String = field(d, "weight_scaling")?;
    let comp: String = field(d, "drift_compensation")?;
    let programming: String = field(d, "programming")?;
    Ok(CrossbarParams {
        tile_rows: field(d, "tile_rows")?,
        tile_cols: field(d, "tile_cols")?,
        weight_scaling: choice(
            py,
            "weight_scaling",
            &scaling,
            &[
                ("tile", WeightScaling::PerTile),
                ("column", WeightScaling::PerColumn),
            ],
        )?,
        devices_per_polarity: field(d, "devices_per_polarity")?,
        conductance_bits: field(d, "conductance_bits")?,
        noise_model,
        programming: choice(
            py,
            "programming",
            &programming,
            &[
                ("statistical", Programming::Statistical),
                ("iterative", Programming::Iterative),
            ],
        )?,
        g_max: field(d, "g_max")?,
        prog_noise_scale: field(d, "prog_noise_scale")?,
        drift_scale: field(d, "drift_scale")?,
        read_noise_scale: field(d, "read_noise_scale")?,
        t0: field(d, "t0")?,
        t_read: field(d, "t_read")?,
        input_bits: field(d, "input_bits")?,
        input_range: field(d, "input_range")?,
        out_noise: field(d, "out_noise")?,
        w_noise: field(d, "w_noise")?,
        ir_drop: field(d, "ir_drop")?,
        ir_drop_g_ratio: field(d, "ir_drop_g_ratio")?,
        output_bits: field(d, "output_bits")?,
        out_bound: field(d, "out_bound")?,
        drift_compensation: choice(
            py,
            "drift_compensation",
            &comp,
            &[
                ("none", DriftCompensation::None),
                ("global", DriftCompensation::Global),
                ("column", DriftCompensation::PerColumn),
            ],
        )?,
    })
}

/// The Rust crossbar state (use `analogkernels.analog.AnalogMatrix`).
#[pyclass(module = "analogkernels._core", name = "_AnalogMatrix")]
pub struct PyAnalogMatrix {
    inner: AnalogMatrix,
}

impl PyAnalogMatrix {
    fn matmul_typed<'py, T: Float + Element>(
        &self,
        x: Bound<'py, PyArrayDyn<T>>,
        seed: u64,
        row_offset: u64,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = x.py();
        let (o, in_dim) = self.inner.shape();
        let shape = x.shape().to_vec();
        if shape.len() != 2 || shape[1] != in_dim {
            return Err(raise(
                py,
                "ShapeError",
                format!("X has shape {shape:?} but the matrix has {in_dim} inputs (X must be n × {in_dim})"),
            ));
        }
        let n = shape[0];
        if !x.is_c_contiguous() {
            return Err(raise(py, "ShapeError", "X must be C-contiguous"));
        }
        // SAFETY: read-only view under the GIL (the data stay alive: we hold x).
        let data = unsafe { x.as_slice() }
            .map_err(|_| raise(py, "ShapeError", "X must be C-contiguous"))?;
        // SAFETY: every element is written by matmul_into before it is read.
        let y = unsafe { PyArray2::<T>::new(py, [n, o], false) };
        // SAFETY: y is new and not shared.
        let out = unsafe { y.as_slice_mut() }
            .map_err(|_| raise(py, "ShapeError", "output not contiguous"))?;
        let inner = &self.inner;
        compute(py, n * in_dim * o, || {
            inner.matmul_into(data, n, seed, row_offset, out)
        })?;
        Ok(y.into_any())
    }
}

#[pymethods]
impl PyAnalogMatrix {
    /// Programs `w` (float64, C order) with the config dict and seed.
    #[staticmethod]
    fn program(
        w: PyReadonlyArray2<'_, f64>,
        config: &Bound<'_, PyDict>,
        seed: u64,
    ) -> PyResult<Self> {
        let py = w.py();
        let params = params_from_dict(config)?;
        let (o, i) = (w.shape()[0], w.shape()[1]);
        let data = w
            .as_slice()
            .map_err(|_| raise(py, "ShapeError", "W must be C-contiguous"))?;
        let inner = compute(py, o * i, || {
            AnalogMatrix::program(data, o, i, &params, seed)
        })?;
        Ok(PyAnalogMatrix { inner })
    }

    /// `X Wᵀ` through the simulated datapath; float32 or float64 in, the same
    /// dtype out (C-contiguous 2-D input).
    fn matmul<'py>(
        &self,
        x: &Bound<'py, PyAny>,
        seed: u64,
        row_offset: u64,
    ) -> PyResult<Bound<'py, PyAny>> {
        match as_float_array(x, "X")? {
            FloatArray::F32(a) => self.matmul_typed(a, seed, row_offset),
            FloatArray::F64(a) => self.matmul_typed(a, seed, row_offset),
        }
    }

    /// Moves the devices to `t_inference` seconds after programming.
    fn drift_to(&mut self, py: Python<'_>, t_inference: f64, seed: u64) -> PyResult<()> {
        let inner = &mut self.inner;
        compute(py, 1 << 20, || inner.drift_to(t_inference, seed))
    }

    /// Weights realised by the current device state (out × in, float64).
    fn effective_weights<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let (o, i) = self.inner.shape();
        PyArray1::from_vec(py, self.inner.effective_weights()).reshape([o, i])
    }

    /// `(row0, col0, rows, cols)` of every tile, row-tile-major.
    fn tile_layout(&self) -> Vec<(usize, usize, usize, usize)> {
        self.inner.tile_layout()
    }

    /// Sets the per-(tile, output) affine correction.
    fn set_affine(
        &mut self,
        scale: PyReadonlyArray1<'_, f64>,
        offset: PyReadonlyArray1<'_, f64>,
    ) -> PyResult<()> {
        let py = scale.py();
        let s = scale
            .as_slice()
            .map_err(|_| raise(py, "ShapeError", "scale must be contiguous"))?;
        let b = offset
            .as_slice()
            .map_err(|_| raise(py, "ShapeError", "offset must be contiguous"))?;
        self.inner.set_affine(s, b).map_err(crate::errors::to_py)
    }

    /// Seconds after programming of the current device state.
    #[getter]
    fn t_inference(&self) -> f64 {
        self.inner.t_inference()
    }

    /// `(out_features, in_features)`.
    #[getter]
    fn shape(&self) -> (usize, usize) {
        self.inner.shape()
    }
}
