"""Fuzz harness: runs each case in its own forked process with a timeout and a
memory limit, and classifies what happened.

Layout
------
The test process (hypothesis) builds *cases*: a target name and arguments in
which arrays are *recipes* (:class:`ArraySpec`: a small base array plus layout
operations), so that a case pickles in a few bytes even when it stands for a
2**40-row broadcast view. A fork server (this file run as a script, started
once per session, numpy and analogkernels imported once) forks one child per
case; the child builds the arrays, sets ``RLIMIT_AS``, runs the target and
writes its outcome to a pipe. The server reports:

``ok``
    the call returned a result that passed the target's oracle, or raised an
    exception of the project's hierarchy (or ``MemoryError``) for an input the
    oracle says is invalid;
``crash``
    the child died (signal, abort) without reporting;
``hang``
    no report within the timeout (the child is killed);
``panic``
    pyo3's ``PanicException`` or our ``InternalError`` (a caught panic);
``wrong-exception``
    any other exception class (bare ``TypeError``, ``OverflowError``,
    ``IndexError``...), or a project exception for an input the oracle says is
    valid;
``wrong-result``
    a result that fails the oracle: wrong shape or dtype, a mutated input, a
    value off the reference, inf where the exact result is finite, or an invalid
    input accepted silently.
"""

from __future__ import annotations

import math
import os
import pickle
import resource
import select
import signal
import struct
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

#: Address space a case may add to the fork server's (bytes).
MEMORY_LIMIT = 1 << 30
#: Seconds a case may run.
TIMEOUT = 20.0

OUTCOMES = ("ok", "crash", "hang", "panic", "wrong-exception", "wrong-result")


# ---------------------------------------------------------------------------
# array recipes


@dataclass(frozen=True)
class ArraySpec:
    """A numpy array as a small base array plus layout operations, applied in
    order by :func:`build`: ``("T",)`` transpose, ``("step", k)`` every k-th
    row, ``("flip",)`` reversed rows (negative stride), ``("broadcast",
    shape)`` a zero-stride view, ``("readonly",)``, ``("fortran",)`` a
    Fortran-ordered copy, ``("dtype", name)`` a cast."""

    base: np.ndarray
    ops: tuple[tuple[Any, ...], ...] = ()

    def __repr__(self) -> str:  # short, for hypothesis' falsifying examples
        b = self.base
        head = np.array2string(b.ravel()[:6], threshold=6, precision=3)
        return f"ArraySpec({b.dtype}{list(b.shape)} {head}, ops={self.ops})"


