r"""Calibration of the simulated chip against measurements of a real chip.

:meth:`CrossbarConfig.hermes() <analogkernels.analog.CrossbarConfig.hermes>` uses
the published device and periphery parameters of the IBM HERMES chip. On the
paper's data (Büchel et al., "Kernel approximation using analogue in-memory
computing", Nat. Mach. Intell. 6, 1605–1615, 2024) that model matches the measured
chip for the RBF kernel, but not for the arc-cosine kernel of order 0, where the
chip's kernel-approximation error stops falling with the number of features. That
is the signature of a *systematic* error: a step feature ``Θ(w·x)`` is invariant to
the scale of a row (so programming noise cannot produce it) and independent
per-read noise at the RBF-compatible level averages out, but a residual offset
``e`` of the ADCs makes ``Θ(w·x + e)`` estimate a different kernel at every ``s``.
``[cos(u), sin(u)]`` features are blind to a common offset (it cancels in
``cos(u − u')``), so the two kernels separate the stages.

:func:`fit` adjusts the free parameters of the systematic stages of
:class:`~analogkernels.analog.CrossbarConfig` (:data:`PARAMETERS`: ADC offset, its
spread, gain spread, output noise, the quantile that sets a fixed input range) so
that the simulated chip's errors match measured ones, by minimising

.. math::

    \chi^2(\theta) = \sum_c \frac{(\bar e_c(\theta) - \bar m_c)^2}
    {s_{m,c}^2 / n_{m,c} + s_{e,c}^2 / n_{e,c}}

over cells ``c`` = (dataset, kernel, sampler, k): ``m`` the measured error (mean,
standard deviation ``s_m`` over ``n_m`` seeds), ``e`` the simulated error under the
same protocol (``n_e`` seeds with fixed seeds, so that χ² is a deterministic
function of θ: common random numbers). The minimiser is Nelder–Mead inside the
box of :data:`PARAMETERS` (each a physically plausible range, stated with its
reason); uncertainties come from the Gauss–Newton covariance ``(JᵀJ)⁻¹`` of the
standardised residuals at the minimum (central differences), scaled by the
reduced χ² when it exceeds 1. One parameter set serves every dataset and kernel
(the chip model); ``per_dataset`` fits named parameters once per dataset instead, a
diagnostic of whether the datasets were measured under different conditions.

The measured *accuracy drops* (chip − floating point accuracy of the kernel ridge
classifier, full training and evaluation sets) enter the same sum as further
terms when given (``accuracy_drops``; the command uses the largest ``k`` of the
file by default): an error floor that leaves the classifier intact and one that
costs accuracy are different chips.

The targets file has the format of the paper's summary that ships with the
project's test data (``paper-hermes-results.json``)::

    {"results": {dataset: {kernel: {sampler: {k: {"hardware_err":
        {"mean": ..., "std": ..., "n": ...}, ...}}}}},
     "dataset_names": {"magic": "magic04"}}

so a user can calibrate against their own chip by writing their measurements in
it. ``analogkernels calibrate --targets FILE`` runs the fit from the command line.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .exceptions import ConfigError, DataError

__all__ = [
    "ACCURACY_DROP",
    "DEFAULT_MAX_EVALUATIONS",
    "DEFAULT_SEEDS",
    "FP_ACC",
    "FP_ERR",
    "HARDWARE_ACC",
    "HARDWARE_ERR",
    "HERMES_MEASURED",
    "METRICS",
    "MIN_SEEDS",
    "PARAMETERS",
    "CalibrationResult",
    "Parameter",
    "Target",
    "accuracy_ks",
    "check_seeds",
    "fit",
    "fitted_keys",
    "load_targets",
    "read_results",
    "simulate_accuracy_drops",
    "simulate_errors",
]

#: The fitted values of :meth:`CrossbarConfig.hermes_measured`
#: (``docs/results/calibration/calibration.json`` holds the fit). Found by
#: ``analogkernels calibrate --targets paper-hermes-results.json --parameters
#: input_range_quantile,adc_offset,out_noise --start
#: input_range_quantile=0.999,adc_offset=0.02,out_noise=0.05 --seeds 2 --max-evaluations 25``
#: (χ² 2221 over 141 degrees of freedom, the accuracy drops included; ``hermes()``:
#: 5077; the earlier per-vector preset, offset 0.0696, gain spread 0.0771, output
#: noise 0.1138: 2816). A fixed DAC range per dataset at the 99.93 % quantile of its
#: training inputs, a small common ADC offset and output noise at aihwkit's level.
#: The gain spread stays 0: a four-parameter fit that freed it from 0.02 found no
#: χ² below 2579 in 40 evaluations. The offset spread stays 0: freeing it (to 0.32)
#: makes the arc-cosine chip *more* accurate than FP by 2–2.5 points on skin and
#: magic04 (a random offset per feature is a random bias), which the measured chip is
#: not — see the calibration page of the user guide.
HERMES_MEASURED: dict[str, float] = {
    "input_range_quantile": 0.9993,
    "adc_offset": 0.0207,
    "adc_offset_std": 0.0,
    "adc_gain_std": 0.0,
    "out_noise": 0.0455,
}


@dataclass(frozen=True)
class Parameter:
    """A free parameter of the fit.

    A :class:`CrossbarConfig` field and its allowed range.

    Attributes
    ----------
    name : str
        The config field.
    low, high : float
        The range the fit may use.
    unit : str
        Unit of the value.
    why : str
        Why this range is physically plausible.
    """

    name: str
    low: float
    high: float
    unit: str
    why: str


#: The systematic stages and their plausible ranges. Normalised output units:
#: the current of one cell at ``g_max`` under a full-scale input; the HERMES ADC
#: range is 24 of them (``out_bound``), one 12-bit ADC step 0.0117.
PARAMETERS: tuple[Parameter, ...] = (
    Parameter(
        "adc_offset",
        -0.5,
        0.5,
        "normalised output units",
        "±2 % of the ADC range (±43 steps of the 12-bit ADC): a calibrated ADC "
        "should leave a few steps; the bound only excludes a broken calibration",
    ),
    Parameter(
        "adc_offset_std",
        0.0,
        0.5,
        "normalised output units",
        "the same bound for the spread of the residual offset between ADCs",
    ),
    Parameter(
        "adc_gain_std",
        0.0,
        0.1,
        "relative",
        "HERMES matches ADC gains by trim registers (Le Gallo et al., Nat. "
        "Electron. 2023); 10 % is far beyond a trimmed current mirror",
    ),
    Parameter(
        "out_noise",
        0.0,
        0.5,
        "normalised output units",
        "aihwkit's presets use 0.04–0.1 and HERMES-Core reports an 8-bit MVM "
        "error of σ ≈ 1.94 % of full scale (Khaddam-Aljameh et al., IEEE JSSC "
        "2022), i.e. ≈ 0.47 units of a 24-unit range",
    ),
    Parameter(
        "input_range_quantile",
        0.99,
        1.0,
        "quantile of the absolute training inputs",
        "a fixed DAC range per layer set from data, as chips map their inputs; "
        "from clipping the largest 1 % of the inputs to clipping none (a range "
        "that clips more costs accuracy the measured chip does not lose). Not "
        "in hermes(), which scales every input vector by its own maximum: a "
        "free quantile starts at 1",
    ),
)

_BY_NAME = {p.name: p for p in PARAMETERS}

#: A cell of the protocol: (dataset, kernel, sampler, k = log2(s/d)).
Cell = tuple[str, str, str, int]

#: The metrics of a targets file: accuracy of the classifier and kernel
#: approximation error, in floating point and on the chip.
FP_ACC = "fp_acc"
HARDWARE_ACC = "hardware_acc"
FP_ERR = "fp_err"
HARDWARE_ERR = "hardware_err"
METRICS = (FP_ACC, HARDWARE_ACC, FP_ERR, HARDWARE_ERR)
#: The derived metric ``hardware_acc − fp_acc`` (:func:`load_targets`).
ACCURACY_DROP = "accuracy_drop"


def _needs(metric: str) -> tuple[str, ...]:
    """The metrics of the file that a cell needs for ``metric``."""
    return (HARDWARE_ACC, FP_ACC) if metric == ACCURACY_DROP else (metric,)


#: Fewest simulation seeds of a fit: the simulated spread enters χ².
MIN_SEEDS = 2
#: Simulation seeds of :func:`fit` unless told otherwise.
DEFAULT_SEEDS: tuple[int, ...] = tuple(range(MIN_SEEDS))
#: Budget of χ² evaluations of :func:`fit` unless told otherwise.
DEFAULT_MAX_EVALUATIONS = 150


def check_seeds(seeds: Sequence[int]) -> Sequence[int]:
    """Check that a fit has at least :data:`MIN_SEEDS` simulation seeds.

    Parameters
    ----------
    seeds : sequence of int
        The seeds.

    Returns
    -------
    sequence of int
        ``seeds``.

    Raises
    ------
    ConfigError
        Fewer than :data:`MIN_SEEDS` seeds.
    """
    if len(seeds) < MIN_SEEDS:
        raise ConfigError(
            f"fit needs at least {MIN_SEEDS} seeds (the simulated spread enters χ²), "
            f"got {len(seeds)}"
        )
    return seeds


@dataclass(frozen=True)
class Target:
    """A measured quantity: mean, standard deviation and count over seeds."""

    mean: float
    std: float
    n: int


def read_results(path: str | Path) -> dict[Cell, dict[str, Target]]:
    """Every metric of every cell of a targets file.

    Parameters
    ----------
    path : str or Path
        JSON file in the format described in the module documentation.

    Returns
    -------
    dict
        ``(dataset, kernel, sampler, k) → {metric: Target}``, dataset names the
        project's (``magic04``), after the file's ``dataset_names`` mapping.

    Raises
    ------
    DataError
        If the file is not valid JSON of that format or a value is not a finite
        mean and standard deviation with a positive count (the message names it).
    """
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
        results = doc["results"]
        names = doc.get("dataset_names", {})
        if not isinstance(results, dict) or not isinstance(names, dict):
            raise TypeError("results and dataset_names must be objects")
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise DataError(f"{path}: not a targets file ({err})") from None
    out: dict[Cell, dict[str, Target]] = {}
    try:
        for file_name, by_kernel in results.items():
            dataset = names.get(file_name, file_name)
            for kernel, by_sampler in by_kernel.items():
                for sampler, by_k in by_sampler.items():
                    for k_text, metrics in by_k.items():
                        cell = (dataset, kernel, sampler, int(k_text))
                        for metric, m in metrics.items():
                            t = Target(float(m["mean"]), float(m["std"]), int(m["n"]))
                            if not (math.isfinite(t.mean) and math.isfinite(t.std) and t.n > 0):
                                raise DataError(
                                    f"{path}: {'/'.join(map(str, cell[:3]))}/k={cell[3]}: "
                                    f"invalid {metric} {m!r}"
                                )
                            out.setdefault(cell, {})[metric] = t
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise DataError(f"{path}: malformed targets file ({err!r})") from None
    return out


def load_targets(
    path: str | Path,
    *,
    metric: str = HARDWARE_ERR,
    datasets: Iterable[str] | None = None,
    kernels: Iterable[str] | None = None,
    samplers: Iterable[str] | None = None,
    ks: Iterable[int] | None = None,
) -> dict[Cell, Target]:
    """Read the measured values of one metric from a targets file.

    Parameters
    ----------
    path : str or Path
        JSON file in the format described in the module documentation.
    metric : str, default "hardware_err"
        Which metric to read (``hardware_err``, ``fp_err``, ``hardware_acc``,
        ``fp_acc``), or ``accuracy_drop``: ``hardware_acc − fp_acc``, with the
        standard deviation ``hypot(std_hw, std_fp)`` (the file does not give
        the seed-paired spread of the drop, so its weight is conservative).
    datasets, kernels, samplers, ks : iterables or None
        Keep only these cells (None: all in the file). Dataset names are the
        project's (``magic04``), after the file's ``dataset_names`` mapping.

    Returns
    -------
    dict
        ``(dataset, kernel, sampler, k) → Target``.

    Raises
    ------
    DataError
        If the file is not valid JSON of that format, or a requested cell or
        the metric is missing (the message names it).
    """
    wanted = (
        None if values is None else set(values)
        for values in (datasets, kernels, samplers, None if ks is None else map(int, ks))
    )
    want = dict(zip(("datasets", "kernels", "samplers", "ks"), wanted, strict=True))
    out: dict[Cell, Target] = {}
    for cell, metrics in read_results(path).items():
        if any(w is not None and c not in w for c, w in zip(cell, want.values(), strict=True)):
            continue
        absent = [m for m in _needs(metric) if m not in metrics]
        if absent:
            dataset, kernel, sampler, k = cell
            raise DataError(
                f"{path}: {dataset}/{kernel}/{sampler}/k={k} has no metric {absent[0]!r}"
            )
        if metric == ACCURACY_DROP:
            hw, fp = metrics[HARDWARE_ACC], metrics[FP_ACC]
            out[cell] = Target(hw.mean - fp.mean, math.hypot(hw.std, fp.std), min(hw.n, fp.n))
        else:
            out[cell] = metrics[metric]
    for index, (field, values) in enumerate(want.items()):
        if values is None:
            continue
        missing = sorted(values - {c[index] for c in out}, key=str)
        if missing:
            raise DataError(f"{path}: no {metric} targets for {field} {missing}")
    if not out:
        raise DataError(f"{path}: no {metric} targets")
    return out


def accuracy_ks(path: str | Path, *, datasets: Iterable[str] | None = None) -> list[int]:
    """The k of a targets file's cells that have both accuracies.

    Those whose accuracy drop can be fitted (``load_targets(path,
    metric="accuracy_drop", ks=...)``).

    Parameters
    ----------
    path : str or Path
        JSON file in the format described in the module documentation.
    datasets : iterable of str or None
        Only the cells of these datasets (None: all).

    Returns
    -------
    list of int
        Sorted, each once; empty when no cell has both.

    Raises
    ------
    DataError
        If the file is not a targets file.
    """
    wanted = None if datasets is None else set(datasets)
    return sorted(
        {
            cell[3]
            for cell, metrics in read_results(path).items()
            if (wanted is None or cell[0] in wanted)
            and all(m in metrics for m in _needs(ACCURACY_DROP))
        }
    )


def _paper_dataset(dataset: str, data_dir: str | None) -> Any:
    """``dataset`` as the paper's protocol loads it (its default encoding and rows)."""
    from .datasets import DEFAULT_IJCNN1_ENCODING, DEFAULT_SKIN_ROWS
    from .paper.protocol import _dataset

    return _dataset(dataset, DEFAULT_IJCNN1_ENCODING, data_dir, DEFAULT_SKIN_ROWS)


