"""Writing the paper's results: run tables, summaries, JSON records.

Every file is written atomically (a temporary file moved into place), so an
interruption never leaves a partial result.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np

from .._io import atomic_write
from .figures import plot_dataset
from .protocol import ALPHA, BACKEND_LABELS, GAMMA, summarize

__all__ = ["demo_table", "versions_text", "write_json_atomic", "write_outputs"]


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write ``obj`` as JSON so that an interruption never leaves a partial file.

    Parameters
    ----------
    path : Path
        The file (its folder must exist).
    obj : object
        Anything :func:`json.dumps` takes; written indented, keys sorted.
    """
    with atomic_write(path) as fh:
        fh.write(json.dumps(obj, indent=1, sort_keys=True))


def write_outputs(
    records: list[dict[str, Any]], out: Path, paper: dict | None = None
) -> list[Path]:
    """Write a sweep's results into ``out``.

    Parameters
    ----------
    records : list of dict
        Run records (:func:`~analogkernels.paper.protocol.run_one`, with the
        version fields of :func:`~analogkernels.paper.sweep.run_sweep`).
    out : Path
        The output folder (it must exist).
    paper : dict, optional
        The paper's measured results
        (:func:`~analogkernels.paper.protocol.load_paper_results`), shown beside
        ours in ``summary.md`` and the figures.

    Returns
    -------
    list of Path
        What was written: ``runs.json``, ``runs.csv`` (when there are records),
        ``summary.md`` and ``figure_<dataset>.png`` per dataset.
    """
    written = []
    write_json_atomic(out / "runs.json", records)
    written.append(out / "runs.json")
    if records:
        with atomic_write(out / "runs.csv", newline="") as fh:
            # Every field of every record (runs cached by an earlier version lack
            # the version fields: empty cells there).
            fields = list(dict.fromkeys(key for r in records for key in r))
            writer = csv.DictWriter(fh, fieldnames=fields, restval="")
            writer.writeheader()
            writer.writerows(records)
        written.append(out / "runs.csv")
    with atomic_write(out / "summary.md") as fh:
        fh.write(summarize(records, paper))
    written.append(out / "summary.md")
    for ds in sorted({r["dataset"] for r in records}):
        path = out / f"figure_{ds.replace(':', '_')}.png"
        plot_dataset(records, ds, path, paper)
        written.append(path)
    return written


def versions_text(versions: dict[str, str]) -> str:
    """The software versions for people: ``"analogkernels 0.1.0, Python 3.11.7, ..."``.

    Parameters
    ----------
    versions : dict of str to str
        :func:`~analogkernels.paper.protocol.software_versions`.

    Returns
    -------
    str
        Each package's name and version, comma-separated.
    """
    names = {"sklearn": "scikit-learn", "python": "Python"}
    return ", ".join(
        f"{names.get(k.removesuffix('_version'), k.removesuffix('_version'))} {v}"
        for k, v in versions.items()
    )


def demo_table(records: list[dict[str, Any]], seeds: int, t_inference: float) -> str:
    """The table ``analogkernels demo`` prints.

    Parameters
    ----------
    records : list of dict
        The records of :func:`~analogkernels.paper.sweep.demo_configs`' runs.
    seeds : int
        How many seeds each mean is over.
    t_inference : float
        When the chip was read, in seconds after programming.

    Returns
    -------
    str
        A title, then per sampler and k the FP and chip accuracy (%) and kernel
        approximation error, each the mean over seeds.
    """
    from .sweep import DEMO_KS, DEMO_SAMPLERS

    when = "right after programming" if t_inference == 0 else f"{t_inference:g} s after programming"
    lines = [
        f"analogkernels demo — breast cancer (scikit-learn), RBF kernel (γ = {GAMMA:g}), "
        f"ridge α = {ALPHA:g},",
        f"projection in FP and on the simulated HERMES chip read {when}; {seeds} seeds",
        "",
        f"{'sampler':>7} {'k':>2} {'s':>4} | {'FP acc %':>8} {'chip acc %':>10} | "
        f"{'FP kernel err':>13} {'chip kernel err':>15}",
    ]
    for smp in DEMO_SAMPLERS:
        for k in DEMO_KS:
            sel = {
                b: [r for r in records if r["sampler"] == smp and r["k"] == k and r["backend"] == b]
                for b in BACKEND_LABELS
            }
            acc = {b: 100 * np.mean([r["accuracy"] for r in v]) for b, v in sel.items()}
            err = {b: np.mean([r["approximation_error"] for r in v]) for b, v in sel.items()}
            s = sel["fp"][0]["n_projections"]
            lines.append(
                f"{smp.upper():>7} {k:>2} {s:>4} | {acc['fp']:8.2f} {acc['analog']:10.2f} | "
                f"{err['fp']:13.4f} {err['analog']:15.4f}"
            )
    lines += ["", "kernel err: ‖K − ΦΦᵀ‖_F/‖K‖_F; mean over seeds"]
    return "\n".join(lines)
