"""PCM program-and-verify: speed for a HERMES core and a whole chip, and the
calibration curve against the published programming spreads.

1. Program one 256×256 core (4 devices per cell, two per polarity: 262,144
   devices) and a 64-core chip (16.8 M devices) with the default iteration limit,
   uniform random weights; print the times and the yield report.
2. Draw the programming error σ(G_target) against aihwkit's PCM polynomial and
   the HERMES-fitted cubic, ±20 % bands, as ``pcm_calibration.png``.

Run: ``python benches/pcm.py [--quick] [--out DIR]``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import analogkernels
from analogkernels.pcm import DeviceArray, PCMConfig


def chip_targets(cores: int, seed: int = 0) -> np.ndarray:
    """Polarity targets of `cores` 256×256 cores with uniform weights in [-1, 1]:
    the weight's polarity gets |w|·2·g_max (two devices), the other polarity 0."""
    rng = np.random.default_rng(seed)
    w = rng.uniform(-1, 1, cores * 256 * 256)
    g = np.abs(w) * 2 * 25.0
    pos = np.where(w > 0, g, 0.0)
    neg = np.where(w > 0, 0.0, g)
    return np.stack([pos, neg], axis=1).ravel()


def time_programming(cores: int, threads: int) -> tuple[float, dict]:
    analogkernels.set_num_threads(threads)
    arr = DeviceArray(chip_targets(cores), PCMConfig(devices_per_polarity=2, seed=1))
    t0 = time.perf_counter()
    report = arr.program()
    return time.perf_counter() - t0, report


def calibration_plot(path: Path, n: int) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lines = []
    g_hat = np.linspace(0.1, 1.0, 10)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), constrained_layout=True)
    laws = {
        "PCM-like (aihwkit PCMLikeNoiseModel, g_max 25 µS)": (
            PCMConfig.pcm_like(),
            lambda g: 0.26348 + 1.9650 * g - 1.1731 * g**2,
        ),
        "HERMES-fitted cubic (aihwkit HermesNoiseModel, 1 device, 10.35 µS)": (
            PCMConfig.hermes(),
            lambda g: 0.15781817 + 2.32443916 * g - 2.16310839 * g**2 + 0.68841818 * g**3,
        ),
    }
    for ax, (title, (cfg, law)) in zip(axes, laws.items(), strict=True):
        sim = []
        for gh in g_hat:
            arr = DeviceArray(np.full(n, gh * cfg.g_max), cfg)
            arr.program()
            sim.append(np.std(arr.conductance - gh * cfg.g_max))
        sim = np.array(sim)
        ref = law(g_hat)
        ax.fill_between(
            g_hat * cfg.g_max, 0.8 * ref, 1.2 * ref, color="0.85", label="published ±20 %"
        )
        ax.plot(g_hat * cfg.g_max, ref, "k-", label="published σ")
        ax.plot(
            g_hat * cfg.g_max, sim, "o-", color="tab:red", label="program-and-verify (simulated)"
        )
        ax.set_xlabel("target conductance (µS)")
        ax.set_ylabel("σ of programmed − target (µS)")
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
        ratio = sim / ref
        lines.append(f"{title}: σ_sim/σ_published from {ratio.min():.3f} to {ratio.max():.3f}")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("benches"))
    args = parser.parse_args()
    for cores, label in [
        (1, "one 256x256 core (262,144 devices)"),
        (64, "64-core chip (16.8 M devices)"),
    ]:
        if args.quick and cores == 64:
            cores, label = 8, "8 cores (2.1 M devices)"
        for threads in (1, 2):
            t, r = time_programming(cores, threads)
            conv = 100 * r["converged_healthy"]
            print(
                f"{label:<38} threads={threads}: {t:7.3f} s; converged {conv:.2f} % "
                f"of healthy targets, mean {r['mean_iterations']:.2f} trim iterations, "
                f"{r['total_pulses']:,} pulses"
            )
    analogkernels.set_num_threads(0)
    args.out.mkdir(parents=True, exist_ok=True)
    for line in calibration_plot(args.out / "pcm_calibration.png", 2000 if args.quick else 20000):
        print(line)
    print(f"wrote {args.out / 'pcm_calibration.png'}")


if __name__ == "__main__":
    main()