@functools.lru_cache(maxsize=16)
def _kernel_points(dataset: str, kernel: str, data_dir: str | None, points: int | None):
    from .paper.protocol import APPROX_POINTS, check_kernel, exact_kernel

    check_kernel(kernel)  # before loading any data
    data = _paper_dataset(dataset, data_dir)
    X = data.X_eval[: APPROX_POINTS if points is None else min(points, APPROX_POINTS)]
    return X, exact_kernel(kernel, X)


def _input_range_from_training(config: Any, dataset: str, data_dir: str | None) -> Any:
    """``config`` with an ``input_range_quantile`` resolved on ``dataset``'s training rows."""
    if config is None or config.input_range_quantile is None:
        return config
    return config.with_input_range_from(_paper_dataset(dataset, data_dir).X_train)


def simulate_errors(
    config: Any,
    cells: Iterable[Cell],
    seeds: Sequence[int],
    *,
    data_dir: str | None = None,
    points: int | None = None,
) -> dict[Cell, np.ndarray]:
    """Kernel-approximation errors of the simulated chip under the paper's protocol.

    For each cell and seed: ``s = 2**k · d − k`` projections drawn with the seed
    (truncated normal at ±3; RBF γ = 0.05 or arc-cosine of order 0, as
    :mod:`analogkernels.paper.protocol`), programmed on a chip with that seed, one
    read of the first ``points`` evaluation points; the error is
    ``‖K − ΦΦᵀ‖_F / ‖K‖_F``.

    Parameters
    ----------
    config : CrossbarConfig or None
        The chip (None: floating-point projection).
    cells : iterable of (dataset, kernel, sampler, k)
        The protocol cells.
    seeds : sequence of int
        One run per seed.
    data_dir : str or None
        Where the datasets are (see :func:`analogkernels.datasets.load`).
    points : int, optional
        Evaluation points of the error, at most (and by default)
        :data:`analogkernels.paper.protocol.APPROX_POINTS`, the paper's 1000.

    Returns
    -------
    dict
        ``cell → array of one error per seed``.
    """
    from .kernels import approximation_error
    from .paper.protocol import paper_feature_map

    out: dict[Cell, np.ndarray] = {}
    # As in the protocol, where the map is fitted on the training rows: a range
    # set from data comes from them, not from the error's points (once per dataset).
    chips: dict[str, Any] = {}
    for cell in cells:
        dataset, kernel, sampler, k = cell
        X, K = _kernel_points(dataset, kernel, data_dir, points)
        if dataset not in chips:
            chips[dataset] = _input_range_from_training(config, dataset, data_dir)
        chip = chips[dataset]
        errors = []
        for seed in seeds:
            fm = paper_feature_map(kernel, sampler, k, X.shape[1], seed, chip).fit(X)
            phi = fm.transform(X)
            errors.append(approximation_error(K, phi @ phi.T))
        out[cell] = np.asarray(errors)
    return out


