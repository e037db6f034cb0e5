//! Bindings of `analogkernels_core::crossbar`: a private `_AnalogMatrix` that
//! the Python class `analogkernels.analog.AnalogMatrix` wraps. Array arguments
//! are converted and their shapes checked here (through `crate::arrays`), their
//! values by the core; every computation runs through `errors::compute`.

use analogkernels_core::crossbar::AnalogMatrix;
use analogkernels_core::hadamard::Float;
use numpy::{Element, PyArray1, PyArray2, PyArrayDyn, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::arrays::{
    as_float_array, c_order_copy, int_in_range, matrix_dims, new_uninit, FloatArray,
};
use crate::config::crossbar_params_from_dict;
use crate::errors::{compute, internal_error, shape_error};

/// A seed or stream row argument `name` (an integer in `0..=2^64 - 1`).
fn u64_arg(value: &Bound<'_, PyAny>, name: &str) -> PyResult<u64> {
    int_in_range(value, name, u64::MAX)
}

/// The Rust crossbar state (use `analogkernels.analog.AnalogMatrix`).
///
/// Safe to share between Python threads: reads take a shared lock, so they run
/// concurrently (each reserves its own rows of the read stream), and
/// drift/affine changes take the exclusive lock — both inside the GIL-release
/// helper, so a thread waiting for the lock never holds the GIL.
#[pyclass(module = "analogkernels._core", name = "_AnalogMatrix")]
pub struct PyAnalogMatrix {
    inner: RwLock<AnalogMatrix>,
}

/// Which noise keys a read uses.
#[derive(Clone, Copy)]
enum Read {
    /// The next rows of the matrix's own read stream.
    Fresh,
    /// A pinned read: `(seed, first row)`.
    Pinned(u64, u64),
}

impl PyAnalogMatrix {
    fn shared(&self) -> RwLockReadGuard<'_, AnalogMatrix> {
        // A panic while the lock was held is caught by `compute` before it can
        // leave the matrix half-written (every mutation validates first, then
        // assigns), so a poisoned lock still guards a consistent state.
        self.inner
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn exclusive(&self) -> RwLockWriteGuard<'_, AnalogMatrix> {
        self.inner
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn read_typed<'py, T: Float + Element>(
        &self,
        x: Bound<'py, PyArrayDyn<T>>,
        read: Read,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = x.py();
        let (o, in_dim) = self.shared().shape();
        let shape = x.shape().to_vec();
        // A vector is one row, and its result a vector.
        let n = match *shape.as_slice() {
            [i] | [_, i] if i != in_dim => {
                return Err(shape_error(format!(
                    "X has shape {shape:?} but the matrix has {in_dim} inputs \
                     (X must be n × {in_dim} or a vector of {in_dim})"
                )))
            }
            [_] => 1,
            [n, _] => n,
            _ => {
                return Err(shape_error(format!(
                    "X must be 1-D or 2-D (n × {in_dim}), got shape {shape:?}"
                )))
            }
        };
        // SAFETY: the engine writes every element before `y` is returned.
        let y = unsafe { new_uninit::<T>(py, &[n, o]) }?;
        // Buffer policy: the engine works on a private copy of X taken under
        // the GIL, so no other thread can change the data it validated.
        let data = c_order_copy(&x)?;
        // SAFETY: y was just allocated here and is not shared yet.
        let out = unsafe { y.as_slice_mut() }
            .map_err(|_| internal_error("new output array is not contiguous"))?;
        compute(py, n.saturating_mul(in_dim).saturating_mul(o), || {
            let m = self.shared();
            match read {
                Read::Fresh => m.read_into(&data, n, out).map(|_| ()),
                Read::Pinned(seed, row) => m.matmul_into(&data, n, seed, row, out),
            }
        })?;
        if shape.len() == 1 {
            return Ok(y.reshape([o])?.into_any());
        }
        Ok(y.into_any())
    }
}

#[pymethods]
impl PyAnalogMatrix {
    /// Programs `w` (out × in; any real dtype, read as float64) with the
    /// config dict and seed.
    #[staticmethod]
    fn program(
        w: &Bound<'_, PyAny>,
        config: &Bound<'_, PyDict>,
        seed: &Bound<'_, PyAny>,
    ) -> PyResult<Self> {
        let py = w.py();
        let params = crossbar_params_from_dict(config)?;
        let seed = u64_arg(seed, "seed")?;
        let w = as_float_array(w, "W")?;
        let (o, i) = matrix_dims(&w.shape(), "W")?;
        let data: Vec<f64> = w.to_vec()?;
        let inner = compute(py, o.saturating_mul(i), || {
            AnalogMatrix::program(&data, o, i, &params, seed)
        })?;
        Ok(PyAnalogMatrix {
            inner: RwLock::new(inner),
        })
    }

    /// An independent copy of the whole state (devices, drift, affine
    /// correction, read position), without programming again.
    fn copy(&self, py: Python<'_>) -> PyResult<Self> {
        let (o, i) = self.shared().shape();
        let inner = compute(py, o.saturating_mul(i), || Ok(self.shared().clone()))?;
        Ok(PyAnalogMatrix {
            inner: RwLock::new(inner),
        })
    }

