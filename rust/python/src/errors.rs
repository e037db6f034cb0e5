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
//! signal handler that raises (`KeyboardInterrupt`) stops the computation on
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
        py.import("analogkernels.exceptions")
            .map(pyo3::Bound::unbind)
    })?;
    module
        .bind(py)
        .getattr(name)?
        .cast_into::<PyType>()
        .map_err(Into::into)
}

/// The exception classes of `analogkernels.exceptions` that the bindings
/// raise: the one place that spells their names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `ShapeError`: an array has the wrong shape, length or layout.
    Shape,
    /// `DTypeError`: an array has a dtype the operation cannot take.
    DType,
    /// `ConfigError`: a config field or argument holds an invalid value.
    Config,
    /// `DataError`: input values the engine cannot take (NaN, inf, range).
    Data,
    /// `InternalError`: a bug (a caught panic, a broken invariant).
    Internal,
    /// `AnalogKernelsError`: the root of the hierarchy. The bindings raise
    /// one of the kinds above; the root is here so that its class is looked
    /// up (and cached) with the others, by the same table.
    Root,
}

impl Kind {
    /// Every kind, in the order of the table.
    const ALL: [Kind; 6] = [
        Kind::Shape,
        Kind::DType,
        Kind::Config,
        Kind::Data,
        Kind::Internal,
        Kind::Root,
    ];

    fn class_name(self) -> &'static str {
        match self {
            Kind::Shape => "ShapeError",
            Kind::DType => "DTypeError",
            Kind::Config => "ConfigError",
            Kind::Data => "DataError",
            Kind::Internal => "InternalError",
            Kind::Root => "AnalogKernelsError",
        }
    }

    /// The exception of this kind with `message`.
    pub fn err(self, message: impl Into<String>) -> PyErr {
        Python::attach(|py| self.err_in(py, message))
    }

    /// [`Kind::err`] where the GIL is already held.
    pub fn err_in(self, py: Python<'_>, message: impl Into<String>) -> PyErr {
        match exception_class(py, self.class_name()) {
            Ok(cls) => PyErr::from_type(cls, message.into()),
            Err(e) => e,
        }
    }
}

/// `analogkernels.exceptions.ShapeError(message)`.
pub fn shape_error(message: impl Into<String>) -> PyErr {
    Kind::Shape.err(message)
}

/// `analogkernels.exceptions.DTypeError(message)`.
pub fn dtype_error(message: impl Into<String>) -> PyErr {
    Kind::DType.err(message)
}

/// `analogkernels.exceptions.ConfigError(message)`.
pub fn config_error(message: impl Into<String>) -> PyErr {
    Kind::Config.err(message)
}

/// `analogkernels.exceptions.InternalError(message)`.
pub fn internal_error(message: impl Into<String>) -> PyErr {
    Kind::Internal.err(message)
}

/// Fills the lazily initialised caches (the exception module, the argument
/// converter, numpy's C API table) while the module loads. A `fork()` while
/// another thread was filling one of them would leave it "being initialised"
/// forever in the child, whose first call then hangs.
pub fn init_caches(py: Python<'_>) -> PyResult<()> {
    for kind in Kind::ALL {
        exception_class(py, kind.class_name())?;
    }
    crate::arrays::init_caches(py)
}

/// Maps a core error to its Python exception.
pub fn to_py(err: Error) -> PyErr {
    let kind = match &err {
        Error::Shape(_) => Kind::Shape,
        Error::Value { .. } => Kind::Config,
        Error::Data(_) => Kind::Data,
        // Normally replaced by the signal's own exception (see compute).
        Error::Interrupted => Kind::Internal,
    };
    kind.err(err.to_string())
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

fn panic_error(py: Python<'_>, payload: Box<dyn std::any::Any + Send>) -> PyErr {
    Kind::Internal.err_in(
        py,
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
        Err(payload) => Err(panic_error(py, payload)),
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
                        *slot
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(e);
                        true
                    }
                })
            });
            parallel::run_interruptible(poll, guarded)
        });
        if stopped {
            if let Some(err) = raised
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take()
            {
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
        Err(payload) => Err(panic_error(py, payload)),
    }
}