def _accuracy(config: Any, cell: Cell, seed: int, data_dir: str | None) -> float:
    from .paper.protocol import paper_feature_map, ridge_accuracy

    dataset, kernel, sampler, k = cell
    data = _paper_dataset(dataset, data_dir)
    fm = paper_feature_map(kernel, sampler, k, data.X_train.shape[1], seed, config)
    return ridge_accuracy(data.X_train, data.y_train, data.X_eval, data.y_eval, fm)[1]


#: Floating-point accuracies do not depend on the chip: computed once per process.
@functools.lru_cache(maxsize=4096)
def _fp_accuracy(cell: Cell, seed: int, data_dir: str | None) -> float:
    return _accuracy(None, cell, seed, data_dir)


def simulate_accuracy_drops(
    config: Any,
    cells: Iterable[Cell],
    seeds: Sequence[int],
    *,
    data_dir: str | None = None,
) -> dict[Cell, np.ndarray]:
    """Accuracy drops (chip − floating point) of the paper's kernel ridge classifier.

    For each cell and seed, the full protocol of :func:`analogkernels.paper.protocol.run_one`
    (all training and evaluation rows) once on the chip and once in floating point,
    with the same seed: the same projections and the same rows, so the difference
    isolates what the chip changes (floating-point accuracies are computed once and
    cached, since they do not depend on ``config``).

    Parameters
    ----------
    config : CrossbarConfig
        The chip.
    cells : iterable of (dataset, kernel, sampler, k)
        The protocol cells.
    seeds : sequence of int
        One run per seed.
    data_dir : str or None
        Where the datasets are (see :func:`analogkernels.datasets.load`).

    Returns
    -------
    dict
        ``cell → array of one drop per seed`` (fractions, e.g. −0.004 for 0.4 points).
    """
    out: dict[Cell, np.ndarray] = {}
    for cell in cells:
        out[cell] = np.array(
            [
                _accuracy(config, cell, seed, data_dir) - _fp_accuracy(cell, seed, data_dir)
                for seed in seeds
            ]
        )
    return out


