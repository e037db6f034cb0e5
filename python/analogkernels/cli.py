"""``analogkernels`` command line: the paper's experiments as one command.

- ``analogkernels demo``: under a minute on scikit-learn's bundled breast-cancer
  data (no download): RFF/ORF/SORF, FP vs simulated HERMES chip, accuracy and
  approximation error; prints a table and writes the results and a PNG into
  ``--out`` (default ``./analogkernels-demo``).
- ``analogkernels ridge ...``: the paper's ridge-classification sweep
  (``analogkernels.paper``), with progress, parallel jobs (local
  processes, or tasks on a Dask cluster with ``--scheduler``), resumable cache,
  ``runs.csv``/``runs.json``, ``summary.md`` and one figure per dataset.
- ``analogkernels attention listops|error``: the attention study (needs ``[torch]``).
- ``analogkernels energy``: the energy/latency estimate against a GPU.

Conventions shared by every subcommand: results go to stdout and into files;
log messages (package logger ``analogkernels``, INFO by default, ``-v`` for
DEBUG, ``-q`` for warnings only) and progress bars go to stderr. A mistake on
the command line (a bad value, an unknown name, a missing folder or file) is
one line on stderr and exit code 2; a run that cannot proceed although the
command line is right (a data file that cannot be downloaded, a missing
optional dependency) is one line and exit code 1; an interruption exits 130.
The backend is called ``fp`` and ``analog`` on the command line and in the
records, "FP" and "chip" (the simulated HERMES chip) in text for people.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as _dt
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import __version__
from .exceptions import AnalogKernelsError, ConfigError

logger = logging.getLogger("analogkernels")


class UsageError(Exception):
    """A mistake on the command line found after parsing (exit code 2)."""


class OutputError(UsageError):
    """The output folder cannot be created or written (exit code 2)."""


def prepare_out(out: Path) -> Path:
    """Create ``out`` if needed and check that files can be written in it.

    So that a bad ``--out`` fails before any work, with one line that names it.

    Parameters
    ----------
    out : Path
        The output folder.

    Returns
    -------
    Path
        ``out``.

    Raises
    ------
    OutputError
        ``out`` is a file, or cannot be created or written.
    """
    try:
        if out.exists() and not out.is_dir():
            raise OutputError(f"--out {out} is a file, not a folder")
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test.{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise OutputError(f"cannot write to the output folder {out}: {reason}") from exc
    return out


#: When the chip is read, in seconds after programming, unless ``--t-inference``
#: says otherwise: right after programming, as in the paper's hardware
#: experiments and the committed sweep (``docs/results``). The same for every
#: subcommand; ``--t-inference 3600`` reads one hour later (conductance drift).
DEFAULT_T_INFERENCE = 0.0

DEFAULT_DATASETS = "ijcnn1,cod-rna,skin,magic04"


def _csv_list(choices: tuple[str, ...] | None = None):
    def parse(text: str) -> list[str]:
        # In order, each once (a repeated name would run and count twice).
        items = list(dict.fromkeys(t.strip() for t in text.split(",") if t.strip()))
        if not items:
            raise argparse.ArgumentTypeError("expected a comma-separated list")
        if choices is not None:
            bad = [t for t in items if t not in choices]
            if bad:
                raise argparse.ArgumentTypeError(
                    f"invalid choice(s) {', '.join(bad)}; choose from {', '.join(choices)}"
                )
        return items

    return parse


K_MAX = 8


def _k_range(text: str) -> list[int]:
    try:
        if ".." in text:
            lo, hi = (int(v) for v in text.split("..", 1))
            bounds = [lo, hi]
        else:
            bounds = [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a range like 1..5 or a list like 1,3,5, got {text!r}"
        ) from None
    if ".." in text and bounds[0] > bounds[1]:
        raise argparse.ArgumentTypeError(
            f"{text!r} is an empty range (its low end {bounds[0]} is above its high end "
            f"{bounds[1]}): write low..high, e.g. {bounds[1]}..{bounds[0]}"
        )
    # Check the bounds before building a range (1..100000000 is 3.7 GB as a list).
    bad = [b for b in bounds if not 1 <= b <= K_MAX]
    if bad:
        raise argparse.ArgumentTypeError(
            f"k must lie in 1..{K_MAX}, got {bad[0]} in {text!r} (k = log2(s/d))"
        )
    if ".." in text:
        return list(range(bounds[0], bounds[1] + 1))
    return list(dict.fromkeys(bounds))


def _scheduler_address(text: str) -> str:
    """``local``, ``local:N`` or a scheduler address (``tcp://host:port``, ``host:port``)."""
    if text == "local" or text.startswith("local:"):
        n = text.partition(":")[2]
        if text != "local" and not (n.isdigit() and int(n) >= 1):
            raise argparse.ArgumentTypeError(
                f"local:N needs a positive number of workers N, got {text!r}"
            )
        return text
    host, _, port = text.rpartition(":")
    if "://" not in text and not (host and port.isdigit()):
        raise argparse.ArgumentTypeError(
            f"expected a scheduler address like tcp://host:8786 or host:8786, or local:N, "
            f"got {text!r}"
        )
    return text


def _k_range_or_none(text: str) -> list[int]:
    """``_k_range``, or no k at all for ``none``."""
    return [] if text == "none" else _k_range(text)


def _existing(kind: str) -> Callable[[str], Path]:
    """An argparse ``type=`` that accepts a path to an existing ``kind`` ("file" or "folder")."""
    is_kind = Path.is_file if kind == "file" else Path.is_dir

    def convert(text: str) -> Path:
        path = Path(text)
        if not path.exists():
            raise argparse.ArgumentTypeError(f"the {kind} {text} does not exist")
        if not is_kind(path):
            raise argparse.ArgumentTypeError(f"{text} is not a {kind}")
        return path

    convert.__name__ = f"existing {kind}"  # argparse names the type in its messages
    return convert


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {v}")
    return v


def _torch_device(text: str) -> str:
    """``cpu``, ``cuda`` or ``cuda:N``, by :func:`analogkernels.paper.lra.parse_device`.

    Whether CUDA is there is checked when the command runs. Without torch the
    name passes, and the command says that it needs PyTorch.
    """
    try:
        from .paper.lra import parse_device
    except ImportError:
        return text
    try:
        parse_device(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _tree_counts(text: str) -> tuple[int, int, int]:
    parts = text.split(",")
    try:
        counts = tuple(int(p) for p in parts)
    except ValueError:
        counts = ()
    if len(counts) != 3 or counts[0] < 1 or counts[1] < 0 or counts[2] < 1:
        raise argparse.ArgumentTypeError(
            f"expected TRAIN,VAL,TEST tree counts (TRAIN, TEST >= 1, VAL >= 0), got {text!r}"
        )
    return counts  # type: ignore[return-value]


def _assignments(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        try:
            number = float(value)
        except ValueError:
            number = float("nan")
        if not sep or not name.strip() or number != number:
            raise argparse.ArgumentTypeError(f"expected NAME=NUMBER,..., got {part!r}")
        out[name.strip()] = number
    return out


def _nonneg_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not v >= 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {v}")
    return v


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Help formatter that shows defaults in every help line.

    Except when the text names its default already or the option is a flag.
    """

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if "default" in text or action.nargs == 0 or action.default in (None, argparse.SUPPRESS):
            return text
        return super()._get_help_string(action)


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line.

    The line gives the problem and where the usage is (exit code 2, as argparse's).
    """

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (usage: {self.prog} --help)\n")


def _add_verbosity(parser: argparse.ArgumentParser, default: Any) -> None:
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=default,
        help="more log messages (-v: DEBUG)",
    )
    parser.add_argument(
        "-q",
        "--quiet",
        action="count",
        default=default,
        help="only warnings and errors on stderr, no progress bars (results still print)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The ``analogkernels`` argument parser (every subcommand).

    Returns
    -------
    argparse.ArgumentParser
    """
    import numpy as np

    from .calibration import DEFAULT_MAX_EVALUATIONS, DEFAULT_SEEDS, PARAMETERS
    from .datasets import (
        CACHE_FOLDER,
        DATA_ENV,
        DATASETS,
        IJCNN1_ENCODINGS,
        IJCNN1_FULL_WIDTH,
        SKIN_PAPER_ROWS,
        SKIN_ROWS,
        WIDTHS,
    )
    from .paper import energy, listops
    from .paper.attention_study import (
        LISTOPS_SIZES,
        PAPER,
        QUICK,
        QUICK_ATTENTION_KS,
        QUICK_ATTENTION_SEEDS,
    )
    from .paper.protocol import (
        BACKENDS,
        KERNELS,
        PAPER_KS,
        PAPER_SEEDS,
        PRESETS,
        PROGRAMMING,
        SAMPLERS,
        RunConfig,
    )
    from .paper.sweep import QUICK_KS, QUICK_ROWS, QUICK_SEEDS

    calibration_parameters = tuple(p.name for p in PARAMETERS)
    # A run's settings default to those of RunConfig, the one place they are set.
    run_default = {f.name: f.default for f in dataclasses.fields(RunConfig)}
    paper_ks = f"{PAPER_KS[0]}..{PAPER_KS[-1]}"
    cache = f"~/.cache/{CACHE_FOLDER}"  # datasets.cache_dir() without $XDG_CACHE_HOME

    parser = _Parser(
        prog="analogkernels",
        description="Kernel approximation on simulated analog in-memory computing hardware.",
        epilog=(
            "Results print to stdout and go to files; log messages and progress bars go to "
            "stderr. Exit codes: 0 done, 1 the run could not proceed (e.g. a data file that "
            "cannot be downloaded), 2 a mistake on the command line, 130 interrupted."
        ),
        formatter_class=_HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"analogkernels {__version__}")
    _add_verbosity(parser, 0)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(subparsers: Any, name: str, help: str, description: str) -> argparse.ArgumentParser:
        p = subparsers.add_parser(
            name, help=help, description=description, formatter_class=_HelpFormatter
        )
        _add_verbosity(p, argparse.SUPPRESS)
        return p

    backend_help = (
        "projection backend(s), comma-separated from fp, analog: fp = floating point, "
        "analog = the simulated HERMES chip (called 'chip' in tables and figures)"
    )
    t_help = "seconds after programming at which the chip is read (conductance drift)"

    demo = add(
        sub,
        "demo",
        "one-minute demo on bundled data (no download)",
        "RFF, ORF and SORF random features for the RBF kernel on scikit-learn's bundled "
        "breast-cancer data, with the projection in floating point (FP) and on the simulated "
        "HERMES chip: accuracy and kernel approximation error per sampler and k. Prints a "
        "table and writes runs/, runs.json, runs.csv, summary.md and "
        "figure_sklearn_breast_cancer.png into --out (finished runs there are reused).",
    )
    demo.add_argument(
        "--out",
        type=Path,
        default=Path("analogkernels-demo"),
        help="output folder, created if missing",
    )
    demo.add_argument("--seeds", type=_positive_int, default=3, help="seeds 0..N-1 per setting")
    demo.add_argument("--t-inference", type=_nonneg_float, default=DEFAULT_T_INFERENCE, help=t_help)

    ridge = add(
        sub,
        "ridge",
        "the paper's ridge-classification sweep",
        "The ridge-classification protocol of Büchel et al. (Nat. Mach. Intell. 2024) for "
        "every combination of dataset, kernel, sampler, k, seed and backend; runs are cached "
        "in OUT/runs (an interrupted sweep resumes); writes runs.json, runs.csv, summary.md "
        "and figure_<dataset>.png into OUT.",
    )
    ridge.add_argument(
        "--dataset",
        type=_csv_list(),
        default=DEFAULT_DATASETS,
        help=f"comma-separated, from {', '.join(DATASETS)}",
    )
    ridge.add_argument(
        "--kernel",
        type=_csv_list(KERNELS),
        default=",".join(KERNELS),
        help=f"comma-separated, from {', '.join(KERNELS)}",
    )
    ridge.add_argument(
        "--sampler",
        type=_csv_list(SAMPLERS),
        default=",".join(SAMPLERS),
        help=f"comma-separated, from {', '.join(SAMPLERS)}",
    )
    ridge.add_argument(
        "--k",
        type=_k_range,
        default=paper_ks,
        help=f"k = log2(s/d), s = 2^k·d − k projections: a range lo..hi or a list, in 1..{K_MAX}",
    )
    ridge.add_argument("--seeds", type=_positive_int, default=PAPER_SEEDS, help="seeds 0..N-1")
    ridge.add_argument(
        "--backend", type=_csv_list(BACKENDS), default=",".join(BACKENDS), help=backend_help
    )
    ridge.add_argument(
        "--preset",
        choices=PRESETS,
        default=run_default["preset"],
        help="chip model: hermes = published device parameters; hermes-measured = plus the "
        "systematic stages fitted to the measured chip (analogkernels calibrate); ideal",
    )
    ridge.add_argument(
        "--programming",
        choices=PROGRAMMING,
        default=run_default["programming"],
        help="statistical noise model, or device-level program-and-verify (analogkernels.pcm)",
    )
    ridge.add_argument(
        "--t-inference", type=_nonneg_float, default=DEFAULT_T_INFERENCE, help=t_help
    )
    ridge.add_argument(
        "--ijcnn1-encoding",
        choices=IJCNN1_ENCODINGS,
        default=run_default["ijcnn1_encoding"],
        help=f"paper: the {WIDTHS['ijcnn1']} columns of the paper's code; "
        f"full: {IJCNN1_FULL_WIDTH} LIBSVM columns",
    )
    ridge.add_argument(
        "--skin-rows",
        choices=SKIN_ROWS,
        default=run_default["skin_rows"],
        help=f"skin: the first {SKIN_PAPER_ROWS:,} rows of the file, as the paper's results "
        "imply (analogkernels.datasets.load), or all 245,057",
    )
    ridge.add_argument(
        "--out", type=Path, default=None, help="output folder (default: results/<timestamp>)"
    )
    ridge.add_argument("--jobs", type=_positive_int, default=1, help="parallel processes")
    ridge.add_argument(
        "--scheduler",
        type=_scheduler_address,
        default=None,
        metavar="ADDRESS",
        help="run the configurations as tasks on a Dask 'distributed' scheduler at ADDRESS "
        "(tcp://host:8786), or on a LocalCluster of N worker processes with local:N "
        "(needs analogkernels[dask]); same results, cache and resume (default: local "
        "processes, --jobs)",
    )
    ridge.add_argument(
        "--quick",
        action="store_true",
        help=f"k in {{{','.join(map(str, QUICK_KS))}}}, {QUICK_SEEDS} seeds, at most "
        f"{QUICK_ROWS} train and {QUICK_ROWS} eval rows",
    )
    ridge.add_argument(
        "--data-dir",
        type=_existing("folder"),
        default=None,
        help=f"folder with the data files (default: ${DATA_ENV}, then the download "
        f"cache {cache}, then download)",
    )
    ridge.add_argument("--no-progress", action="store_true", help="no progress bar")
    ridge.add_argument(
        "--paper",
        type=_existing("file"),
        default=None,
        help="the paper's measured results (paper-hermes-results.json) to show beside ours "
        "in summary.md and the figures (default: that file in the data folder, if there)",
    )

    attn = add(
        sub,
        "attention",
        "kernelised attention experiments (needs [torch])",
        "FAVOR+ attention on the simulated chip: 'listops' trains a small Performer, "
        "'error' measures the attention approximation error. Needs analogkernels[torch].",
    )
    attn_sub = attn.add_subparsers(dest="attention_command", required=True, metavar="STUDY")
    lo = add(
        attn_sub,
        "listops",
        "train a small Performer on ListOps, FP vs chip",
        "Train a 2-layer Performer on generated ListOps, evaluate it in FP and with the "
        "projection / the full model on the simulated chip over programming seeds, fine-tune "
        "hardware-aware and evaluate again. Writes listops.md, listops.json, listops.png and "
        "model.pt into --out; logs the training loss as it goes.",
    )
    reduced, quick, full = (LISTOPS_SIZES[s] for s in ("reduced", "quick", "full"))

    def trees(sizes: Any) -> str:
        return f"{sizes.n_train},{sizes.n_val},{sizes.n_test}"

    lo.add_argument(
        "--quick",
        action="store_true",
        help=f"{quick.n_train} trees, {quick.train_steps} + {quick.hwa_steps} steps",
    )
    lo.add_argument(
        "--seeds", type=_positive_int, default=PAPER_SEEDS, help="chip programming seeds"
    )
    lo.add_argument("--t-inference", type=_nonneg_float, default=DEFAULT_T_INFERENCE, help=t_help)
    lo.add_argument(
        "--steps",
        type=_positive_int,
        default=None,
        help=f"FP training steps (default: {reduced.train_steps}, {quick.train_steps} with "
        "--quick)",
    )
    lo.add_argument(
        "--hwa-steps",
        type=_positive_int,
        default=None,
        help=f"hardware-aware fine-tuning steps (default: {reduced.hwa_steps}, "
        f"{quick.hwa_steps} with --quick)",
    )
    lo.add_argument(
        "--full",
        action="store_true",
        help=f"full-length ListOps (LRA rules, {full.n_train:,}/{full.n_val:,}/{full.n_test:,} "
        f"trees of {listops.LRA.min_length}-{listops.LRA.max_length} tokens) "
        f"with the paper's model and recipe (batch {PAPER.batch}, {PAPER.schedule} LR "
        f"{np.format_float_scientific(PAPER.lr, trim='-', exp_digits=1)})",
    )
    lo.add_argument(
        "--max-steps",
        type=_positive_int,
        default=None,
        help=f"FP training step budget (same as --steps; default: {full.train_steps} with --full)",
    )
    lo.add_argument(
        "--time-budget",
        type=_nonneg_float,
        default=None,
        help="stop FP training after this many seconds, then evaluate (default: no limit)",
    )
    lo.add_argument(
        "--hwa-time-budget",
        type=_nonneg_float,
        default=None,
        help="stop hardware-aware fine-tuning after this many seconds (default: no limit)",
    )
    lo.add_argument(
        "--device",
        type=_torch_device,
        default=None,
        help="cpu, cuda or cuda:N (default: cuda when available, else cpu)",
    )
    lo.add_argument(
        "--bf16",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="bfloat16 autocast for the digital layers (default: on with --full on CUDA)",
    )
    lo.add_argument(
        "--trees",
        type=_tree_counts,
        default=None,
        help=f"training,validation,test tree counts (default: {trees(full)} with --full; "
        f"{trees(reduced)} without; {trees(quick)} with --quick)",
    )
    lo.add_argument(
        "--batch",
        type=_positive_int,
        default=None,
        help=f"training batch (default: {PAPER.batch} with --full, else {QUICK.batch})",
    )
    lo.add_argument(
        "--chip-trees",
        type=_positive_int,
        default=None,
        help="evaluate the chip on the first this many test trees (default: all)",
    )
    lo.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help=f"cache of the generated full-length trees (default: {cache}/{listops.CACHE_FOLDER})",
    )
    lo.add_argument(
        "--workers",
        type=_positive_int,
        default=1,
        help="processes generating the full-length trees",
    )
    lo.add_argument("--out", type=Path, default=Path("results") / "attention", help="output folder")
    err = add(
        attn_sub,
        "error",
        "FAVOR+ vs softmax attention error vs features",
        "Relative error ‖A − Â‖_F/‖A‖_F of FAVOR+ attention against softmax attention for "
        "s = k·d − 1 SORF projections, FP and chip, on Gaussian Q/K/V (and those of a "
        "trained ListOps model with --model). Writes attention_error.md, .json and .png "
        "into --out.",
    )
    err.add_argument("--seeds", type=_positive_int, default=PAPER_SEEDS, help="projection seeds")
    err.add_argument(
        "--quick",
        action="store_true",
        help=f"k in {QUICK_ATTENTION_KS[0]}..{QUICK_ATTENTION_KS[-1]}, "
        f"at most {QUICK_ATTENTION_SEEDS} seeds",
    )
    err.add_argument(
        "--model",
        type=_existing("file"),
        default=None,
        help="ListOps model (model.pt from 'attention listops') to capture Q/K/V from "
        "(default: Gaussian Q/K/V only)",
    )
    err.add_argument(
        "--out", type=Path, default=Path("results") / "attention", help="output folder"
    )

    cal = add(
        sub,
        "calibrate",
        "fit the chip model's systematic stages to measured kernel errors",
        "Fit the free parameters of the simulated chip (ADC offset, its spread, ADC gain "
        "spread, output noise; analogkernels.calibration) to measured kernel-approximation "
        "errors: one parameter set for every dataset, kernel, sampler and k in the targets "
        "file (unless --per-dataset), by minimising chi^2 weighted by the measured seed "
        "spread. Prints the fitted values with standard errors and the residual misfit; "
        "writes calibration.json (values, uncertainties, every cell before and after) "
        "into --out.",
    )
    cal.add_argument(
        "--targets",
        type=_existing("file"),
        required=True,
        help="JSON file of measured errors (format: paper-hermes-results.json of the "
        "project's test data; see analogkernels.calibration)",
    )
    cal.add_argument(
        "--dataset",
        type=_csv_list(),
        default=None,
        help="comma-separated datasets of the targets file to use (default: all)",
    )
    cal.add_argument(
        "--parameters",
        type=_csv_list(calibration_parameters),
        default=",".join(calibration_parameters),
        help=f"free parameters, comma-separated from {', '.join(calibration_parameters)}",
    )
    cal.add_argument(
        "--per-dataset",
        type=_csv_list(calibration_parameters),
        default=[],
        help="free parameters fitted with one value per dataset (NAME[DATASET] in the "
        "output and in --start): a diagnostic of whether the datasets were measured under "
        "different conditions, by the chi^2 it gains, not a chip model (default: none, "
        "every parameter is chip-wide)",
    )
    cal.add_argument(
        "--start",
        type=_assignments,
        default=None,
        help="starting values NAME=VALUE,... of free parameters (default: those of hermes(); "
        "the minimiser is local, so the start can decide which minimum it finds); for a "
        "--per-dataset parameter NAME starts every dataset, NAME[DATASET] one (quote the "
        "brackets for the shell)",
    )
    cal.add_argument(
        "--accuracy-k",
        type=_k_range_or_none,
        default=None,
        help="k values whose measured accuracy drops (chip - FP, hardware_acc and fp_acc in "
        "the file) are fitted too, e.g. 5 or 3..5, or 'none' (default: the largest k of the "
        "file, when it has accuracies)",
    )
    cal.add_argument(
        "--seeds",
        type=_positive_int,
        default=len(DEFAULT_SEEDS),
        help="simulation seeds 0..N-1",
    )
    cal.add_argument(
        "--max-evaluations",
        type=_positive_int,
        default=DEFAULT_MAX_EVALUATIONS,
        help="budget of chi^2 evaluations",
    )
    cal.add_argument(
        "--data-dir",
        type=_existing("folder"),
        default=None,
        help=f"folder with the data files (default: ${DATA_ENV}, then the cache)",
    )
    cal.add_argument(
        "--out", type=Path, default=Path("results") / "calibration", help="output folder"
    )

    energy_cmd = add(
        sub,
        "energy",
        "energy/latency estimate vs a GPU",
        "Energy per sample and throughput of the random-feature classifier with the projection "
        f"on HERMES cores against all of it on a GPU, for the paper's datasets and "
        f"k = {paper_ks} (analogkernels.paper.energy). Prints a markdown table; needs no data.",
    )
    energy_cmd.add_argument(
        "--dataset",
        type=_csv_list(),
        default=",".join(energy.PAPER_WIDTHS),
        help=f"comma-separated, from {', '.join(energy.PAPER_WIDTHS)}",
    )
    energy_cmd.add_argument(
        "--kernel", choices=energy.KERNELS, default=energy.DEFAULT_KERNEL, help="kernel"
    )
    energy_cmd.add_argument(
        "--mode",
        choices=energy.MODES,
        default=energy.DEFAULT_MODE,
        help="HERMES MVM mode (4-phase: the mode of the published accuracy results; 1-phase: "
        "cheaper and faster)",
    )
    return parser


# ---------------------------------------------------------------------------
# commands: check the arguments, then call the paper's functions


def cmd_ridge(args: argparse.Namespace) -> int:
    """Run ``analogkernels ridge``: the paper's ridge-regression sweep.

    Checks the datasets before creating anything, runs the sweep (resuming
    finished runs from ``--out``), compares with the paper's results when
    they are found, and writes the tables and figures.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed arguments of the ``ridge`` sub-command.

    Returns
    -------
    int
        The exit code: 0 done, 1 when ``--scheduler`` needs the missing
        ``[dask]`` extra.

    Raises
    ------
    UsageError
        ``--jobs`` together with ``--scheduler``, an unknown dataset, or an
        unusable ``--out``.
    """
    from .paper.outputs import write_outputs
    from .paper.protocol import find_paper_results, load_paper_results
    from .paper.sweep import ridge_configs, run_sweep

    if args.scheduler is not None:
        if args.jobs != 1:
            raise UsageError(
                "--jobs and --scheduler exclude each other "
                "(with --scheduler local:N the cluster has N workers)"
            )
        from .dask import require

        try:
            require(distributed=True)
        except ImportError as exc:
            print(f"analogkernels ridge: --scheduler: {exc}", file=sys.stderr)
            return 1
    # Fail fast on an unknown or missing dataset, before any folder or process.
    from .datasets import DATASETS, load

    _check_names("dataset", args.dataset, DATASETS)
    out = args.out or Path("results") / _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    created = not out.exists()
    prepare_out(out)
    try:
        for ds in args.dataset:
            logger.info("loading %s", ds)
            load(
                ds,
                data_dir=args.data_dir,
                ijcnn1_encoding=args.ijcnn1_encoding,
                skin_rows=args.skin_rows,
            )
    except BaseException:
        if created:  # leave no empty results folder behind
            try:
                out.rmdir()
            except OSError:
                pass
        raise
    logger.info("writing results to %s", out)
    configs = ridge_configs(
        args.dataset,
        args.kernel,
        args.sampler,
        args.k,
        args.seeds,
        args.backend,
        quick=args.quick,
        preset=args.preset,
        programming=args.programming,
        t_inference=args.t_inference,
        ijcnn1_encoding=args.ijcnn1_encoding,
        skin_rows=args.skin_rows,
        data_dir=args.data_dir,
    )
    logger.info(
        "%d runs (t_inference %g s, preset %s)", len(configs), args.t_inference, args.preset
    )
    t0 = time.perf_counter()
    records = run_sweep(
        configs,
        out,
        jobs=args.jobs,
        progress=not (args.no_progress or _quiet(args)),
        scheduler=args.scheduler,
    )
    # The paper's results to compare with: --paper, else that file in the data folder.
    paper_path = args.paper or find_paper_results(args.data_dir)
    paper = None
    if paper_path is not None:
        logger.info("comparing with the paper's results in %s", paper_path)
        paper = load_paper_results(paper_path)
    written = write_outputs(records, out, paper)
    print((out / "summary.md").read_text())
    print(f"{len(records)} runs in {time.perf_counter() - t0:.1f} s; wrote:")
    for p in written:
        print(f"  {p}")
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    """Run ``analogkernels calibrate``: fit the chip model to measured errors.

    Prints the fit's summary and writes ``calibration.json`` in ``--out``.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed arguments of the ``calibrate`` sub-command.

    Returns
    -------
    int
        The exit code, 0.

    Raises
    ------
    UsageError
        Too few ``--seeds`` (:func:`analogkernels.calibration.check_seeds`), a
        ``--per-dataset`` parameter that is not in ``--parameters``, a ``--start``
        name that is not a fitted value, or an unusable ``--out``.
    """
    from .calibration import ACCURACY_DROP, accuracy_ks, check_seeds, load_targets
    from .paper.sweep import run_calibration

    try:
        check_seeds(range(args.seeds))  # before any work: a command-line mistake
    except ConfigError as exc:
        raise UsageError(f"--seeds {args.seeds}: {exc}") from None
    loose = [n for n in args.per_dataset if n not in args.parameters]
    if loose:
        raise UsageError(
            f"--per-dataset {', '.join(loose)}: not in --parameters ({', '.join(args.parameters)})"
        )
    targets = load_targets(args.targets, datasets=args.dataset)
    _check_start(args, sorted({cell[0] for cell in targets}))
    accuracy_k = args.accuracy_k
    if accuracy_k is None:
        # Default: the largest k, where the file has both accuracies.
        with_acc = accuracy_ks(args.targets, datasets=args.dataset)
        accuracy_k = with_acc[-1:]
    accuracy_drops = (
        load_targets(args.targets, metric=ACCURACY_DROP, datasets=args.dataset, ks=accuracy_k)
        if accuracy_k
        else None
    )
    out = prepare_out(args.out)
    logger.info(
        "fitting %s to %d error cells and %d accuracy drops with %d seeds",
        ",".join(args.parameters),
        len(targets),
        len(accuracy_drops or {}),
        args.seeds,
    )
    result = run_calibration(
        targets,
        out,
        accuracy_drops=accuracy_drops,
        parameters=args.parameters,
        seeds=args.seeds,
        data_dir=args.data_dir,
        max_evaluations=args.max_evaluations,
        start=args.start,
        progress=not _quiet(args),
        per_dataset=args.per_dataset,
    )
    print(result.summary())
    print(f"wrote {out / 'calibration.json'}")
    return 0


def _check_start(args: argparse.Namespace, datasets: list[str]) -> None:
    """Refuse a ``--start`` name that is not a fitted value, before any work."""
    from .calibration import fitted_keys

    allowed = set(args.parameters) | set(fitted_keys(args.parameters, args.per_dataset, datasets))
    stray = sorted(set(args.start or {}) - allowed)
    if stray:
        raise UsageError(
            f"--start {', '.join(stray)}: not a free parameter or NAME[DATASET] of a "
            f"--per-dataset one (datasets: {', '.join(datasets)})"
        )


def cmd_demo(args: argparse.Namespace) -> int:
    """Run ``analogkernels demo``: a small sweep on an embedded dataset.

    Prints the demo table and writes the results in ``--out``.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed arguments of the ``demo`` sub-command.

    Returns
    -------
    int
        The exit code, 0.

    Raises
    ------
    UsageError
        An unusable ``--out``.
    """
    from .paper.outputs import demo_table, write_outputs
    from .paper.sweep import demo_configs, run_sweep

    out = prepare_out(args.out)
    logger.info("writing results to %s", out.resolve())
    t0 = time.perf_counter()
    configs = demo_configs(args.seeds, args.t_inference)
    records = run_sweep(configs, out, jobs=1, progress=not _quiet(args), desc="demo")
    written = write_outputs(records, out)
    print(demo_table(records, args.seeds, args.t_inference))
    print(f"done in {time.perf_counter() - t0:.1f} s; wrote (folder set by --out):")
    for p in written:
        print(f"  {p}")
    return 0


def cmd_attention(args: argparse.Namespace) -> int:
    """Run ``analogkernels attention listops`` or ``analogkernels attention error``.

    ``listops`` trains the ListOps Performer and evaluates it in floating point
    and on the simulated chip; ``error`` measures the error of FAVOR+ attention
    against softmax attention (with the queries, keys and values of a saved
    model if ``--model`` is given). Prints the table and writes the results in
    ``--out``.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed arguments of the ``attention`` sub-command.

    Returns
    -------
    int
        The exit code: 0 done, 1 without PyTorch.

    Raises
    ------
    UsageError
        ``--model`` that is not a saved ListOps model, an invalid ``--device``,
        ``--steps`` and ``--max-steps`` that disagree, or an unusable ``--out``.
    """
    try:
        import torch  # noqa: F401
    except ImportError:
        print(
            "analogkernels attention needs PyTorch: pip install 'analogkernels[torch]'",
            file=sys.stderr,
        )
        return 1
    from .paper import attention_study, lra

    model = None
    if args.attention_command == "error" and args.model is not None:
        try:
            model = attention_study.load_model(args.model)
        except Exception as exc:  # unpickling or shape errors: not a ListOps model
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UsageError(
                f"--model {args.model} is not a model saved by 'analogkernels attention "
                f"listops' ({first})"
            ) from None
    if args.attention_command == "listops":
        try:
            device = lra.resolve_device(args.device)
        except ValueError as exc:
            raise UsageError(f"--device: {exc}") from None
        if args.steps and args.max_steps and args.steps != args.max_steps:
            raise UsageError(f"--steps {args.steps} and --max-steps {args.max_steps} disagree")
    out = prepare_out(args.out)
    logger.info("writing results to %s", out)
    if args.attention_command == "listops":
        table, written = attention_study.listops_study(
            out,
            trees=args.trees,
            progress=logger.info,
            quick=args.quick,
            full=args.full,
            seeds=args.seeds,
            t_inference=args.t_inference,
            train_steps=args.max_steps or args.steps,
            hwa_steps=args.hwa_steps,
            n_chip_test=args.chip_trees,
            device=device,
            amp=args.bf16,
            time_budget=args.time_budget,
            hwa_time_budget=args.hwa_time_budget,
            cache_dir=args.cache_dir,
            workers=args.workers,
            batch=args.batch,
        )
    else:
        table, written = attention_study.error_study(
            out, model=model, quick=args.quick, seeds=args.seeds
        )
    print(table)
    print(f"wrote {', '.join(map(str, written))}")
    return 0


def cmd_energy(args: argparse.Namespace) -> int:
    """Run ``analogkernels energy``: print the energy and throughput table.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed arguments of the ``energy`` sub-command.

    Returns
    -------
    int
        The exit code, 0.

    Raises
    ------
    UsageError
        An unknown dataset (one without a known input width).
    """
    from .paper.energy import table

    try:
        text = table(args.dataset, kernel=args.kernel, mode=args.mode)
    except ConfigError as exc:
        # Its one check of the names; every value comes from the command line.
        raise UsageError(str(exc)) from None
    print(text)
    return 0


def _check_names(what: str, names: list[str], choices: tuple[str, ...]) -> None:
    bad = [n for n in names if n not in choices]
    if bad:
        raise UsageError(
            f"unknown {what} {', '.join(map(repr, bad))}; choose from {', '.join(choices)}"
        )


def _quiet(args: argparse.Namespace) -> bool:
    return getattr(args, "quiet", 0) > getattr(args, "verbose", 0)


class _TqdmHandler(logging.StreamHandler):
    """Log lines on stderr that do not break a running tqdm bar."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            from tqdm import tqdm

            tqdm.write(self.format(record), file=self.stream)
        except Exception:  # pragma: no cover - logging must never raise
            self.handleError(record)


def configure_logging(verbose: int = 0, quiet: int = 0) -> logging.Handler:
    """Send the ``analogkernels`` logger's messages to stderr at the CLI's level.

    Parameters
    ----------
    verbose, quiet : int
        How often ``-v`` and ``-q`` were given: INFO by default, DEBUG with more
        ``-v`` than ``-q``, WARNING with more ``-q``.

    Returns
    -------
    logging.Handler
        The handler added to the package logger ``analogkernels`` (remove it
        with ``logging.getLogger("analogkernels").removeHandler``).
    """
    level = logging.INFO
    if verbose > quiet:
        level = logging.DEBUG
    elif quiet > verbose:
        level = logging.WARNING
    handler = _TqdmHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", datefmt="%H:%M:%S"))
    logger.addHandler(handler)
    logger.setLevel(level)
    return handler


def main(argv: list[str] | None = None) -> int:
    """Run the command line.

    Parameters
    ----------
    argv : list of str, optional
        The arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        The exit code: 0 done, 1 the run could not proceed, 2 a mistake on the
        command line, 130 interrupted. Argument errors raise ``SystemExit(2)``.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    # The CLI's handler and level hold for this call only (main() may be called
    # from Python, and the package logs through the application's logging).
    previous_level = logger.level
    handler = configure_logging(args.verbose, args.quiet)
    try:
        return _dispatch(args)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous_level)


def _dispatch(args: argparse.Namespace) -> int:
    handlers = {
        "ridge": cmd_ridge,
        "demo": cmd_demo,
        "energy": cmd_energy,
        "attention": cmd_attention,
        "calibrate": cmd_calibrate,
    }
    name = args.command
    if name == "attention":
        name += f" {args.attention_command}"
    try:
        return handlers[args.command](args)
    except KeyboardInterrupt:
        print(
            "\ninterrupted: finished runs are saved; run the same command again to resume",
            file=sys.stderr,
        )
        return 130
    except UsageError as exc:
        print(f"analogkernels {name}: error: {exc}", file=sys.stderr)
        return 2
    except (AnalogKernelsError, ValueError, FileNotFoundError) as exc:
        print(f"analogkernels {name}: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        # Writing results (disk full, a folder made read-only meanwhile).
        where = f" ({exc.filename})" if exc.filename else ""
        print(
            f"analogkernels {name}: cannot write the results{where}: {exc.strerror or exc}",
            file=sys.stderr,
        )
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