    /// A fresh read: `X Wᵀ` with the next rows of the read stream (float32 or
    /// float64 in, the same dtype out).
    fn read<'py>(&self, x: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        match as_float_array(x, "X")? {
            FloatArray::F32(a) => self.read_typed(a, Read::Fresh),
            FloatArray::F64(a) => self.read_typed(a, Read::Fresh),
        }
    }

    /// A pinned read: `X Wᵀ` with rows `row_offset ..` of the stream of `seed`.
    fn matmul<'py>(
        &self,
        x: &Bound<'py, PyAny>,
        seed: &Bound<'py, PyAny>,
        row_offset: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let read = Read::Pinned(u64_arg(seed, "seed")?, u64_arg(row_offset, "row_offset")?);
        match as_float_array(x, "X")? {
            FloatArray::F32(a) => self.read_typed(a, read),
            FloatArray::F64(a) => self.read_typed(a, read),
        }
    }

    /// Test hook: the per-MVM noise terms of a pinned read of `x` (float64,
    /// n × in) — `(sigma, ir_drop, xi)`, each `n × n_col_tiles × out` float64
    /// (see `analogkernels_core::crossbar::ReadTerms`).
    #[allow(clippy::type_complexity)]
    fn _read_terms<'py>(
        &self,
        x: Bound<'py, PyArrayDyn<f64>>,
        seed: &Bound<'py, PyAny>,
        row_offset: &Bound<'py, PyAny>,
    ) -> PyResult<(
        Bound<'py, PyArrayDyn<f64>>,
        Bound<'py, PyArrayDyn<f64>>,
        Bound<'py, PyArrayDyn<f64>>,
    )> {
        let py = x.py();
        let (seed, row_offset) = (u64_arg(seed, "seed")?, u64_arg(row_offset, "row_offset")?);
        let n = matrix_dims(x.shape(), "X")?.0;
        let data = c_order_copy(&x)?;
        let terms = compute(py, 0, || {
            self.shared().read_terms(&data, n, seed, row_offset)
        })?;
        let dims = [n, terms.col_tiles, terms.out_dim];
        let as_array = |v: Vec<f64>| {
            PyArray1::from_vec(py, v)
                .reshape(dims)
                .map(|a| a.to_dyn().clone())
        };
        Ok((
            as_array(terms.sigma)?,
            as_array(terms.ir_drop)?,
            as_array(terms.xi)?,
        ))
    }

    /// Test hook: the residual gain and offset of every ADC (one per tile
    /// output, tiles in order; the offset in the domain the ADC rounds in:
    /// codes, or normalised units without ADC), float64.
    fn _adc_mismatch<'py>(
        &self,
        py: Python<'py>,
    ) -> (Bound<'py, PyArray1<f64>>, Bound<'py, PyArray1<f64>>) {
        let m = self.shared();
        let (gain, offset) = m.adc_mismatch();
        (
            PyArray1::from_slice(py, gain),
            PyArray1::from_slice(py, offset),
        )
    }

    /// Moves the devices to `t_inference` seconds after programming.
    fn drift_to(&self, py: Python<'_>, t_inference: f64, seed: &Bound<'_, PyAny>) -> PyResult<()> {
        let seed = u64_arg(seed, "seed")?;
        compute(py, 1 << 20, || self.exclusive().drift_to(t_inference, seed))
    }

    /// Weights realised by the current device state (out × in, float64).
    fn effective_weights<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let m = self.shared();
        let (o, i) = m.shape();
        PyArray1::from_vec(py, m.effective_weights()).reshape([o, i])
    }

    /// `(row0, col0, rows, cols)` of every tile, row-tile-major.
    fn tile_layout(&self) -> Vec<(usize, usize, usize, usize)> {
        self.shared().tile_layout()
    }

    /// Sets the per-(tile, output) affine correction: `scale` and `offset`
    /// 1-D or 2-D (read in C order), any real dtype, read as float64.
    fn set_affine(&self, scale: &Bound<'_, PyAny>, offset: &Bound<'_, PyAny>) -> PyResult<()> {
        let py = scale.py();
        let mut values = [Vec::new(), Vec::new()];
        for (v, (a, name)) in values
            .iter_mut()
            .zip([(scale, "scale"), (offset, "offset")])
        {
            let arr = as_float_array(a, name)?;
            let shape = arr.shape();
            if !matches!(shape.len(), 1 | 2) {
                return Err(shape_error(format!(
                    "{name} must be 1-D or 2-D, got shape {shape:?}"
                )));
            }
            *v = arr.to_vec()?;
        }
        let [s, b] = values;
        compute(py, 0, || self.exclusive().set_affine(&s, &b))
    }

    /// Seconds after programming of the current device state.
    #[getter]
    fn t_inference(&self) -> f64 {
        self.shared().t_inference()
    }

    /// `(out_features, in_features)`.
    #[getter]
    fn shape(&self) -> (usize, usize) {
        self.shared().shape()
    }

    /// Rows read so far from the matrix's own read stream.
    #[getter]
    fn read_position(&self) -> u64 {
        self.shared().read_position()
    }

    #[setter]
    fn set_read_position(&self, position: &Bound<'_, PyAny>) -> PyResult<()> {
        let position = u64_arg(position, "read_position")?;
        self.shared().set_read_position(position);
        Ok(())
    }

    /// The programming seed (it also keys the read stream).
    #[getter]
    fn seed(&self) -> u64 {
        self.shared().seed()
    }
}
