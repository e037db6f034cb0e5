//! Conversion of array arguments: numpy float32/float64 arrays pass straight
//! through; anything else goes once through `analogkernels._validation`
//! (numpy.asarray, integer → float64, a clear error for complex or text).

use numpy::npyffi::{self, npy_intp, PY_ARRAY_API};
use numpy::{
    Element, PyArrayDescrMethods, PyArrayDyn, PyArrayMethods, PyUntypedArray, PyUntypedArrayMethods,
};
use pyo3::exceptions::PyMemoryError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyFloat, PyInt};

use analogkernels_core::hadamard::Float;

use crate::errors::{config_error, shape_error};

/// A float array of either supported precision.
pub enum FloatArray<'py> {
    F32(Bound<'py, PyArrayDyn<f32>>),
    F64(Bound<'py, PyArrayDyn<f64>>),
}

impl FloatArray<'_> {
    pub fn shape(&self) -> Vec<usize> {
        match self {
            FloatArray::F32(a) => a.shape().to_vec(),
            FloatArray::F64(a) => a.shape().to_vec(),
        }
    }

    /// The elements converted to `T`, in C order (a `MemoryError` when the
    /// copy cannot be allocated).
    pub fn to_vec<T: Float>(&self) -> PyResult<Vec<T>> {
        // SAFETY: read under the GIL.
        match self {
            FloatArray::F32(a) => try_collect(
                a.len(),
                unsafe { a.as_array() }
                    .iter()
                    .map(|&v| T::from_f64(f64::from(v))),
            ),
            FloatArray::F64(a) => try_collect(
                a.len(),
                unsafe { a.as_array() }.iter().map(|&v| T::from_f64(v)),
            ),
        }
    }
}

/// `(rows, cols)` of a 2-D array argument `name`, or a `ShapeError` naming it.
pub fn matrix_dims(shape: &[usize], name: &str) -> PyResult<(usize, usize)> {
    match *shape {
        [rows, cols] => Ok((rows, cols)),
        ref shape => Err(shape_error(format!(
            "{name} must be 2-D, got shape {shape:?}"
        ))),
    }
}

/// The length of a 1-D array argument `name`, or a `ShapeError` naming it.
pub fn vector_len(shape: &[usize], name: &str) -> PyResult<usize> {
    match *shape {
        [len] => Ok(len),
        ref shape => Err(shape_error(format!(
            "{name} must be 1-D, got shape {shape:?}"
        ))),
    }
}

fn converter(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    static CONVERT: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    CONVERT
        .get_or_try_init(py, || {
            py.import("analogkernels._validation")?
                .getattr("as_float_array")
                .map(pyo3::Bound::unbind)
        })
        .map(|f| f.bind(py))
}

/// Fills this module's caches (see `errors::init_caches`).
pub fn init_caches(py: Python<'_>) -> PyResult<()> {
    converter(py)?;
    // The first numpy call loads numpy's C API table (a once-cell).
    numpy::PyArray1::<f64>::zeros(py, 0, false);
    Ok(())
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

/// A new, uninitialised C-ordered array of `shape`, or a `MemoryError` when
/// it cannot be allocated: a shape whose size in bytes cannot even be
/// addressed is refused before numpy is asked, and numpy's own failure
/// (`MemoryError`, `ValueError` for sizes it rejects) is passed on. Never a
/// panic (rust-numpy's constructors panic on a failed allocation).
///
/// # Safety
/// The caller writes every element before the array is read.
pub unsafe fn new_uninit<'py, T: Element>(
    py: Python<'py>,
    shape: &[usize],
) -> PyResult<Bound<'py, PyArrayDyn<T>>> {
    let bytes = shape
        .iter()
        .try_fold(std::mem::size_of::<T>(), |acc, &d| acc.checked_mul(d));
    if bytes.is_none_or(|b| b > isize::MAX as usize)
        || shape.iter().any(|&d| d > isize::MAX as usize)
    {
        return Err(PyMemoryError::new_err(format!(
            "cannot allocate the result: shape {shape:?} of {}-byte elements exceeds the \
             addressable memory",
            std::mem::size_of::<T>()
        )));
    }
    let mut dims: Vec<npy_intp> = shape.iter().map(|&d| d as npy_intp).collect();
    // SAFETY: a valid type object and descriptor (the call steals the
    // descriptor's reference), dims of the given length, no strides or data:
    // numpy allocates a C-ordered buffer or returns null with an exception set.
    let ptr = unsafe {
        PY_ARRAY_API.PyArray_NewFromDescr(
            py,
            npyffi::get_type_object(py, npyffi::NpyTypes::PyArray_Type),
            T::get_dtype(py).into_dtype_ptr(),
            dims.len() as std::ffi::c_int,
            dims.as_mut_ptr(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            0,
            std::ptr::null_mut(),
        )
    };
    if ptr.is_null() {
        return Err(PyErr::fetch(py));
    }
    // SAFETY: a new reference to an ndarray of element type T.
    Ok(unsafe { Bound::from_owned_ptr(py, ptr).cast_into_unchecked() })
}