def _standard_errors(jac: np.ndarray, chi2: float, dof: int) -> np.ndarray:
    """Gauss–Newton standard errors from the Jacobian of the standardised residuals.

    The covariance is ``(JᵀJ)⁻¹`` scaled by the reduced χ² when it exceeds 1. A
    value the residuals do not depend on (a zero column) has no determined error
    and leaves the others theirs; if the other columns are still degenerate, no
    error is determined.

    Parameters
    ----------
    jac : ndarray of shape (terms, values)
        Derivatives of the residuals by the fitted values.
    chi2 : float
        χ² at the minimum.
    dof : int
        Degrees of freedom.

    Returns
    -------
    ndarray of shape (values,)
        The standard errors, in the units of ``jac``'s columns; nan where not
        determined.
    """
    out = np.full(jac.shape[1], math.nan)
    active = np.flatnonzero(np.any(jac != 0.0, axis=0))
    jtj = jac[:, active].T @ jac[:, active]
    if active.size and np.linalg.matrix_rank(jtj) == active.size:
        cov = np.linalg.inv(jtj) * max(chi2 / max(dof, 1), 1.0)
        out[active] = np.sqrt(np.maximum(np.diag(cov), 0.0))
    return out


def _parameter_name(key: str) -> str:
    """The parameter of a fitted value's key (``"out_noise[skin]"`` → ``"out_noise"``)."""
    return key.split("[", 1)[0]


