"""Scale out on Dask: out-of-core ridge on random features, and distributed sweeps.

Needs the optional extra ``analogkernels[dask]`` (``dask[array]`` and
``distributed``; Rocklin, "Dask: parallel computation with blocked algorithms and
task scheduling", Proc. SciPy 2015). Nothing here imports Dask until it is used,
so ``import analogkernels`` works without it.

Out-of-core ridge
-----------------
:meth:`RidgeClassifier.fit <analogkernels.linear_model.RidgeClassifier.fit>` given
a :mod:`dask.array` (or a dask DataFrame) ``X`` calls :func:`fit`: ridge
regression needs only the sufficient statistics ``ΦᵀΦ``, ``Φᵀ1``, ``Φᵀy`` (the
augmented Gram matrix of the rows ``[φ(x), 1, y]``), and these are sums over
rows. Each chunk of rows becomes one task: the worker maps its rows through the
feature map ``batch_size`` rows at a time and accumulates the chunk's augmented
Gram matrix in float64 over blocks of
:data:`~analogkernels.linear_model.BLOCK_ROWS` rows, as the in-memory fit does.
The chunk sums are added in chunk order by a chain of tasks (a fixed order, so
the result does not depend on which worker finished first), and the client
receives one ``(D + 1 + k)²`` matrix and solves. Memory per worker is
``O(D² + (batch_size + BLOCK_ROWS)·D)`` plus the chunk of raw inputs; the client
never holds the ``n × D`` features (only ``O(D²)``, and the labels' classes).

Analog reads keyed by the global row. A map on the simulated chip draws fresh
noise at every read; row ``i`` of a read takes row ``read_position + i`` of the
chip's read stream (:class:`~analogkernels.analog.AnalogMatrix`). The chunk
starting at global row ``r`` reads with the pinned read
``matmul(X, seed=chip.seed, row_offset=p0 + r)``, ``p0`` the map's read position
when the fit starts, and the map's ``read_position`` advances by ``n`` as after an
in-memory fit. The features are therefore the same bits whatever the chunking
and the number of workers.

Bits. The in-memory fit sums one Gram matrix per block of ``BLOCK_ROWS`` rows, in
order. When every chunk is one such block (``X.rechunk({0: BLOCK_ROWS})``) the
chunk sums are the block sums and the distributed fit gives the in-memory
coefficients bit for bit; any other chunking adds the same block products in a
different grouping (a relative difference of the order of the float64 rounding,
about 1e-15).

Lazy prediction. ``decision_function``, ``predict`` and the feature maps'
``transform`` on a dask array return dask arrays (:func:`dask.array.map_blocks`).
The rows of the chip that such a call reads are reserved when it is made (the
map's ``read_position`` advances by ``n`` at once); each block reads its rows
pinned, so computing the lazy result twice gives the same bits.

The default Dask scheduler runs the tasks: the threads of this process, or a
``distributed.Client`` if one is active — the same code runs on a laptop or a
cluster.

Distributed sweeps
------------------
``analogkernels ridge ... --scheduler ADDRESS`` runs the sweep's configurations as
tasks on a ``distributed`` scheduler (``local`` or ``local:N`` starts a
``LocalCluster`` of N single-threaded worker processes); see :func:`iter_sweep`.
The client writes each record to the cache as it arrives, so a lost worker loses
no finished run (its unfinished tasks are rerun elsewhere), and an interrupted
sweep resumes as without Dask.
"""

from __future__ import annotations

import copy
import os
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np
from sklearn.utils import gen_batches

from ._validation import FLOAT_DTYPES, check_int, check_real, validate_params
from .exceptions import ConfigError, DataError, ShapeError

__all__ = [
    "EXTRA",
    "batch_sums",
    "blas_threads",
    "decision_function",
    "fit",
    "head",
    "is_dask_collection",
    "iter_sweep",
    "make_classification",
    "predict",
    "require",
    "score",
    "sweep_client",
    "transform",
]

#: How to install what this module needs.
EXTRA = "pip install 'analogkernels[dask]'"


def is_dask_collection(x: Any) -> bool:
    """Whether ``x`` is a Dask collection.

    False without importing Dask: an object cannot be a Dask collection unless Dask
    is already imported.
    """
    mod = sys.modules.get("dask")
    if mod is None:
        return False
    try:
        return bool(mod.is_dask_collection(x))
    except Exception:  # a partially imported or blocked dask
        return False


