"""Closed-form ridge classification with streamed normal equations.

:class:`RidgeClassifier` follows :class:`sklearn.linear_model.RidgeClassifier`
(targets ±1, one column per class one-vs-rest, unregularised intercept by
centring) but accumulates the normal equations ``ΦᵀΦ`` and ``Φᵀy`` over
batches: with ``feature_map=...`` it maps raw ``X`` batch by batch, so the
``n × D`` feature matrix is never held (memory ``O(D² + (batch_size +
BLOCK_ROWS)·D)``). Sums are
always accumulated in float64, even for float32 features: ``ΦᵀΦ`` over tens of
thousands of rows loses digits in float32 and the solve is ``O(D³)`` anyway.
The system is solved with scipy's Cholesky factorisation.

``regularize_intercept=True`` gives the solver of Büchel et al. (Nat. Mach.
Intell. 2024) instead: an intercept column prepended and regularised like the
weights, ``W = (XᵀX + αI)⁻¹Xᵀy``.

:class:`RidgeClassifierCV` chooses ``alpha`` by exact leave-one-out error with
one eigendecomposition of the centred Gram matrix shared by all alphas.

Bits do not depend on ``batch_size``. The feature map transforms ``batch_size``
rows at a time, but the sums (and the scores of ``decision_function``) are
computed over fixed blocks of :data:`BLOCK_ROWS` rows at fixed positions, so
``coef_``, ``intercept_`` and every prediction are the same bits for any
``batch_size`` and any split of :meth:`RidgeClassifier.fit_batches`' input.

Feature maps on the simulated chip (``RandomFourierFeatures(backend=...)``):
every batch is a fresh read, consecutive batches take consecutive rows of the
chip's read stream, so mapping ``X`` in batches reads exactly as one call on
all of ``X`` would. Prediction reads the chip again (fresh noise): the
classifier is then non-deterministic like its feature map (the scikit-learn
``non_deterministic`` tag follows the map's) and reproducible as a sequence —
the same fit followed by the same sequence of calls gives the same bits.
"""

from __future__ import annotations

import copy
import numbers
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
import scipy.linalg
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import gen_batches, get_tags
from sklearn.utils.validation import check_is_fitted, validate_data

from ._validation import (
    FLOAT_DTYPES,
    HasMethods,
    Interval,
    Options,
    check_sample_weight,
    validate_params,
)
from .dask import is_dask_collection
from .exceptions import ConfigError, DataError, ShapeError

__all__ = ["BLOCK_ROWS", "RidgeClassifier", "RidgeClassifierCV"]

#: Rows per accumulation block. Sums over rows are taken block by block, the
#: blocks at fixed positions ``[0, BLOCK_ROWS)``, ``[BLOCK_ROWS, 2·BLOCK_ROWS)``, …
#: whatever ``batch_size`` is, so the floating-point summation order — hence
#: every bit of the result — does not depend on how the rows were batched.
BLOCK_ROWS = 4096

# The default ``batch_size`` of both classifiers (rows the feature map transforms
# at once); unrelated to BLOCK_ROWS, which fixes the summation order.
_DEFAULT_BATCH_SIZE = 4096


def _non_deterministic(estimator: Any) -> bool:
    """The scikit-learn ``non_deterministic`` tag of ``estimator``.

    False for objects without tags.
    """
    if estimator is None:
        return False
    try:
        return bool(get_tags(estimator).non_deterministic)
    except Exception:  # not a scikit-learn estimator: assume a pure function
        return False


