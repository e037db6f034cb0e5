"""Argument conversion shared by the bindings and the Python layer."""

from __future__ import annotations

from typing import Any

import numpy as np

from .exceptions import DTypeError


def as_float_array(x: Any, name: str = "x") -> np.ndarray:
    """Return ``x`` as a float32 or float64 numpy array.

    float32 and float64 arrays pass through unchanged (no copy); booleans,
    integers and other real floats become float64.

    Parameters
    ----------
    x : array_like
        The argument to convert.
    name : str
        Its name, used in error messages.

    Raises
    ------
    DTypeError
        If ``x`` is complex or cannot be read as real numbers.
    """
    arr = np.asarray(x)
    kind = arr.dtype.kind
    if kind == "c":
        raise DTypeError(
            f"{name} has complex dtype {arr.dtype}; only real input is supported "
            "(transform the real and imaginary parts separately)"
        )
    if arr.dtype in (np.float32, np.float64):
        return arr
    if kind in "biuf":
        return arr.astype(np.float64)
    try:
        return arr.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise DTypeError(f"{name} cannot be read as real numbers (dtype {arr.dtype})") from exc