def require(distributed: bool = False) -> Any:
    """Import :mod:`dask.array` (and ``distributed``).

    Raises an :class:`ImportError` that names the ``[dask]`` extra when they are
    missing.

    Returns
    -------
    module
        :mod:`dask.array`.
    """
    try:
        import dask
        import dask.array as da

        if distributed:
            import distributed as _distributed  # noqa: F401
    except ImportError as exc:
        what = "dask[array] and distributed" if distributed else "dask[array]"
        raise ImportError(
            f"this needs the optional extra analogkernels[dask] ({what}), which is not "
            f"installed: {EXTRA}"
        ) from exc
    del dask
    return da


# ---------------------------------------------------------------------------
# inputs


def _as_matrix(X: Any) -> tuple[Any, list[str] | None]:
    """``X`` as a 2-D float dask array, and its column names.

    The array has one column chunk and known row chunks; the column names are those
    of a dask DataFrame (None otherwise).
    """
    da = require()
    names = None
    if not isinstance(X, da.Array):
        if hasattr(X, "to_dask_array"):  # dask DataFrame
            cols = list(getattr(X, "columns", []))
            if cols and all(isinstance(c, str) for c in cols):
                names = cols
            X = X.to_dask_array(lengths=True)
        else:
            raise ConfigError(f"expected a dask array or dask DataFrame, got {type(X).__name__}")
    if X.ndim != 2:
        raise ShapeError(f"X must be 2-D (n_samples, n_features), got shape {X.shape}")
    if any(np.isnan(c) for c in X.chunks[0]):
        X = X.compute_chunk_sizes()
    if X.dtype not in (np.float32, np.float64):
        if X.dtype.kind not in "biuf":
            raise DataError(f"X must be numeric, got dtype {X.dtype}")
        X = X.astype(np.float64)
    if len(X.chunks[1]) != 1:
        X = X.rechunk({1: -1})
    return X, names


def _as_rows(v: Any, chunks: tuple[int, ...], name: str, dtype: Any = None) -> Any:
    """``v`` as a dask array with row chunks ``chunks``.

    ``v`` is a 1-D dask or NumPy array of ``sum(chunks)`` entries.
    """
    da = require()
    n = int(sum(chunks))
    if is_dask_collection(v):
        if not isinstance(v, da.Array):
            if not hasattr(v, "to_dask_array"):
                raise ConfigError(f"{name}: expected a dask array or Series, got {type(v)}")
            v = v.to_dask_array(lengths=True)
        if any(np.isnan(c) for c in v.chunks[0]):
            v = v.compute_chunk_sizes()
        if v.ndim == 2 and v.shape[1] == 1:
            v = v[:, 0]
        if v.ndim != 1 or v.shape[0] != n:
            raise ShapeError(f"{name} must have shape ({n},), got {v.shape}")
        v = v.rechunk((chunks,))
    else:
        a = np.asarray(v)
        if a.ndim == 2 and a.shape[1] == 1:
            a = a[:, 0]
        if a.ndim != 1 or a.shape[0] != n:
            raise ShapeError(f"{name} must have shape ({n},), got {a.shape}")
        v = da.from_array(a, chunks=(chunks,))
    return v if dtype is None else v.astype(dtype)


def head(X: Any) -> np.ndarray:
    """The first row of a dask array or DataFrame, computed.

    For fitting a map whose ``fit`` uses only the shape of ``X``.
    """
    X, _ = _as_matrix(X)
    return np.asarray(X[:1].compute())


# ---------------------------------------------------------------------------
# reads keyed by the global row


class _PinnedReads:
    """Stand-in for an :class:`~analogkernels.analog.AnalogMatrix` in a worker's map.

    In a worker's view of a feature map, fresh reads continue at stream row
    ``read_position``, computed as pinned reads, so the chip itself (shared by the
    tasks of a worker) is never changed.
    """

    def __init__(self, chip: Any, position: int) -> None:
        self._chip = chip
        self.read_position = int(position)

    def matmul(self, X: Any, **kwargs: Any) -> np.ndarray:
        if kwargs:
            raise ConfigError("a worker's view of a chip takes fresh reads only")
        x = np.asarray(X)
        rows = 1 if x.ndim == 1 else x.shape[0]
        out = self._chip.matmul(x, seed=self._chip.seed, row_offset=self.read_position)
        self.read_position += rows
        return out

    def __getattr__(self, name: str) -> Any:
        return getattr(self._chip, name)


