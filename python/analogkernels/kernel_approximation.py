"""Random-feature maps as scikit-learn transformers, digital or on a simulated chip.

``φ(x) = h(x) · s^(-1/2) · f(Wx + b)`` (Büchel et al., "Kernel approximation using
analogue in-memory computing", Nat. Mach. Intell. 6, 2024): only the projection
``Wx`` can run on the analog crossbar (``backend=CrossbarConfig(...)``); ``f`` and
``h`` stay digital.

Samplers of ``W`` (``s × d``):

- ``"rff"``: i.i.d. standard normal entries (Rahimi & Recht, NeurIPS 2007;
  optionally truncated to ``[-truncation, truncation]``; the paper uses 3).
- ``"orf"``: orthogonal random features (Yu et al., NeurIPS 2016): stacked
  ``d × d`` blocks ``Qᵀ`` of the QR decomposition of a (truncated) normal matrix,
  rows rescaled by ``χ(d)`` draws, the last block cut to the rows still needed.
- ``"sorf"``: structured orthogonal random features, blocks
  ``sqrt(n)·Ĥ D1 Ĥ D2 Ĥ D3`` with ``n`` the next power of two ``≥ d`` (input
  zero-padded), computed with the fused fast Walsh–Hadamard transform without
  forming the matrix when the projection is digital.

For the RBF kernel ``W`` is scaled by ``sqrt(2γ)``.

Analog backend: reads are non-deterministic, as on a chip
---------------------------------------------------------
With ``backend=CrossbarConfig(...)``, ``fit`` programs ``W`` onto a simulated
crossbar (:class:`~analogkernels.analog.AnalogMatrix`, attribute ``analog_``)
with the seed ``backend_seed_`` and drifts it to ``t_inference``. Every
``transform`` is then a *read* of that chip: it draws fresh per-MVM noise (output
noise, PCM read noise), so transforming the same ``X`` twice gives two different
noisy feature matrices, as on hardware. In scikit-learn terms the fitted
estimator is non-deterministic (the ``non_deterministic`` estimator tag is set
when a backend is given). It is reproducible as a *sequence*: the rows read so
far are counted by ``analog_.read_position``, row ``p`` of the chip's read
stream always gets the same noise, so the same fit followed by the same sequence
of ``transform`` calls gives the same bits — for any thread count and however
the rows are split into calls (``transform(X)`` equals
``vstack([transform(X[:k]), transform(X[k:])])`` bit for bit). Pickling and
:func:`copy.deepcopy` keep the read position.

To repeat a read, set the position back before transforming
(``p = est.analog_.read_position; A = est.transform(X);
est.analog_.read_position = p; assert (est.transform(X) == A).all()``), or
compute a pinned projection ``est.analog_.matmul(X, seed=..., row_offset=...)``
that does not move the cursor. A digital backend (``backend=None``) is
deterministic: ``transform`` is a pure function of the fitted ``W``.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.stats
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from . import _core
from ._validation import FLOAT_DTYPES, U64_MAX, Interval, Options, check_int, validate_params
from .analog import AnalogMatrix, CrossbarConfig
from .dask import is_dask_collection
from .exceptions import ConfigError, DataError
from .hadamard import sorf_block

__all__ = [
    "ORF_SIGNS",
    "SAMPLERS",
    "FavorPlusFeatures",
    "RandomFourierFeatures",
    "paper_feature_counts",
]

#: How the random projections are drawn: independent Gaussian rows (``"rff"``),
#: orthogonal blocks (``"orf"``; Yu et al., NeurIPS 2016) or structured
#: Hadamard–diagonal products (``"sorf"``; same paper).
SAMPLERS: tuple[str, ...] = ("rff", "orf", "sorf")

#: Sign conventions of the ORF blocks (``orf_signs``): Haar-distributed, or as
#: LAPACK's QR returns them (the paper's code).
ORF_SIGNS: tuple[str, ...] = ("haar", "lapack")

# The feature maps (``kind``) of FavorPlusFeatures and its defaults, shared with
# analogkernels.torch.FavorAttention, whose parameters mean the same.
_FAVOR_KINDS: tuple[str, ...] = ("positive", "trig")
_FAVOR_N_COMPONENTS = 128
_FAVOR_KIND = "positive"
_FAVOR_SAMPLER = "orf"


def paper_feature_counts(d: int, ks: Any = range(1, 6)) -> list[int]:
    """The paper's numbers of random projections ``s = 2**k · d − k``.

    Parameters
    ----------
    d : int
        Input dimension.
    ks : iterable of int
        The exponents ``k = log2(s/d)`` (default 1..5).

    Returns
    -------
    list of int
        One ``s`` per exponent, in the order of ``ks``.

    Raises
    ------
    ConfigError
        If ``d`` is not an integer ≥ 1, ``ks`` is not iterable, or an exponent
        is not an integer ≥ 0 (named ``ks[i]``).
    """
    d = check_int(d, "d", low=1)
    try:
        exps = list(ks)
    except TypeError:
        raise ConfigError(
            f"invalid value for `ks`: must be an iterable of integers, got {ks!r}"
        ) from None
    exps = [check_int(k, f"ks[{i}]", low=0) for i, k in enumerate(exps)]
    return [2**k * d - k for k in exps]


def _half_sq_norms(X: np.ndarray) -> np.ndarray:
    """``‖x‖²/2`` of every row of ``X``, as a column (``n × 1``).

    An overflow gives inf silently: in ``exp(−‖x‖²/2)`` that is 0, the rounded
    exact value.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        return 0.5 * np.einsum("ij,ij->i", X, X)[:, None]


