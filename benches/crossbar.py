"""Crossbar MVM benchmark: every preset a user picks, as shipped, against a numpy float32 GEMM.

Each row times ``AnalogMatrix.matmul(X)`` (a fresh read: DAC, exact integer
accumulation, per-MVM noise, ADC, affine correction, drift compensation — every stage the
preset has on) for a matrix programmed with the preset and drifted to one hour
(``drift_to(3600.0)``, as the paper reads its chip), against ``X @ W.T`` (numpy float32,
BLAS limited to the same thread count), timed in alternating rounds in one process; and,
when aihwkit is importable, against aihwkit's ``AnalogLinear`` with ``InferenceRPUConfig``
(PCMLikeNoiseModel, drifted to 3600 s) on the same shape. Presets, named exactly as
constructed (a name that turns a default stage off would say so; none here does):

- ``CrossbarConfig.hermes()`` — the default (HERMES devices, PCM read noise, output noise,
  12-bit ADC, global drift compensation);
- ``CrossbarConfig.hermes_measured()`` — plus the fitted fixed DAC range (a quantile
  of the inputs, resolved on the benchmark's ``X`` as a feature map's ``fit`` does),
  ADC offset and output noise (``analogkernels.calibration``);
- ``CrossbarConfig.hermes(ir_drop=1.0)`` — plus aihwkit's IR-drop model;
- ``CrossbarConfig.hermes(noise_model="pcm")`` — aihwkit's PCMLikeNoiseModel devices;
- ``CrossbarConfig.hermes(programming="iterative")`` — devices programmed by the
  program-and-verify engine (the read is timed; programming is not);
- ``CrossbarConfig.ideal()`` — quantisation only.

Shapes X 4096×256 → 512, 50000×22 → 704 and 4096×2048 → 2048; 1 and 2 threads. Each
shape × thread count runs in its own process (pools and allocator state left by one case
skewed the next by up to 30 %). Run ``python benches/crossbar.py [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Callable

import numpy as np
from _timing import best_times
from threadpoolctl import threadpool_limits

import analogkernels
from analogkernels.analog import AnalogMatrix, CrossbarConfig

try:  # optional peer
    import torch
    from aihwkit.inference import PCMLikeNoiseModel
    from aihwkit.nn import AnalogLinear
    from aihwkit.simulator.configs import InferenceRPUConfig
except ImportError:  # pragma: no cover
    AnalogLinear = None

PRESETS: dict[str, CrossbarConfig] = {
    "CrossbarConfig.hermes()": CrossbarConfig.hermes(),
    "CrossbarConfig.hermes_measured()": CrossbarConfig.hermes_measured(),
    "CrossbarConfig.hermes(ir_drop=1.0)": CrossbarConfig.hermes(ir_drop=1.0),
    'CrossbarConfig.hermes(noise_model="pcm")': CrossbarConfig.hermes(noise_model="pcm"),
    'CrossbarConfig.hermes(programming="iterative")': CrossbarConfig.hermes(
        programming="iterative"
    ),
    "CrossbarConfig.ideal()": CrossbarConfig.ideal(),
}
SHAPES = [(4096, 256, 512), (50000, 22, 704), (4096, 2048, 2048)]
CASES = [(shape, threads) for shape in SHAPES for threads in (1, 2)]


def aihwkit_layer(W: np.ndarray, threads: int):
    cfg = InferenceRPUConfig()
    cfg.noise_model = PCMLikeNoiseModel(g_max=25.0)
    layer = AnalogLinear(W.shape[1], W.shape[0], bias=False, rpu_config=cfg)
    layer.set_weights(torch.from_numpy(W))
    layer.eval()
    layer.program_analog_weights()
    layer.drift_analog_weights(3600.0)
    torch.set_num_threads(threads)
    return layer


def run_case(n: int, d_in: int, d_out: int, threads: int, rounds: int) -> list[dict]:
    """Times every preset on one shape and thread count (each preset alternating
    with the GEMM) and returns one record per preset."""
    rng = np.random.default_rng(0)
    W = rng.standard_normal((d_out, d_in)).astype(np.float32)
    X = rng.standard_normal((n, d_in)).astype(np.float32)
    analogkernels.set_num_threads(threads)
    records = []
    with threadpool_limits(threads):
        peer = None
        if AnalogLinear is not None:
            layer = aihwkit_layer(W, threads)
            xt = torch.from_numpy(X)

            def run_aihwkit():
                with torch.no_grad():
                    return layer(xt)

            peer = run_aihwkit
        for name, config in PRESETS.items():
            # A range set from data is resolved on the inputs, as ``fit`` does.
            chip = config.with_input_range_from(X)
            m = AnalogMatrix.program(W, chip, seed=0).drift_to(3600.0)
            fns: dict[str, Callable[[], object]] = {
                "gemm": lambda: X @ W.T,
                "analog": lambda m=m: m.matmul(X),
            }
            if peer is not None and name == "CrossbarConfig.hermes()":
                fns["aihwkit"] = peer
            t = best_times(fns, rounds)
            records.append(
                {
                    "preset": name,
                    "shape": f"{n}x{d_in}->{d_out}",
                    "threads": threads,
                    "gemm_ms": t["gemm"] * 1e3,
                    "analog_ms": t["analog"] * 1e3,
                    "ratio": t["analog"] / t["gemm"],
                    "aihwkit_ms": t["aihwkit"] * 1e3 if "aihwkit" in t else None,
                }
            )
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds (smoke run)")
    parser.add_argument("--case", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--json", help="also write the records to this JSON file")
    args = parser.parse_args()
    rounds = 2 if args.quick else 7
    if args.case is not None:
        (n, d_in, d_out), threads = CASES[args.case]
        print(json.dumps(run_case(n, d_in, d_out, threads, rounds)), flush=True)
        return
    print(
        f"analogkernels {analogkernels.__version__}; numpy {np.__version__}; "
        f"aihwkit: {'yes' if AnalogLinear else 'no'}; rounds {rounds}"
    )
    header = (
        f"{'preset':>46} {'shape':>18} {'thr':>3} | {'GEMM ms':>8} {'analog ms':>9} "
        f"{'ratio':>5} | {'aihwkit ms':>10} {'speed-up':>8}"
    )
    print(header)
    print("-" * len(header))
    records = []
    # Each case in a fresh process: thread pools (ours, BLAS, torch's OpenMP)
    # and the allocator's state left by one case skewed the next by up to 30 %.
    for i in range(len(CASES)):
        cmd = [sys.executable, __file__, "--case", str(i)] + (["--quick"] if args.quick else [])
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        for r in json.loads(out.strip().splitlines()[-1]):
            records.append(r)
            peer = (
                f"{r['aihwkit_ms']:10.1f} {r['aihwkit_ms'] / r['analog_ms']:8.1f}"
                if r["aihwkit_ms"]
                else f"{'-':>10} {'-':>8}"
            )
            print(
                f"{r['preset']:>46} {r['shape']:>18} {r['threads']:>3} | {r['gemm_ms']:8.2f} "
                f"{r['analog_ms']:9.2f} {r['ratio']:5.2f} | {peer}",
                flush=True,
            )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(records, f, indent=1)


if __name__ == "__main__":
    main()