def _estimators(fm: Any) -> Iterator[Any]:
    """``fm`` and, for a pipeline, its steps (depth first, in order)."""
    if fm is None or isinstance(fm, str):
        return
    if hasattr(fm, "steps"):
        for _, step in fm.steps:
            yield from _estimators(step)
    else:
        yield fm


def _chips(fm: Any) -> list[Any]:
    return [e.analog_ for e in _estimators(fm) if getattr(e, "analog_", None) is not None]


def _positions(fm: Any) -> list[int]:
    """The read positions of the map's chips.

    Checks that a non-deterministic map reads through chips whose reads can be
    keyed by row.
    """
    from .linear_model import _non_deterministic

    chips = _chips(fm)
    if not chips and _non_deterministic(fm):
        raise ConfigError(
            f"the feature map {type(fm).__name__} is non-deterministic but has no "
            "analog_ chip whose reads can be keyed by row: it cannot be mapped chunk "
            "by chunk on Dask workers"
        )
    return [c.read_position for c in chips]


def _advance(fm: Any, n: int) -> None:
    for chip in _chips(fm):
        chip.read_position = chip.read_position + n


def _view(fm: Any, positions: list[int], start: int) -> Any:
    """A shallow copy of ``fm`` whose chips read from stream rows ``positions[j] + start`` on.

    Fresh reads are computed as pinned reads.
    """
    if fm is None:
        return None
    it = iter(positions)

    def sub(est: Any) -> Any:
        if est is None or isinstance(est, str):
            return est
        if hasattr(est, "steps"):
            new = copy.copy(est)
            new.steps = [(name, sub(step)) for name, step in est.steps]
            return new
        chip = getattr(est, "analog_", None)
        if chip is None:
            return est
        new = copy.copy(est)
        new.analog_ = _PinnedReads(chip, next(it) + start)
        return new

    return sub(fm)


def _delayed(obj: Any) -> Any:
    """``obj`` as one node of the graph.

    A worker deserialises it once (a chip is rebuilt from its seed once per worker,
    not once per task).
    """
    import dask

    return dask.delayed(obj, traverse=False)


def _check_chunk(x: np.ndarray) -> np.ndarray:
    from sklearn.utils import check_array

    return check_array(x, dtype=FLOAT_DTYPES)


# ---------------------------------------------------------------------------
# fit


def _chunk_sums(
    x: np.ndarray,
    y: np.ndarray,
    w: np.ndarray | None,
    fm: Any,
    positions: list[int],
    start: int,
    lb: Any,
    batch_size: int,
) -> Any:
    """On a worker: the augmented Gram matrix of one chunk (rows ``start ..``)."""
    from .linear_model import RidgeClassifier, _NormalEquations

    if x.shape[0] == 0:
        return _NormalEquations()
    x = _check_chunk(x)
    helper = RidgeClassifier(batch_size=batch_size)
    helper.feature_map_ = _view(fm, positions, start)
    Y = y if lb is None else lb.transform(y).astype(np.float64)
    return helper._accumulate(x, Y, w).detach()


def _merge(a: Any, b: Any) -> Any:
    """``a + b`` as a new accumulator (inputs unchanged: a task may be rerun)."""
    from .linear_model import _NormalEquations

    out = _NormalEquations()
    out.merge(a)
    out.merge(b)
    return out