def build(value: Any) -> Any:
    """The argument a recipe stands for (other values pass through)."""
    if isinstance(value, ArraySpec):
        a = value.base.copy()
        for op in value.ops:
            if op[0] == "T":
                a = a.T
            elif op[0] == "step":
                a = a[:: op[1]]
            elif op[0] == "flip":
                a = a[::-1]
            elif op[0] == "broadcast":
                a = np.broadcast_to(a, op[1])
            elif op[0] == "readonly":
                a = a.view()
                a.flags.writeable = False
            elif op[0] == "fortran":
                a = np.asfortranarray(a)
            elif op[0] == "dtype":
                a = a.astype(op[1])
        return a
    if isinstance(value, dict):
        return {k: build(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(build(v) for v in value)
    return value


@dataclass
class Case:
    """One call: ``TARGETS[target](**args)`` on ``threads`` core threads."""

    target: str
    args: dict[str, Any]
    threads: int = 0


@dataclass
class Result:
    outcome: str
    detail: str = ""
    stderr: str = ""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"

    def describe(self) -> str:
        tail = f"\n--- stderr (last lines) ---\n{self.stderr}" if self.stderr.strip() else ""
        return f"{self.outcome}: {self.detail}{tail}"


class WrongResult(AssertionError):
    """Raised by an oracle: the result is wrong (or an invalid input was accepted)."""


class Invalid(Exception):
    """Raised by an oracle before the call: the input is invalid, so the call
    must raise one of ``errors`` (default: the project's hierarchy)."""

    def __init__(self, why: str, errors: tuple[type[BaseException], ...] | None = None):
        super().__init__(why)
        self.errors = errors


# ---------------------------------------------------------------------------
# oracles (run in the child)


def _project_errors() -> tuple[type[BaseException], ...]:
    from analogkernels.exceptions import AnalogKernelsError

    return (AnalogKernelsError, MemoryError)


def expect_error(call, why: str, errors=None) -> None:
    """``call()`` must raise one of ``errors`` (the project's by default)."""
    errors = errors or _project_errors()
    try:
        call()
    except errors:
        return
    raise WrongResult(f"accepted an invalid input ({why})")


def _real_float(a: np.ndarray) -> np.dtype | None:
    """The result dtype for a real input, None for complex/str/object."""
    if a.dtype.kind in "biu":
        return np.dtype(np.float64)
    if a.dtype in (np.float32, np.float64):
        return a.dtype
    if a.dtype.kind == "f":
        return np.dtype(np.float64)
    return None


def _bytes_of(shape: tuple[int, ...], itemsize: int) -> float:
    return float(np.prod([float(s) for s in shape])) * itemsize


def _too_big(shape, itemsize: int = 8) -> bool:
    return _bytes_of(shape, itemsize) > MEMORY_LIMIT / 4


def fwht_ref(x: np.ndarray) -> np.ndarray:
    """Unnormalised Walsh–Hadamard transform of the rows, in long double
    (exact enough to judge float64 results far from overflow)."""
    y = x.astype(np.longdouble).copy()
    n = y.shape[-1]
    h = 1
    while h < n:
        y = y.reshape(*y.shape[:-1], n // (2 * h), 2, h)
        a, b = y[..., 0, :].copy(), y[..., 1, :].copy()
        y[..., 0, :], y[..., 1, :] = a + b, a - b
        y = y.reshape(*y.shape[:-3], n)
        h *= 2
    return y


def compare(
    got: np.ndarray,
    ref: np.ndarray,
    tol: np.ndarray | float,
    dtype,
    what: str,
    overflow: str = "lenient",
) -> None:
    """``got`` within ``tol`` of the long-double reference wherever the
    reference is safely finite in ``dtype``. Where it is not:

    ``overflow="lenient"``: non-finite where the reference is beyond
    ``max / 4`` is accepted either way;
    ``overflow="exact"`` (the Hadamard transforms, which promise exact-range
    arithmetic): finite and within ``tol`` wherever ``|ref| + tol`` is below
    ``max``, ±inf with the sign of the reference wherever ``|ref| - tol`` is
    above it, and in between one or the other; never NaN.
    """
    info = np.finfo(dtype)
    ref = np.asarray(ref, dtype=np.longdouble)
    tol = np.broadcast_to(np.asarray(tol, dtype=np.longdouble), ref.shape)
    mag = np.abs(ref)
    with np.errstate(invalid="ignore", over="ignore"):
        if overflow == "exact":
            must_fit = np.isfinite(ref) & (mag + tol < np.longdouble(info.max))
            must_overflow = np.isfinite(mag - tol) & (mag - tol > np.longdouble(info.max))
            may_overflow = np.isfinite(ref) & ~must_fit
        else:
            must_fit = np.isfinite(ref) & (mag < np.longdouble(info.max) / 4)
            must_overflow = may_overflow = np.zeros(ref.shape, bool)
    bad_inf = must_fit & ~np.isfinite(got)
    if bad_inf.any():
        i = np.argwhere(bad_inf)[0]
        raise WrongResult(
            f"{what}: {got[tuple(i)]} at {tuple(i)} where the exact result is "
            f"{float(ref[tuple(i)])!r}"
        )
    right_inf = np.isinf(got) & (np.sign(got) == np.sign(ref))
    bad_overflow = (must_overflow & ~right_inf) | (may_overflow & np.isnan(got))
    if bad_overflow.any():
        i = np.argwhere(bad_overflow)[0]
        raise WrongResult(
            f"{what}: {got[tuple(i)]} at {tuple(i)} where the exact result "
            f"{float(ref[tuple(i)])!r} overflows {np.dtype(dtype).name} (expected ±inf)"
        )
    close = must_fit | (may_overflow & np.isfinite(got))
    err = np.where(close, np.abs(got.astype(np.longdouble) - ref), 0)
    if (err > tol).any():
        i = np.argwhere(err > tol)[0]
        raise WrongResult(
            f"{what}: {got[tuple(i)]!r} at {tuple(i)}, expected "
            f"{float(ref[tuple(i)])!r} (error {float(err[tuple(i)]):.3g} > "
            f"{float(tol[tuple(i)]):.3g})"
        )


def _finite_rows(x: np.ndarray) -> np.ndarray:
    return np.isfinite(x).all(axis=-1)


def _transform(kind: str, x, diagonals=(), normalize=False, out=None, isa=None):
    """fwht / randomized_hadamard / sorf_block against the reference."""
    from analogkernels import hadamard

    fn = getattr(hadamard, kind)
    if isinstance(out, str) and out == "x":  # in place
        out = x
    kwargs: dict[str, Any] = {}
    if kind != "sorf_block":
        kwargs["normalize"] = normalize
    if out is not None:
        kwargs["out"] = out
    if isa is not None:
        kwargs["isa"] = isa
    call = lambda: fn(x, *diagonals, **kwargs)  # noqa: E731
    xa = np.asarray(x)
    dtype = _real_float(xa)
    if dtype is None:
        return expect_error(call, f"dtype {xa.dtype}")
    if xa.ndim not in (1, 2):
        return expect_error(call, f"{xa.ndim}-D input")
    n = xa.shape[-1]
    if n & (n - 1) or n > 1 << 26:
        return expect_error(call, f"row length {n}")
    diag = [np.asarray(d) for d in diagonals]
    for d in diag:
        if _real_float(d) is None or d.ndim != 1 or d.shape[0] != n:
            return expect_error(call, f"diagonal {d.dtype}{d.shape}")
    if isa is not None and isa not in hadamard.available_isas():
        return expect_error(call, f"isa {isa}")
    if out is not None:
        o = out
        if (
            not isinstance(o, np.ndarray)
            or o.dtype != dtype
            or o.shape != xa.shape
            or not o.flags.c_contiguous
            or not o.flags.writeable
        ):
            small = isinstance(o, np.ndarray) and o.size <= 1 << 20
            before = o.copy() if small else None
            expect_error(call, "unusable out")
            if before is not None and not np.array_equal(before, o, equal_nan=True):
                raise WrongResult("a failed call wrote into out")
            return None
    if _too_big(xa.shape, dtype.itemsize):
        try:
            call()
        except MemoryError:
            return None
        return None  # a success is fine too (the limit is ours, not numpy's)
    x_before = np.array(xa, copy=True)
    got = call()
    if out is not None and got is not out:
        raise WrongResult("out= given but another array returned")
    if got.dtype != dtype or got.shape != xa.shape:
        raise WrongResult(f"result {got.dtype}{got.shape}, expected {dtype}{xa.shape}")
    if out is None or not np.shares_memory(out, xa):
        if not np.array_equal(np.asarray(x), x_before, equal_nan=True):
            raise WrongResult("the input was modified")
    if xa.size == 0:
        return None
    xs = x_before.astype(dtype).astype(np.longdouble)  # the engine's input
    ds = [d.astype(dtype).astype(np.longdouble) for d in diag]
    eps = np.longdouble(np.finfo(dtype).eps)
    logn = math.log2(n) if n > 1 else 0
    # Growth bounds in long double (a Python float overflows for diagonals
    # near the top of float64).
    dmax = [np.abs(d).max(initial=0) for d in ds]
    if kind == "sorf_block":
        y = fwht_ref(xs * ds[2])
        y = fwht_ref(y * ds[1])
        y = fwht_ref(y * ds[0]) / n
        growth = np.longdouble(n) * n * max(np.longdouble(1), *dmax) ** 3
        stages = 3
    else:
        y = fwht_ref(xs * ds[0]) if ds else fwht_ref(xs)
        if normalize:
            y = y * np.longdouble(float(dtype.type(1 / math.sqrt(n))))
        growth = np.longdouble(math.sqrt(n) if normalize else n)
        growth *= dmax[0] if ds else 1
        stages = 1
    scale = np.abs(xs).max(axis=-1, keepdims=True) * growth
    tol = (stages * logn + 3) * eps * scale + np.longdouble(np.finfo(dtype).tiny) * 64
    # Rows with inf or NaN (in x or a diagonal) have no finite reference.
    rows = _finite_rows(xs) & np.isfinite(scale[..., 0]) & all(np.isfinite(d).all() for d in ds)
    compare(
        np.where(rows[..., None], got, 0),
        np.where(rows[..., None], y, 0),
        np.where(rows[..., None], tol, 0),
        dtype,
        kind,
        overflow="exact",
    )
    return None


def target_fwht(x, normalize=False, out=None, isa=None):
    return _transform("fwht", x, (), normalize, out, isa)


def target_randomized_hadamard(x, signs, normalize=False, out=None, isa=None):
    return _transform("randomized_hadamard", x, (signs,), normalize, out, isa)


def target_sorf_block(x, d1, d2, d3, out=None, isa=None):
    return _transform("sorf_block", x, (d1, d2, d3), False, out, isa)


def target_rbf_features(u, scale):
    from analogkernels import _core

    call = lambda: _core.rbf_features(u, scale)  # noqa: E731
    ua = np.asarray(u)
    dtype = _real_float(ua)
    if dtype is None or ua.ndim != 2:
        return expect_error(call, f"{ua.dtype}{ua.shape}")
    if _too_big((ua.shape[0], 2 * ua.shape[1]), dtype.itemsize):
        try:
            call()
        except MemoryError:
            pass
        return None
    before = np.array(ua, copy=True)
    got = call()
    if got.dtype != dtype or got.shape != (ua.shape[0], 2 * ua.shape[1]):
        raise WrongResult(f"result {got.dtype}{got.shape}")
    if not np.array_equal(np.asarray(u), before, equal_nan=True):
        raise WrongResult("the input was modified")
    us = before.astype(dtype).astype(np.float64)
    sc = float(dtype.type(scale))
    with np.errstate(all="ignore"):
        ref = np.concatenate([np.cos(us), np.sin(us)], axis=1) * sc
    tol = (2e-6 if dtype == np.float32 else 1e-14) * abs(sc) + np.finfo(dtype).tiny * 16
    finite = np.isfinite(np.concatenate([us, us], axis=1))
    compare(np.where(finite, got, 0), np.where(finite, ref, 0), tol, dtype, "rbf_features")
    return None


def _sorf_dense(signs: np.ndarray, n_components: int, d: int) -> np.ndarray:
    """The SORF matrix (n_components × d) of ``signs`` (blocks × 3 × n), formed."""
    blocks = []
    eye = np.eye(signs.shape[2], dtype=np.longdouble)
    n = signs.shape[2]
    for b in range(signs.shape[0]):
        d1, d2, d3 = (signs[b, k].astype(np.longdouble) for k in range(3))
        m = fwht_ref(eye * d3)
        m = fwht_ref(m * d2)
        m = fwht_ref(m * d1) / n  # rows: the transform of each unit vector
        blocks.append(m.T)
    return np.vstack(blocks)[:n_components, :d]


def _features_common(x, signs, n_components, name):
    xa = np.asarray(x)
    dtype = _real_float(xa)
    if dtype is None or xa.ndim != 2:
        raise Invalid(f"{xa.dtype}{xa.shape}")
    if not isinstance(n_components, (int, np.integer)) or isinstance(n_components, bool):
        raise Invalid(f"n_components {n_components!r}")
    if not 0 <= n_components <= 2**62:
        raise Invalid(f"n_components {n_components}")
    if signs is not None:
        sg = np.asarray(signs)
        if _real_float(sg) is None or sg.ndim != 3 or sg.shape[1] != 3:
            raise Invalid(f"signs {sg.dtype}{sg.shape}")
        n = sg.shape[2]
        blocks_needed = -(-n_components // n) if n else 0
        if n == 0 or n & (n - 1) or xa.shape[1] > n or sg.shape[0] < blocks_needed:
            raise Invalid(f"signs {sg.shape} for X {xa.shape}, {n_components} features")
    return xa, dtype


def _sorf_chain_fits(xs: np.ndarray, sg: np.ndarray, dtype) -> np.ndarray:
    """Rows of ``xs`` whose SORF chain (``H D3``, then ``H D2``, then ``H D1``,
    before the ``1/n``) stays below ``max / 4`` of ``dtype`` at every stage.
    The feature functions compute the chain in ``dtype`` without the overflow
    guard of :func:`analogkernels.hadamard.sorf_block`: beyond this bound
    (signs far from ±1, reachable only through ``_core``) any result is
    accepted. Reported as a known limitation of ``rust/core/src/features.rs``."""
    n = sg.shape[2]
    bound = np.abs(xs).max(axis=-1, initial=0).astype(np.longdouble)
    fits = np.ones(xs.shape[0], bool)
    for k in (2, 1, 0):
        bound = bound * n * np.abs(sg[:, k, :]).max(initial=0).astype(np.longdouble)
        fits &= bound < np.longdouble(np.finfo(dtype).max) / 4
    return fits


def target_sorf_project(x, signs, n_components, scale):
    from analogkernels import _core

    call = lambda: _core.sorf_project(x, signs, n_components, scale)  # noqa: E731
    try:
        xa, dtype = _features_common(x, signs, n_components, "sorf_project")
    except Invalid as why:
        return expect_error(call, str(why))
    # The output, or the engine's private copy of X.
    if _too_big((xa.shape[0], n_components), dtype.itemsize) or _too_big(xa.shape, dtype.itemsize):
        try:
            call()
        except MemoryError:
            pass
        return None
    got = call()
    if got.dtype != dtype or got.shape != (xa.shape[0], n_components):
        raise WrongResult(f"result {got.dtype}{got.shape}")
    sg = np.asarray(signs)
    if sg.shape[2] > 64 or got.size == 0:
        return None
    # The engine computes in X's dtype: signs beyond its range are ±inf there,
    # the SORF matrix has inf or NaN entries, and any result is accepted (even
    # for X with no columns, where the padding meets them: 0 · inf).
    with np.errstate(over="ignore"):
        sg_t = sg.astype(dtype)
    if not np.isfinite(sg_t).all():
        return None
    w = _sorf_dense(sg_t, n_components, xa.shape[1]) * np.longdouble(float(dtype.type(scale)))
    xs = xa.astype(dtype).astype(np.longdouble)
    if not np.isfinite(xs).all() or not np.isfinite(w).all():
        return None
    ref = xs @ w.T
    eps = float(np.finfo(dtype).eps)
    tol = 16 * eps * (np.abs(xs) @ np.abs(w).T) * (3 * math.log2(sg.shape[2]) + 3) + 1e-300
    fits = _sorf_chain_fits(xs, sg_t, dtype)[:, None]
    compare(np.where(fits, got, 0), np.where(fits, ref, 0), tol, dtype, "sorf_project")
    return None


def target_rbf_features_fused(x, n_components, scale, weights=None, signs=None, proj=1.0):
    from analogkernels import _core

    call = lambda: _core.rbf_features_fused(  # noqa: E731
        x, n_components, scale, weights=weights, signs=signs, projection_scale=proj
    )
    try:
        xa, dtype = _features_common(x, signs, n_components, "fused")
        if (weights is None) == (signs is None):
            raise Invalid("exactly one of weights and signs")
        if weights is not None:
            w = np.asarray(weights)
            if _real_float(w) is None or w.shape != (n_components, xa.shape[1]):
                raise Invalid(f"weights {w.dtype}{w.shape}")
    except Invalid as why:
        return expect_error(call, str(why))
    if _too_big((xa.shape[0], 2 * n_components), dtype.itemsize) or _too_big(
        xa.shape, dtype.itemsize
    ):
        try:
            call()
        except MemoryError:
            pass
        return None
    got = call()
    if got.dtype != dtype or got.shape != (xa.shape[0], 2 * n_components):
        raise WrongResult(f"result {got.dtype}{got.shape}")
    if got.size == 0:
        return None
    if weights is not None:
        wl = np.asarray(weights).astype(dtype).astype(np.longdouble)
    else:
        sg = np.asarray(signs)
        if sg.shape[2] > 64:
            return None
        with np.errstate(over="ignore"):
            sg_t = sg.astype(dtype)
        if not np.isfinite(sg_t).all():  # as in target_sorf_project
            return None
        wl = _sorf_dense(sg_t, n_components, xa.shape[1]) * np.longdouble(float(dtype.type(proj)))
    xs = xa.astype(dtype).astype(np.longdouble)
    u = xs @ wl.T
    bound = np.abs(xs) @ np.abs(wl).T
    # Only where the projection is small enough that rounding cannot move the
    # phase by more than the tolerance.
    eps = float(np.finfo(dtype).eps)
    phase_err = 64 * eps * bound * (xa.shape[1] + 8)
    ok = np.isfinite(bound) & (phase_err < 1e-2)
    if weights is None:
        ok &= _sorf_chain_fits(xs, sg_t, dtype)[:, None]
    sc = float(dtype.type(scale))
    ref = np.concatenate([np.cos(u), np.sin(u)], axis=1) * sc
    tol = np.concatenate([phase_err, phase_err], axis=1) * abs(sc) + 4 * eps * abs(sc) + 1e-300
    mask = np.concatenate([ok, ok], axis=1)
    compare(
        np.where(mask, got, 0),
        np.where(mask, ref, 0),
        np.where(mask, tol, 0) + 1e-300,
        dtype,
        "rbf_features_fused",
    )
    return None


def target_set_num_threads(n):
    import analogkernels
    from analogkernels.exceptions import ConfigError

    call = lambda: analogkernels.set_num_threads(n)  # noqa: E731
    valid = isinstance(n, (int, np.integer)) and not isinstance(n, (bool, np.bool_))
    if not valid or not 0 <= int(n) <= analogkernels._core.MAX_THREADS:
        return expect_error(call, f"thread count {n!r}", (ConfigError,))
    call()
    want = int(n) or analogkernels.get_num_threads()
    if analogkernels.get_num_threads() != want:
        raise WrongResult("get_num_threads differs from the count set")
    if int(n) > 64:
        # Hundreds of threads' stacks and arenas count against the case's
        # address-space limit: only the setting is checked for those.
        return None
    from analogkernels.hadamard import fwht

    x = np.ones((16, 8192), np.float32)
    if not np.all(fwht(x)[:, 0] == 8192):
        raise WrongResult("fwht wrong after set_num_threads")
    return None


def target_pcm(targets, fields, t_inference, seed):
    from analogkernels.exceptions import AnalogKernelsError
    from analogkernels.pcm import DeviceArray, PCMConfig

    try:
        cfg = PCMConfig(**fields)
    except AnalogKernelsError:
        return None  # refused (the range/type rules are checked in test_robustness)
    try:
        arr = DeviceArray(targets, cfg)
    except AnalogKernelsError:
        return None
    report = arr.program()
    g = arr.conductance
    if not np.all(np.isfinite(g)) or np.any(g < 0):
        raise WrongResult(f"non-finite or negative conductance with {fields}")
    if not 0 <= report["converged_all"] <= 1:
        raise WrongResult(f"report {report}")
    try:
        r = arr.read(t_inference, seed=seed, per_read_noise=True)
    except AnalogKernelsError:
        return None
    if r.shape != g.shape or not np.all(np.isfinite(r)) or np.any(r < 0):
        raise WrongResult(f"read at t={t_inference}: non-finite or negative")
    return None


def target_analog_matmul(w, x, preset, seed):
    """AnalogMatrix, called as a user would (the crossbar is not this suite's
    to fix): finite, bounded results or a project exception."""
    from analogkernels.analog import AnalogMatrix, CrossbarConfig

    config = CrossbarConfig.ideal() if preset == "ideal" else CrossbarConfig.hermes()
    wa, xa = np.asarray(w), np.asarray(x)
    call = lambda: AnalogMatrix.program(w, config, seed=seed).matmul(x)  # noqa: E731
    if (
        _real_float(wa) is None
        or _real_float(xa) is None
        or wa.ndim != 2
        or xa.ndim not in (1, 2)
        or xa.shape[-1] != wa.shape[1]
        or not np.isfinite(wa).all()
        or not np.isfinite(xa).all()
    ):
        return expect_error(call, f"W {wa.dtype}{wa.shape}, X {xa.dtype}{xa.shape}")
    w_before, x_before = wa.copy(), xa.copy()
    try:
        y = call()
    except _project_errors():
        # Extreme inputs may be refused ("cannot be represented", memory);
        # this suite checks what the crossbar returns, not what it accepts.
        return None
    rows = 1 if xa.ndim == 1 else xa.shape[0]
    expect_shape = (wa.shape[0],) if xa.ndim == 1 else (rows, wa.shape[0])
    if y.shape != expect_shape:
        raise WrongResult(f"result shape {y.shape}, expected {expect_shape}")
    if not np.array_equal(np.asarray(w), w_before) or not np.array_equal(np.asarray(x), x_before):
        raise WrongResult("an input was modified")
    if y.size == 0:
        return None
    x2 = np.atleast_2d(xa.astype(np.float64))
    wf = wa.astype(np.float64)
    xmax = np.abs(x2).max(axis=1, keepdims=True, initial=0)
    bound = xmax * np.abs(wf).sum(axis=1)  # |(X W^T)_ri| <= bound_ri
    # Quantisation and noise scale with the tile's largest weight, not the row's.
    whole = xmax * wa.shape[1] * np.abs(wf).max(initial=0)
    if not (np.all(np.isfinite(bound)) and np.all(np.isfinite(whole))):
        return None
    y2 = np.atleast_2d(y).astype(np.float64)
    if not np.all(np.isfinite(y2)):
        raise WrongResult("non-finite result for finite inputs")
    if preset == "ideal":
        exact = x2 @ wf.T
        # Plus the rounding to the output dtype (the input's: a float32 X gives
        # float32 results, where 3.5e-53 is 0).
        out = np.finfo(y.dtype)
        tol = 0.02 * whole + out.eps * np.abs(exact) + float(out.smallest_subnormal)
        if np.any(np.abs(y2 - exact) > tol):
            raise WrongResult(f"ideal crossbar far from X @ W.T: {y2} vs {exact}")
    elif np.any(np.abs(y2) > 3 * whole + 1e-300):
        raise WrongResult(f"result beyond 3·|x|max·in·|W|max: {y2.max()} (bound {whole.max()})")
    return None


TARGETS = {
    name[len("target_") :]: fn for name, fn in globals().items() if name.startswith("target_")
}


# ---------------------------------------------------------------------------
# the child


def _classify(exc: BaseException) -> tuple[str, str]:
    name = type(exc).__name__
    text = f"{type(exc).__module__}.{name}: {exc}"[:2000]
    if name == "PanicException" or name == "InternalError":
        return "panic", text
    if isinstance(exc, WrongResult):
        return "wrong-result", str(exc)[:2000]
    return "wrong-exception", text


def _run_case(case: Case) -> tuple[str, str]:
    import analogkernels

    if case.threads:
        analogkernels.set_num_threads(case.threads)
    fn = TARGETS[case.target]
    args = build(case.args)
    try:
        fn(**args)
    except BaseException as exc:
        return _classify(exc)
    return "ok", ""


def _vm_size() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def _child(case: Case, write_fd: int, err_path: str) -> None:
    err = os.open(err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(err, 2)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    try:
        limit = _vm_size() + MEMORY_LIMIT
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        result = _run_case(case)
    except BaseException as exc:  # the harness itself failed
        result = ("wrong-exception", f"harness: {type(exc).__name__}: {exc}")
    payload = pickle.dumps(result)
    os.write(write_fd, struct.pack("<Q", len(payload)) + payload)
    os.close(write_fd)
    os._exit(0)


def serve_one(case: Case, timeout: float, err_path: str) -> Result:
    read_fd, write_fd = os.pipe()
    t0 = time.perf_counter()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        os.close(read_fd)
        _child(case, write_fd, err_path)
    os.close(write_fd)
    data = b""
    deadline = t0 + timeout
    hung = False
    while True:
        left = deadline - time.perf_counter()
        if left <= 0:
            hung = True
            break
        ready, _, _ = select.select([read_fd], [], [], left)
        if not ready:
            continue
        chunk = os.read(read_fd, 1 << 16)
        if not chunk:
            break
        data += chunk
    os.close(read_fd)
    if hung:
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    seconds = time.perf_counter() - t0
    try:
        stderr = Path(err_path).read_text(errors="replace")[-3000:]
    except OSError:
        stderr = ""
    if hung:
        return Result("hang", f"no result within {timeout} s", stderr, seconds)
    if len(data) >= 8:
        (size,) = struct.unpack("<Q", data[:8])
        if len(data) >= 8 + size:
            outcome, detail = pickle.loads(data[8 : 8 + size])
            return Result(outcome, detail, stderr, seconds)
    code = os.waitstatus_to_exitcode(status)
    what = f"killed by signal {-code}" if code < 0 else f"exit code {code}"
    return Result("crash", f"the process died ({what}) without a result", stderr, seconds)


def _serve() -> None:
    """The fork server's loop: length-prefixed pickles on stdin/stdout."""
    import analogkernels
    import analogkernels.analog
    import analogkernels.pcm  # noqa: F401

    inp, out = sys.stdin.buffer, sys.stdout.buffer
    err_path = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"ak-fuzz-{os.getpid()}.err")
    while True:
        head = inp.read(8)
        if len(head) < 8:
            break
        (size,) = struct.unpack("<Q", head)
        case, timeout = pickle.loads(inp.read(size))
        result = serve_one(case, timeout, err_path)
        payload = pickle.dumps(result)
        out.write(struct.pack("<Q", len(payload)) + payload)
        out.flush()
    try:
        os.unlink(err_path)
    except OSError:
        pass


class FuzzServer:
    """The test process's handle on the fork server."""

    def __init__(self) -> None:
        env = {
            **os.environ,
            # BLAS threads are not part of what is fuzzed, and a fork server
            # is simpler without them.
            "OPENBLAS_NUM_THREADS": "1",
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "RUST_BACKTRACE": "0",
            # glibc reserves 64 MiB of address space per thread arena; with the
            # RLIMIT_AS of a case that is what a few threads would exhaust.
            "MALLOC_ARENA_MAX": "2",
        }
        # The server imports this module under the same name as the tests do
        # (``fuzz_harness``), so that cases and results pickle both ways.
        here = os.path.dirname(os.path.abspath(__file__))
        code = (
            f"import sys; sys.path.insert(0, {here!r}); import fuzz_harness; fuzz_harness._serve()"
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-W", "ignore", "-c", code],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )
        self.counts: dict[str, int] = dict.fromkeys(OUTCOMES, 0)
        self.seconds = 0.0

    def run(self, case: Case, timeout: float = TIMEOUT) -> Result:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        payload = pickle.dumps((case, timeout))
        self.proc.stdin.write(struct.pack("<Q", len(payload)) + payload)
        self.proc.stdin.flush()
        head = self.proc.stdout.read(8)
        if len(head) < 8:
            raise RuntimeError("the fuzz fork server died")
        (size,) = struct.unpack("<Q", head)
        result: Result = pickle.loads(self.proc.stdout.read(size))
        self.counts[result.outcome] = self.counts.get(result.outcome, 0) + 1
        self.seconds += result.seconds
        return result

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()
