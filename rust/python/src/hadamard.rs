//! Bindings of `analogkernels_core::hadamard`: convert, validate, compute.

use analogkernels_core::hadamard::{self as core_h, Float, FwhtParams, Isa};
use analogkernels_core::names::Named;
use analogkernels_core::Error;
use numpy::ndarray::ArrayViewMutD;
use numpy::{Element, PyArrayDyn, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::prelude::*;

use crate::arrays::{as_float_array, byte_span, new_uninit, try_collect, vector_len, FloatArray};
use crate::errors::{compute, config_error, dtype_error, guarded, shape_error, to_py};

fn parse_isa(isa: Option<&str>) -> PyResult<Option<Isa>> {
    isa.map(|name| <Isa as Named>::from_name(name).map_err(to_py))
        .transpose()
}

/// Validates the call (shape, the diagonals' lengths, the instruction set),
/// makes the destination (a new array or `out`), copies `x` into it unless it
/// already is `out`, and runs `op(dst, row_len)` on it. Everything that can
/// fail is checked before `out` is written: a failed call leaves it as it was.
fn transform_into<'py, T: Float + Element>(
    x: Bound<'py, PyArrayDyn<T>>,
    out: Option<&Bound<'py, PyAny>>,
    diagonals: &[(&str, usize)],
    isa: Option<Isa>,
    op: impl FnOnce(&mut [T], usize) -> Result<(), Error> + Send,
) -> PyResult<Bound<'py, PyAny>> {
    let py = x.py();
    let shape = x.shape().to_vec();
    if shape.is_empty() || shape.len() > 2 {
        return Err(shape_error(format!(
            "x must be a 1-D vector or a 2-D array of rows, got {} dimension(s) with shape {:?}; \
                 reshape to (-1, n) to transform the last axis",
            shape.len(),
            shape
        )));
    }
    let n = *shape.last().unwrap_or(&0);
    let total: usize = shape.iter().product();
    // Also for an empty array: the same call is valid or not whatever the
    // number of rows.
    core_h::check_transform::<T>(total, n, diagonals, isa).map_err(to_py)?;
    let dst: Bound<'py, PyArrayDyn<T>> = match out {
        None => {
            // SAFETY: every element is written by the copy below before use.
            let dst = unsafe { new_uninit::<T>(py, &shape) }?;
            copy_into(&x, &dst);
            dst
        }
        Some(o) => {
            let o = o.cast::<PyArrayDyn<T>>().map_err(|_| {
                let dtype = o
                    .getattr("dtype")
                    .map_or_else(|_| o.get_type().to_string(), |d| d.to_string());
                dtype_error(format!(
                    "out must be a numpy array of dtype {} (the dtype of the result), got {dtype}",
                    std::any::type_name::<T>().replace('f', "float")
                ))
            })?;
            if o.shape() != shape.as_slice() {
                return Err(shape_error(format!(
                    "out has shape {:?} but the result has shape {:?}",
                    o.shape(),
                    shape
                )));
            }
            if !o.is_c_contiguous() {
                return Err(shape_error("out must be C-contiguous"));
            }
            if !is_writeable(o) {
                return Err(config_error("out is read-only (or in use elsewhere)"));
            }
            let same = x.data() == o.data() && x.strides() == o.strides();
            if !same {
                let (a0, a1) = byte_span(&x);
                let (b0, b1) = byte_span(o);
                if a0 < b1 && b0 < a1 {
                    // Partial overlap: read x completely before writing out.
                    // SAFETY: the GIL is held; no other code touches x now.
                    let owned = try_collect(total, unsafe { x.as_array() }.iter().copied())?;
                    let owned = numpy::ndarray::ArrayViewD::from_shape(shape.as_slice(), &owned)
                        .map_err(|e| shape_error(e.to_string()))?;
                    unsafe { o.as_array_mut() }.assign(&owned);
                } else {
                    copy_into(&x, o);
                }
            }
            o.clone()
        }
    };
    if total > 0 {
        // SAFETY: dst is C-contiguous (new, or checked above) and not aliased by
        // any Rust reference; Python code may not run while we hold the slice
        // except other threads when the GIL is released, as with numpy itself.
        let slice = unsafe { dst.as_slice_mut() }
            .map_err(|_| shape_error("destination must be C-contiguous"))?;
        compute(py, total, move || op(slice, n))?;
    }
    Ok(dst.into_any())
}

/// The array's WRITEABLE flag (cheaper than a tracked read-write borrow).
fn is_writeable<T: Element>(a: &Bound<'_, PyArrayDyn<T>>) -> bool {
    // SAFETY: `a` is a live numpy array; reading its flags field under the GIL.
    unsafe {
        (*numpy::npyffi::_PyArray_GET_ITEM_DATA(a.as_array_ptr())).flags
            & numpy::npyffi::NPY_ARRAY_WRITEABLE
            != 0
    }
}

