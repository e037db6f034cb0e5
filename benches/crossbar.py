"""Crossbar MVM benchmark: full-fidelity simulated MVM against a numpy float32 GEMM.

Full fidelity: 8-bit input DAC (per-vector abs-max), PCM conductances (aihwkit
PCMLikeNoiseModel) drifted to 3600 s with 1/f read noise, Gaussian output noise
drawn per MVM and output, 12-bit ADC, per-column affine correction, global drift
compensation. Shapes X 4096×256 → 512 and 50000×22 → 704, 1 and 2 threads.
Prints the time of each and the ratio to ``X @ W.T`` (numpy float32, BLAS limited
to the same thread count), timed in alternating rounds in one process; and, when
aihwkit is importable, to aihwkit's ``AnalogLinear`` with ``InferenceRPUConfig``
and PCMLikeNoiseModel drifted to 3600 s.

Each shape × thread count runs in its own process. Run:
``python benches/crossbar.py [--quick]``.
"""

from __future__ import annotations

import argparse
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


def full_fidelity_config() -> CrossbarConfig:
    return CrossbarConfig.hermes(noise_model="pcm", w_noise=0.0, output_bits=12)


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


CASES = [(4096, 256, 512, 1), (4096, 256, 512, 2), (50000, 22, 704, 1), (50000, 22, 704, 2)]


def run_case(n: int, d_in: int, d_out: int, threads: int, rounds: int) -> None:
    """Times one shape and thread count (all contenders, alternating) and
    prints its row."""
    rng = np.random.default_rng(0)
    W = rng.standard_normal((d_out, d_in)).astype(np.float32)
    X = rng.standard_normal((n, d_in)).astype(np.float32)
    m = AnalogMatrix.program(W, full_fidelity_config(), seed=0)
    m.drift_to(3600.0, seed=1)
    k = sum(rows for _, _, rows, _ in m.tiles)
    m.set_affine(rng.uniform(0.98, 1.02, k), rng.uniform(-1e-3, 1e-3, k))
    analogkernels.set_num_threads(threads)
    with threadpool_limits(threads):
        fns: dict[str, Callable[[], object]] = {
            "gemm": lambda: X @ W.T,
            "analog": lambda: m.matmul(X, seed=2),
        }
        if AnalogLinear is not None:
            layer = aihwkit_layer(W, threads)
            xt = torch.from_numpy(X)

            def run_aihwkit():
                with torch.no_grad():
                    return layer(xt)

            fns["aihwkit"] = run_aihwkit
        t = best_times(fns, rounds)
    ratio = t["analog"] / t["gemm"]
    peer = t.get("aihwkit")
    peer_s = f"{peer * 1e3:10.1f} {peer / t['analog']:8.2f}" if peer else f"{'-':>10} {'-':>8}"
    print(
        f"{f'{n}x{d_in}->{d_out}':>20} {threads:>3} | {t['gemm'] * 1e3:13.2f} "
        f"{t['analog'] * 1e3:10.2f} {ratio:6.2f} | {peer_s}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds (smoke run)")
    parser.add_argument("--case", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    rounds = 3 if args.quick else 9
    if args.case is not None:
        run_case(*CASES[args.case], rounds)
        return
    print(f"analogkernels {analogkernels.__version__}; aihwkit: {'yes' if AnalogLinear else 'no'}")
    header = (
        f"{'shape':>20} {'thr':>3} | {'numpy GEMM ms':>13} {'analog ms':>10} "
        f"{'ratio':>6} | {'aihwkit ms':>10} {'speed-up':>8}"
    )
    print(header)
    print("-" * len(header))
    # Each case in a fresh process: thread pools (ours, BLAS, torch's OpenMP)
    # and the allocator's state left by one case skewed the next by up to 30 %.
    for i in range(len(CASES)):
        cmd = [sys.executable, __file__, "--case", str(i)] + (["--quick"] if args.quick else [])
        subprocess.run(cmd, check=True)


if __name__ == "__main__":
    main()
