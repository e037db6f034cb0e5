//! Conversion of array arguments: numpy float32/float64 arrays pass straight
//! through; anything else goes once through `analogkernels._validation`
//! (numpy.asarray, integer → float64, a clear error for complex or text).

use numpy::{PyArrayDyn, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

/// A float array of either supported precision.
pub enum FloatArray<'py> {
    F32(Bound<'py, PyArrayDyn<f32>>),
    F64(Bound<'py, PyArrayDyn<f64>>),
}

impl<'py> FloatArray<'py> {
    pub fn shape(&self) -> Vec<usize> {
        match self {
            FloatArray::F32(a) => a.shape().to_vec(),
            FloatArray::F64(a) => a.shape().to_vec(),
        }
    }
}

fn converter(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    static CONVERT: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    CONVERT
        .get_or_try_init(py, || {
            py.import("analogkernels._validation")?
                .getattr("as_float_array")
                .map(|f| f.unbind())
        })
        .map(|f| f.bind(py))
}

/// `x` as a float32/float64 numpy array (no copy when it already is one).
/// `name` is the argument's name, used in error messages.
pub fn as_float_array<'py>(x: &Bound<'py, PyAny>, name: &str) -> PyResult<FloatArray<'py>> {
    if let Ok(a) = x.cast::<PyArrayDyn<f32>>() {
        return Ok(FloatArray::F32(a.clone()));
    }
    if let Ok(a) = x.cast::<PyArrayDyn<f64>>() {
        return Ok(FloatArray::F64(a.clone()));
    }
    let converted = converter(x.py())?.call1((x, name))?;
    if let Ok(a) = converted.cast::<PyArrayDyn<f32>>() {
        return Ok(FloatArray::F32(a.clone()));
    }
    Ok(FloatArray::F64(converted.cast_into::<PyArrayDyn<f64>>()?))
}

/// Byte range `[start, end)` an array's elements span.
pub fn byte_span<T: numpy::Element>(a: &Bound<'_, PyArrayDyn<T>>) -> (usize, usize) {
    let ptr = a.data() as usize;
    let item = std::mem::size_of::<T>() as isize;
    let (mut lo, mut hi) = (0isize, 0isize);
    if a.len() == 0 {
        return (ptr, ptr);
    }
    for (&dim, &stride) in a.shape().iter().zip(a.strides()) {
        let reach = (dim as isize - 1) * stride;
        if reach < 0 {
            lo += reach;
        } else {
            hi += reach;
        }
    }
    (
        (ptr as isize + lo) as usize,
        (ptr as isize + hi + item) as usize,
    )
}

/// Runs `f` on the elements of `a` in C order: a read-only view when `a` is
/// C-contiguous and not mutably borrowed by Rust, otherwise a copy (large
/// inputs are then not copied just to be read).
pub fn with_c_slice<T: numpy::Element, R>(
    a: &Bound<'_, PyArrayDyn<T>>,
    f: impl FnOnce(&[T]) -> R,
) -> R {
    if a.is_c_contiguous() {
        if let Ok(view) = a.try_readonly() {
            if let Ok(slice) = view.as_slice() {
                return f(slice);
            }
        }
    }
    let owned = a.to_owned_array();
    let slice = owned
        .as_slice()
        .expect("an owned ndarray in standard layout is contiguous");
    f(slice)
}