fn copy_into<T: Element + Copy>(src: &Bound<'_, PyArrayDyn<T>>, dst: &Bound<'_, PyArrayDyn<T>>) {
    // SAFETY: the GIL is held; src and dst do not overlap (dst is new or was
    // checked); both have the same shape.
    unsafe {
        // as_slice() also accepts Fortran-contiguous memory: require C order.
        if let (true, Ok(s), Ok(d)) = (src.is_c_contiguous(), src.as_slice(), dst.as_slice_mut()) {
            d.copy_from_slice(s);
        } else {
            let mut d: ArrayViewMutD<'_, T> = dst.as_array_mut();
            d.assign(&src.as_array());
        }
    }
}

/// A vector argument (signs, diagonals) as `Vec<T>` of the data's precision.
fn vector_of<T: Float>(v: &Bound<'_, PyAny>, name: &str) -> PyResult<Vec<T>> {
    let arr = as_float_array(v, name)?;
    vector_len(&arr.shape(), name)?;
    arr.to_vec()
}

/// Fast Walsh–Hadamard transform of a vector or of every row of a 2-D array.
///
/// Where the exact result overflows the dtype the output is ±inf; every other
/// output is what exact-range arithmetic gives (an overflow elsewhere in the
/// row never turns it into NaN). The same holds for `randomized_hadamard` and
/// `sorf_block`.
#[pyfunction]
#[pyo3(signature = (x, *, normalize=false, out=None, isa=None))]
pub fn fwht<'py>(
    x: &Bound<'py, PyAny>,
    normalize: bool,
    out: Option<&Bound<'py, PyAny>>,
    isa: Option<&str>,
) -> PyResult<Bound<'py, PyAny>> {
    guarded(x.py(), || {
        let isa = parse_isa(isa)?;
        let params = FwhtParams { normalize, isa };
        match as_float_array(x, "x")? {
            FloatArray::F32(a) => {
                transform_into(a, out, &[], isa, move |d, n| core_h::fwht(d, n, &params))
            }
            FloatArray::F64(a) => {
                transform_into(a, out, &[], isa, move |d, n| core_h::fwht(d, n, &params))
            }
        }
    })
}

/// `H · diag(signs) · x` for a vector or every row, in one pass.
#[pyfunction]
#[pyo3(signature = (x, signs, *, normalize=false, out=None, isa=None))]
pub fn randomized_hadamard<'py>(
    x: &Bound<'py, PyAny>,
    signs: &Bound<'py, PyAny>,
    normalize: bool,
    out: Option<&Bound<'py, PyAny>>,
    isa: Option<&str>,
) -> PyResult<Bound<'py, PyAny>> {
    guarded(x.py(), || {
        let isa = parse_isa(isa)?;
        let params = FwhtParams { normalize, isa };
        match as_float_array(x, "x")? {
            FloatArray::F32(a) => {
                let s = vector_of::<f32>(signs, "signs")?;
                let diag = [("signs", s.len())];
                transform_into(a, out, &diag, isa, move |d, n| {
                    core_h::randomized_hadamard(d, n, &s, &params)
                })
            }
            FloatArray::F64(a) => {
                let s = vector_of::<f64>(signs, "signs")?;
                let diag = [("signs", s.len())];
                transform_into(a, out, &diag, isa, move |d, n| {
                    core_h::randomized_hadamard(d, n, &s, &params)
                })
            }
        }
    })
}

/// One SORF block `sqrt(n) Ĥ D1 Ĥ D2 Ĥ D3 x` for a vector or every row.
#[pyfunction]
#[pyo3(signature = (x, d1, d2, d3, *, out=None, isa=None))]
pub fn sorf_block<'py>(
    x: &Bound<'py, PyAny>,
    d1: &Bound<'py, PyAny>,
    d2: &Bound<'py, PyAny>,
    d3: &Bound<'py, PyAny>,
    out: Option<&Bound<'py, PyAny>>,
    isa: Option<&str>,
) -> PyResult<Bound<'py, PyAny>> {
    guarded(x.py(), || {
        let isa = parse_isa(isa)?;
        match as_float_array(x, "x")? {
            FloatArray::F32(a) => sorf_typed::<f32>(a, d1, d2, d3, out, isa),
            FloatArray::F64(a) => sorf_typed::<f64>(a, d1, d2, d3, out, isa),
        }
    })
}

fn sorf_typed<'py, T: Float + Element>(
    x: Bound<'py, PyArrayDyn<T>>,
    d1: &Bound<'py, PyAny>,
    d2: &Bound<'py, PyAny>,
    d3: &Bound<'py, PyAny>,
    out: Option<&Bound<'py, PyAny>>,
    isa: Option<Isa>,
) -> PyResult<Bound<'py, PyAny>> {
    let (d1, d2, d3) = (
        vector_of::<T>(d1, "d1")?,
        vector_of::<T>(d2, "d2")?,
        vector_of::<T>(d3, "d3")?,
    );
    let diag = [("d1", d1.len()), ("d2", d2.len()), ("d3", d3.len())];
    transform_into(x, out, &diag, isa, move |d, n| {
        core_h::sorf_block(d, n, &d1, &d2, &d3, isa)
    })
}

/// Names of the instruction sets this CPU can run, best last.
#[pyfunction]
pub fn available_isas() -> Vec<&'static str> {
    Isa::available()
        .into_iter()
        .map(analogkernels_core::hadamard::Isa::name)
        .collect()
}