def _sums(
    X: Any,
    Y: Any,
    W: Any,
    fm: Any,
    positions: list[int],
    lb: Any,
    batch_size: int,
    initial: Any = None,
) -> Any:
    """The chunk sums, added in chunk order by a chain of tasks.

    The sums are added after the sums ``initial`` of earlier rows, if given, and
    computed with the default scheduler; returns the client's ``_NormalEquations``.
    """
    import dask

    xs = X.to_delayed().ravel()
    ys = Y.to_delayed().ravel()
    ws = [None] * len(xs) if W is None else list(W.to_delayed().ravel())
    fm_d = _delayed(fm)
    lb_d = _delayed(lb)
    starts = np.concatenate([[0], np.cumsum(X.chunks[0])[:-1]]).astype(int)
    acc = None if initial is None or initial.empty else dask.delayed(initial.detach())
    for xb, yb, wb, start in zip(xs, ys, ws, starts, strict=True):
        part = dask.delayed(_chunk_sums)(xb, yb, wb, fm_d, positions, int(start), lb_d, batch_size)
        acc = part if acc is None else dask.delayed(_merge)(acc, part)
    (eq,) = dask.compute(acc)
    return eq


def _fitted_map(clf: Any, X: Any) -> Any:
    """The classifier's own copy of its feature map, an unfitted one fitted on ``X``.

    Only analogkernels' own maps, whose ``fit`` uses only the shape of ``X`` (one
    row is computed), can be fitted on a dask ``X``.
    """
    from sklearn.base import clone

    from .kernel_approximation import _ProjectionMixin
    from .linear_model import _own_feature_map

    def fit_on_head(fm: Any) -> Any:
        if isinstance(fm, _ProjectionMixin):
            return clone(fm).fit(head(X))
        raise ConfigError(
            f"the feature map {type(fm).__name__} is not fitted: with a dask X pass it "
            "fitted (only analogkernels' own maps, whose fit uses only the shape of X, "
            "are fitted here)"
        ) from None

    return _own_feature_map(clf.feature_map, fit_on_head)


def fit(clf: Any, X: Any, y: Any, sample_weight: Any = None) -> Any:
    """:meth:`RidgeClassifier.fit <analogkernels.linear_model.RidgeClassifier.fit>` on dask data.

    Fits on a dask array or DataFrame ``X`` (see the module documentation).

    Parameters
    ----------
    clf : RidgeClassifier
        The classifier to fit (its parameters as in the in-memory fit).
    X : dask.array.Array or dask DataFrame, shape (n_samples, n_features)
        Raw inputs (mapped on the workers when ``clf.feature_map`` is set).
    y : dask or NumPy array, shape (n_samples,)
        Labels. Their classes are found in one pass over ``y``.
    sample_weight : dask or NumPy array of shape (n_samples,), optional
        Per-sample weights (weighted squared loss and centring).

    Returns
    -------
    RidgeClassifier
        ``clf``, fitted; its ``feature_map_`` has read ``n`` rows.
    """
    da = require()
    validate_params(clf)
    X, names = _as_matrix(X)
    n, d = X.shape
    if n == 0:
        raise ShapeError("X has 0 samples")
    chunks = X.chunks[0]
    Y = _as_rows(y, chunks, "y")
    W = None if sample_weight is None else _as_rows(sample_weight, chunks, "sample_weight", float)
    classes = np.unique(np.asarray(da.unique(Y).compute()))
    lb = clf._new_label_binarizer().fit(classes)
    fm = _fitted_map(clf, X)
    positions = _positions(fm)
    eq = _sums(X, Y, W, fm, positions, lb, int(clf.batch_size))
    clf._label_binarizer = lb
    clf.classes_ = lb.classes_
    clf.n_features_in_ = d
    if names is not None:
        clf.feature_names_in_ = np.asarray(names, dtype=object)
    elif hasattr(clf, "feature_names_in_"):
        del clf.feature_names_in_
    clf.feature_map_ = fm
    _advance(fm, n)
    clf._set_solution(eq, float(clf.alpha))
    return clf


def batch_sums(clf: Any, phi: Any, y: Any, eq: Any) -> Any:
    """Add the sums of a batch of dask features to those of the earlier batches.

    The sums ``eq`` of the earlier batches of :meth:`fit_batches
    <analogkernels.linear_model.RidgeClassifier.fit_batches>` plus those of a
    batch whose features ``phi`` (already mapped) are a dask array: chunk by chunk
    on the workers, added in row order after ``eq`` (rows still pending in
    ``eq``'s last, partial block are summed first).
    """
    phi, _ = _as_matrix(phi)
    Y = _as_rows(y, phi.chunks[0], "labels")
    return _sums(phi, Y, None, None, [], clf._label_binarizer, int(clf.batch_size), eq)


