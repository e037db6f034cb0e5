//! The single error funnel (after polars' `PyPolarsErr`) and the one helper
//! through which every long computation runs (after polars' `enter_polars`).
//!
//! Core errors become the exception classes of `analogkernels.exceptions`, so
//! users catch one hierarchy whose root also subclasses `ValueError`. A Rust
//! panic is caught here and becomes `analogkernels.exceptions.InternalError`:
//! no panic ever unwinds into the interpreter (pyo3 would raise its
//! `PanicException`, a `BaseException` that `except Exception` misses). Each
//! binding runs its whole body through [`guarded`]; the computation itself
//! runs through [`compute`].
//!
//! Ctrl-C: while a long computation runs without the GIL, the calling thread
//! checks for signals between the core's parallel tasks, at most every 50 ms
//! (`parallel::run_interruptible`, as polars checks between its chunks): a
//! signal handler that raises (KeyboardInterrupt) stops the computation on
//! every thread, and its exception is raised instead of the result.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

use analogkernels_core::{parallel, Error};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

/// Work (in elements) below which the GIL is kept: releasing and re-taking it
/// costs about as much as transforming a few thousand numbers.
pub const DETACH_MIN_WORK: usize = 1 << 14;

fn exception_class<'py>(py: Python<'py>, name: &'static str) -> PyResult<Bound<'py, PyType>> {
    static MODULE: PyOnceLock<Py<PyModule>> = PyOnceLock::new();
    let module = MODULE.get_or_try_init(py, || {
        py.import("analogkernels.exceptions").map(|m| m.unbind())
    })?;
    module
        .bind(py)
        .getattr(name)?
        .cast_into::<PyType>()
        .map_err(Into::into)
}

fn new_err(py: Python<'_>, class: &'static str, message: String) -> PyErr {
    match exception_class(py, class) {
        Ok(cls) => PyErr::from_type(cls, message),
        Err(e) => e,
    }
}

/// Fills the lazily initialised caches (the exception module, the argument
/// converter, numpy's C API table) while the module loads. A `fork()` while
/// another thread was filling one of them would leave it "being initialised"
/// forever in the child, whose first call then hangs.
pub fn init_caches(py: Python<'_>) -> PyResult<()> {
    exception_class(py, "AnalogKernelsError")?;
    crate::arrays::init_caches(py)
}

/// Maps a core error to its Python exception.
pub fn to_py(err: Error) -> PyErr {
    Python::attach(|py| {
        let class = match &err {
            Error::Shape(_) => "ShapeError",
            Error::Value { .. } => "ConfigError",
            Error::Data(_) => "DataError",
            // Normally replaced by the signal's own exception (see compute).
            Error::Interrupted => "InternalError",
        };
        new_err(py, class, err.to_string())
    })
}

/// Raises `analogkernels.exceptions.<class>` with `message`.
pub fn raise(py: Python<'_>, class: &'static str, message: impl Into<String>) -> PyErr {
    new_err(py, class, message.into())
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}

fn internal_error(py: Python<'_>, payload: Box<dyn std::any::Any + Send>) -> PyErr {
    raise(
        py,
        "InternalError",
        format!(
            "internal error in the Rust core (please report it): {}",
            panic_message(payload)
        ),
    )
}

/// Runs a binding's body, turning a panic anywhere in it (argument
/// conversion, allocation, the computation) into `InternalError`: the last
/// line of defence behind the validation that should have prevented it.
pub fn guarded<T>(py: Python<'_>, body: impl FnOnce() -> PyResult<T>) -> PyResult<T> {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(result) => result,
        Err(payload) => Err(internal_error(py, payload)),
    }
}

/// Runs `f` with the GIL released when `work` is large enough, catching
/// panics, mapping core errors and stopping at a signal whose handler raises
/// (Ctrl-C). Every binding that computes goes through it.
///
/// A computation stopped by a signal leaves whatever it was writing (a new
/// array, or the caller's `out`) partly computed; the signal's exception is
/// raised.
pub fn compute<T: Send>(
    py: Python<'_>,
    work: usize,
    f: impl FnOnce() -> Result<T, Error> + Send,
) -> PyResult<T> {
    let guarded = move || catch_unwind(AssertUnwindSafe(f));
    let outcome = if work >= DETACH_MIN_WORK {
        let raised: Arc<Mutex<Option<PyErr>>> = Arc::new(Mutex::new(None));
        let slot = Arc::clone(&raised);
        let (outcome, stopped) = py.detach(move || {
            // Called on this thread only, between tasks: take the GIL back
            // briefly and run Python's signal handlers.
            let poll = Box::new(move || {
                Python::attach(|py| match py.check_signals() {
                    Ok(()) => false,
                    Err(e) => {
                        *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                        true
                    }
                })
            });
            parallel::run_interruptible(poll, guarded)
        });
        if stopped {
            if let Some(err) = raised.lock().unwrap_or_else(|p| p.into_inner()).take() {
                return Err(err);
            }
        }
        outcome
    } else {
        guarded()
    };
    match outcome {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(to_py(e)),
        Err(payload) => Err(internal_error(py, payload)),
    }
}
