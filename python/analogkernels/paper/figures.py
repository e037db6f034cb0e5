"""The paper's figures: Fig. 2 per dataset, the ListOps bars, the attention error.

Every function draws one figure from result records (those of
:mod:`analogkernels.paper.protocol`, :mod:`analogkernels.paper.lra`) and saves
it as a PNG through a bare :class:`matplotlib.figure.Figure` (no pyplot): no display is
needed, and the caller's matplotlib backend and open figures are left alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .protocol import (
    BACKEND_LABELS,
    BACKEND_STYLES,
    BACKENDS,
    KERNELS,
    PAPER_ACCURACY,
    PAPER_ERROR,
    SAMPLERS,
)

__all__ = ["plot_attention_error", "plot_dataset", "plot_listops"]


#: The samplers' colours, by position in :data:`~analogkernels.paper.protocol.SAMPLERS`
#: (matplotlib's tab10, cycled: a new sampler gets the next colour).
PALETTE = (
    "tab:blue",
    "tab:orange",
    "tab:green",
    "tab:red",
    "tab:purple",
    "tab:brown",
    "tab:pink",
    "tab:gray",
    "tab:olive",
    "tab:cyan",
)


def _colours(names: tuple[str, ...] | list[str]) -> dict[str, str]:
    """One colour of :data:`PALETTE` per name, by position (cycled)."""
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(names)}


#: Axis label of the kernel approximation error.
ERROR_LABEL = "kernel approximation error\n‖K − ΦΦᵀ‖_F / ‖K‖_F"


def plot_dataset(records: list[dict], dataset: str, path: Path, paper: dict | None = None) -> None:
    """Draw the paper's Fig. 2 for one dataset and save it as a PNG.

    One row per kernel; left the kernel approximation error, right the accuracy,
    both against k = log2(s/d) (integer ticks; s = 2^k·d − k projections, so
    the exact log2(s/d) lies slightly below k). One colour per sampler, FP
    solid, chip (``backend="analog"``) dashed; points are the mean over seeds,
    error bars ± 1 standard deviation over seeds (the caption says how many).

    Parameters
    ----------
    records : list of dict
        Run records (:func:`~analogkernels.paper.protocol.run_one`); those of
        other datasets are ignored.
    dataset : str
        The dataset to draw.
    path : path
        Where to write the PNG.
    paper : dict or None
        The paper's measured results
        (:func:`~analogkernels.paper.protocol.load_paper_results`): its chip
        curves are drawn dotted ("paper chip"), one per sampler.
    """
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    rows = [r for r in records if r["dataset"] == dataset]
    kernels = [k for k in KERNELS if any(r["kernel"] == k for r in rows)]
    fig = Figure(figsize=(9, 3.3 * len(kernels) + 0.5), layout="constrained")
    axes = fig.subplots(len(kernels), 2, squeeze=False)
    colours = _colours(SAMPLERS)
    counts: set[int] = set()
    for i, kern in enumerate(kernels):
        for j, (metric, label) in enumerate(
            [("approximation_error", ERROR_LABEL), ("accuracy", "test accuracy (%)")]
        ):
            ax = axes[i][j]
            ks: set[int] = set()
            for smp in SAMPLERS:
                for backend in BACKENDS:
                    sel = [
                        r
                        for r in rows
                        if r["kernel"] == kern and r["sampler"] == smp and r["backend"] == backend
                    ]
                    if not sel:
                        continue
                    xs = sorted({int(r["k"]) for r in sel})
                    ks.update(xs)
                    vals = [[r[metric] for r in sel if r["k"] == x] for x in xs]
                    counts.update(len(v) for v in vals)
                    scale = 100.0 if metric == "accuracy" else 1.0
                    ax.errorbar(
                        xs,
                        [scale * np.mean(v) for v in vals],
                        yerr=[scale * np.std(v) for v in vals],
                        color=colours[smp],
                        linestyle=BACKEND_STYLES[backend],
                        marker="o",
                        markersize=3,
                        capsize=2,
                    )
            paper_metric = (PAPER_ERROR if metric == "approximation_error" else PAPER_ACCURACY)[
                "analog"
            ]
            for smp in SAMPLERS if paper else ():
                curve = sorted(
                    (c[3], m[paper_metric])
                    for c, m in paper.items()
                    if c[:3] == (dataset, kern, smp) and paper_metric in m
                )
                if curve and any(r["sampler"] == smp for r in rows):
                    scale = 100.0 if metric == "accuracy" else 1.0
                    ax.plot(
                        [k for k, _ in curve],
                        [scale * t.mean for _, t in curve],
                        color=colours[smp],
                        linestyle=":",
                        marker="x",
                        markersize=3,
                    )
            ax.set_xticks(sorted(ks))
            ax.set_xlabel("k = log2(s/d)")
            ax.set_ylabel(label)
            ax.set_title(f"{dataset} — {kern}")
            ax.grid(alpha=0.3)
            if metric == "approximation_error":
                ax.set_yscale("log")
    handles = [
        Line2D([], [], color=colours[s], marker="o", label=s.upper())
        for s in SAMPLERS
        if any(r["sampler"] == s for r in rows)
    ] + [
        Line2D([], [], color="k", linestyle=BACKEND_STYLES[b], label=BACKEND_LABELS[b])
        for b in BACKENDS
        if any(r["backend"] == b for r in rows)
    ]
    if paper and any(c[0] == dataset for c in paper):
        handles.append(Line2D([], [], color="k", linestyle=":", marker="x", label="paper chip"))
    axes[0][1].legend(handles=handles, fontsize=7, ncol=2)
    n = "/".join(str(c) for c in sorted(counts)) or "0"
    fig.suptitle(
        f"{dataset}: FP vs simulated HERMES chip — mean over {n} seeds, "
        f"error bars ± 1 std over seeds",
        fontsize=9,
    )
    fig.savefig(path, dpi=110)


def plot_listops(record: dict[str, Any], path: Path) -> None:
    """Draw the ListOps bar chart from a ``listops.json`` record and save it.

    Bars: test accuracy of the trained FP model and after hardware-aware
    fine-tuning, each in FP, with the projection on the chip and with the full
    model on the chip; chip bars are the mean over programming seeds with error
    bars ± 1 standard deviation (FP: one model, no error bar). The accuracy
    axis starts at 0; the dotted line is the majority-class accuracy.

    Parameters
    ----------
    record : dict
        The content of ``listops.json`` (:class:`analogkernels.paper.lra.ListOpsRun`
        fields without the model).
    path : Path
        Where to write the PNG.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 3.8), layout="constrained")
    ax = fig.subplots()
    groups = [
        ("trained FP", record["fp"], record["attention_only"], record["full"]),
        (
            "after HW-aware fine-tuning",
            record["hwa_fp"],
            record["hwa_attention_only"],
            record["hwa_full"],
        ),
    ]
    width = 0.25
    top = 0.0
    for i, (_, fp, att, full) in enumerate(groups):
        xs = np.array([i - width, i, i + width])
        means = [100 * fp, 100 * np.mean(att), 100 * np.mean(full)]
        errs = [0, 100 * np.std(att), 100 * np.std(full)]
        top = max(top, *(m + e for m, e in zip(means, errs, strict=True)))
        ax.bar(
            xs,
            means,
            width,
            yerr=errs,
            capsize=3,
            color=["tab:gray", "tab:blue", "tab:orange"],
            label=["FP", "projection on chip", "full model on chip"] if i == 0 else None,
        )
        for x, m in zip(xs, means, strict=True):
            ax.annotate(
                f"{m:.1f}",
                (x, m),
                ha="center",
                va="bottom",
                fontsize=7,
                xytext=(0, 6),
                textcoords="offset points",
            )
    settings = record["settings"]
    ax.axhline(100 * settings["majority"], color="k", linestyle=":", label="majority class")
    ax.set_xticks([0, 1], [g[0] for g in groups])
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, max(top, 100 * settings["majority"]) * 1.25)
    ax.set_title(
        f"ListOps: FP vs simulated HERMES chip\nchip bars: mean, error bars ± 1 std over "
        f"{settings['seeds']} programming seeds",
        fontsize=10,
    )
    ax.legend(fontsize=8, loc="upper left", ncol=2)
    fig.savefig(path, dpi=110)


