"""The paper's ridge-classification protocol, one run at a time, plus its summary.

One run, as in the code of Büchel et al., Nat. Mach. Intell. 6, 1605–1615 (2024)
(GitHub IBM/kernel-approximation-using-analog-in-memory-computing,
``imka-ridge-regression/experiments/hardware``):
random features with ``s = 2**k · d − k`` projections (``W`` drawn from the
truncated normal at ±3, seed = the run's seed; ORF blocks with the signs
LAPACK's QR gives them, as the paper's code does), RBF with γ = 0.05 or arc-cosine
of order 0; closed-form ridge with α = 0.5, a regularised intercept column, 0/1
targets and threshold 0.5; accuracy on validation ∪ test; approximation error
``‖K − ΦΦᵀ‖_F / ‖K‖_F`` on the first 1000 evaluation points. With
``backend="analog"`` the projection of every sample runs on the simulated
HERMES chip (programmed once per run, read at ``t_inference``), the rest is
digital.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import inspect
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__, _core, kernel_approximation
from ..analog import CrossbarConfig
from ..calibration import FP_ACC, FP_ERR, HARDWARE_ACC, HARDWARE_ERR, METRICS
from ..datasets import (
    DEFAULT_IJCNN1_ENCODING,
    DEFAULT_SKIN_ROWS,
    Dataset,
    data_folder,
    load,
    load_embedded,
)
from ..exceptions import ConfigError
from ..kernel_approximation import RandomFourierFeatures, paper_feature_counts
from ..kernels import approximation_error, arccos_kernel, rbf_kernel
from ..linear_model import RidgeClassifier

__all__ = ["RunConfig", "run_one", "software_versions", "summarize"]

GAMMA = 0.05
ALPHA = 0.5
TRUNCATION = 3.0
#: ORF block signs of the paper's code (``get_orthogonal_matrix`` takes ``Q`` from
#: ``torch.linalg.qr`` as is): not Haar-distributed, which shows as the plateau of
#: its arc-cosine ORF errors on skin (see ``RandomFourierFeatures(orf_signs=...)``).
ORF_SIGNS = "lapack"
APPROX_POINTS = 1000
#: The paper's kernels: RBF, and the arc-cosine kernel of order 0.
KERNELS = ("rbf", "arccos0")
#: How the projections are drawn (:data:`analogkernels.kernel_approximation.SAMPLERS`).
SAMPLERS = kernel_approximation.SAMPLERS
#: Where the projection runs: in floating point, or on the simulated chip.
BACKENDS = ("fp", "analog")
#: The paper's exponents ``k = log2(s/d)``: the default of
#: :func:`~analogkernels.kernel_approximation.paper_feature_counts` (1..5).
PAPER_KS = inspect.signature(paper_feature_counts).parameters["ks"].default
#: Seeds per setting in the paper's experiments (ridge sweeps, ListOps chip
#: evaluations, attention error).
PAPER_SEEDS = 10


def _json_digest(fields: dict[str, Any]) -> str:
    """The first 20 hex digits of the SHA-256 of ``fields`` as sorted JSON."""
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:20]


@dataclass(frozen=True)
class RunConfig:
    """Everything that determines one run (with its chip's values: its cache key)."""

    dataset: str
    kernel: str
    sampler: str
    k: int
    seed: int
    backend: str
    preset: str = "hermes"
    programming: str = CrossbarConfig.programming
    t_inference: float = 0.0
    ijcnn1_encoding: str = DEFAULT_IJCNN1_ENCODING
    skin_rows: str = DEFAULT_SKIN_ROWS
    max_train: int | None = None
    max_eval: int | None = None
    data_dir: str | None = None

    def __post_init__(self) -> None:
        """Store a path-like ``data_dir`` as its string (the key and the records are JSON)."""
        if self.data_dir is not None:
            object.__setattr__(self, "data_dir", os.fspath(self.data_dir))

    def key(self) -> str:
        """The run's cache key.

        Returns
        -------
        str
            The first 20 hex digits of the SHA-256 of the fields as sorted JSON,
            with the :meth:`chip_digest` of a chip run among them: equal
            configurations on equal chips, and only those, share a key (a
            floating-point run has no chip, and its key is that of its fields).
        """
        fields = dataclasses.asdict(self)
        digest = self.chip_digest()
        if digest:
            fields["chip_digest"] = digest
        return _json_digest(fields)

    def chip(self) -> CrossbarConfig | None:
        """The run's chip.

        Returns
        -------
        CrossbarConfig or None
            The config of :attr:`preset` with :attr:`programming`
            (:func:`crossbar_config`); None for a floating-point run.
        """
        return crossbar_config(self.preset, self.programming) if self.backend == "analog" else None

    def chip_digest(self) -> str:
        """A fingerprint of the chip's parameter values.

        The preset's *name* does not pin its values: a preset refitted within
        one package version (``hermes_measured()`` after a new calibration)
        gives other results under the same name, so a run's key and record
        carry the digest of the values, and a record computed with other values
        is not reused.

        Returns
        -------
        str
            The first 20 hex digits of the SHA-256 of the chip's resolved fields
            (:meth:`CrossbarConfig.resolved`: normalised types, model defaults
            filled in, so that equal configs share a digest) as sorted JSON;
            ``""`` for a floating-point run.
        """
        chip = self.chip()
        return "" if chip is None else _json_digest(chip.resolved())


#: How a chip's devices are programmed (the core's names, ``CrossbarConfig.programming``).
PROGRAMMING = tuple(_core._choices()["programming"])

#: The chip presets of a run: published device parameters, those plus the
#: systematic stages fitted to the measured chip, or an ideal crossbar.
PRESETS = ("hermes", "hermes-measured", "ideal")


def crossbar_config(preset: str, programming: str = CrossbarConfig.programming) -> CrossbarConfig:
    """The hardware preset of a run (one of :data:`PRESETS`)."""
    if preset == "hermes":
        return CrossbarConfig.hermes(programming=programming)
    if preset == "hermes-measured":
        return CrossbarConfig.hermes_measured(programming=programming)
    if preset == "ideal":
        return CrossbarConfig.ideal()
    raise ValueError(f"unknown preset {preset!r}; expected one of {', '.join(PRESETS)}")


@functools.lru_cache(maxsize=4)
def _dataset(name: str, encoding: str, data_dir: str | None, skin_rows: str) -> Dataset:
    if name.startswith("sklearn:"):
        return load_embedded(name.split(":", 1)[1])
    return load(name, data_dir=data_dir, ijcnn1_encoding=encoding, skin_rows=skin_rows)


def _subsample(X: np.ndarray, y: np.ndarray, limit: int | None) -> tuple[np.ndarray, np.ndarray]:
    """At most ``limit`` rows, drawn at random with a fixed seed.

    The files are often sorted by label or time, so the first rows would not
    represent them.
    """
    if limit is None or X.shape[0] <= limit:
        return X, y
    rows = np.sort(np.random.default_rng(12345).choice(X.shape[0], size=limit, replace=False))
    return X[rows], y[rows]


def check_kernel(kernel: str) -> str:
    """Check that ``kernel`` is one of the paper's :data:`KERNELS`.

    Parameters
    ----------
    kernel : str
        The name.

    Returns
    -------
    str
        ``kernel``.

    Raises
    ------
    ConfigError
        For any other name.
    """
    if kernel not in KERNELS:
        raise ConfigError(f"unknown kernel {kernel!r}; expected one of {KERNELS}")
    return kernel


def exact_kernel(kernel: str, X: np.ndarray) -> np.ndarray:
    """The exact kernel matrix the paper's features approximate.

    Parameters
    ----------
    kernel : {"rbf", "arccos0"}
        RBF with γ = :data:`GAMMA`, or arc-cosine of order 0.
    X : ndarray of shape (n, d)
        The points.

    Returns
    -------
    ndarray of shape (n, n)
        ``K[i, j] = k(x_i, x_j)``.
    """
    if check_kernel(kernel) == "rbf":
        return rbf_kernel(X, gamma=GAMMA)
    return arccos_kernel(X, order=0)


def paper_feature_map(
    kernel: str,
    sampler: str,
    k: int,
    d: int,
    seed: int,
    backend: CrossbarConfig | None = None,
    t_inference: float = 0.0,
) -> RandomFourierFeatures:
    """The random-feature map of the paper's protocol (unfitted).

    ``s = 2**k · d − k`` projections (so that ``log2(s/d) ≈ k``) drawn from a normal
    truncated at ±:data:`TRUNCATION` (ORF blocks signed as :data:`ORF_SIGNS`), RBF
    with γ = :data:`GAMMA` or arc-cosine of order 0; on the chip ``backend``
    programmed with ``seed``, drawn with ``seed``.

    Parameters
    ----------
    kernel : {"rbf", "arccos0"}
        The kernel.
    sampler : {"rff", "orf", "sorf"}
        How the projections are drawn.
    k : int
        ``log2(s/d)``, rounded.
    d : int
        Number of input features.
    seed : int
        ``random_state`` and ``backend_seed``.
    backend : CrossbarConfig or None
        The chip (None: floating point).
    t_inference : float, default 0
        Seconds after programming at which the chip is read.

    Returns
    -------
    RandomFourierFeatures
    """
    return RandomFourierFeatures(
        kernel="rbf" if check_kernel(kernel) == "rbf" else "arccos",
        gamma=GAMMA,
        order=0,
        n_components=paper_feature_counts(d, [k])[0],
        sampler=sampler,
        truncation=TRUNCATION,
        orf_signs=ORF_SIGNS,
        backend=backend,
        t_inference=t_inference,
        backend_seed=seed,
        random_state=seed,
    )


def feature_map(cfg: RunConfig, d: int) -> RandomFourierFeatures:
    """The random-feature map of a run."""
    return paper_feature_map(
        cfg.kernel, cfg.sampler, cfg.k, d, cfg.seed, cfg.chip(), cfg.t_inference
    )


def ridge_accuracy(
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_eval: np.ndarray,
    y_eval: np.ndarray,
    feature_map: RandomFourierFeatures,
) -> tuple[RidgeClassifier, float]:
    """Fit the paper's kernel ridge classifier on ``feature_map`` and score it.

    Ridge with α = :data:`ALPHA` (intercept regularised), 0/1 targets for two
    classes and ±1 one-vs-rest otherwise. On the chip, every feature is a fresh
    read of one programmed chip: the training rows, then the evaluation rows.

    Returns
    -------
    classifier : RidgeClassifier
        The fitted classifier (its ``feature_map_`` is the fitted map).
    accuracy : float
        Fraction of evaluation rows classified correctly.
    """
    binary = len(np.unique(y_train)) <= 2
    clf = RidgeClassifier(
        alpha=ALPHA,
        regularize_intercept=True,
        targets="01" if binary else "pm1",
        feature_map=feature_map,
    ).fit(X_train, y_train)
    return clf, float(np.mean(clf.predict(X_eval) == y_eval))


def run_one(cfg: RunConfig) -> dict[str, Any]:
    """Run one configuration; returns a flat record (see ``runs.csv``)."""
    if cfg.programming not in PROGRAMMING:
        raise ValueError(f"unknown programming {cfg.programming!r}; expected one of {PROGRAMMING}")
    t0 = time.perf_counter()
    data = _dataset(cfg.dataset, cfg.ijcnn1_encoding, cfg.data_dir, cfg.skin_rows)
    X_tr, y_tr = _subsample(data.X_train, data.y_train, cfg.max_train)
    X_ev, y_ev = _subsample(data.X_eval, data.y_eval, cfg.max_eval)
    d = X_tr.shape[1]
    # One map per run, fitted once (W from the run's seed; on the chip: programmed
    # once with backend_seed = the run's seed). All features are then reads of
    # that one chip, in order and each with fresh noise: the training rows (fit),
    # the evaluation rows (predict), the kernel-error points — independent reads,
    # reproducible from the seed.
    clf, accuracy = ridge_accuracy(X_tr, y_tr, X_ev, y_ev, feature_map(cfg, d))
    fm = clf.feature_map_
    Xa = X_ev[:APPROX_POINTS]
    K = exact_kernel(cfg.kernel, Xa)
    phi = fm.transform(Xa)
    error = approximation_error(K, phi @ phi.T)
    return {
        **dataclasses.asdict(cfg),
        "chip_digest": cfg.chip_digest(),
        "n_features_in": d,
        "n_projections": int(fm.n_components),
        "n_features": int(phi.shape[1]),
        "log2_s_over_d": math.log2(fm.n_components / d),
        "accuracy": accuracy,
        "approximation_error": float(error),
        "n_train": int(X_tr.shape[0]),
        "n_eval": int(X_ev.shape[0]),
        "wall_time_s": time.perf_counter() - t0,
        "version": __version__,
    }


# ---------------------------------------------------------------------------
# software versions


#: Record fields that hold the versions of the software a run was computed with
#: (``version`` is the package's own, written by :func:`run_one`).
VERSION_FIELDS: tuple[tuple[str, str], ...] = (
    ("python_version", "Python"),
    ("numpy_version", "numpy"),
    ("scipy_version", "scipy"),
    ("sklearn_version", "scikit-learn"),
)


def software_versions(*, torch: bool = False) -> dict[str, str]:
    """The versions of the software that determines the results.

    Parameters
    ----------
    torch : bool, default False
        Also record PyTorch's version (``"torch_version"``; ``"not installed"``
        when it cannot be imported).

    Returns
    -------
    dict of str to str
        ``{"analogkernels_version", "python_version", "numpy_version",
        "scipy_version", "sklearn_version"}`` (and ``"torch_version"``), flat so
        that they fit a row of ``runs.csv``.
    """
    import platform

    import scipy
    import sklearn

    out = {
        "analogkernels_version": __version__,
        "python_version": platform.python_version(),
        "numpy_version": np.__version__,
        "scipy_version": scipy.__version__,
        "sklearn_version": sklearn.__version__,
    }
    if torch:
        try:
            import torch as _torch

            out["torch_version"] = str(_torch.__version__)
        except ImportError:
            out["torch_version"] = "not installed"
    return out


def versions_line(records: list[dict]) -> str:
    """One line naming the software versions found in ``records``.

    Parameters
    ----------
    records : list of dict
        Run records (each may carry the fields of :data:`VERSION_FIELDS`).

    Returns
    -------
    str
        For example ``"analogkernels 0.1.0, Python 3.11.7, numpy 2.1.0, ..."``;
        a field with several values lists them all, one missing from every
        record says ``not recorded`` (records written before versions were
        recorded).
    """
    parts = []
    for field, name in (("version", "analogkernels"), *VERSION_FIELDS):
        values = sorted({str(r[field]) for r in records if field in r})
        parts.append(f"{name} {' / '.join(values) if values else 'not recorded'}")
    return ", ".join(parts)


# ---------------------------------------------------------------------------
# summary in the paper's form

#: How the backends are named in text written for people (the CLI value and
#: the ``backend`` field of a record stay ``fp`` and ``analog``).
BACKEND_LABELS = dict(zip(BACKENDS, ("FP", "chip"), strict=True))
#: How the backends are drawn in the figures: FP solid, chip dashed.
BACKEND_STYLES = dict(zip(BACKENDS, ("-", "--"), strict=True))
#: The paper's measured accuracy and kernel error of each backend (metrics of
#: the targets file, :mod:`analogkernels.calibration`).
PAPER_ACCURACY = dict(zip(BACKENDS, (FP_ACC, HARDWARE_ACC), strict=True))
PAPER_ERROR = dict(zip(BACKENDS, (FP_ERR, HARDWARE_ERR), strict=True))


def _group_mean(records: list[dict], keys: tuple[str, ...], value: str) -> dict:
    acc: dict[tuple, list[float]] = {}
    for r in records:
        acc.setdefault(tuple(r[k] for k in keys), []).append(r[value])
    return {k: (float(np.mean(v)), float(np.std(v)), len(v)) for k, v in acc.items()}


#: The paper's measured metrics (see :func:`load_paper_results`): those of
#: :data:`analogkernels.calibration.METRICS`.
PAPER_METRICS = METRICS


def load_paper_results(path: str | Path) -> dict[tuple[str, str, str, int], dict[str, Any]]:
    """The paper's measured results, per (dataset, kernel, sampler, k).

    Parameters
    ----------
    path : str or Path
        A targets file (``paper-hermes-results.json``: the FP and chip accuracies
        and kernel errors of Büchel et al., Nat. Mach. Intell. 2024, mean, std and
        n over its 10 seeds; format in :mod:`analogkernels.calibration`).

    Returns
    -------
    dict
        ``(dataset, kernel, sampler, k) → {metric: Target}`` for the metrics of
        :data:`PAPER_METRICS` present in the file.
    """
    from ..calibration import read_results

    return {
        cell: {m: t for m, t in metrics.items() if m in PAPER_METRICS}
        for cell, metrics in read_results(path).items()
    }


#: The file name of the paper's measured results in a data folder.
PAPER_RESULTS_FILE = "paper-hermes-results.json"


def find_paper_results(data_dir: str | os.PathLike[str] | None = None) -> Path | None:
    """Where the paper's measured results are, if they are in the data folder.

    Parameters
    ----------
    data_dir : str or path-like, optional
        The data folder (default: ``$ANALOGKERNELS_DATA``).

    Returns
    -------
    Path or None
        ``data_dir / PAPER_RESULTS_FILE`` (:data:`PAPER_RESULTS_FILE`) if that
        file exists, else None (also when no data folder is set).
    """
    folder = data_folder(data_dir or None)
    if folder is None or not (folder / PAPER_RESULTS_FILE).is_file():
        return None
    return folder / PAPER_RESULTS_FILE


def _best_k_mean(values: dict, ds: str, kern: str, samplers: list[str]) -> float:
    """Per sampler the best k of ``values[(ds, kern, sampler, k)]``, then the mean."""
    best = []
    for smp in samplers:
        vals = [v for key, v in values.items() if key[:3] == (ds, kern, smp)]
        if vals:
            best.append(max(vals))
    return float(np.mean(best)) if best else float("nan")


def summarize(records: list[dict], paper: dict | None = None) -> str:
    """``summary.md`` of a sweep, in the paper's form.

    Parameters
    ----------
    records : list of dict
        Run records as returned by :func:`run_one`.
    paper : dict or None
        The paper's measured results (:func:`load_paper_results`): adds its FP and
        chip accuracies and errors beside ours, with the differences, the table of
        agreement with the paper's chip per dataset and kernel, and the run-to-run
        spread of the accuracy beside the paper's.

    Returns
    -------
    str
        Markdown: per dataset and kernel, the best-k seed-mean accuracy averaged
        over the samplers, FP against the simulated chip (``backend="analog"``)
        and their difference in points; the kernel approximation error per k;
        with ``paper``, the agreement and spread tables; the seeds, preset, read
        time and software versions.
    """
    lines = ["# Kernel ridge classification: FP vs simulated HERMES chip", ""]
    if not records:
        return "\n".join([*lines, "(no runs)", ""])
    means = _group_mean(records, ("dataset", "kernel", "backend", "sampler", "k"), "accuracy")
    datasets = sorted({r["dataset"] for r in records})
    kernels = [k for k in KERNELS if any(r["kernel"] == k for r in records)]
    samplers = [s for s in SAMPLERS if any(r["sampler"] == s for r in records)]
    backends = [b for b in BACKENDS if any(r["backend"] == b for r in records)]
    both = len(backends) == 2
    lines += [
        "Accuracy (%) on validation ∪ test: for each sampler the best k of the seed-mean "
        "accuracy, then the mean over samplers. FP: projection in floating point; chip: "
        "projection on the simulated HERMES chip (`--backend analog`).",
        "",
        "| dataset | kernel | "
        + " | ".join(f"{BACKEND_LABELS[b]} acc. (%)" for b in backends)
        + (" | chip − FP (pp) |" if both else " |")
        + (
            " paper FP (%) | paper chip (%) | paper chip − FP (pp) | FP − paper FP (pp) "
            "| chip − paper chip (pp) |"
            if paper
            else ""
        ),
        "|---|---|"
        + "---|" * len(backends)
        + ("---|" if both else "")
        + ("---|" * 5 if paper else ""),
    ]
    diffs = []
    for ds in datasets:
        for kern in kernels:
            row = []
            for b in backends:
                best = []
                for smp in samplers:
                    vals = [v[0] for key, v in means.items() if key[:4] == (ds, kern, b, smp)]
                    if vals:
                        best.append(max(vals))
                row.append(100 * float(np.mean(best)) if best else float("nan"))
            cells = " | ".join(f"{v:.2f}" for v in row)
            if both:
                diffs.append(row[1] - row[0])
                cells += f" | {row[1] - row[0]:+.2f}"
            if paper:
                fp, chip = (
                    100
                    * _best_k_mean(
                        {c: m[metric].mean for c, m in paper.items() if metric in m},
                        ds,
                        kern,
                        samplers,
                    )
                    for metric in (PAPER_ACCURACY[b] for b in BACKENDS)
                )
                ours = dict(zip(backends, row, strict=True))
                cells += (
                    f" | {fp:.2f} | {chip:.2f} | {chip - fp:+.2f}"
                    f" | {ours.get('fp', math.nan) - fp:+.2f}"
                    f" | {ours.get('analog', math.nan) - chip:+.2f}"
                )
            lines.append(f"| {ds} | {kern} | {cells} |")
    if diffs:
        lines += ["", f"Mean difference chip − FP: {np.nanmean(diffs):+.2f} points.", ""]
    errs = _group_mean(records, ("dataset", "kernel", "backend", "k"), "approximation_error")
    ks = sorted({r["k"] for r in records})
    lines += [
        "Kernel approximation error ‖K − ΦΦᵀ‖_F/‖K‖_F (mean over samplers and seeds, first "
        "1000 evaluation points), by k = log2(s/d) (s = 2^k·d − k projections):",
        "",
        "| dataset | kernel | backend | " + " | ".join(f"k={k}" for k in ks) + " |",
        "|---|---|---|" + "---|" * len(ks),
    ]
    for ds in datasets:
        for kern in kernels:
            for b in backends:
                cells = " | ".join(
                    f"{errs[(ds, kern, b, k)][0]:.4f}" if (ds, kern, b, k) in errs else "-"
                    for k in ks
                )
                lines.append(f"| {ds} | {kern} | {BACKEND_LABELS[b]} | {cells} |")
            for backend in BACKENDS if paper else ():
                cells = " | ".join(
                    _paper_error_cell(paper, ds, kern, k, PAPER_ERROR[backend], errs, backend)
                    for k in ks
                )
                lines.append(f"| {ds} | {kern} | paper {BACKEND_LABELS[backend]} | {cells} |")
    if paper:
        lines += [
            "",
            "Paper rows: Büchel et al., Nat. Mach. Intell. 6, 1605–1615 (2024), measured on the "
            "IBM HERMES chip (mean over its 10 seeds and the samplers); in brackets our value "
            "relative to the paper's, (ours − paper)/paper.",
            "",
            *_paper_agreement(records, paper, samplers),
            *_run_spread(records, paper, samplers),
        ]
    seeds = sorted({r["seed"] for r in records})
    lines += [
        "",
        f"{len(records)} runs; seeds {seeds[0]}–{seeds[-1]}; preset {records[0]['preset']}, "
        f"t_inference {records[0]['t_inference']} s.",
        "",
        f"Software: {versions_line(records)}.",
        "",
    ]
    return "\n".join(lines)


#: Relative tolerance of a chip error curve against the paper's (sampler mean, each k).
ERROR_TOLERANCE = 0.15
#: Smallest accuracy tolerance (points); otherwise two standard errors of the
#: evaluation-set accuracy.
ACCURACY_TOLERANCE_PP = 0.3


def _paper_agreement(records: list[dict], paper: dict, samplers: list[str]) -> list[str]:
    """Markdown rows saying whether the simulated chip reproduces the paper's chip.

    Per dataset and kernel: the largest relative difference of the chip error curve
    (sampler mean) over k against ``ERROR_TOLERANCE``; the best-k accuracy
    differences (FP, chip, and the drop chip − FP) against ``max(0.3 pp, 2 standard
    errors)`` of an accuracy on the evaluation set (``sqrt(p(1 − p)/n_eval)``).
    """
    analog = [r for r in records if r["backend"] == "analog"]
    if not analog:
        return []
    errs = _group_mean(records, ("dataset", "kernel", "backend", "k"), "approximation_error")
    acc = _group_mean(records, ("dataset", "kernel", "backend", "sampler", "k"), "accuracy")
    lines = [
        f"Agreement with the paper's chip: error curve within {ERROR_TOLERANCE:.0%} at every k; "
        f"best-k accuracies (FP, chip) and the drop chip − FP within max("
        f"{ACCURACY_TOLERANCE_PP} pp, 2 standard errors of the evaluation-set accuracy).",
        "",
        "| dataset | kernel | worst k: chip error vs paper | accuracy tolerance (pp) "
        "| FP − paper | chip − paper | drop − paper's drop | all within |",
        "|---|---|---|---|---|---|---|---|",
    ]
    passed = total = 0
    for ds in sorted({r["dataset"] for r in analog}):
        for kern in [k for k in KERNELS if any(r["kernel"] == k for r in analog)]:
            worst, worst_k = 0.0, None
            for k in sorted({r["k"] for r in analog}):
                ref = _paper_mean(paper, ds, kern, k, HARDWARE_ERR)
                ours = errs.get((ds, kern, "analog", k))
                if ref is None or ours is None:
                    continue
                rel = (ours[0] - ref) / ref
                if worst_k is None or abs(rel) > abs(worst):
                    worst, worst_k = rel, k
            if worst_k is None:
                continue
            n_eval = next(r["n_eval"] for r in analog if (r["dataset"], r["kernel"]) == (ds, kern))
            ours_acc = {
                b: _best_k_mean(
                    {
                        (ds, kern, key[3], key[4]): v[0]
                        for key, v in acc.items()
                        if key[:3] == (ds, kern, b)
                    },
                    ds,
                    kern,
                    samplers,
                )
                for b in BACKENDS
            }
            ref_acc = {
                b: _best_k_mean(
                    {c: m[metric].mean for c, m in paper.items() if metric in m}, ds, kern, samplers
                )
                for b, metric in PAPER_ACCURACY.items()
            }
            p = ref_acc["analog"]
            tol = max(ACCURACY_TOLERANCE_PP, 200 * math.sqrt(p * (1 - p) / n_eval))
            d_fp = 100 * (ours_acc["fp"] - ref_acc["fp"])
            d_chip = 100 * (ours_acc["analog"] - ref_acc["analog"])
            d_drop = d_chip - d_fp
            ok = abs(worst) <= ERROR_TOLERANCE and max(abs(d_fp), abs(d_chip), abs(d_drop)) <= tol
            passed += ok
            total += 1
            lines.append(
                f"| {ds} | {kern} | k={worst_k}: {worst:+.0%} | {tol:.2f} | {d_fp:+.2f} "
                f"| {d_chip:+.2f} | {d_drop:+.2f} | {'yes' if ok else 'no'} |"
            )
    lines += ["", f"{passed} of {total} dataset × kernel rows within every tolerance."]
    return lines


def _run_spread(records: list[dict], paper: dict, samplers: list[str]) -> list[str]:
    """Markdown rows comparing the run-to-run spread of the accuracy with the paper's.

    At the largest k of the records, per dataset and kernel: the standard deviation
    over seeds of the evaluation-set accuracy (ours: sample standard deviation;
    the paper's: as its results file gives it), root mean square over the
    samplers, for the floating-point and the chip projection, and the ratio chip /
    FP. Each seed draws its own ``W`` (and, on the chip, its own programming), so
    the FP spread is that of the random features; a chip ratio well above ours
    says that the measured chip varies from run to run in a way the simulated one
    does not.
    """
    analog = [r for r in records if r["backend"] == "analog"]
    if not analog:
        return []
    k = max(r["k"] for r in analog)
    groups: dict[tuple[str, str, str, str], list[float]] = {}
    for r in records:
        if r["k"] == k:
            groups.setdefault((r["dataset"], r["kernel"], r["backend"], r["sampler"]), []).append(
                r["accuracy"]
            )
    lines = [
        "",
        f"Run-to-run spread at k = {k}: standard deviation over seeds of the accuracy "
        "(points; root mean square over the samplers), ours and the paper's, and the "
        "ratio chip / FP. Every seed draws its own W and programs its own chip.",
        "",
        "| dataset | kernel | FP sd | chip sd | chip / FP | paper FP sd | paper chip sd "
        "| paper chip / FP |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for ds in sorted({r["dataset"] for r in analog}):
        for kern in [kk for kk in KERNELS if any(r["kernel"] == kk for r in analog)]:
            ours, theirs = {}, {}
            for b, metric in PAPER_ACCURACY.items():
                var = [
                    np.var(groups[(ds, kern, b, smp)], ddof=1)
                    for smp in samplers
                    if len(groups.get((ds, kern, b, smp), ())) > 1
                ]
                ours[b] = 100 * math.sqrt(np.mean(var)) if var else math.nan
                ref = [
                    paper[(ds, kern, smp, k)][metric].std ** 2
                    for smp in samplers
                    if metric in paper.get((ds, kern, smp, k), {})
                ]
                theirs[b] = 100 * math.sqrt(np.mean(ref)) if ref else math.nan
            cells = [ours["fp"], ours["analog"], _ratio(ours), theirs["fp"], theirs["analog"]]
            cells.append(_ratio(theirs))
            lines.append(f"| {ds} | {kern} | " + " | ".join(f"{v:.2f}" for v in cells) + " |")
    return lines


def _ratio(sd: dict[str, float]) -> float:
    """``sd["analog"] / sd["fp"]`` (nan where the FP spread is 0 or missing)."""
    return sd["analog"] / sd["fp"] if sd["fp"] > 0 else math.nan


def _paper_mean(paper: dict, ds: str, kern: str, k: int, metric: str) -> float | None:
    """The paper's ``metric`` at k, mean over the samplers (None if it has none)."""
    vals = [
        m[metric].mean
        for c, m in paper.items()
        if c[:2] == (ds, kern) and c[3] == k and metric in m
    ]
    return float(np.mean(vals)) if vals else None


def _paper_error_cell(
    paper: dict, ds: str, kern: str, k: int, metric: str, errs: dict, backend: str
) -> str:
    """The paper's sampler-mean error at k, with our relative difference."""
    value = _paper_mean(paper, ds, kern, k, metric)
    if value is None:
        return "-"
    ours = errs.get((ds, kern, backend, k))
    if ours is None or value == 0:
        return f"{value:.4f}"
    return f"{value:.4f} ({(ours[0] - value) / value:+.0%})"