class _NormalEquations:
    """Running (weighted) sums ``n = Σw``, ``Σwφ``, ``Σwφφᵀ``, ``Σwy``, ``Σwφyᵀ`` in float64.

    All five live in one symmetric accumulator: the Gram matrix of the
    augmented rows ``a = [φ, 1, y]``. Rows are gathered into a buffer of
    :data:`BLOCK_ROWS` rows (the float32 → float64 conversion happens there);
    each full block adds ``AᵀA`` by one BLAS ``dsyrk`` (upper triangle only,
    straight into the accumulator), weighted blocks ``(wA)ᵀA``. Since blocks
    always hold the same rows, the result does not depend on how the rows are
    passed to :meth:`add`. Products of float32 features are exact in float64.
    """

    def __init__(self) -> None:
        self._acc: np.ndarray | None = None  # (d+1+k)², Fortran order
        self._buf: np.ndarray | None = None  # (BLOCK_ROWS, d+1+k): the pending block
        self._wbuf: np.ndarray | None = None
        self._blk: np.ndarray | None = None  # one block's Gram (upper triangle)
        self._fill = 0
        self._weighted: bool | None = None
        self._d = self._k = 0
        self._rows = 0
        self._done: tuple[Any, ...] | None = None

    def add(self, phi: np.ndarray, y: np.ndarray, w: np.ndarray | None = None) -> None:
        phi = np.asarray(phi)
        m, d = phi.shape
        k = y.shape[1]
        if self._acc is None:
            self._d, self._k = d, k
            self._acc = np.zeros((d + 1 + k, d + 1 + k), order="F")
            self._buf = np.empty((BLOCK_ROWS, d + 1 + k))
            self._weighted = w is not None
            if self._weighted:
                self._wbuf = np.empty(BLOCK_ROWS)
        elif d != self._d:
            raise ShapeError(f"batch has {d} features, earlier batches had {self._d}")
        if (w is not None) != self._weighted:
            raise ValueError("batches must be all weighted or all unweighted")
        if self._buf is None:  # after detach()
            self._buf = np.empty((BLOCK_ROWS, d + 1 + k))
            self._wbuf = np.empty(BLOCK_ROWS) if self._weighted else None
        start = 0
        while start < m:
            take = min(m - start, BLOCK_ROWS - self._fill)
            rows = slice(self._fill, self._fill + take)
            a = self._buf[rows]
            a[:, :d] = phi[start : start + take]  # float32 → float64 exactly
            a[:, d] = 1.0
            a[:, d + 1 :] = y[start : start + take]
            if w is not None:
                self._wbuf[rows] = w[start : start + take]
            self._fill += take
            start += take
            if self._fill == BLOCK_ROWS:
                self._flush()
        self._rows += m
        self._done = None

    def _flush(self) -> None:
        if self._fill == 0:
            return
        a = self._buf[: self._fill]
        if self._weighted:
            self._acc += (a * self._wbuf[: self._fill, None]).T @ a
        else:
            # aᵀ is Fortran-ordered (no copy); B = aᵀ(aᵀ)ᵀ on the upper triangle (the
            # lower one stays zero), then added: the sums are sums of whole block
            # Grams, which a distributed fit (analogkernels.dask) reproduces.
            if self._blk is None:
                self._blk = np.zeros_like(self._acc, order="F")
            self._blk = scipy.linalg.blas.dsyrk(
                1.0, a.T, beta=0.0, c=self._blk, trans=0, lower=0, overwrite_c=1
            )
            self._acc += self._blk
        self._fill = 0

    def detach(self) -> _NormalEquations:
        """Flush the pending rows and drop the block buffers, keeping only the sums.

        Frees O(BLOCK_ROWS·D) memory: the form in which a worker sends its chunk's
        sums.
        """
        if self._acc is not None:
            self._flush()
        self._buf = self._wbuf = self._blk = None
        return self

    def merge(self, other: _NormalEquations) -> None:
        """Add the sums of ``other`` (rows that follow this accumulator's rows).

        The pending rows of both are flushed first.
        """
        if other._acc is None:
            return
        other.detach()
        if self._acc is None:
            self._d, self._k = other._d, other._k
            self._acc = np.zeros_like(other._acc, order="F")
            self._weighted = other._weighted
        elif other._d != self._d:
            raise ShapeError(f"batch has {other._d} features, earlier batches had {self._d}")
        if other._weighted != self._weighted:
            raise ValueError("batches must be all weighted or all unweighted")
        if self._buf is not None:
            self._flush()
        self._acc += other._acc
        self._rows += other._rows
        self._done = None

    @property
    def empty(self) -> bool:
        return self._acc is None

    def _parts(self) -> tuple[Any, ...]:
        if self._done is None:
            self._flush()  # the last, partial block
            upper = np.triu(self._acc)
            full = upper + np.triu(upper, 1).T
            if not np.isfinite(full).all():
                raise DataError(
                    "the normal equations (sums of φ, φφᵀ and φy over the rows) are not "
                    "finite: the features contain inf or NaN, or are too large for their "
                    "products to sum in float64 (|φ| beyond about 1e150). Rescale X (e.g. "
                    "sklearn.preprocessing.StandardScaler) or check the feature map"
                )
            d = self._d
            n = float(full[d, d]) if self._weighted else self._rows
            self._done = (n, full[:d, d], full[:d, :d], full[d, d + 1 :], full[:d, d + 1 :])
        return self._done

    @property
    def n(self) -> float:
        return self._parts()[0]

    @property
    def sum_x(self) -> np.ndarray:
        return self._parts()[1]

    @property
    def gram(self) -> np.ndarray:
        return self._parts()[2]

    @property
    def sum_y(self) -> np.ndarray:
        return self._parts()[3]

    @property
    def xty(self) -> np.ndarray:
        return self._parts()[4]

    def centred(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        mu = self.sum_x / self.n
        ybar = self.sum_y / self.n
        gram_c = self.gram - self.n * np.outer(mu, mu)
        xty_c = self.xty - self.n * np.outer(mu, ybar)
        return gram_c, xty_c, mu, ybar


def _labels(scores: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """The predicted classes of ``scores``, as scikit-learn's linear classifiers.

    The class with the largest score; for two classes (1-D scores) the positive
    one where the score is above 0.
    """
    idx = (scores > 0).astype(np.intp) if scores.ndim == 1 else np.argmax(scores, axis=1)
    return np.take(classes, idx, axis=0)


def _own_feature_map(feature_map: Any, fit: Callable[[Any], Any]) -> Any:
    """The classifier's own fitted copy of ``feature_map`` (None stays None).

    ``fit(feature_map)`` when it is not fitted, else a :func:`copy.deepcopy`:
    reading through the map advances its state (a chip's read position), which
    must not change the caller's object.
    """
    if feature_map is None:
        return None
    try:
        check_is_fitted(feature_map)
    except Exception:
        return fit(feature_map)
    return copy.deepcopy(feature_map)


def _solve_spd(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    try:
        return scipy.linalg.cho_solve(scipy.linalg.cho_factor(a, check_finite=False), b)
    except np.linalg.LinAlgError:
        # Not positive definite (alpha = 0 with collinear features): least squares.
        return scipy.linalg.lstsq(a, b, check_finite=False)[0]


class RidgeClassifier(ClassifierMixin, BaseEstimator):
    """Ridge classifier with streamed, float64 normal equations.

    Parameters
    ----------
    alpha : float, default 1.0
        L2 regularisation strength (the paper: 0.5).
    fit_intercept : bool, default True
    regularize_intercept : bool, default False
        Regularise the intercept like a weight (the paper's solver) instead of
        leaving it free (scikit-learn's).
    feature_map : transformer or None, default None
        Applied to ``X`` batch by batch in ``fit`` and in prediction. An unfitted
        map is cloned and fitted on ``X``; a fitted one is copied
        (:func:`copy.deepcopy`, so the map passed in is never changed: for a map
        on the chip the copy continues from the map's read position). With a map
        on the simulated chip every batch, in ``fit`` and in prediction, is a
        fresh read (see the module documentation).
    batch_size : int, default 4096
        Rows the feature map transforms at once (bounds the map's temporary
        memory). Results do not depend on it: sums are taken over fixed blocks
        of :data:`BLOCK_ROWS` rows.
    targets : {"pm1", "01"}, default "pm1"
        Regression targets per class: ±1 (scikit-learn) or 0/1 with the
        decision threshold at 0.5 (the paper's protocol; with a regularised
        intercept the two are not equivalent).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    coef_ : ndarray of shape (n_targets, D)
        ``n_targets`` is 1 for two classes, else the number of classes.
    intercept_ : ndarray of shape (n_targets,)
    feature_map_ : transformer or None
        The fitted feature map the classifier reads through (its own copy).
    n_features_in_ : int
    """

    _parameter_constraints: dict = {  # noqa: RUF012
        "alpha": [Interval(numbers.Real, 0, None, closed="left")],
        "fit_intercept": ["boolean"],
        "regularize_intercept": ["boolean"],
        "feature_map": [None, HasMethods(["fit", "transform"])],
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "targets": [Options({"pm1", "01"})],
    }

    def __init__(
        self,
        *,
        alpha: float = 1.0,
        fit_intercept: bool = True,
        regularize_intercept: bool = False,
        feature_map: Any = None,
        batch_size: int = _DEFAULT_BATCH_SIZE,
        targets: str = "pm1",
    ) -> None:
        self.alpha = alpha
        self.fit_intercept = fit_intercept
        self.regularize_intercept = regularize_intercept
        self.feature_map = feature_map
        self.batch_size = batch_size
        self.targets = targets

    # -- shared plumbing ---------------------------------------------------
    def _neg_label(self) -> int:
        return 0 if getattr(self, "targets", "pm1") == "01" else -1

    def _new_label_binarizer(self) -> LabelBinarizer:
        """The (unfitted) encoder of the labels as the per-class regression targets."""
        return LabelBinarizer(pos_label=1, neg_label=self._neg_label())

    def _score_shift(self) -> float:
        """What the scores are shifted by: the class boundary of the fitted targets.

        0.5 for two classes with 0/1 targets, else 0.
        """
        return 0.5 if self.coef_.shape[0] == 1 and self._neg_label() == 0 else 0.0

    def _prepare(self, X: Any, y: Any):
        validate_params(self)
        X, y = validate_data(self, X, y, dtype=FLOAT_DTYPES, multi_output=False)
        self._label_binarizer = self._new_label_binarizer()
        Y = self._label_binarizer.fit_transform(y).astype(np.float64)
        self.classes_ = self._label_binarizer.classes_
        self.feature_map_ = _own_feature_map(self.feature_map, lambda fm: clone(fm).fit(X))
        return X, Y

    def _features(
        self, X: np.ndarray, feature_map: Any = "fitted"
    ) -> Iterator[tuple[slice, np.ndarray]]:
        """``(rows, Φ(X[rows]))`` for the fixed blocks ``rows`` of :data:`BLOCK_ROWS` rows.

        The map transforms ``batch_size`` rows at a time, in order (for a map on the
        chip: consecutive fresh reads).
        """
        fm = self.feature_map_ if isinstance(feature_map, str) else feature_map
        n = X.shape[0]
        if fm is None:
            for sl in gen_batches(n, BLOCK_ROWS):
                yield sl, X[sl]
            return
        block: np.ndarray | None = None  # the block being gathered
        done = 0  # rows of X yielded so far (always a multiple of BLOCK_ROWS, or n)
        fill = 0
        for batch in gen_batches(n, self.batch_size):
            phi = np.asarray(fm.transform(X[batch]))
            i = 0
            while i < phi.shape[0]:
                size = min(BLOCK_ROWS, n - done)
                if fill == 0 and phi.shape[0] - i >= size:
                    # A whole block inside this batch: no copy.
                    yield slice(done, done + size), phi[i : i + size]
                    done += size
                    i += size
                    continue
                if block is None or block.shape[0] != size or block.dtype != phi.dtype:
                    block = np.empty((size, phi.shape[1]), dtype=phi.dtype)
                take = min(size - fill, phi.shape[0] - i)
                block[fill : fill + take] = phi[i : i + take]
                fill += take
                i += take
                if fill == size:
                    yield slice(done, done + size), block
                    done += size
                    fill = 0

    def _accumulate(
        self, X: np.ndarray, Y: np.ndarray, weights: np.ndarray | None = None
    ) -> _NormalEquations:
        eq = _NormalEquations()
        for sl, phi in self._features(X):
            eq.add(phi, Y[sl], None if weights is None else weights[sl])
        return eq

    def _scores(self, X: np.ndarray, shift: float) -> np.ndarray:
        """``Φ(X)·coef_ᵀ + intercept_ − shift``, shape (n, n_targets), unchecked.

        Block by block through the feature map (for a map on the chip: a fresh read).
        """
        scores = np.empty((X.shape[0], self.coef_.shape[0]))
        for sl, phi in self._features(X):
            scores[sl] = np.asarray(phi, dtype=np.float64) @ self.coef_.T + self.intercept_
        if shift:
            scores -= shift
        return scores

    def _set_solution(self, eq: _NormalEquations, alpha: float) -> None:
        d = eq.gram.shape[0]
        if not self.fit_intercept:
            w = _solve_spd(eq.gram + alpha * np.eye(d), eq.xty)
            b = np.zeros(eq.xty.shape[1])
        elif self.regularize_intercept:
            a = np.empty((d + 1, d + 1))
            a[0, 0], a[0, 1:], a[1:, 0], a[1:, 1:] = eq.n, eq.sum_x, eq.sum_x, eq.gram
            rhs = np.vstack([eq.sum_y[None, :], eq.xty])
            sol = _solve_spd(a + alpha * np.eye(d + 1), rhs)
            b, w = sol[0], sol[1:]
        else:
            gram_c, xty_c, mu, ybar = eq.centred()
            w = _solve_spd(gram_c + alpha * np.eye(d), xty_c)
            b = ybar - mu @ w
        self.coef_ = w.T
        self.intercept_ = b
        self.alpha_ = alpha

    # -- public API ----------------------------------------------------------
    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> RidgeClassifier:
        """Fit on ``X`` and labels ``y``, optionally with per-sample weights.

        ``X`` holds raw inputs when ``feature_map`` is set. Sample weights act as in
        scikit-learn: weighted squared loss, weighted centring. With a map on the chip
        every row is read once, in order, also rows of zero weight.

        ``X`` may be a :mod:`dask.array` or dask DataFrame (``y`` and
        ``sample_weight`` then a dask or NumPy array): the feature map runs on the
        Dask workers chunk by chunk, the solve on the client
        (:func:`analogkernels.dask.fit`).
        """
        if is_dask_collection(X):
            from . import dask as _dask

            return _dask.fit(self, X, y, sample_weight)
        X, Y = self._prepare(X, y)
        weights = None
        if sample_weight is not None:
            weights = check_sample_weight(sample_weight, X.shape[0])
        self._set_solution(self._accumulate(X, Y, weights), float(self.alpha))
        return self

    def fit_batches(self, batches: Iterable[tuple[Any, Any]], classes: Any) -> RidgeClassifier:
        """Fit from an iterable of ``(features, labels)`` batches.

        The features are already mapped (e.g. a generator over a file); ``classes``
        lists every label that can occur. The result does not depend on how the rows
        are split into batches (same bits). A batch's features may be a
        :mod:`dask.array`: its chunk sums are computed on the Dask workers.
        """
        validate_params(self)
        self._label_binarizer = self._new_label_binarizer()
        self._label_binarizer.fit(np.asarray(classes))
        self.classes_ = self._label_binarizer.classes_
        self.feature_map_ = None
        eq = _NormalEquations()
        for phi, yb in batches:
            if is_dask_collection(phi):
                from . import dask as _dask

                eq = _dask.batch_sums(self, phi, yb, eq)
                continue
            phi = np.asarray(phi)
            if phi.ndim != 2:
                raise ShapeError(f"each feature batch must be 2-D, got shape {phi.shape}")
            eq.add(phi, self._label_binarizer.transform(np.asarray(yb)).astype(np.float64))
        if eq.empty:
            raise ValueError("batches was empty")
        self.n_features_in_ = eq.gram.shape[0]
        self._set_solution(eq, float(self.alpha))
        return self

    def decision_function(self, X: Any) -> np.ndarray:
        """Scores ``Φ(X)·coef_ᵀ + intercept_`` (one column per class; 1-D for two).

        With a feature map on the chip, ``X`` is read afresh (each call draws new
        read noise; ``predict`` calls this once). A :mod:`dask.array` ``X`` gives
        a lazy dask array (:func:`analogkernels.dask.decision_function`).
        """
        check_is_fitted(self, "coef_")
        if is_dask_collection(X):
            from . import dask as _dask

            return _dask.decision_function(self, X)
        X = validate_data(self, X, dtype=FLOAT_DTYPES, reset=False)
        with np.errstate(over="ignore", invalid="ignore"):
            # For 0/1 targets the class boundary at 0.5 is moved to 0.
            scores = self._scores(X, self._score_shift())
        bad = np.flatnonzero(~np.isfinite(scores).all(axis=1))
        if bad.size:
            raise DataError(
                f"decision_function: the scores of {bad.size} row(s) of X are not finite "
                f"(first: row {int(bad[0])}): its features contain inf or NaN or are too "
                "large for float64. Rescale X (e.g. sklearn.preprocessing.StandardScaler) "
                "or check the feature map"
            )
        return scores.ravel() if scores.shape[1] == 1 else scores

    def predict(self, X: Any) -> Any:
        """Class labels of ``X`` (a lazy dask array for a :mod:`dask.array` ``X``)."""
        if is_dask_collection(X):
            from . import dask as _dask

            return _dask.predict(self, X)
        return _labels(self.decision_function(X), self.classes_)

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Mean accuracy on ``X``, ``y``.

        Computed on the Dask workers for a :mod:`dask.array` ``X``.
        """
        if is_dask_collection(X):
            from . import dask as _dask

            return _dask.score(self, X, y, sample_weight)
        return super().score(X, y, sample_weight)

    def __sklearn_tags__(self):
        """scikit-learn tags: dense input only; as deterministic as the feature map."""
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        # Prediction reads through the feature map: as deterministic as it is.
        tags.non_deterministic = _non_deterministic(self.feature_map)
        return tags


class RidgeClassifierCV(RidgeClassifier):
    """:class:`RidgeClassifier` with ``alpha`` chosen by exact leave-one-out error.

    One eigendecomposition ``G = V Λ Vᵀ`` of the centred Gram matrix serves
    every alpha: a second streamed pass computes each row's leave-one-out
    residual ``(y − ŷ)/(1 − h)`` with leverage ``h = 1/n + Σ_k p_k²/(λ_k + α)``,
    ``p = Vᵀ(φ − μ)`` (the intercept is left unregularised).

    The leave-one-out pass needs the features of the first pass again. It maps
    ``X`` through a copy of the feature map taken before the first pass, so a map
    on the chip replays the same reads instead of reading afresh: the exact
    shortcut holds only for the very features the normal equations were built
    from. Physically this is the same as storing the features; the simulation
    recomputes them. The classifier's own map has read the training rows once.

    Parameters
    ----------
    alphas : sequence of float, default (0.1, 1.0, 10.0)
    fit_intercept, feature_map, batch_size : as :class:`RidgeClassifier`

    Attributes
    ----------
    alpha_ : float
        The chosen alpha.
    cv_errors_ : ndarray of shape (n_alphas,)
        Mean squared leave-one-out error of the ±1 targets per alpha.
    """

    _parameter_constraints: dict = {  # noqa: RUF012
        "alphas": ["array-like"],
        **{
            name: RidgeClassifier._parameter_constraints[name]
            for name in ("fit_intercept", "feature_map", "batch_size")
        },
    }

    def __init__(
        self,
        *,
        alphas: Any = (0.1, 1.0, 10.0),
        fit_intercept: bool = True,
        feature_map: Any = None,
        batch_size: int = _DEFAULT_BATCH_SIZE,
    ) -> None:
        self.alphas = alphas
        self.fit_intercept = fit_intercept
        self.feature_map = feature_map
        self.batch_size = batch_size

    @property
    def regularize_intercept(self) -> bool:  # type: ignore[override]
        """False: the intercept is left unregularised (the leave-one-out shortcut assumes it)."""
        return False

    @property
    def alpha(self) -> float:  # type: ignore[override]
        """The regularisation strength in use.

        ``alpha_`` once fitted, else the first of ``alphas``.
        """
        return float(getattr(self, "alpha_", np.asarray(self.alphas, dtype=float)[0]))

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> RidgeClassifierCV:
        """Fit, choosing alpha by leave-one-out error (unweighted only)."""
        if sample_weight is not None:
            raise ValueError(
                "RidgeClassifierCV does not take sample_weight (the leave-one-out "
                "shortcut assumes unit weights); use RidgeClassifier with a fixed alpha"
            )
        alphas = np.asarray(self.alphas, dtype=np.float64).ravel()
        if alphas.size == 0 or np.any(alphas <= 0) or not np.all(np.isfinite(alphas)):
            raise ValueError(f"alphas must be positive finite numbers, got {self.alphas!r}")
        if is_dask_collection(X):
            raise ConfigError(
                "RidgeClassifierCV does not take dask collections (its leave-one-out pass "
                "needs the features twice); use RidgeClassifier with a fixed alpha"
            )
        X, Y = self._prepare(X, y)
        # The second pass must see the same Φ: it replays the reads of a stateful
        # map (on the chip) from a copy taken now; for a digital map it is the same.
        replay = copy.deepcopy(self.feature_map_)
        eq = self._accumulate(X, Y)
        if self.fit_intercept:
            gram, xty, mu, ybar = eq.centred()
        else:
            gram, xty, mu, ybar = eq.gram, eq.xty, np.zeros(eq.gram.shape[0]), 0.0
        lam, vecs = scipy.linalg.eigh(gram, check_finite=False)
        lam = np.maximum(lam, 0.0)
        q = vecs.T @ xty  # coordinates of Φᵀy in the eigenbasis
        errors = np.zeros(alphas.size)
        for sl, phi in self._features(X, replay):
            p = (np.asarray(phi, dtype=np.float64) - mu) @ vecs
            for i, a in enumerate(alphas):
                inv = 1.0 / (lam + a)
                pred = (p * inv) @ q + ybar
                h = (p**2) @ inv + (1.0 / eq.n if self.fit_intercept else 0.0)
                r = (Y[sl] - pred) / (1.0 - h)[:, None]
                errors[i] += float((r**2).sum())
        self.cv_errors_ = errors / (eq.n * Y.shape[1])
        if np.isnan(self.cv_errors_).any():
            raise DataError(
                f"the leave-one-out errors are not finite ({self.cv_errors_!r}): the features "
                "are too large or too ill-conditioned for float64. Rescale X (e.g. "
                "sklearn.preprocessing.StandardScaler)"
            )
        best = float(alphas[int(np.argmin(self.cv_errors_))])
        inv = 1.0 / (lam + best)
        w = vecs @ (inv[:, None] * q)
        self.coef_ = w.T
        self.intercept_ = (ybar - mu @ w) if self.fit_intercept else np.zeros(w.shape[1])
        self.alpha_ = best
        return self
