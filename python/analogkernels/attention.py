"""Kernelised (FAVOR+) attention in numpy, the projection digital or on the chip.

Performer attention (Choromanski et al., ICLR 2021) replaces
``softmax(QKᵀ/√d) V`` by ``D⁻¹ Q′ (K′ᵀ V)`` with ``Q′ = φ(Q·d^(-1/4))``,
``K′ = φ(K·d^(-1/4))`` random features of the softmax kernel and
``D = diag(Q′ (K′ᵀ 1))`` — linear in the sequence length. Büchel et al.
(Nat. Mach. Intell. 2024) run the random projection inside ``φ`` on the HERMES
chip: pass a :class:`~analogkernels.kernel_approximation.FavorPlusFeatures`
fitted with a ``backend=CrossbarConfig(...)``.

On the chip every call is a fresh read, as on hardware: :func:`favor_attention`
projects the queries, then the keys, as consecutive rows of the chip's read
stream (``features.analog_.read_position`` advances by the number of query plus
key rows), so calling it twice on the same inputs gives two different noisy
outputs. The same fitted map and the same sequence of calls give the same bits;
to repeat a call, set ``features.analog_.read_position`` back first.

Numerics: the positive features ``exp(±w·x − ‖x‖²/2)`` are computed with the
usual max-subtraction — per query row for ``Q′`` and one global constant for
``K′`` — constants that cancel in ``D⁻¹`` (Performer's stabiliser), so large
logits do not overflow. Shapes: ``(..., L, d)`` for Q/K and ``(..., L, d_v)`` for
V, any leading batch/head dimensions; ``key_padding_mask`` is boolean
``(..., L)`` with True = attend (the Performer convention).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._validation import as_real_array
from .exceptions import DataError, DTypeError, ShapeError
from .kernel_approximation import FavorPlusFeatures
from .kernels import _relative_error

__all__ = ["attention_error", "favor_attention", "favor_features", "softmax_attention"]


def _check(Q: Any, K: Any, V: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    Q, K, V = (as_real_array(a, name) for a, name in ((Q, "Q"), (K, "K"), (V, "V")))
    dtype = np.result_type(Q, K, V, np.float32)
    if dtype not in (np.float32, np.float64):
        dtype = np.float64
    Q, K, V = (a.astype(dtype, copy=False) for a in (Q, K, V))
    if Q.ndim < 2 or K.ndim != Q.ndim or V.ndim != Q.ndim:
        raise ShapeError(
            f"Q, K, V must be (..., L, d) with the same number of dimensions, "
            f"got {Q.shape}, {K.shape}, {V.shape}"
        )
    if Q.shape[-1] != K.shape[-1]:
        raise ShapeError(f"Q has head dimension {Q.shape[-1]} but K has {K.shape[-1]}")
    if K.shape[-2] != V.shape[-2]:
        raise ShapeError(f"K has {K.shape[-2]} positions but V has {V.shape[-2]}")
    if Q.shape[:-2] != K.shape[:-2] or K.shape[:-2] != V.shape[:-2]:
        raise ShapeError(
            f"leading (batch, head) shapes differ: {Q.shape[:-2]}, {K.shape[:-2]}, {V.shape[:-2]}"
        )
    for name, a in (("Q", Q), ("K", K), ("V", V)):
        bad = ~np.isfinite(a)
        if bad.any():
            first = tuple(int(i) for i in np.argwhere(bad)[0])
            raise DataError(
                f"{name} contains {int(bad.sum())} non-finite value(s) (NaN or inf; the "
                f"first at index {first}: {a[first]})"
            )
    return Q, K, V


def _mask(mask: Any, K: np.ndarray) -> np.ndarray | None:
    if mask is None:
        return None
    m = np.asarray(mask)
    if m.dtype != bool:
        raise DTypeError(
            f"key_padding_mask must be boolean (True = attend), got dtype {m.dtype}; "
            "convert it explicitly, e.g. mask != 0"
        )
    if m.shape != K.shape[:-1]:
        try:
            m = np.broadcast_to(m, K.shape[:-1])
        except ValueError:
            raise ShapeError(
                f"key_padding_mask has shape {m.shape}, expected {K.shape[:-1]} (..., L)"
            ) from None
    return m


def softmax_attention(
    Q: Any, K: Any, V: Any, *, causal: bool = False, key_padding_mask: Any = None
) -> np.ndarray:
    """Exact ``softmax(QKᵀ/√d) V`` (the reference), with optional masks.

    The masks are causal and key-padding. Rows with no key to attend to give zeros.
    """
    Q, K, V = _check(Q, K, V)
    mask = _mask(key_padding_mask, K)
    logits = (Q @ np.swapaxes(K, -1, -2)) / np.sqrt(Q.shape[-1])
    allowed = np.ones(logits.shape, dtype=bool)
    if causal:
        allowed &= np.tril(np.ones(logits.shape[-2:], dtype=bool))
    if mask is not None:
        allowed &= mask[..., None, :]
    logits = np.where(allowed, logits, -np.inf)
    top = np.max(logits, axis=-1, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    w = np.where(allowed, np.exp(logits - top), 0.0)
    norm = w.sum(axis=-1, keepdims=True)
    return (w / np.where(norm > 0, norm, 1.0)) @ V


def favor_features(X: np.ndarray, features: FavorPlusFeatures, *, query: bool) -> np.ndarray:
    """``φ(X·d^(-1/4))`` for every row of ``X`` (..., L, d), stabilised.

    Queries are shifted by their row maximum, keys by one global maximum (constants
    that cancel in the attention normaliser). Trigonometric features are returned
    unshifted. With a map on the chip: one fresh read of every row of ``X``.

    The features are those of ``features.transform``; only the stabilising shift,
    applied to the exponents before ``exp``, is added here.
    :class:`analogkernels.torch.FavorAttention` repeats this rule in torch
    (its gradients need torch operations).
    """
    d = X.shape[-1]
    flat = X.reshape(-1, d) * X.dtype.type(d**-0.25)
    if features.kind != "positive":
        out = features.transform(flat)
        return out.reshape(*X.shape[:-1], -1)
    u = features._project(flat)  # the projection: digital or on the chip
    logits = features._positive_exponents(flat, u).reshape(*X.shape[:-1], -1)
    if query:
        shift = logits.max(axis=-1, keepdims=True)
    else:
        shift = logits.max(axis=tuple(range(logits.ndim - 2, logits.ndim)), keepdims=True)
    return features._positive_features(logits - shift)


def favor_attention(
    Q: Any,
    K: Any,
    V: Any,
    features: FavorPlusFeatures,
    *,
    causal: bool = False,
    key_padding_mask: Any = None,
) -> np.ndarray:
    """FAVOR+ attention ``D⁻¹ Q′(K′ᵀV)`` with a fitted feature map.

    Bidirectional, or its prefix-sum form (causal); the feature map's projection
    may run on the chip.

    Parameters
    ----------
    Q, K : array_like, shape (..., L, d)
    V : array_like, shape (..., L, d_v)
    features : FavorPlusFeatures
        Fitted on ``d``-dimensional inputs (``n_features_in_ == d``). On the
        chip (fitted with a ``backend``), the call reads ``Q`` and then ``K``
        afresh (new read noise every call).
    causal : bool
        Position i attends to keys ``j ≤ i`` (prefix sums, O(L·m·d_v) memory).
    key_padding_mask : bool array_like, shape (..., L), optional
        True = attend; masked keys contribute nothing.
    """
    Q, K, V = _check(Q, K, V)
    mask = _mask(key_padding_mask, K)
    if getattr(features, "n_features_in_", None) != Q.shape[-1]:
        raise ShapeError(
            f"features were fitted on {getattr(features, 'n_features_in_', None)} inputs, "
            f"but the head dimension is {Q.shape[-1]}"
        )
    qf = favor_features(Q, features, query=True)
    kf = favor_features(K, features, query=False)
    if mask is not None:
        kf = kf * mask[..., None]
    if not causal:
        kv = np.swapaxes(kf, -1, -2) @ V  # (..., m, d_v)
        num = qf @ kv
        den = qf @ kf.sum(axis=-2)[..., None]
    else:
        # Prefix sums over positions: S_i = Σ_{j≤i} k′_j v_jᵀ, z_i = Σ_{j≤i} k′_j.
        kv = np.cumsum(kf[..., :, :, None] * V[..., :, None, :], axis=-3)
        num = np.einsum("...lm,...lmv->...lv", qf, kv)
        den = np.einsum("...lm,...lm->...l", qf, np.cumsum(kf, axis=-2))[..., None]
    return num / np.where(den > 0, den, 1.0)


def attention_error(A: Any, A_hat: Any) -> float:
    """Relative Frobenius error ``‖A − Â‖_F / ‖A‖_F`` of attention outputs.

    The metric of :func:`analogkernels.kernels.approximation_error`, applied to
    attention outputs (the errors name ``A`` and ``A_hat``).

    Raises
    ------
    ShapeError
        If the shapes differ.
    ConfigError
        If ``A`` is all zeros (the relative error is undefined).
    """
    return _relative_error(A, A_hat, "A", "A_hat")