def fitted_keys(
    parameters: Sequence[str], per_dataset: Sequence[str], datasets: Sequence[str]
) -> list[str]:
    """The keys of the values :func:`fit` fits, in its order.

    Parameters
    ----------
    parameters : sequence of str
        The free parameters.
    per_dataset : sequence of str
        Those fitted with one value per dataset.
    datasets : sequence of str
        The datasets of the targets, sorted.

    Returns
    -------
    list of str
        ``name`` for a shared parameter, ``"name[dataset]"`` for each dataset of a
        per-dataset one (the names ``start`` and the result's ``values`` use).
    """
    return [
        name if name not in per_dataset else f"{name}[{dataset}]"
        for name in parameters
        for dataset in (datasets if name in per_dataset else [None])
    ]


@dataclass
class CalibrationResult:
    """The outcome of :func:`fit`.

    Attributes
    ----------
    values : dict
        Fitted value of each free parameter (of a per-dataset parameter, one
        per dataset, keyed ``"name[dataset]"``).
    stderr : dict
        Its standard error (Gauss–Newton; ``nan`` where the data do not
        determine it: the residuals do not depend on it, or the values they
        depend on are degenerate).
    chi2 : float
        χ² at the minimum.
    dof : int
        Degrees of freedom: terms of χ² minus fitted values (one per dataset for a
        per-dataset parameter).
    start_chi2 : float
        χ² at the start values (before the fit).
    cells : list of dict
        Per term of χ² (``metric`` ``"hardware_err"`` or ``"accuracy_drop"``, and
        the cell): target mean and standard error, simulated mean and standard
        error, standardised residual, relative difference — before and after.
    base : dict
        The config the free parameters were added to (its fields).
    seeds : list of int
        Simulation seeds.
    evaluations : int
        Evaluations of χ².
    wall_time_s : float
        Duration of the fit.
    per_dataset : list of str
        The parameters fitted with one value per dataset (empty: the chip-wide fit).
    """

    values: dict[str, float]
    stderr: dict[str, float]
    chi2: float
    dof: int
    start_chi2: float
    cells: list[dict[str, Any]]
    base: dict[str, Any]
    seeds: list[int]
    evaluations: int
    wall_time_s: float
    per_dataset: list[str] = dataclasses.field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (with the parameters' ranges and reasons)."""
        d = dataclasses.asdict(self)
        names = dict.fromkeys(_parameter_name(key) for key in self.values)
        d["parameters"] = [dataclasses.asdict(_BY_NAME[n]) for n in names]
        d["reduced_chi2"] = self.chi2 / max(self.dof, 1)
        return d

    def summary(self) -> str:
        """Fitted values with uncertainties, χ², the worst cells and χ² by row, as text."""
        lines = [
            f"χ² {self.start_chi2:.1f} (start) → {self.chi2:.1f} over {self.dof} degrees "
            f"of freedom (reduced {self.chi2 / max(self.dof, 1):.2f}); "
            f"{self.evaluations} evaluations, {self.wall_time_s:.0f} s",
        ]
        for name, value in self.values.items():
            p = _BY_NAME[_parameter_name(name)]
            err = self.stderr[name]
            err_text = "not determined" if not math.isfinite(err) else f"± {err:.3g}"
            lines.append(f"  {name} = {value:.4g} {err_text} ({p.unit}; allowed {p.low}..{p.high})")
        worst = sorted(self.cells, key=lambda c: -abs(c["residual"]))[:8]
        lines.append("largest residuals (metric dataset kernel sampler k: target / simulated):")
        for c in worst:
            lines.append(
                f"  {c['metric']} {c['dataset']} {c['kernel']} {c['sampler']} k={c['k']}: "
                f"{c['target']:.4f} / {c['simulated']:.4f} ({c['residual']:+.1f} σ)"
            )
        drops = [c for c in self.cells if c["metric"] == ACCURACY_DROP]
        if drops:
            chi2_drops = sum(c["residual"] ** 2 for c in drops)
            lines.append(
                f"accuracy drops: {len(drops)} of the {len(self.cells)} terms, χ² {chi2_drops:.1f}"
            )
        lines.append("χ² by dataset and kernel (error curves + accuracy drops), largest first:")
        rows = self.chi2_by_row()
        for (dataset, kernel), parts in sorted(rows.items(), key=lambda kv: -sum(kv[1].values())):
            lines.append(
                f"  {dataset} {kernel}: {sum(parts.values()):.1f} "
                f"({parts[HARDWARE_ERR]:.1f} + {parts[ACCURACY_DROP]:.1f})"
            )
        return "\n".join(lines)

    def chi2_by_row(self) -> dict[tuple[str, str], dict[str, float]]:
        """χ² at the minimum split by dataset × kernel and by metric.

        Where the misfit lives: one dataset's curve that no parameter set
        follows shows as one large row, a compromise between datasets as
        several.

        Returns
        -------
        dict
            ``(dataset, kernel) → {metric: χ²}`` for the metrics
            ``"hardware_err"`` and ``"accuracy_drop"`` (0 where a row has no
            such term); the values add up to :attr:`chi2`.
        """
        rows: dict[tuple[str, str], dict[str, float]] = {}
        for c in self.cells:
            row = rows.setdefault(
                (c["dataset"], c["kernel"]), dict.fromkeys((HARDWARE_ERR, ACCURACY_DROP), 0.0)
            )
            row[c["metric"]] += c["residual"] ** 2
        return rows


def _standardised(
    sim: dict[Cell, np.ndarray], targets: dict[Cell, Target], cells: list[Cell]
) -> np.ndarray:
    r = np.empty(len(cells))
    for i, c in enumerate(cells):
        t, e = targets[c], sim[c]
        var = t.std**2 / t.n + (e.var(ddof=1) / e.size if e.size > 1 else 0.0)
        # A floor of 1e-6² keeps a zero-spread cell from dominating.
        r[i] = (e.mean() - t.mean) / math.sqrt(max(var, 1e-12))
    return r


def _cell_rows(
    sim: dict[Cell, np.ndarray],
    targets: dict[Cell, Target],
    cells: list[Cell],
    r: np.ndarray,
    metric: str,
) -> list[dict[str, Any]]:
    rows = []
    for c, ri in zip(cells, r, strict=True):
        t, e = targets[c], sim[c]
        rows.append(
            {
                "metric": metric,
                "dataset": c[0],
                "kernel": c[1],
                "sampler": c[2],
                "k": c[3],
                "target": t.mean,
                "target_sem": t.std / math.sqrt(t.n),
                "simulated": float(e.mean()),
                "simulated_sem": float(e.std(ddof=1) / math.sqrt(e.size)) if e.size > 1 else 0.0,
                "residual": float(ri),
                "relative_difference": float((e.mean() - t.mean) / t.mean) if t.mean else math.nan,
            }
        )
    return rows


def fit(
    targets: dict[Cell, Target],
    *,
    accuracy_drops: dict[Cell, Target] | None = None,
    parameters: Sequence[str] = tuple(p.name for p in PARAMETERS),
    base: Any = None,
    start: dict[str, float] | None = None,
    seeds: Sequence[int] = DEFAULT_SEEDS,
    data_dir: str | None = None,
    max_evaluations: int = DEFAULT_MAX_EVALUATIONS,
    progress: Callable[[int, float], None] | None = None,
    per_dataset: Sequence[str] = (),
) -> CalibrationResult:
    """Fit the free parameters of the chip model to measured kernel errors and accuracies.

    One value of each free parameter for every dataset, kernel, sampler and k —
    the chip-wide model. ``per_dataset`` names parameters that get one value per
    dataset instead: a diagnostic of run conditions (a test whether the
    measurements of different datasets were made under different conditions, by
    the χ² it gains over the chip-wide fit), not a chip model.

    Parameters
    ----------
    targets : dict
        Measured errors per cell (:func:`load_targets`).
    accuracy_drops : dict or None
        Measured accuracy drops (chip − floating point) per cell
        (``load_targets(path, metric="accuracy_drop")``), compared with
        :func:`simulate_accuracy_drops` in the same χ² (None: errors only). The
        drop, not the chip accuracy, is fitted: the chip's parameters decide the
        drop, while a difference in the floating-point accuracy (data, solver)
        is none of theirs.
    parameters : sequence of str
        Free parameters, names from :data:`PARAMETERS`.
    base : CrossbarConfig or None
        The config the parameters are set on (None: ``CrossbarConfig.hermes()``).
    start : dict or None
        Starting values (None: the base config's values). A value for a
        per-dataset parameter ``name`` starts it on every dataset; one for
        ``"name[dataset]"`` on that dataset only.
    seeds : sequence of int, default :data:`DEFAULT_SEEDS`
        Simulation seeds (fixed during the fit), at least :data:`MIN_SEEDS`.
    data_dir : str or None
        Dataset folder.
    max_evaluations : int, default :data:`DEFAULT_MAX_EVALUATIONS`
        Budget of χ² evaluations of the minimiser.
    progress : callable or None
        Called as ``progress(evaluation, chi2)`` after each evaluation.
    per_dataset : sequence of str, default ()
        Free parameters fitted with one value per dataset of the targets
        (reported as ``"name[dataset]"``); the others are shared.

    Returns
    -------
    CalibrationResult

    Raises
    ------
    ConfigError
        For an unknown parameter, a per-dataset parameter that is not free, a
        start outside its range, too few seeds, or no targets.
    """
    from scipy.optimize import minimize

    from .analog import CrossbarConfig

    t_start = time.perf_counter()
    base = CrossbarConfig.hermes() if base is None else base
    names = list(parameters)
    unknown = [n for n in names if n not in _BY_NAME]
    if unknown or not names or len(set(names)) != len(names):
        raise ConfigError(f"parameters must be distinct names from {sorted(_BY_NAME)}, got {names}")
    check_seeds(seeds)
    per_dataset = list(per_dataset)
    if not set(per_dataset) <= set(names) or len(set(per_dataset)) != len(per_dataset):
        raise ConfigError(
            f"per-dataset parameters must be distinct free parameters {names}, got {per_dataset}"
        )
    cells = sorted(targets)
    acc_cells = sorted(accuracy_drops or {})
    acc_targets = dict(accuracy_drops or {})
    if not cells and not acc_cells:
        raise ConfigError("no targets to fit: the targets and accuracy drops are empty")
    datasets = sorted({c[0] for c in (*cells, *acc_cells)})
    # The fitted values: one per shared parameter, one per dataset of a
    # per-dataset parameter ("name[dataset]"), in this order.
    slots = [(_BY_NAME[n], ds) for n in names for ds in (datasets if n in per_dataset else [None])]
    keys = fitted_keys(names, per_dataset, datasets)
    stray = sorted(set(start or {}) - set(names) - set(keys))
    if stray:
        raise ConfigError(f"start values for {stray}, which are not free parameters {keys}")
    # A field that is off (None) starts at its upper bound (for the quantile:
    # the largest input sets the range, nothing is clipped).
    start = dict(start or {})
    for key, value in start.items():
        p = _BY_NAME[_parameter_name(key)]
        if not p.low <= value <= p.high:
            raise ConfigError(f"start value of {key} {value} outside {p.low}..{p.high}")
    first = {}
    for (p, _), key in zip(slots, keys, strict=True):
        value = getattr(base, p.name)
        value = p.high if value is None else float(value)
        first[key] = start.get(key, start.get(p.name, value))
        if not p.low <= first[key] <= p.high:
            raise ConfigError(f"start value of {key} {first[key]} outside {p.low}..{p.high}")
    low = np.array([p.low for p, _ in slots])
    span = np.array([p.high - p.low for p, _ in slots])
    evaluations = 0

    def fields_at(z: np.ndarray) -> dict[str, tuple[tuple[str, float], ...]]:
        """Per dataset, the fitted fields and their values at ``z``."""
        values = low + np.clip(z, 0.0, 1.0) * span
        return {
            dataset: tuple(
                (p.name, float(v))
                for (p, ds), v in zip(slots, values, strict=True)
                if ds in (None, dataset)
            )
            for dataset in datasets
        }

    # The simulation of one dataset depends only on its own values: a step that
    # moves another dataset's value (a Jacobian column of a per-dataset
    # parameter, most simplex steps in a per-dataset fit) reuses it.
    simulated: dict[tuple[str, tuple[tuple[str, float], ...]], tuple[dict, dict]] = {}

    def simulate(z: np.ndarray) -> tuple[dict[Cell, np.ndarray], dict[Cell, np.ndarray]]:
        # Dataset by dataset: the cells are independent, so with shared values
        # only this is the same simulation as one call over all cells.
        errors: dict[Cell, np.ndarray] = {}
        drops: dict[Cell, np.ndarray] = {}
        for dataset, fields in fields_at(z).items():
            if (dataset, fields) not in simulated:
                config = dataclasses.replace(base, **dict(fields))
                mine = [c for c in cells if c[0] == dataset]
                mine_acc = [c for c in acc_cells if c[0] == dataset]
                simulated[dataset, fields] = (
                    simulate_errors(config, mine, seeds, data_dir=data_dir),
                    simulate_accuracy_drops(config, mine_acc, seeds, data_dir=data_dir),
                )
            errors |= simulated[dataset, fields][0]
            drops |= simulated[dataset, fields][1]
        return errors, drops

    def standardised(sim: tuple[dict[Cell, np.ndarray], dict[Cell, np.ndarray]]) -> np.ndarray:
        return np.concatenate(
            [_standardised(sim[0], targets, cells), _standardised(sim[1], acc_targets, acc_cells)]
        )

    def residuals(z: np.ndarray) -> np.ndarray:
        return standardised(simulate(z))

    def chi2(z: np.ndarray) -> float:
        nonlocal evaluations
        value = float(np.sum(residuals(z) ** 2))
        evaluations += 1
        if progress is not None:
            progress(evaluations, value)
        return value

    z0 = (np.array([first[key] for key in keys]) - low) / span
    sim0 = simulate(z0)
    r0 = standardised(sim0)
    # The first simplex steps each parameter by half its starting value, at most
    # 10 % of its range (scipy's default would step 0.00025 from a parameter that
    # starts at 0; 10 % of a wide range, e.g. ±0.1 for an offset started at 0.02,
    # spends the budget far outside the basin); a parameter starting at 0 steps 10 %.
    simplex = [z0]
    for j, key in enumerate(keys):
        size = abs(first[key]) / 2 / span[j] if first[key] != 0 else 0.1
        step = min(0.1, size)
        v = z0.copy()
        v[j] = v[j] + step if v[j] + step <= 1.0 else v[j] - step
        simplex.append(v)
    res = minimize(
        chi2,
        z0,
        method="Nelder-Mead",
        bounds=[(0.0, 1.0)] * len(keys),
        options={
            "maxfev": max_evaluations,
            "xatol": 2e-3,
            "fatol": 0.5,
            "initial_simplex": np.array(simplex),
        },
    )
    z = np.clip(res.x, 0.0, 1.0)
    sim = simulate(z)
    r = standardised(sim)
    chi2_min = float(np.sum(r**2))
    dof = max(r.size - len(keys), 1)
    # Gauss–Newton covariance from central differences in the unit box (a step
    # of 2 % of each range: wide enough to average over the discreteness of
    # sign flips, small against the ranges).
    h = 0.02
    jac = np.empty((r.size, len(keys)))
    for j in range(len(keys)):
        up, down = z.copy(), z.copy()
        up[j], down[j] = min(z[j] + h, 1.0), max(z[j] - h, 0.0)
        jac[:, j] = (residuals(up) - residuals(down)) / (up[j] - down[j])
    unit_errors = _standard_errors(jac, chi2_min, dof)
    stderr = {key: float(unit_errors[j] * span[j]) for j, key in enumerate(keys)}
    values = {key: float(low[j] + z[j] * span[j]) for j, key in enumerate(keys)}

    def rows(sim: tuple[dict[Cell, np.ndarray], dict[Cell, np.ndarray]], r: np.ndarray):
        return _cell_rows(sim[0], targets, cells, r[: len(cells)], HARDWARE_ERR) + _cell_rows(
            sim[1], acc_targets, acc_cells, r[len(cells) :], ACCURACY_DROP
        )

    before = rows(sim0, r0)
    after = rows(sim, r)
    for row, row0 in zip(after, before, strict=True):
        row["simulated_base"] = row0["simulated"]
        row["residual_base"] = row0["residual"]
    return CalibrationResult(
        values=values,
        stderr=stderr,
        chi2=chi2_min,
        dof=dof,
        start_chi2=float(np.sum(r0**2)),
        cells=after,
        base=base.get_params(),
        seeds=[int(s) for s in seeds],
        evaluations=evaluations,
        wall_time_s=time.perf_counter() - t_start,
        per_dataset=per_dataset,
    )
