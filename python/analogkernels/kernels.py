"""Exact kernels that the random-feature maps approximate.

All functions take ``X`` (n × d) and optionally ``Y`` (m × d, default ``X``),
keep float32 when both inputs are float32 (float64 otherwise), and compute in
row blocks so that the temporary memory stays near one output block
(``block_rows × m``) besides the n × m result.

References: the code of Büchel et al., "Kernel approximation using analogue in-memory
computing", Nat. Mach. Intell. 6, 1605–1615 (2024) (GitHub
IBM/kernel-approximation-using-analog-in-memory-computing,
``imka-ridge-regression/hwkeap/kernels``): RBF
``exp(-γ‖x−y‖²)``; arc-cosine of order n (Cho & Saul, NIPS 2009)
``(1/π)‖x‖ⁿ‖y‖ⁿ Jₙ(θ)`` with ``J₀ = π−θ``, ``J₁ = sin θ + (π−θ) cos θ``,
``J₂ = 3 sin θ cos θ + (π−θ)(1 + 2cos²θ)``; softmax kernel ``exp(x·y)`` (row-wise
normalised it is softmax attention).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.utils import gen_batches

from ._validation import as_float_array, check_real
from .exceptions import ConfigError, DataError, ShapeError

__all__ = [
    "approximation_error",
    "arccos_kernel",
    "rbf_kernel",
    "softmax_kernel",
]

_BLOCK_BYTES = 64 * 1024 * 1024


def _matrix(a: Any, name: str) -> np.ndarray:
    """``a`` as a finite 2-D float32/float64 array.

    DTypeError, ShapeError and DataError name ``name``.
    """
    arr = as_float_array(a, name)
    if arr.ndim != 2:
        raise ShapeError(f"{name} must be 2-D (samples × features), got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise DataError(f"{name} contains NaN or infinite values")
    return arr


def _pair(X: Any, Y: Any | None) -> tuple[np.ndarray, np.ndarray]:
    X = _matrix(X, "X")
    Y = X if Y is None else _matrix(Y, "Y")
    if X.shape[1] != Y.shape[1]:
        raise ShapeError(f"X has {X.shape[1]} features but Y has {Y.shape[1]}")
    dtype = np.float32 if X.dtype == np.float32 and Y.dtype == np.float32 else np.float64
    return X.astype(dtype, copy=False), Y.astype(dtype, copy=False)


def _blocks(n: int, m: int, itemsize: int):
    rows = max(1, _BLOCK_BYTES // max(1, m * itemsize))
    yield from gen_batches(n, rows)


def rbf_kernel(X: Any, Y: Any | None = None, *, gamma: float = 1.0) -> np.ndarray:
    """Gaussian kernel ``exp(-gamma ‖x − y‖²)``.

    Parameters
    ----------
    X : array_like, shape (n, d)
    Y : array_like, shape (m, d), optional
    gamma : float
        Inverse squared length scale (> 0); the paper uses 0.05.

    Returns
    -------
    ndarray, shape (n, m)
    """
    gamma = check_real(gamma, "gamma")
    if not (gamma > 0 and np.isfinite(gamma)):
        raise ConfigError(f"invalid value for `gamma`: must be a finite number > 0, got {gamma}")
    X, Y = _pair(X, Y)
    out = np.empty((X.shape[0], Y.shape[0]), dtype=X.dtype)
    y2 = np.einsum("ij,ij->i", Y, Y)
    for sl in _blocks(X.shape[0], Y.shape[0], X.itemsize):
        xb = X[sl]
        d2 = np.einsum("ij,ij->i", xb, xb)[:, None] + y2[None, :] - 2.0 * (xb @ Y.T)
        np.maximum(d2, 0.0, out=d2)
        np.exp(-gamma * d2, out=out[sl])
    return out


def arccos_kernel(X: Any, Y: Any | None = None, *, order: int = 0) -> np.ndarray:
    """Arc-cosine kernel of order 0, 1 or 2 (Cho & Saul).

    ``k(x, y) = (1/π) ‖x‖ⁿ ‖y‖ⁿ Jₙ(θ)``, ``θ`` the angle between ``x`` and ``y``.
    Its random-feature map is ``sqrt(2/s)·Θ(w·x)·(w·x)ⁿ`` with Gaussian ``w``.
    A zero vector has kernel value 0 (order ≥ 1) or 1/2 (order 0, θ := π/2 by
    convention, the limit of the feature estimate).
    """
    if order not in (0, 1, 2):
        raise ConfigError(f"order must be 0, 1 or 2, got {order!r}")
    X, Y = _pair(X, Y)
    nx = np.linalg.norm(X, axis=1)
    ny = np.linalg.norm(Y, axis=1)
    out = np.empty((X.shape[0], Y.shape[0]), dtype=X.dtype)
    for sl in _blocks(X.shape[0], Y.shape[0], X.itemsize):
        norms = nx[sl, None] * ny[None, :]
        with np.errstate(invalid="ignore", divide="ignore"):
            cos = np.where(norms > 0, (X[sl] @ Y.T) / np.where(norms > 0, norms, 1), 0.0)
        np.clip(cos, -1.0, 1.0, out=cos)
        theta = np.arccos(cos)
        if order == 0:
            j = np.pi - theta
        elif order == 1:
            j = np.sin(theta) + (np.pi - theta) * cos
        else:
            j = 3.0 * np.sin(theta) * cos + (np.pi - theta) * (1.0 + 2.0 * cos**2)
        out[sl] = (norms**order) * j / np.pi
    return out


def softmax_kernel(
    X: Any, Y: Any | None = None, *, scale: float = 1.0, normalize: bool = False
) -> np.ndarray:
    """Softmax kernel ``exp(scale · x·y)``, optionally row-normalised.

    With ``normalize=True`` each row is divided by its sum, giving the softmax
    attention matrix (``scale = 1/sqrt(d)`` for ``softmax(QKᵀ/√d)``). Rows are
    shifted by their maximum before ``exp`` when normalising, so large logits do
    not overflow.
    """
    scale = check_real(scale, "scale")
    X, Y = _pair(X, Y)
    out = np.empty((X.shape[0], Y.shape[0]), dtype=X.dtype)
    for sl in _blocks(X.shape[0], Y.shape[0], X.itemsize):
        logits = scale * (X[sl] @ Y.T)
        if normalize:
            logits -= logits.max(axis=1, keepdims=True)
            e = np.exp(logits)
            out[sl] = e / e.sum(axis=1, keepdims=True)
        else:
            out[sl] = np.exp(logits)
    return out


def approximation_error(K: Any, K_hat: Any) -> float:
    """Relative Frobenius error ``‖K − K̂‖_F / ‖K‖_F`` (the paper's metric).

    Raises
    ------
    ShapeError
        If the shapes differ.
    ConfigError
        If ``K`` is all zeros (the relative error is undefined).
    """
    return _relative_error(K, K_hat, "K", "K_hat")


def _relative_error(ref: Any, approx: Any, ref_name: str, approx_name: str) -> float:
    """``‖ref − approx‖_F / ‖ref‖_F`` in float64, the errors naming the arguments.

    The one implementation of the relative error, behind
    :func:`approximation_error` and :func:`analogkernels.attention.attention_error`.
    """
    ref = as_float_array(ref, ref_name).astype(np.float64, copy=False)
    approx = as_float_array(approx, approx_name).astype(np.float64, copy=False)
    if ref.shape != approx.shape:
        raise ShapeError(
            f"{ref_name} has shape {ref.shape} but {approx_name} has shape {approx.shape}"
        )
    norm = np.linalg.norm(ref)
    if norm == 0:
        raise ConfigError(f"{ref_name} is all zeros: the relative error is undefined")
    return float(np.linalg.norm(ref - approx) / norm)