#: Axis label of the attention error.
ATTENTION_ERROR_LABEL = "relative attention error\n‖A − Â‖_F / ‖A‖_F"


def plot_attention_error(
    records: list[dict[str, Any]], path: Path, seeds: int | None = None
) -> None:
    """Draw the attention error study from ``attention_error.json`` and save it.

    Error of FAVOR+ attention against softmax attention against k (integer
    ticks; s = k·d − 1 projections), one colour per Q/K/V source, FP solid, chip
    dashed; points are the mean over seeds, error bars ± 1 standard deviation.

    Parameters
    ----------
    records : list of dict
        Records of :func:`analogkernels.paper.lra.attention_error_study`.
    path : Path
        Where to write the PNG.
    seeds : int, optional
        Number of seeds behind each point (default: the records' ``seeds`` field).
    """
    from matplotlib.figure import Figure

    seeds = seeds or next((r["seeds"] for r in records if "seeds" in r), None)
    sources = list(dict.fromkeys(r["source"] for r in records))
    ks = sorted({int(r["k"]) for r in records})
    by = {(r["source"], r["k"], r["backend"]): r for r in records}
    fig = Figure(figsize=(6, 3.8), layout="constrained")
    ax = fig.subplots()
    colours = ("tab:blue", "tab:green", "tab:red", "tab:purple")
    for src, colour in zip(sources, colours, strict=False):
        for backend, style in BACKEND_STYLES.items():
            rs = [by[(src, k, backend)] for k in ks if (src, k, backend) in by]
            if not rs:
                continue
            ax.errorbar(
                [r["k"] for r in rs],
                [r["error_mean"] for r in rs],
                yerr=[r["error_std"] for r in rs],
                color=colour,
                linestyle=style,
                marker="o",
                capsize=2,
                label=f"{src}, {BACKEND_LABELS[backend]}",
            )
    ax.set_xticks(ks)
    ax.set_xlabel("k (s = k·d − 1 projections)")
    ax.set_ylabel(ATTENTION_ERROR_LABEL)
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    over = f"{seeds} seeds" if seeds else "seeds"
    ax.set_title(
        f"FAVOR+ vs softmax attention (SORF, HERMES preset)\nmean, error bars ± 1 std over {over}",
        fontsize=9,
    )
    fig.savefig(path, dpi=110)
