"""Exceptions raised by analogkernels.

Every error the library raises on bad input derives from
:class:`AnalogKernelsError`, which also subclasses :class:`ValueError`, so code
written for scikit-learn or numpy (``except ValueError``) keeps working.
The Rust core maps each of its error kinds to one class here
(``rust/python/src/errors.rs``).
"""

from __future__ import annotations

__all__ = [
    "AnalogKernelsError",
    "ConfigError",
    "DTypeError",
    "DataError",
    "InternalError",
    "ShapeError",
]


class AnalogKernelsError(ValueError):
    """Base class of every analogkernels error (a :class:`ValueError`)."""


class ShapeError(AnalogKernelsError):
    """An array has the wrong number of dimensions, shape or length."""


class DTypeError(AnalogKernelsError, TypeError):
    """An array has a dtype the operation cannot take (also a :class:`TypeError`)."""


class ConfigError(AnalogKernelsError):
    """A configuration field or argument has an invalid value."""


class DataError(AnalogKernelsError):
    """Input data or a data file is invalid (non-finite values, corrupt file)."""


class InternalError(AnalogKernelsError, RuntimeError):
    """A bug inside analogkernels (a caught Rust panic); please report it."""
