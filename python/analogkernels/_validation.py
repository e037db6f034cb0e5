"""Argument conversion and parameter checks.

Argument conversion shared by the bindings and the Python layer, and the
parameter checks of the scikit-learn-style estimators (public scikit-learn API only).
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
from sklearn.utils import check_array

from .exceptions import ConfigError, DataError, DTypeError, ShapeError


def as_real_array(x: Any, name: str = "x") -> np.ndarray:
    """Return ``x`` as a numpy array of real numbers, keeping its dtype if it is one.

    Booleans, integers and floats of any width pass through unchanged (no
    copy), so the caller can choose the promotion (e.g. ``np.result_type``
    with float32 keeps int8 and float16 input in single precision); anything
    else that reads as real numbers (e.g. objects holding floats) becomes float64.

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
    if arr.dtype.kind == "c":
        raise DTypeError(
            f"{name} has complex dtype {arr.dtype}; only real input is supported "
            "(transform the real and imaginary parts separately)"
        )
    if arr.dtype.kind in "biuf":
        return arr
    try:
        return arr.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise DTypeError(f"{name} cannot be read as real numbers (dtype {arr.dtype})") from exc


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
    arr = as_real_array(x, name)
    if arr.dtype in (np.float32, np.float64):
        return arr
    return arr.astype(np.float64)


#: The dtypes the estimators compute in, for scikit-learn's ``check_array`` and
#: ``validate_data``: float32 and float64 input are kept, anything else becomes
#: float64 (the first).
FLOAT_DTYPES = [np.float64, np.float32]

#: The largest seed, row position or other unsigned 64-bit count the core takes.
U64_MAX = 2**64 - 1


def check_int(value: Any, name: str, *, low: int = 0, high: int = U64_MAX) -> int:
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
    return check_int(value, name, low=0, high=U64_MAX)


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


# -- estimator parameters ------------------------------------------------------
# scikit-learn's declarative constraints (``sklearn.utils._param_validation``)
# are private API; this is the small part of them our estimators use, with the
# same meaning, so that a scikit-learn release cannot break them.


class Interval:
    """Numbers of ``kind`` (``numbers.Integral`` or ``numbers.Real``) in a range.

    Parameters
    ----------
    kind : type
        The abstract number type the value must be an instance of.
    low, high : float or None
        The bounds (``None``: unbounded).
    closed : {"left", "right", "both", "neither"}
        Which bounds belong to the interval.
    """

    def __init__(self, kind: type, low: float | None, high: float | None, *, closed: str) -> None:
        self.kind = kind
        self.low = low
        self.high = high
        self.closed = closed

    def accepts(self, value: Any) -> bool:
        """Whether ``value`` lies in the interval (NaN never does)."""
        if not isinstance(value, self.kind):
            return False
        if self.low is not None:
            left_closed = self.closed in ("left", "both")
            if not (value >= self.low if left_closed else value > self.low):
                return False
        if self.high is not None:
            right_closed = self.closed in ("right", "both")
            if not (value <= self.high if right_closed else value < self.high):
                return False
        return not (isinstance(value, float) and value != value)

    def __str__(self) -> str:
        kind = "an int" if self.kind is numbers.Integral else "a float"
        left = "[" if self.closed in ("left", "both") else "("
        right = "]" if self.closed in ("right", "both") else ")"
        low = "-inf" if self.low is None else self.low
        high = "inf" if self.high is None else self.high
        return f"{kind} in the range {left}{low}, {high}{right}"


class Options:
    """One of a set of strings."""

    def __init__(self, options: set[str]) -> None:
        self.options = options

    def accepts(self, value: Any) -> bool:
        """Whether ``value`` is one of the strings."""
        return isinstance(value, str) and value in self.options

    def __str__(self) -> str:
        return "a str among " + str(sorted(self.options))


class HasMethods:
    """An object with the named callable methods."""

    def __init__(self, methods: list[str]) -> None:
        self.methods = methods

    def accepts(self, value: Any) -> bool:
        """Whether ``value`` has every method."""
        return all(callable(getattr(value, m, None)) for m in self.methods)

    def __str__(self) -> str:
        return "an object implementing " + ", ".join(repr(m) for m in self.methods)


def _accepts(constraint: Any, value: Any) -> bool:
    if constraint is None:
        return value is None
    if constraint == "boolean":
        return isinstance(value, (bool, np.bool_))
    if constraint == "array-like":
        # As scikit-learn: a sequence or array, not a scalar.
        array_like = hasattr(value, "__len__") or hasattr(value, "shape")
        return (array_like or hasattr(value, "__array__")) and not np.isscalar(value)
    if constraint == "random_state":
        # As scikit-learn's check_random_state: None, a seed or a RandomState.
        return (
            value is None
            or isinstance(value, np.random.RandomState)
            or Interval(numbers.Integral, 0, 2**32 - 1, closed="both").accepts(value)
        )
    if isinstance(constraint, type):
        return isinstance(value, constraint)
    return bool(constraint.accepts(value))


def _describe(constraint: Any) -> str:
    if constraint is None:
        return "None"
    if constraint == "boolean":
        return "a bool"
    if constraint == "array-like":
        return "an array-like"
    if constraint == "random_state":
        return "None, an int in [0, 2**32 - 1] or a numpy RandomState"
    if isinstance(constraint, type):
        return f"an instance of {constraint.__name__}"
    return str(constraint)


def validate_params(estimator: Any) -> None:
    """Check the parameters of ``estimator`` against its ``_parameter_constraints``.

    ``_parameter_constraints`` maps each parameter name to a list of allowed
    forms: ``None``, a type, ``"boolean"``, ``"array-like"``, ``"random_state"``, an
    :class:`Interval`, :class:`Options` or :class:`HasMethods`.

    Raises
    ------
    ConfigError
        Naming the parameter and the estimator (a :class:`ValueError`, as
        scikit-learn raises for invalid parameters).
    """
    for name, allowed in estimator._parameter_constraints.items():
        value = getattr(estimator, name)
        if any(_accepts(c, value) for c in allowed):
            continue
        forms = " or ".join(_describe(c) for c in allowed)
        raise ConfigError(
            f"invalid value for `{name}` of {type(estimator).__name__}: must be {forms}, "
            f"got {value!r}"
        )


def check_sample_weight(sample_weight: Any, n_samples: int) -> np.ndarray:
    """``sample_weight`` as a C-contiguous float64 vector of ``n_samples`` finite weights.

    ``None`` gives ones and a number gives that weight for every sample (as
    scikit-learn's estimators accept).

    Raises
    ------
    ShapeError
        If the weights are not 1-D of length ``n_samples``.
    DataError
        If every weight is zero.
    ValueError
        If they are not finite numbers (scikit-learn's ``check_array``).
    """
    if sample_weight is None:
        return np.ones(n_samples, dtype=np.float64)
    if isinstance(sample_weight, numbers.Number):
        return np.full(n_samples, float(sample_weight), dtype=np.float64)  # type: ignore[arg-type]
    w = check_array(
        sample_weight,
        ensure_2d=False,
        dtype=np.float64,
        order="C",
        input_name="sample_weight",
    )
    if w.ndim != 1:
        raise ShapeError(f"sample_weight must be 1-D, got shape {w.shape}")
    if w.shape[0] != n_samples:
        raise ShapeError(f"sample_weight has {w.shape[0]} samples, expected {n_samples}")
    if not np.any(w):
        # scikit-learn's wording, which its estimator checks look for.
        raise DataError("Sample weights must contain at least one non-zero number.")
    return w