# ---------------------------------------------------------------------------
# lazy prediction and transform


def _start(block_info: dict | None) -> int:
    return int(block_info[0]["array-location"][0][0]) if block_info else 0


def _chunk_scores(
    x: np.ndarray,
    fm: Any,
    positions: list[int],
    coef: np.ndarray,
    intercept: np.ndarray,
    shift: float,
    batch_size: int,
    block_info: dict | None = None,
) -> np.ndarray:
    from .linear_model import RidgeClassifier

    if x.shape[0] == 0:
        return np.empty((0, coef.shape[0]))
    x = _check_chunk(x)
    helper = RidgeClassifier(batch_size=batch_size)
    helper.feature_map_ = _view(fm, positions, _start(block_info))
    helper.coef_, helper.intercept_ = coef, intercept
    return helper._scores(x, shift)


def _check_width(est: Any, X: Any) -> None:
    d = getattr(est, "n_features_in_", None)
    if d is not None and X.shape[1] != d:
        raise ShapeError(
            f"X has {X.shape[1]} features, but {type(est).__name__} is expecting {d} features"
        )


def decision_function(clf: Any, X: Any) -> Any:
    """Lazy decision function of a dask array.

    Lazy :meth:`RidgeClassifier.decision_function
    <analogkernels.linear_model.RidgeClassifier.decision_function>` of a dask
    array: a dask array of scores, shape (n,) for two classes else (n, k). A
    map on the chip reserves its next ``n`` rows now.
    """
    X, _ = _as_matrix(X)
    _check_width(clf, X)
    fm = clf.feature_map_
    positions = _positions(fm)
    k = clf.coef_.shape[0]
    scores = X.map_blocks(
        _chunk_scores,
        _delayed(fm),
        positions,
        clf.coef_,
        clf.intercept_,
        clf._score_shift(),
        int(clf.batch_size),
        chunks=(X.chunks[0], (k,)),
        dtype=np.float64,
        meta=np.empty((0, 0), dtype=np.float64),
    )
    _advance(fm, X.shape[0])
    return scores[:, 0] if k == 1 else scores


def predict(clf: Any, X: Any) -> Any:
    """Lazy class labels of a dask array ``X`` (a dask array of shape (n,))."""
    from .linear_model import _labels

    scores = decision_function(clf, X)
    classes = clf.classes_
    meta = np.empty((0,), dtype=classes.dtype)
    if scores.ndim == 1:
        return scores.map_blocks(_labels, classes, dtype=classes.dtype, meta=meta)
    return scores.map_blocks(_labels, classes, drop_axis=1, dtype=classes.dtype, meta=meta)


def score(clf: Any, X: Any, y: Any, sample_weight: Any = None) -> float:
    """Mean accuracy of ``clf`` on a dask array ``X`` (computed on the workers)."""
    import dask

    labels = predict(clf, X)
    chunks = labels.chunks[0]
    correct = (labels == _as_rows(y, chunks, "y")).astype(np.float64)
    if sample_weight is None:
        (value,) = dask.compute(correct.mean())
    else:
        w = _as_rows(sample_weight, chunks, "sample_weight", float)
        num, den = dask.compute((correct * w).sum(), w.sum())
        value = num / den
    return float(value)


def _chunk_transform(
    x: np.ndarray, est: Any, positions: list[int], block_info: dict | None = None
) -> np.ndarray:
    if x.shape[0] == 0:
        return np.empty((0, est._n_features_out), dtype=x.dtype)
    return np.asarray(_view(est, positions, _start(block_info)).transform(x))


def transform(est: Any, X: Any) -> Any:
    """Lazy ``est.transform`` of a dask array ``X``.

    ``est`` is a feature map of :mod:`analogkernels.kernel_approximation`; the
    result is a dask array of features, one block per row chunk. A map on the chip
    reserves its next ``n`` rows now.
    """
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(est)
    X, _ = _as_matrix(X)
    _check_width(est, X)
    positions = _positions(est)
    out = X.map_blocks(
        _chunk_transform,
        _delayed(est),
        positions,
        chunks=(X.chunks[0], (int(est._n_features_out),)),
        dtype=X.dtype,
        meta=np.empty((0, 0), dtype=X.dtype),
    )
    _advance(est, X.shape[0])
    return out


