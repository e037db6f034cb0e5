//! Bindings of `analogkernels_core::features`: the RBF feature function and
//! the fused SORF projection.

use analogkernels_core::features::{Gemm, Projection, Scratch, SinCos, SorfMatrix};
use analogkernels_core::hadamard::Float;
use numpy::{Element, PyArrayDyn, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::prelude::*;

use crate::arrays::{
    as_float_array, int_in_range, matrix_dims, new_uninit, with_c_slice, FloatArray,
};
use crate::errors::{compute, config_error, guarded, shape_error};

/// `n_components`: an integer from 0 to `isize::MAX` (`ConfigError` otherwise).
fn components(n: &Bound<'_, PyAny>) -> PyResult<usize> {
    Ok(int_in_range(n, "n_components", isize::MAX as u64)? as usize)
}

/// `factor · n`, or a `ShapeError` naming `what` when it overflows (a
/// feature count so large that the output could not be addressed).
fn times(factor: usize, n: usize, what: &str) -> PyResult<usize> {
    factor.checked_mul(n).ok_or_else(|| {
        shape_error(format!(
            "{what} = {n} is too large: the output could not be addressed"
        ))
    })
}

/// A new `rows × cols` array filled by `fill(input, output)`, run through
/// [`compute`] (GIL released for large `work`, panics caught) with the
/// input's elements in C order. The output is allocated first: a result
/// that does not fit in memory is a `MemoryError` before any copy is made.
fn new_filled<'py, T: Element + Copy>(
    input: &Bound<'py, PyArrayDyn<T>>,
    (rows, cols): (usize, usize),
    work: usize,
    fill: impl FnOnce(&[T], &mut [T]) -> analogkernels_core::Result<()> + Send,
) -> PyResult<Bound<'py, PyAny>> {
    let py = input.py();
    // SAFETY: `fill` writes every element before anything reads it.
    let out = unsafe { new_uninit::<T>(py, &[rows, cols]) }?;
    // SAFETY: new array, not shared.
    let dst = unsafe { out.as_slice_mut() }.map_err(|_| shape_error("out"))?;
    with_c_slice(input, |data| compute(py, work, || fill(data, dst)))?;
    Ok(out.into_any())
}

fn features_typed<T: SinCos + Element>(
    u: Bound<'_, PyArrayDyn<T>>,
    scale: f64,
) -> PyResult<Bound<'_, PyAny>> {
    let (rows, s) = matrix_dims(u.shape(), "U")?;
    let sc = T::from_f64(scale);
    let cols = times(2, s, "the number of columns of U")?;
    new_filled(
        &u,
        (rows, cols),
        rows.saturating_mul(s).saturating_mul(8),
        |data, dst| analogkernels_core::features::rbf_features(data, rows, s, sc, dst),
    )
}

/// `scale · [cos(U), sin(U)]` row by row (float32/float64 kept).
#[pyfunction]
pub fn rbf_features<'py>(u: &Bound<'py, PyAny>, scale: f64) -> PyResult<Bound<'py, PyAny>> {
    guarded(u.py(), || match as_float_array(u, "U")? {
        FloatArray::F32(a) => features_typed(a, scale),
        FloatArray::F64(a) => features_typed(a, scale),
    })
}

fn sorf_typed<'py, T: Float + Element>(
    x: Bound<'py, PyArrayDyn<T>>,
    signs: &Bound<'py, PyAny>,
    n_components: usize,
    scale: f64,
) -> PyResult<Bound<'py, PyAny>> {
    let (rows, d) = matrix_dims(x.shape(), "X")?;
    let (signs_v, n) = sorf_signs::<T>(signs)?;
    let w = SorfMatrix {
        signs: &signs_v,
        n,
        n_components,
        scale: T::from_f64(scale),
    };
    new_filled(
        &x,
        (rows, n_components),
        rows.saturating_mul(n_components).saturating_mul(8),
        |data, dst| analogkernels_core::features::sorf_project(data, rows, d, &w, dst),
    )
}