def _normal(rng: np.random.RandomState, shape: tuple[int, ...], truncation: float | None):
    if truncation is None:
        return rng.standard_normal(shape)
    return scipy.stats.truncnorm.rvs(-truncation, truncation, size=shape, random_state=rng)


def _orthogonal_rows(rng, s: int, d: int, truncation: float | None, signs: str) -> np.ndarray:
    blocks = []
    for _ in range(-(-s // d)):
        g = _normal(rng, (d, d), truncation)
        q, r = np.linalg.qr(g)
        if signs == "haar":
            # Sign fix so that Q is Haar-distributed (Mezzadri 2007): LAPACK's
            # Householder QR makes diag(R) < 0 where the pivot is positive, so
            # Q's first column always starts negative.
            q *= np.where(np.diag(r) < 0, -1.0, 1.0)
        blocks.append(q.T)
    w = np.vstack(blocks)[:s]
    return w * np.sqrt(rng.chisquare(d, size=s))[:, None]


def _program_chip(
    weights: np.ndarray, config: CrossbarConfig, seed: int, t_inference: float
) -> AnalogMatrix:
    """A new chip holding ``weights``, drifted to ``t_inference`` seconds after programming.

    The drift uses the programming seed; ``t_inference = 0`` reads right after
    programming (no drift). Shared by the feature maps and the torch layers.
    """
    chip = AnalogMatrix.program(weights, config, seed=seed)
    if t_inference != 0:
        chip.drift_to(float(t_inference))  # with the programming seed
    return chip


#: Parameter constraints shared by every map with a random projection.
_PROJECTION_CONSTRAINTS: dict = {
    "n_components": [Interval(numbers.Integral, 1, None, closed="left")],
    "sampler": [Options(set(SAMPLERS))],
    "truncation": [None, Interval(numbers.Real, 0, None, closed="neither")],
    "orf_signs": [Options(set(ORF_SIGNS))],
    "backend": [None, CrossbarConfig],
    "t_inference": [Interval(numbers.Real, 0, None, closed="left")],
    "backend_seed": [None, Interval(numbers.Integral, 0, U64_MAX, closed="both")],
    "random_state": ["random_state"],
}


class _ProjectionMixin:
    """Drawing ``W`` in ``fit`` and computing ``XWᵀ`` in ``transform``.

    Digitally (SORF through the fused transform) or through a programmed crossbar.
    """

    n_components: int
    sampler: str
    truncation: float | None
    backend: CrossbarConfig | None
    t_inference: float
    backend_seed: int | None
    random_state: Any
    #: The features of rows already validated by :meth:`_transform` (each map's own).
    _map: Callable[[np.ndarray], np.ndarray]

    def _fit_input(self, X: Any) -> np.ndarray:
        """The opening of ``fit``: the parameters checked and ``X`` validated.

        ``fit`` uses only the shape of ``X``: of a dask ``X`` one row is computed, not n.
        A backend that sets its input range from the data (``input_range_quantile``)
        needs all of it: with a dask ``X`` it is refused (resolve the range on an
        in-memory sample first, :meth:`CrossbarConfig.with_input_range_from`).
        """
        validate_params(self)
        if is_dask_collection(X):
            from . import dask as _dask

            if self.backend is not None and self.backend.input_range_quantile is not None:
                raise ConfigError(
                    "backend.input_range_quantile sets the input range from all of X, "
                    "which fit does not compute for a dask X: pass "
                    "backend=backend.with_input_range_from(sample) instead"
                )
            X = _dask.head(X)
        return validate_data(self, X, dtype=FLOAT_DTYPES)

    def _transform(self, X: Any) -> Any:
        """``transform``: :meth:`_map` of ``X`` validated against the fit.

        A dask ``X`` gives the lazy transform (a dask array) instead.
        """
        check_is_fitted(self, "projection_scale_")
        if is_dask_collection(X):
            from . import dask as _dask

            return _dask.transform(self, X)
        return self._map(validate_data(self, X, dtype=FLOAT_DTYPES, reset=False))

    def _fit_projection(self, X: np.ndarray, scale: float) -> None:
        """Draw ``W`` for ``X``'s width; program it when there is a backend.

        ``X`` itself is used only by a backend whose ``input_range_quantile`` sets
        the DAC range from the fitted inputs.
        """
        rng = check_random_state(self.random_state)
        d = X.shape[1]
        s = self.n_components
        self.projection_scale_ = scale
        if self.sampler == "sorf":
            n = 1 << max(0, (d - 1).bit_length())
            blocks = -(-s // n)
            self.sorf_signs_ = rng.choice([-1.0, 1.0], size=(blocks, 3, n))
            self.sorf_dim_ = n
            self.random_weights_ = None
        elif self.sampler == "orf":
            self.random_weights_ = (
                _orthogonal_rows(rng, s, d, self.truncation, self.orf_signs) * scale
            )
        else:
            self.random_weights_ = _normal(rng, (s, d), self.truncation) * scale
        if self.backend is not None:
            seed = self.backend_seed
            if seed is None:
                seed = int(rng.randint(0, 2**31 - 1))
            self.backend_seed_ = int(seed)
            config = self.backend.with_input_range_from(X)
            self.input_range_ = config.input_range
            self.analog_ = _program_chip(
                self.projection_matrix(), config, self.backend_seed_, self.t_inference
            )
        else:
            self.analog_ = None

    def _finite_features(self, out: np.ndarray, X: np.ndarray, why: str) -> np.ndarray:
        """``out``, checked to be finite.

        ``X`` is finite (``validate_data`` refuses NaN and inf); non-finite features
        raise a :class:`DataError` naming the rows and ``why``.
        """
        with np.errstate(over="ignore", invalid="ignore"):
            total = out.sum()  # one pass; a finite sum means finite entries
        if np.isfinite(total):
            return out
        bad = np.flatnonzero(~np.isfinite(out).all(axis=1))
        if bad.size == 0:  # only the sum overflowed
            return out
        i = int(bad[0])
        row = np.asarray(X[i], dtype=np.float64)
        raise DataError(
            f"{type(self).__name__}.transform: the features of {bad.size} row(s) of X are "
            f"not finite in {out.dtype} (first: row {i}, largest |x| = "
            f"{np.abs(row).max():.3g}, ‖x‖ = {np.linalg.norm(row):.3g}): "
            f"{why}. Rescale X (e.g. sklearn.preprocessing.StandardScaler) or pass float64"
        )

    def _analog_tags(self, tags: Any) -> Any:
        # A chip draws fresh noise at every read: transform is not a function of X.
        tags.non_deterministic = self.backend is not None
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    def projection_matrix(self) -> np.ndarray:
        """The ``s × d`` matrix ``W`` (for SORF formed from its blocks)."""
        check_is_fitted(self, "projection_scale_")
        if self.random_weights_ is not None:
            return self.random_weights_
        n, d = self.sorf_dim_, self.n_features_in_
        rows = [sorf_block(np.eye(n), *signs).T for signs in self.sorf_signs_]
        return np.vstack(rows)[: self.n_components, :d] * self.projection_scale_

    def _project(self, X: np.ndarray) -> np.ndarray:
        if self.analog_ is not None:
            # A fresh read: the rows take the next rows of the chip's read stream.
            return self.analog_.matmul(X)
        if self.random_weights_ is not None:
            return X @ self.random_weights_.T.astype(X.dtype, copy=False)
        # Fused: each row padded, transformed block by block in L1 (Rust).
        return _core.sorf_project(X, self.sorf_signs_, self.n_components, self.projection_scale_)


class RandomFourierFeatures(
    ClassNamePrefixFeaturesOutMixin, TransformerMixin, _ProjectionMixin, BaseEstimator
):
    """Random features for the RBF or arc-cosine kernel (RFF, ORF or SORF).

    RBF (``k = exp(-γ‖x−y‖²)``): ``φ(x) = [cos(Wx), sin(Wx)] / sqrt(s)``
    (``2s`` features; a bias would cancel in the cos/sin pair and is omitted).
    Arc-cosine of order n: ``φ(x) = sqrt(2/s) · Θ(Wx) · (Wx)ⁿ`` (``s`` features).

    Parameters
    ----------
    kernel : {"rbf", "arccos"}
    gamma : float, default 1.0
        RBF parameter (the paper uses 0.05).
    order : {0, 1, 2}, default 0
        Arc-cosine order (the paper uses 0).
    n_components : int, default 100
        Number of random projections ``s`` (rows of ``W``, the rows programmed
        on the chip); see :func:`paper_feature_counts`. Not the output width as
        in scikit-learn's :class:`~sklearn.kernel_approximation.RBFSampler`
        (``sqrt(2/D)·cos(Wx + b)``, ``D = n_components`` features from ``D``
        projections): the RBF map here outputs ``[cos(Wx), sin(Wx)]``, i.e.
        ``2 · n_components`` features (the paper's form), and the arc-cosine map
        ``n_components``. For the width of an ``RBFSampler(n_components=D)``
        use ``n_components=D // 2``: half the projections for the same width,
        and for the Gaussian kernel usually a smaller approximation error
        (Sutherland & Schneider, "On the error of random Fourier features", UAI
        2015).
    sampler : {"rff", "orf", "sorf"}, default "rff"
    truncation : float or None, default None
        Truncate the normal draws to ``[-truncation, truncation]`` (the paper: 3).
    orf_signs : {"haar", "lapack"}, default "haar"
        Signs of the orthogonal blocks (ORF only). ``"haar"``: each block's rows
        get the signs of ``diag(R)`` of its QR factorisation, so the block is
        Haar-distributed (F. Mezzadri, "How to generate random matrices from the
        classical compact groups", Notices AMS 54, 592–604 (2007)). ``"lapack"``:
        ``Q`` as LAPACK's Householder QR returns it (``numpy.linalg.qr``,
        ``torch.linalg.qr``), as in the code of Büchel et al. (2024)
        (``hwkeap/utils/misc.py``, ``get_orthogonal_matrix``): the first row of
        every block then has a negative first entry, which biases arc-cosine
        estimates (a plateau of the error over ``s`` where ``d`` is small); RBF
        features are the same either way (a row's sign cancels in the cos/sin pair).
    backend : CrossbarConfig or None, default None
        None computes ``Wx`` digitally; a :class:`~analogkernels.analog.CrossbarConfig`
        programs ``W`` once in ``fit`` and runs every projection on the simulated
        chip, each ``transform`` a fresh read with its own noise (see the module
        documentation: the estimator is then tagged ``non_deterministic``).
    t_inference : float, default 0.0
        Seconds after programming at which the chip is read (analog backend);
        ``fit`` drifts the devices there, with the programming seed.
    backend_seed : int or None, default None
        The chip's seed, ``0 .. 2**64 - 1``: programming noise, drift and the read
        stream of every ``transform`` derive from it (independent streams). None
        draws it from ``random_state`` in ``fit``. What every seed-like name
        means: :ref:`seed-vocabulary`.
    random_state : int, RandomState or None
        Seed of ``W`` (and of ``backend_seed_`` when ``backend_seed`` is None).

    Attributes
    ----------
    random_weights_ : ndarray of shape (s, d) or None
        ``W`` (None for SORF, see :meth:`projection_matrix`).
    sorf_signs_ : ndarray of shape (blocks, 3, n)
        The SORF diagonals ``D1, D2, D3`` (SORF only).
    analog_ : AnalogMatrix or None
        The programmed crossbar (analog backend only). Its ``read_position``
        counts the rows read so far; set it back to repeat reads.
    backend_seed_ : int
        The seed the chip was programmed with (analog backend only).
    input_range_ : float or None
        The chip's fixed input range (analog backend only; None: per-vector
        scaling): the backend's ``input_range``, or the ``input_range_quantile``
        of the absolute inputs ``fit`` saw.
    n_features_in_ : int
    """

    _parameter_constraints: dict = {  # noqa: RUF012
        **_PROJECTION_CONSTRAINTS,
        "kernel": [Options({"rbf", "arccos"})],
        "gamma": [Interval(numbers.Real, 0, None, closed="neither")],
        "order": [Options({"0", "1", "2"}), Interval(numbers.Integral, 0, 2, closed="both")],
    }

    def __init__(
        self,
        *,
        kernel: str = "rbf",
        gamma: float = 1.0,
        order: int = 0,
        n_components: int = 100,
        sampler: str = "rff",
        truncation: float | None = None,
        orf_signs: str = "haar",
        backend: CrossbarConfig | None = None,
        t_inference: float = 0.0,
        backend_seed: int | None = None,
        random_state: Any = None,
    ) -> None:
        self.kernel = kernel
        self.gamma = gamma
        self.order = order
        self.n_components = n_components
        self.sampler = sampler
        self.truncation = truncation
        self.orf_signs = orf_signs
        self.backend = backend
        self.t_inference = t_inference
        self.backend_seed = backend_seed
        self.random_state = random_state

    def fit(self, X: Any, y: Any = None) -> RandomFourierFeatures:
        """Draw ``W`` (and program it on a new chip for an analog backend).

        Only the shape of ``X`` is used, and for a backend with
        ``input_range_quantile`` its values, which set the chip's input range.
        For an analog backend: program it on a new chip and drift it to
        ``t_inference``; the chip's read position starts at 0.
        """
        X = self._fit_input(X)
        scale = np.sqrt(2.0 * self.gamma) if self.kernel == "rbf" else 1.0
        self._fit_projection(X, float(scale))
        return self

    def transform(self, X: Any) -> np.ndarray:
        """Map ``X`` (n × d) to random features (n × 2s for RBF, n × s for arccos).

        Digital backend: deterministic. Analog backend: one fresh read of the chip
        per row (its ``read_position`` advances by n), so two calls on the same
        ``X`` differ by the read noise; see the module documentation for how to
        repeat a read. A :mod:`dask.array` ``X`` gives a lazy dask array
        (:func:`analogkernels.dask.transform`).
        """
        return self._transform(X)

    def _map(self, X: np.ndarray) -> np.ndarray:
        s = self.n_components
        overflow = "the projection W·x overflows"
        if self.kernel == "rbf" and self.analog_ is None:
            # Projection and cos/sin fused chunk by chunk, threaded; U is never
            # materialised (rust/core/src/features.rs, rbf_features_fused).
            if self.random_weights_ is not None:
                w = self.random_weights_.astype(X.dtype, copy=False)
                out = _core.rbf_features_fused(X, s, 1.0 / np.sqrt(s), weights=w)
            else:
                out = _core.rbf_features_fused(
                    X,
                    s,
                    1.0 / np.sqrt(s),
                    signs=self.sorf_signs_,
                    projection_scale=self.projection_scale_,
                )
            return self._finite_features(out, X, overflow)
        u = self._project(X)
        if self.kernel == "rbf":
            # One pass, shared range reduction, threaded (rust/core/src/features.rs).
            out = _core.rbf_features(u, 1.0 / np.sqrt(s))
            return self._finite_features(out, X, overflow)
        order = int(self.order)
        factor = u.dtype.type(np.sqrt(2.0 / s))
        if order == 0:
            out = (u > 0).astype(u.dtype) * factor
            # NaN projections compare False: check them, not the features.
            self._finite_features(u, X, overflow)
            return out
        with np.errstate(over="ignore", invalid="ignore"):
            out = np.where(u > 0, u**order, 0).astype(u.dtype, copy=False) * factor
        self._finite_features(u, X, overflow)
        return self._finite_features(out, X, f"(W·x)^{order} overflows")

    @property
    def _n_features_out(self) -> int:
        return 2 * self.n_components if self.kernel == "rbf" else self.n_components

    def __sklearn_tags__(self):
        """scikit-learn tags: non-deterministic on an analog backend (fresh reads), dtype kept."""
        return self._analog_tags(super().__sklearn_tags__())


class FavorPlusFeatures(
    ClassNamePrefixFeaturesOutMixin, TransformerMixin, _ProjectionMixin, BaseEstimator
):
    """FAVOR+ random features for the softmax kernel ``exp(x·y)`` (Choromanski et al. 2021).

    ``"positive"`` (the choice of Büchel et al. 2024):
    ``φ(x) = exp(−‖x‖²/2) · [exp(Wx), exp(−Wx)] / sqrt(2s)``;
    ``"trig"``: ``φ(x) = exp(‖x‖²/2) · [cos(Wx), sin(Wx)] / sqrt(s)``. Both give
    ``E[φ(x)·φ(y)] = exp(x·y)``; positive features have lower variance where the
    kernel is small. ``W`` has orthogonal blocks by default (``sampler="orf"``);
    the hardware attention run used SORF-type blocks (``sampler="sorf"``).
    Queries and keys are usually pre-scaled by ``d^(-1/4)`` before the map.

    Parameters are those of :class:`RandomFourierFeatures` (``n_components`` is
    the number of projections ``s``; the output has ``2s`` features), plus
    ``kind`` in {"positive", "trig"}. With a ``backend`` every ``transform`` is a
    fresh read of the chip programmed in ``fit`` (non-deterministic, reproducible
    as a sequence; see the module documentation).
    """

    _parameter_constraints: dict = {  # noqa: RUF012
        **_PROJECTION_CONSTRAINTS,
        "kind": [Options(set(_FAVOR_KINDS))],
    }

    def __init__(
        self,
        *,
        n_components: int = _FAVOR_N_COMPONENTS,
        kind: str = _FAVOR_KIND,
        sampler: str = _FAVOR_SAMPLER,
        truncation: float | None = None,
        orf_signs: str = "haar",
        backend: CrossbarConfig | None = None,
        t_inference: float = 0.0,
        backend_seed: int | None = None,
        random_state: Any = None,
    ) -> None:
        self.n_components = n_components
        self.kind = kind
        self.sampler = sampler
        self.truncation = truncation
        self.orf_signs = orf_signs
        self.backend = backend
        self.t_inference = t_inference
        self.backend_seed = backend_seed
        self.random_state = random_state

    def fit(self, X: Any, y: Any = None) -> FavorPlusFeatures:
        """Draw the projection (and program it on a new chip for an analog backend).

        Only the shape of ``X`` is used, and for a backend with
        ``input_range_quantile`` its values, which set the chip's input range.
        For an analog backend: program it on a new chip and drift it to
        ``t_inference``.
        """
        X = self._fit_input(X)
        self._fit_projection(X, 1.0)
        return self

    def transform(self, X: Any) -> np.ndarray:
        """Map ``X`` (n × d) to ``2s`` features.

        Analog backend: one fresh read of the chip per row. A :mod:`dask.array` ``X``
        gives a lazy dask array.
        """
        return self._transform(X)

    def _map(self, X: np.ndarray) -> np.ndarray:
        u = self._finite_features(self._project(X), X, "the projection W·x overflows")
        if self.kind == "positive":
            out = self._positive_features(self._positive_exponents(X, u))
            return self._finite_features(out, X, "exp(±W·x − ‖x‖²/2) overflows")
        s = self.n_components
        out = np.empty((X.shape[0], 2 * s), dtype=u.dtype)
        with np.errstate(over="ignore", invalid="ignore"):
            np.cos(u, out=out[:, :s])
            np.sin(u, out=out[:, s:])
            out *= (np.exp(_half_sq_norms(X)) / np.sqrt(s)).astype(u.dtype)
        why = "exp(‖x‖²/2) overflows (scale queries and keys by d^(-1/4), or use kind='positive')"
        return self._finite_features(out, X, why)

    # The positive map in two steps, so that attention.favor_features can put
    # its stabilising shift between them (the map's one implementation).
    def _positive_exponents(self, X: np.ndarray, u: np.ndarray) -> np.ndarray:
        """``[u − ‖x‖²/2, −u − ‖x‖²/2]`` per row: the positive features' exponents.

        ``u`` holds the projections ``W·x`` of the rows ``x`` of ``X`` (``n × s``);
        the result is ``n × 2s``.
        """
        half_sq = _half_sq_norms(X)
        with np.errstate(over="ignore"):
            return np.concatenate([u - half_sq, -u - half_sq], axis=1)

    def _positive_features(self, exponents: np.ndarray) -> np.ndarray:
        """``exp(exponents) / sqrt(2s)``, computed in place in ``exponents``."""
        with np.errstate(over="ignore"):
            np.exp(exponents, out=exponents)
        # A numpy float64 scalar would promote float32 features to float64 (NEP 50).
        exponents *= exponents.dtype.type(1.0 / np.sqrt(2 * self.n_components))
        return exponents

    @property
    def _n_features_out(self) -> int:
        return 2 * self.n_components

    def __sklearn_tags__(self):
        """scikit-learn tags: non-deterministic on an analog backend (fresh reads), dtype kept."""
        return self._analog_tags(super().__sklearn_tags__())