# ---------------------------------------------------------------------------
# data generated chunk by chunk


def _synthetic_means(
    seed: int, n_classes: int, clusters_per_class: int, n_features: int
) -> np.ndarray:
    """The cluster means of :func:`make_classification`, drawn from ``default_rng(seed)``."""
    rng = np.random.default_rng(seed)
    return 1.5 * rng.standard_normal((n_classes, clusters_per_class, n_features))


def _synthetic_x(
    seed: int,
    split: int,
    i: int,
    rows: int,
    n_classes: int,
    clusters_per_class: int,
    n_features: int,
    noise: float,
    dtype: Any,
) -> np.ndarray:
    """On a worker: the inputs of chunk ``i`` (the means are redrawn from the seed)."""
    means = _synthetic_means(seed, n_classes, clusters_per_class, n_features)
    rng = np.random.default_rng([seed, split, i])
    y = rng.integers(0, n_classes, size=rows)
    cluster = rng.integers(0, clusters_per_class, size=rows)
    x = means[y, cluster] + noise * rng.standard_normal((rows, n_features))
    return x.astype(dtype, copy=False)


def _synthetic_y(seed: int, split: int, i: int, rows: int, n_classes: int) -> np.ndarray:
    """On a worker: the labels of chunk ``i`` (the first draws of its stream)."""
    return np.random.default_rng([seed, split, i]).integers(0, n_classes, size=rows)


def make_classification(
    n_samples: int,
    n_features: int,
    *,
    n_classes: int = 7,
    clusters_per_class: int = 4,
    noise: float = 1.0,
    chunks: int = 65536,
    seed: int = 0,
    split: int = 0,
    dtype: Any = np.float64,
) -> tuple[Any, Any]:
    """A Gaussian-mixture classification problem generated chunk by chunk from a seed.

    It is never materialised: chunk ``i`` is drawn from
    ``numpy.random.default_rng([seed, split, i])`` when a task needs it.

    Each class is a mixture of ``clusters_per_class`` spherical Gaussians (standard
    deviation ``noise``) whose means are drawn once from ``default_rng(seed)``,
    so the classes are not linearly separable but are by an RBF kernel.

    Parameters
    ----------
    n_samples, n_features : int
        Rows and columns (for example 581012 × 54, the shape of covtype).
    n_classes, clusters_per_class : int
    noise : float
        Standard deviation of each cluster (in the units of the inputs).
    chunks : int
        Rows per chunk (the last chunk holds the remainder).
    seed : int
        Seed of the cluster means and of the rows.
    split : int
        Another ``split`` draws other rows from the same distribution (a test set).
    dtype : float32 or float64

    Returns
    -------
    X : dask.array.Array, shape (n_samples, n_features)
    y : dask.array.Array of int64, shape (n_samples,)
    """
    da = require()
    from dask.base import tokenize
    from dask.highlevelgraph import HighLevelGraph

    n_samples = check_int(n_samples, "n_samples", low=1)
    n_features = check_int(n_features, "n_features", low=1)
    chunks = check_int(chunks, "chunks", low=1)
    n_classes = check_int(n_classes, "n_classes", low=2)
    clusters_per_class = check_int(clusters_per_class, "clusters_per_class", low=1)
    noise = check_real(noise, "noise")
    if not noise > 0:
        raise ConfigError(f"invalid value for `noise`: must be > 0, got {noise}")
    dtype = np.dtype(dtype)
    seed, split = int(seed), int(split)
    sizes = tuple(b.stop - b.start for b in gen_batches(n_samples, chunks))
    # One layer per array, one task per chunk with no dependencies: its key is the
    # array's own key. (A shared tuple-valued task split by getitem, from_delayed and
    # concatenate make Dask's linear fusion alias the array's keys to fused tasks that
    # depend on what else is computed, so later computations resubmit the same keys
    # with another run_spec: "Detected different run_spec" and KeyErrors on a
    # distributed scheduler.)
    token = tokenize(
        seed, split, sizes, n_features, n_classes, clusters_per_class, noise, dtype.str
    )
    name_x = f"make_classification-X-{token}"
    name_y = f"make_classification-y-{token}"
    dsk_x = {
        (name_x, i, 0): (
            _synthetic_x,
            seed,
            split,
            i,
            rows,
            n_classes,
            clusters_per_class,
            n_features,
            noise,
            dtype,
        )
        for i, rows in enumerate(sizes)
    }
    dsk_y = {
        (name_y, i): (_synthetic_y, seed, split, i, rows, n_classes) for i, rows in enumerate(sizes)
    }
    X = da.Array(
        HighLevelGraph.from_collections(name_x, dsk_x, dependencies=()),
        name_x,
        (sizes, (n_features,)),
        dtype=dtype,
        meta=np.empty((0, 0), dtype=dtype),
    )
    y = da.Array(
        HighLevelGraph.from_collections(name_y, dsk_y, dependencies=()),
        name_y,
        (sizes,),
        dtype=np.int64,
        meta=np.empty((0,), dtype=np.int64),
    )
    return X, y