/// `len` items of `items` in a new `Vec`, or a `MemoryError` when the memory
/// cannot be reserved (an infallible `Vec` would abort the process).
pub fn try_collect<T>(len: usize, items: impl Iterator<Item = T>) -> PyResult<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(len).map_err(|_| copy_error::<T>(len))?;
    v.extend(items.take(len));
    Ok(v)
}

fn copy_error<T>(len: usize) -> PyErr {
    PyMemoryError::new_err(format!(
        "cannot allocate a copy of {len} elements of {} bytes",
        std::mem::size_of::<T>()
    ))
}

/// The elements of `x` in C order in a private copy (a memcpy when `x` is
/// C-contiguous; a `MemoryError` when the copy cannot be allocated): the
/// engine then works on data no other thread can change after validation.
pub fn c_order_copy<T: Element + Copy>(x: &Bound<'_, PyArrayDyn<T>>) -> PyResult<Vec<T>> {
    let view = x
        .try_readonly()
        .map_err(|_| shape_error("X is being written by another call"))?;
    // `as_slice` also accepts Fortran order (memory order ≠ C order): only a
    // C-contiguous array is copied as one block.
    match view.as_slice() {
        Ok(s) if x.is_c_contiguous() => {
            let mut v = Vec::new();
            v.try_reserve_exact(s.len())
                .map_err(|_| copy_error::<T>(s.len()))?;
            v.extend_from_slice(s);
            Ok(v)
        }
        _ => try_collect(x.len(), view.as_array().iter().copied()),
    }
}

/// Runs `f` on the elements of `a` in C order: a read-only view when `a` is
/// C-contiguous and not mutably borrowed by Rust, otherwise a copy (large
/// inputs are then not copied just to be read; a copy that cannot be
/// allocated is a `MemoryError`).
pub fn with_c_slice<T: numpy::Element + Copy, R>(
    a: &Bound<'_, PyArrayDyn<T>>,
    f: impl FnOnce(&[T]) -> PyResult<R>,
) -> PyResult<R> {
    if a.is_c_contiguous() {
        if let Ok(view) = a.try_readonly() {
            if let Ok(slice) = view.as_slice() {
                return f(slice);
            }
        }
    }
    // SAFETY: read under the GIL; the copy is taken before `f` runs.
    let owned = try_collect(a.len(), unsafe { a.as_array() }.iter().copied())?;
    f(&owned)
}

/// `type repr` of a Python value, for the messages that name what was given.
pub fn describe(v: &Bound<'_, PyAny>) -> String {
    let type_name = v
        .get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_default();
    let repr = v.repr().map(|r| r.to_string()).unwrap_or_default();
    format!("{type_name} {repr}")
}

/// An integer argument or config field `name` in `0..=max`: a Python `int`
/// (or numpy integer), not a bool, float or string; anything else is a
/// `ConfigError` that names it (not pyo3's bare `OverflowError`/`TypeError`).
pub fn int_in_range(value: &Bound<'_, PyAny>, name: &str, max: u64) -> PyResult<u64> {
    let not_int = || {
        config_error(format!(
            "invalid value for `{name}`: must be an integer, got {}",
            describe(value)
        ))
    };
    let is_int = !value.is_instance_of::<PyBool>()
        && (value.is_instance_of::<PyInt>()
            || value.hasattr("__index__").unwrap_or(false) && !value.is_instance_of::<PyFloat>());
    if !is_int {
        return Err(not_int());
    }
    // __index__ covers numpy integers (numpy's bool has one that raises);
    // a value beyond u64 fails to convert.
    let index = value.call_method0("__index__").map_err(|_| not_int())?;
    match index.extract::<u64>() {
        Ok(v) if v <= max => Ok(v),
        _ => Err(config_error(format!(
            "invalid value for `{name}`: must be an integer from 0 to {max}, got {}",
            value.str().map(|r| r.to_string()).unwrap_or_default()
        ))),
    }
}

/// A real argument or config field `name`: a Python `int` or `float`, or a
/// numpy integer or floating scalar, as a float; anything else (a bool, a
/// string, a complex number, an array, `None`) or an integer too large for a
/// float is a `ConfigError` that names it.
pub fn real_value(value: &Bound<'_, PyAny>, name: &str) -> PyResult<f64> {
    let is_real = if value.is_instance_of::<PyBool>() {
        false
    } else if value.is_instance_of::<PyInt>() || value.is_instance_of::<PyFloat>() {
        true
    } else {
        // A numpy scalar: its dtype kind says integer, unsigned or float
        // (numpy's bool is kind "b", complex "c"); arrays are not scalars.
        !value.is_instance_of::<PyUntypedArray>()
            && value
                .getattr("dtype")
                .and_then(|d| d.getattr("kind"))
                .and_then(|k| k.extract::<String>())
                .is_ok_and(|k| matches!(k.as_str(), "i" | "u" | "f"))
    };
    if !is_real {
        return Err(config_error(format!(
            "invalid value for `{name}`: must be a real number, got {}",
            describe(value)
        )));
    }
    value.extract::<f64>().map_err(|_| {
        config_error(format!(
            "invalid value for `{name}`: {} is too large for a float",
            value.str().map(|r| r.to_string()).unwrap_or_default()
        ))
    })
}
