"""Argument conversion shared by the bindings and the Python layer."""

from __future__ import annotations

from typing import Any

import numpy as np

from .exceptions import ConfigError, DTypeError


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


def check_int(value: Any, name: str, *, low: int = 0, high: int = 2**64 - 1) -> int:
    """Return ``value`` as an ``int`` in ``[low, high]``.

    Only Python and numpy integers are accepted: a bool, a float (even 3.0) or
    a string ("3") is refused rather than silently converted or truncated.

    Raises
    ------
    ConfigError
        Naming ``name``, when the type or the range is wrong.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ConfigError(
            f"invalid value for `{name}`: must be an integer, got {type(value).__name__} {value!r}"
        )
    v = int(value)
    if not low <= v <= high:
        raise ConfigError(f"invalid value for `{name}`: must be from {low} to {high}, got {v}")
    return v


def check_seed(value: Any, name: str = "seed") -> int:
    """Return a seed (an integer from 0 to 2**64 − 1, the core's range).

    Raises
    ------
    ConfigError
        Naming ``name``, for anything else (strings and floats included).
    """
    return check_int(value, name, low=0, high=2**64 - 1)


def check_real(value: Any, name: str) -> float:
    """Return a real number (int or float, numpy scalars included) as ``float``.

    Raises
    ------
    ConfigError
        Naming ``name``, for a bool, a string, a complex number, an array or
        an integer too large for a float.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(
        value, (int, float, np.integer, np.floating)
    ):
        raise ConfigError(
            f"invalid value for `{name}`: must be a real number, got "
            f"{type(value).__name__} {value!r}"
        )
    try:
        return float(value)
    except OverflowError:
        raise ConfigError(f"invalid value for `{name}`: {value} is too large") from None