# ---------------------------------------------------------------------------
# distributed sweeps


def sweep_client(address: str) -> tuple[Any, Any]:
    """A ``distributed.Client`` for ``--scheduler ADDRESS``, and its ``LocalCluster``.

    The ``LocalCluster`` is the one the function started (None for a remote
    scheduler).

    ``local`` or ``local:N`` starts N single-threaded worker processes (default:
    the number of CPUs); anything else is a scheduler address
    (``tcp://host:8786``).
    """
    require(distributed=True)
    from distributed import Client, LocalCluster

    if address == "local" or address.startswith("local:"):
        text = address.partition(":")[2]
        try:
            workers = int(text) if text else (os.cpu_count() or 1)
        except ValueError:
            workers = 0
        if workers < 1:
            raise ConfigError(f"--scheduler local:N needs a positive N, got {address!r}")
        cluster = LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0"
        )
        return Client(cluster), cluster
    try:
        return Client(address, timeout="30s"), None
    except OSError as exc:
        raise ConfigError(f"cannot reach the Dask scheduler at {address!r}: {exc}") from exc


def blas_threads() -> int | None:
    """The BLAS thread count of this process (None if unknown)."""
    try:
        from threadpoolctl import threadpool_info

        counts = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
    except Exception:  # pragma: no cover - threadpoolctl is a dependency
        return None
    return max(counts) if counts else None


def _run_config(cfg: dict[str, Any], threads: int | None, blas: int | None) -> dict[str, Any]:
    """On a worker: one run of the sweep (its record; the client stores it)."""
    import contextlib

    from threadpoolctl import threadpool_limits

    import analogkernels

    from .paper.protocol import RunConfig, run_one

    if threads is not None:
        analogkernels.set_num_threads(threads)  # the Rust core: bits do not depend on it
    # NumPy's BLAS (the digital projection, the exact kernel) may round differently
    # with another thread count: the client's count gives the in-process bits.
    limit = threadpool_limits(blas, user_api="blas") if blas else contextlib.nullcontext()
    with limit:
        return run_one(RunConfig(**cfg))


def iter_sweep(
    configs: list[dict[str, Any]],
    client: Any,
    *,
    threads: int | None = None,
    blas: int | None = None,
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Submit every configuration as a task; yield ``(index, record)`` as runs finish.

    A configuration is ``dataclasses.asdict`` of a
    :class:`~analogkernels.paper.protocol.RunConfig`.

    Parameters
    ----------
    configs : list of dict
    client : distributed.Client
    threads : int, optional
        Threads of the Rust core in each task (results do not depend on it).
    blas : int, optional
        BLAS threads in each task; the client's count (:func:`blas_threads`) makes
        the records equal to an in-process sweep's on the same BLAS build.

    Tasks of a worker that dies are rerun on the others by the scheduler; closing
    the generator cancels what is left.
    """
    from distributed import as_completed

    futures = {
        client.submit(
            _run_config,
            cfg,
            threads,
            blas,
            pure=False,
            key=f"analogkernels-run-{i}-{os.urandom(4).hex()}",
        ): i
        for i, cfg in enumerate(configs)
    }
    try:
        # This client's loop, not the default client's (another client may be the
        # default: its loop would track these futures and race with this one).
        for fut, record in as_completed(futures, loop=client.loop, with_results=True):
            yield futures[fut], record
    finally:
        client.cancel(list(futures))