/// `X Wᵀ · scale` for the SORF matrix of `signs` (blocks × 3 × n), first
/// `n_components` rows, inputs zero-padded to `n`.
#[pyfunction]
#[pyo3(signature = (x, signs, n_components, scale=1.0))]
pub fn sorf_project<'py>(
    x: &Bound<'py, PyAny>,
    signs: &Bound<'py, PyAny>,
    n_components: &Bound<'py, PyAny>,
    scale: f64,
) -> PyResult<Bound<'py, PyAny>> {
    guarded(x.py(), || {
        let n_components = components(n_components)?;
        match as_float_array(x, "X")? {
            FloatArray::F32(a) => sorf_typed(a, signs, n_components, scale),
            FloatArray::F64(a) => sorf_typed(a, signs, n_components, scale),
        }
    })
}

/// The `signs` array of a SORF matrix: shape (blocks, 3, n); returns `n`.
fn sorf_signs<T: Float>(signs: &Bound<'_, PyAny>) -> PyResult<(Vec<T>, usize)> {
    let sg = as_float_array(signs, "signs")?;
    let sshape = sg.shape();
    if sshape.len() != 3 || sshape[1] != 3 {
        return Err(shape_error(format!(
            "signs must have shape (blocks, 3, n), got {sshape:?}"
        )));
    }
    let n = sshape[2];
    Ok((sg.to_vec()?, n))
}

fn fused_typed<'py, T: SinCos + Gemm + Scratch + Element>(
    x: Bound<'py, PyArrayDyn<T>>,
    weights: Option<&Bound<'py, PyAny>>,
    signs: Option<&Bound<'py, PyAny>>,
    n_components: usize,
    projection_scale: f64,
    scale: f64,
) -> PyResult<Bound<'py, PyAny>> {
    let (rows, d) = matrix_dims(x.shape(), "X")?;
    let (w, n): (Vec<T>, usize) = match (weights, signs) {
        (Some(w), None) => {
            let wa = as_float_array(w, "W")?;
            if wa.shape() != vec![n_components, d] {
                return Err(shape_error(format!(
                    "W must have shape ({n_components}, {d}), got {:?}",
                    wa.shape()
                )));
            }
            (wa.to_vec()?, 0)
        }
        (None, Some(sg)) => sorf_signs(sg)?,
        _ => return Err(config_error("give exactly one of weights and signs")),
    };
    let projection = if weights.is_some() {
        Projection::Dense {
            weights: &w,
            n_components,
        }
    } else {
        Projection::Sorf(SorfMatrix {
            signs: &w,
            n,
            n_components,
            scale: T::from_f64(projection_scale),
        })
    };
    let sc = T::from_f64(scale);
    let cols = times(2, n_components, "n_components")?;
    new_filled(
        &x,
        (rows, cols),
        rows.saturating_mul(n_components).saturating_mul(16),
        |data, dst| {
            analogkernels_core::features::rbf_features_fused(data, rows, d, &projection, sc, dst)
        },
    )
}

/// `scale · [cos(X Wᵀ), sin(X Wᵀ)]` in one pass over row chunks (the
/// projection never materialised): `W` dense (`weights`, s × d) or SORF
/// (`signs`, blocks × 3 × n, times `projection_scale`). dtype of X kept.
#[pyfunction]
#[pyo3(signature = (x, n_components, scale, *, weights=None, signs=None, projection_scale=1.0))]
pub fn rbf_features_fused<'py>(
    x: &Bound<'py, PyAny>,
    n_components: &Bound<'py, PyAny>,
    scale: f64,
    weights: Option<&Bound<'py, PyAny>>,
    signs: Option<&Bound<'py, PyAny>>,
    projection_scale: f64,
) -> PyResult<Bound<'py, PyAny>> {
    guarded(x.py(), || {
        let n_components = components(n_components)?;
        match as_float_array(x, "X")? {
            FloatArray::F32(a) => {
                fused_typed(a, weights, signs, n_components, projection_scale, scale)
            }
            FloatArray::F64(a) => {
                fused_typed(a, weights, signs, n_components, projection_scale, scale)
            }
        }
    })
}
