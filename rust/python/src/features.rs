//! Bindings of `analogkernels_core::features`: the RBF feature function and
//! the fused SORF projection.

use analogkernels_core::hadamard::Float;
use numpy::{Element, PyArrayDyn, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::prelude::*;

use crate::arrays::{as_float_array, FloatArray};
use crate::errors::{compute, raise};

fn features_typed<'py, T: analogkernels_core::features::SinCos + Element>(
    u: Bound<'py, PyArrayDyn<T>>,
    scale: f64,
) -> PyResult<Bound<'py, PyAny>> {
    let py = u.py();
    let shape = u.shape().to_vec();
    if shape.len() != 2 {
        return Err(raise(
            py,
            "ShapeError",
            format!("U must be 2-D, got shape {shape:?}"),
        ));
    }
    let (rows, s) = (shape[0], shape[1]);
    let u = u.to_owned_array();
    let data = u
        .as_slice()
        .ok_or_else(|| raise(py, "ShapeError", "U must be contiguous"))?;
    // SAFETY: every element is written before it is read.
    let out = unsafe { numpy::PyArray2::<T>::new(py, [rows, 2 * s], false) };
    // SAFETY: new array, not shared.
    let dst = unsafe { out.as_slice_mut() }.map_err(|_| raise(py, "ShapeError", "out"))?;
    let sc = T::from_f64(scale);
    compute(py, rows * s * 8, || {
        analogkernels_core::features::rbf_features(data, rows, s, sc, dst)
    })?;
    Ok(out.into_any())
}

/// `scale · [cos(U), sin(U)]` row by row (float32/float64 kept).
#[pyfunction]
pub fn rbf_features<'py>(u: &Bound<'py, PyAny>, scale: f64) -> PyResult<Bound<'py, PyAny>> {
    match as_float_array(u, "U")? {
        FloatArray::F32(a) => features_typed(a, scale),
        FloatArray::F64(a) => features_typed(a, scale),
    }
}

fn sorf_typed<'py, T: Float + Element>(
    x: Bound<'py, PyArrayDyn<T>>,
    signs: &Bound<'py, PyAny>,
    n_components: usize,
    scale: f64,
) -> PyResult<Bound<'py, PyAny>> {
    let py = x.py();
    let shape = x.shape().to_vec();
    if shape.len() != 2 {
        return Err(raise(
            py,
            "ShapeError",
            format!("X must be 2-D, got shape {shape:?}"),
        ));
    }
    let (rows, d) = (shape[0], shape[1]);
    let sg = as_float_array(signs, "signs")?;
    let sshape = sg.shape();
    if sshape.len() != 3 || sshape[1] != 3 {
        return Err(raise(
            py,
            "ShapeError",
            format!("signs must have shape (blocks, 3, n), got {sshape:?}"),
        ));
    }
    let n = sshape[2];
    let signs_v: Vec<T> = match sg {
        FloatArray::F32(a) => a
            .to_owned_array()
            .iter()
            .map(|&v| T::from_f64(v as f64))
            .collect(),
        FloatArray::F64(a) => a.to_owned_array().iter().map(|&v| T::from_f64(v)).collect(),
    };
    let x = x.to_owned_array();
    let data = x
        .as_slice()
        .ok_or_else(|| raise(py, "ShapeError", "X must be contiguous"))?;
    // SAFETY: every element is written before it is read.
    let out = unsafe { numpy::PyArray2::<T>::new(py, [rows, n_components], false) };
    // SAFETY: new array, not shared.
    let dst = unsafe { out.as_slice_mut() }.map_err(|_| raise(py, "ShapeError", "out"))?;
    let sc = T::from_f64(scale);
    compute(py, rows * n_components * 8, || {
        let w = analogkernels_core::features::SorfMatrix {
            signs: &signs_v,
            n,
            n_components,
            scale: sc,
        };
        analogkernels_core::features::sorf_project(data, rows, d, &w, dst)
    })?;
    Ok(out.into_any())
}

/// `X Wᵀ · scale` for the SORF matrix of `signs` (blocks × 3 × n), first
/// `n_components` rows, inputs zero-padded to `n`.
#[pyfunction]
#[pyo3(signature = (x, signs, n_components, scale=1.0))]
pub fn sorf_project<'py>(
    x: &Bound<'py, PyAny>,
    signs: &Bound<'py, PyAny>,
    n_components: usize,
    scale: f64,
) -> PyResult<Bound<'py, PyAny>> {
    match as_float_array(x, "X")? {
        FloatArray::F32(a) => sorf_typed(a, signs, n_components, scale),
        FloatArray::F64(a) => sorf_typed(a, signs, n_components, scale),
    }
}
