"""Energy and latency of random-feature inference: simulated chip vs GPU.

A parametric model, every constant cited.

**Analog projection**: Table I of Le Gallo et al., "A 64-core mixed-signal
in-memory compute chip based on phase-change memory for deep neural network
inference", Nat. Electron. 6, 680–693 (2023) (the HERMES chip), MVM with 64
cores at 100 % utilisation (energy covers crossbar, ADCs and PWM inputs;
1 MAC = 2 ops):

================ ========= ========== =============
mode              energy    latency    per core MVM
================ ========= ========== =============
1-phase           0.86 µJ   133 ns     13.4 nJ
4-phase           3.38 µJ   520 ns     52.8 nJ
================ ========= ========== =============

``W`` (s × d) occupies ``ceil(s/256) · ceil(d/256)`` cores (the tile of
:meth:`CrossbarConfig.hermes() <analogkernels.analog.CrossbarConfig.hermes>`); each costs one
full-core MVM per sample (conservative: a partly used core is charged in full;
the LDPU's affine correction is not in the published MVM energy and is not
added). Cores work in parallel: one sample per MVM latency (no replication of
``W``, as in the paper's released configurations), more than 64 cores in
sequence. The accuracy results of Le Gallo et al. (2023) use 4-phase mode, the
default here.

**Digital parts** (feature function, ridge) and the **GPU baseline**: NVIDIA
A100 SXM4 datasheet, 19.5 TFLOPS FP32 (non-tensor) at 400 W board power, i.e.
20.5 pJ per FLOP at full utilisation — optimistic for the GPU, and used for the
digital parts of the analog pipeline too. FLOP counts per sample: projection
``2·s·d``; RBF features ``2·F_TRIG·s`` (a cos and a sin per projection, each
``F_TRIG`` = 10 FLOP as a polynomial evaluation) + ``2s`` scaling; arc-cosine
order 0: ``s`` comparisons; ridge ``2·D`` (D features).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .._validation import check_int
from ..analog import CrossbarConfig
from ..datasets import WIDTHS
from ..exceptions import ConfigError
from ..kernel_approximation import paper_feature_counts
from .protocol import KERNELS, PAPER_KS

__all__ = ["GPU_A100", "HERMES_MVM", "EnergyEstimate", "estimate"]

#: Le Gallo et al. (2023), Table I, MVM rows: (energy for 64 cores in J, latency in s);
#: the default mode first.
HERMES_MVM = {"4-phase": (3.38e-6, 520e-9), "1-phase": (0.86e-6, 133e-9)}
#: The HERMES MVM modes (``mode`` of :func:`estimate`, ``analogkernels energy --mode``).
MODES = tuple(HERMES_MVM)
#: The mode of the published accuracy results (Le Gallo et al., 2023).
DEFAULT_MODE = MODES[0]
#: The kernel of :func:`estimate` and :func:`table` unless told otherwise (one of
#: :data:`~analogkernels.paper.protocol.KERNELS`).
DEFAULT_KERNEL = "rbf"
HERMES_CORES = 64
#: Outputs × inputs of one HERMES core: the tile of the simulated chip's preset.
HERMES_CORE_SHAPE = (lambda c: (c.tile_rows, c.tile_cols))(CrossbarConfig.hermes())
#: NVIDIA A100 SXM4 datasheet: FP32 FLOP/s and board power (W).
GPU_A100 = {"flops": 19.5e12, "power_w": 400.0}
#: FLOPs of one cos or sin as a polynomial evaluation.
F_TRIG = 10


@dataclass(frozen=True)
class EnergyEstimate:
    """Per-sample energy (J) and throughput (samples/s) of both designs."""

    n_inputs: int
    n_projections: int
    kernel: str
    cores: int
    analog_energy_j: float
    analog_samples_per_s: float
    gpu_energy_j: float
    gpu_samples_per_s: float

    @property
    def energy_ratio(self) -> float:
        """GPU energy / analog energy (> 1: the chip is more efficient)."""
        return self.gpu_energy_j / self.analog_energy_j


def feature_flops(kernel: str, s: int) -> tuple[float, int]:
    """FLOPs of the digital feature function and the number of features D.

    Parameters
    ----------
    kernel : {"rbf", "arccos0"}
        A kernel of :data:`~analogkernels.paper.protocol.KERNELS`; ``"arccos"``
        (the estimator's name of the order-0 arc-cosine kernel) is accepted too.
    s : int
        Number of random projections.

    Returns
    -------
    flops : float
        FLOPs of the feature function per sample.
    n_features : int
        Number of features D.
    """
    if kernel == "arccos":
        kernel = "arccos0"
    if kernel not in KERNELS:
        raise ConfigError(f"unknown kernel {kernel!r}; expected one of {KERNELS}")
    if kernel == "rbf":
        return 2.0 * F_TRIG * s + 2.0 * s, 2 * s
    return float(s), s


def estimate(
    d: int, s: int, *, kernel: str = DEFAULT_KERNEL, mode: str = DEFAULT_MODE
) -> EnergyEstimate:
    """Energy per sample and throughput of a random-feature classifier.

    Energy per sample and samples per second with ``s`` projections of ``d``
    inputs, on HERMES (+ digital) and on a GPU.

    Parameters
    ----------
    d, s : int
        Input dimension and number of random projections.
    kernel : {"rbf", "arccos0"}
    mode : {"4-phase", "1-phase"}
        HERMES MVM mode.
    """
    d = check_int(d, "d", low=1, high=2**62)
    s = check_int(s, "s", low=1, high=2**62)
    if mode not in MODES:
        raise ConfigError(f"unknown mode {mode!r}; expected one of {sorted(MODES)}")
    e_flop = GPU_A100["power_w"] / GPU_A100["flops"]
    f_feat, n_feat = feature_flops(kernel, s)
    f_ridge = 2.0 * n_feat
    f_proj = 2.0 * s * d
    core_rows, core_cols = HERMES_CORE_SHAPE  # the s outputs on rows, the d inputs on columns
    cores = math.ceil(s / core_rows) * math.ceil(d / core_cols)
    e_chip, latency = HERMES_MVM[mode]
    e_core = e_chip / HERMES_CORES
    rounds = math.ceil(cores / HERMES_CORES)
    analog_energy = cores * e_core + (f_feat + f_ridge) * e_flop
    # The chip and the digital engine pipeline: the slower sets the rate.
    digital_rate = GPU_A100["flops"] / (f_feat + f_ridge)
    analog_rate = min(1.0 / (rounds * latency), digital_rate)
    total = f_proj + f_feat + f_ridge
    return EnergyEstimate(
        n_inputs=d,
        n_projections=s,
        kernel=kernel,
        cores=cores,
        analog_energy_j=analog_energy,
        analog_samples_per_s=analog_rate,
        gpu_energy_j=total * e_flop,
        gpu_samples_per_s=GPU_A100["flops"] / total,
    )


#: Input widths of the paper's datasets (the configurations of its code,
#: ``imka-ridge-regression/experiments/hardware/config``), those the loaders
#: give (:data:`analogkernels.datasets.WIDTHS`).
PAPER_WIDTHS = {
    name: WIDTHS[name] for name in ("ijcnn1", "cod-rna", "skin", "magic04", "letter", "eeg")
}


def table(datasets: list[str], *, kernel: str = DEFAULT_KERNEL, mode: str = DEFAULT_MODE) -> str:
    """A markdown table of :func:`estimate` for the paper's numbers of projections.

    Parameters
    ----------
    datasets : list of str
        Names of :data:`PAPER_WIDTHS`.
    kernel : {"rbf", "arccos0"}
        The kernel.
    mode : {"4-phase", "1-phase"}
        HERMES MVM mode.

    Returns
    -------
    str
        Markdown: per dataset and k of :data:`~analogkernels.paper.protocol.PAPER_KS`
        (``s = 2**k · d − k``), the cores, the energy per sample (nJ) and the
        throughput (Msamples/s) of both designs.

    Raises
    ------
    ConfigError
        An unknown dataset, kernel or mode.
    """
    lines = [
        f"Energy per sample and throughput, {kernel} features, HERMES {mode} vs NVIDIA A100 "
        "(FP32, 400 W, full utilisation).",
        "",
        "| dataset | d | k | s | cores | AIMC nJ/sample | GPU nJ/sample | GPU/AIMC energy "
        "| AIMC Msamples/s | GPU Msamples/s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in datasets:
        if name not in PAPER_WIDTHS:
            raise ConfigError(f"unknown dataset {name!r}; expected one of {sorted(PAPER_WIDTHS)}")
        d = PAPER_WIDTHS[name]
        for k, s in zip(PAPER_KS, paper_feature_counts(d, PAPER_KS), strict=True):
            e = estimate(d, s, kernel=kernel, mode=mode)
            lines.append(
                f"| {name} | {d} | {k} | {s} | {e.cores} | {e.analog_energy_j * 1e9:.1f} | "
                f"{e.gpu_energy_j * 1e9:.1f} | {e.energy_ratio:.2f} | "
                f"{e.analog_samples_per_s / 1e6:.2f} | {e.gpu_samples_per_s / 1e6:.2f} |"
            )
    return "\n".join(lines) + "\n"
