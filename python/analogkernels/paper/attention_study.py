"""The attention study behind ``analogkernels attention listops|error`` (needs ``[torch]``).

:func:`listops_study` trains the small Performer on ListOps, evaluates it in FP
and on the simulated chip, fine-tunes it hardware-aware and writes its results;
:func:`error_study` measures the FAVOR+ error against softmax attention. Both
write a Markdown table, a JSON record and a figure into an output folder and
return the table.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._io import atomic_write
from .figures import plot_attention_error, plot_listops
from .outputs import versions_text, write_json_atomic
from .protocol import BACKEND_LABELS, BACKENDS, PAPER_SEEDS, software_versions

__all__ = ["error_study", "listops_study", "load_model"]

#: The attention error study's ``k`` (``s = k·d − 1`` projections), as in the paper.
ATTENTION_KS = range(1, 8)
#: ``--quick``: these ``k`` and at most this many seeds.
QUICK_ATTENTION_KS = range(1, 5)
QUICK_ATTENTION_SEEDS = 3


@dataclass(frozen=True)
class Recipe:
    """Optimiser and schedule of :func:`analogkernels.paper.lra.train`.

    ``schedule``: ``"linear"`` (linear warm-up over ``warmup`` steps, then
    constant) or ``"inverse-sqrt"`` (linear warm-up, then ``lr·√(warmup/step)``,
    fairseq's ``inverse_sqrt``). AdamW with ``betas``, ``eps``,
    ``weight_decay``; gradients clipped at global norm ``clip``; ``batch``
    trees per step.
    """

    batch: int = 64
    lr: float = 1e-3
    warmup: int = 300
    schedule: str = "linear"
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 0.01
    clip: float = 1.0

    def __post_init__(self) -> None:
        """Check the recipe.

        Raises
        ------
        ValueError
            For an unknown ``schedule``, ``batch < 1``, ``warmup < 0``, or a
            learning rate or clipping norm that is not positive.
        """
        if self.schedule not in ("linear", "inverse-sqrt"):
            raise ValueError(f"schedule must be 'linear' or 'inverse-sqrt', got {self.schedule!r}")
        if self.batch < 1 or self.warmup < 0 or not self.lr > 0 or not self.clip > 0:
            raise ValueError(f"invalid recipe {self}")

    def factor(self, step: int) -> float:
        """LR multiplier at 0-based ``step``."""
        s = step + 1
        if self.warmup > 0 and s < self.warmup:
            return s / self.warmup
        if self.schedule == "inverse-sqrt" and self.warmup > 0:
            return math.sqrt(self.warmup / s)
        return 1.0


#: The reduced experiment's recipe.
QUICK = Recipe()
#: The paper's ListOps recipe (:mod:`analogkernels.paper.lra`).
PAPER = Recipe(
    batch=256, lr=1e-3, warmup=1000, schedule="inverse-sqrt", betas=(0.9, 0.98), eps=1e-6,
    weight_decay=0.1, clip=0.5,
)  # fmt: skip


@dataclass(frozen=True)
class ListOpsSizes:
    """Tree counts and budgets of a ListOps run (:func:`analogkernels.paper.lra.run_listops`).

    Attributes
    ----------
    n_train, n_val, n_test : int
        Training, validation and test trees.
    train_steps, hwa_steps : int
        Step budgets of FP training and hardware-aware fine-tuning.
    eval_batch : int
        Trees per evaluation batch.
    """

    n_train: int
    n_val: int
    n_test: int
    train_steps: int
    hwa_steps: int
    eval_batch: int


#: The defaults of ``run_listops`` (and of ``analogkernels attention listops``)
#: in the reduced setting, its quick run and at full length. Here, like the
#: recipes, not in :mod:`~analogkernels.paper.lra` (which re-exports them), so
#: that the command line's help can name them without importing torch.
LISTOPS_SIZES = {
    "reduced": ListOpsSizes(20000, 0, 2000, 4000, 1000, 500),
    "quick": ListOpsSizes(8000, 0, 1000, 1500, 300, 500),
    "full": ListOpsSizes(96000, 2000, 2000, 50000, 5000, 250),
}


def load_model(path: Path) -> Any:
    """Load a model saved by :func:`listops_study` (``model.pt``).

    Parameters
    ----------
    path : Path
        The file.

    Returns
    -------
    analogkernels.paper.lra.Performer
        The model, on the CPU, with the architecture it was saved with (a bare
        state dict is a reduced-ListOps model).

    Raises
    ------
    Exception
        Whatever unpickling or loading the state raises when the file is not
        such a model.
    """
    import torch

    from . import lra
    from .listops import REDUCED

    saved = torch.load(path, map_location="cpu")
    if isinstance(saved, dict) and "arch" in saved:  # saved with its architecture
        # Files saved before the renaming (issue 17) use the old names.
        renamed = {"nb_features": "n_components", "seed": "random_state"}
        arch = {renamed.get(key, key): value for key, value in saved["arch"].items()}
        model = lra.Performer(**arch)
        saved = saved["state_dict"]
    else:
        model = lra.Performer(max_len=REDUCED.max_length)
    model.load_state_dict(saved)
    return model


def listops_study(
    out: Path,
    *,
    trees: tuple[int, int, int] | None = None,
    progress: Callable[[str], None] | None = None,
    **settings: Any,
) -> tuple[str, list[Path]]:
    """Train and evaluate the Performer on ListOps and write the results into ``out``.

    Parameters
    ----------
    out : Path
        The output folder (it must exist): ``listops.md``, ``listops.json``
        (the run's fields and the software versions), ``listops.png`` and
        ``model.pt`` (with its architecture when ``full``).
    trees : tuple of int, optional
        Training, validation and test tree counts (default: those of the setting).
    progress : callable, optional
        Called with a line of text as training goes; the elapsed time since the
        start is put in front of it.
    **settings
        Passed to :func:`analogkernels.paper.lra.run_listops` (``quick``,
        ``full``, ``seeds``, ``t_inference`` in seconds, ``train_steps``,
        ``device``, ...).

    Returns
    -------
    table : str
        The results table in Markdown, with the wall time and software versions.
    written : list of Path
        The files written.
    """
    import torch

    from . import lra

    n_train, n_val, n_test = trees or (None, None, None)
    t0 = time.perf_counter()

    def timed(msg: str) -> None:
        if progress is not None:
            progress(f"[{time.perf_counter() - t0:6.0f} s] {msg}")

    run = lra.run_listops(n_train=n_train, n_val=n_val, n_test=n_test, progress=timed, **settings)
    with atomic_write(out / "model.pt", "wb") as fh:
        torch.save(
            {"arch": run.model.arch, "state_dict": run.model.cpu().state_dict()}
            if settings.get("full")
            else run.model.state_dict(),
            fh,
        )
    versions = software_versions(torch=True)
    table = (
        run.table()
        + f"Wall time {time.perf_counter() - t0:.0f} s. Software: "
        + versions_text(versions)
        + ".\n"
    )
    with atomic_write(out / "listops.md") as fh:
        fh.write(table)
    record = {k: v for k, v in run.__dict__.items() if k != "model"}
    record["versions"] = versions
    write_json_atomic(out / "listops.json", record)
    plot_listops(record, out / "listops.png")
    return table, [out / "listops.md", out / "listops.json", out / "listops.png", out / "model.pt"]


#: Q/K/V of the Gaussian set: length, width and the scale of Q, K and V.
GAUSSIAN_QKV = (128, 64, (0.5, 0.5, 1.0))


def error_study(
    out: Path, *, model: Any = None, quick: bool = False, seeds: int = PAPER_SEEDS
) -> tuple[str, list[Path]]:
    """Measure the FAVOR+ error against softmax attention and write it into ``out``.

    Relative error ``‖A − Â‖_F / ‖A‖_F`` for ``s = k·d − 1`` SORF projections,
    FP and chip (HERMES preset), on four Gaussian Q/K/V sets
    (:data:`GAUSSIAN_QKV`) and, with ``model``, on the Q/K/V of its first layer
    for 16 reduced-ListOps trees.

    Parameters
    ----------
    out : Path
        The output folder (it must exist): ``attention_error.md``, ``.json``
        and ``.png``.
    model : analogkernels.paper.lra.Performer, optional
        A trained ListOps model (:func:`load_model`).
    quick : bool, default False
        k of :data:`QUICK_ATTENTION_KS` and at most :data:`QUICK_ATTENTION_SEEDS`
        seeds (else k of :data:`ATTENTION_KS`).
    seeds : int, default :data:`~analogkernels.paper.protocol.PAPER_SEEDS`
        Projection seeds.

    Returns
    -------
    table : str
        The error table in Markdown, with the software versions.
    written : list of Path
        The files written.
    """
    import numpy as np

    from . import lra

    rng = np.random.default_rng(0)
    L, d, scales = GAUSSIAN_QKV
    gauss = [tuple(rng.standard_normal((1, 1, L, d)) * s for s in scales) for _ in range(4)]
    sets = {f"gaussian (d={d})": gauss}
    if model is not None:
        from .listops import REDUCED, generate

        tokens, _ = generate(16, REDUCED, seed=123, pad_to=REDUCED.max_length)
        captured = lra.capture_qkv(model, tokens)
        sets["ListOps model layer 1 (d=32)"] = [captured[0]]
    ks = QUICK_ATTENTION_KS if quick else ATTENTION_KS
    seeds = min(seeds, QUICK_ATTENTION_SEEDS) if quick else seeds
    records = lra.attention_error_study(sets, ks=ks, seeds=seeds)
    versions = software_versions(torch=True)
    records = [{**r, "seeds": seeds, "versions": versions} for r in records]
    lines = [
        "# FAVOR+ attention error vs softmax attention (s = k·d − 1 projections)",
        "",
        "| Q/K/V | k | s | " + " | ".join(f"{BACKEND_LABELS[b]} error" for b in BACKENDS) + " |",
        "|---|---|---|" + "---|" * len(BACKENDS),
    ]
    by = {(r["source"], r["k"], r["backend"]): r for r in records}
    for src in sets:
        for k in ks:
            rs = [by[(src, k, b)] for b in BACKENDS]
            cells = " | ".join(f"{r['error_mean']:.4f} ± {r['error_std']:.4f}" for r in rs)
            lines.append(f"| {src} | {k} | {rs[0]['s']} | {cells} |")
    table = (
        "\n".join(lines) + f"\n\nRelative error ‖A − Â‖_F/‖A‖_F, mean ± std over {seeds} seeds "
        "(SORF projections, HERMES preset). Software: " + versions_text(versions) + ".\n"
    )
    written = [out / f"attention_error.{ext}" for ext in ("md", "json", "png")]
    with atomic_write(written[0]) as fh:
        fh.write(table)
    write_json_atomic(written[1], records)
    plot_attention_error(records, written[2])
    return table, written
