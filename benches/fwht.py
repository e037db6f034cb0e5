"""FWHT benchmark: analogkernels against the peers a user would pick, in one process.

Peers: ffht-unofficial (``ffht.fht``, in place, one vector per call: batches are a
Python loop over rows, as a user would write it), fht-cpu (``fht_cpu.fht``, in
place, OpenMP over rows) and ``x @ scipy.linalg.hadamard(n).T`` (numpy GEMM, for
n ≤ 2^12 where the matrix fits comfortably). Each row prints ns/element,
GB/s (one read + one write of the array per call), and the ratio
``time(fastest peer) / time(ours)`` (≥ 1: we are faster). analogkernels is timed
in place (``fwht(x, out=x)``) like the peers; the allocating call
``fwht(x)`` is shown too.

Run: ``python benches/fwht.py [--quick]`` (``pip install '.[bench]'`` and
``pip install --no-build-isolation ffht-unofficial`` first for the peers).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable

import numpy as np
import scipy.linalg

import analogkernels
from analogkernels import hadamard

try:
    import ffht
except ImportError:  # pragma: no cover - optional peer
    ffht = None
try:
    import fht_cpu
except ImportError:  # pragma: no cover - optional peer
    fht_cpu = None
try:
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover
    threadpool_limits = None


def calls_per_batch(fn: Callable[[], object], seconds: float) -> int:
    """How many calls of ``fn`` take about ``seconds``."""
    fn()
    number = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        if time.perf_counter() - t0 >= seconds or number >= 1 << 20:
            return number
        number *= 2


def best_times(fns: dict[str, Callable[[], object]], min_total: float, rounds: int = 9):
    """Seconds per call of each function: the minimum over ``rounds`` batches.

    The contenders are timed in alternating rounds (A, B, C, A, B, C, ...) so
    that a slow spell of a shared machine hits all of them alike. A short pause
    before each batch lets the previous contender's idle workers (OpenMP threads
    spin-wait for a while after a parallel region) go to sleep, so that they do
    not steal a core from the next one.
    """
    numbers = {k: calls_per_batch(f, min_total / rounds) for k, f in fns.items()}
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(rounds):
        for k, f in fns.items():
            time.sleep(0.02)
            t0 = time.perf_counter()
            for _ in range(numbers[k]):
                f()
            best[k] = min(best[k], (time.perf_counter() - t0) / numbers[k])
    return best


def best_time(fn: Callable[[], object], min_total: float = 0.2) -> float:
    """Seconds per call of one function (see :func:`best_times`)."""
    return best_times({"f": fn}, min_total)["f"]


def copy_bandwidth() -> float:
    """GB/s of a 512 MB numpy copy (read + write)."""
    src = np.ones(512 * 1024 * 1024 // 8)
    dst = np.empty_like(src)
    np.copyto(dst, src)
    t = best_time(lambda: np.copyto(dst, src), min_total=1.0)
    return 2 * src.nbytes / t / 1e9


def peers(x: np.ndarray, threads: int) -> dict[str, Callable[[], object]]:
    rows, n = x.shape
    out: dict[str, Callable[[], object]] = {}
    if ffht is not None:
        if rows == 1:
            v = x[0]
            out["ffht"] = lambda: ffht.fht(v)
        elif rows * n <= (1 << 22):
            row_views = list(x)

            def ffht_rows() -> None:
                for r in row_views:
                    ffht.fht(r)

            out["ffht"] = ffht_rows
    if fht_cpu is not None:
        if rows == 1:
            v = x[0]
            out["fht-cpu"] = lambda: fht_cpu.fht(v, num_threads=threads)
        else:
            out["fht-cpu"] = lambda: fht_cpu.fht(x, num_threads=threads)
    if n <= (1 << 12) and rows * n <= (1 << 23):
        h = scipy.linalg.hadamard(n).astype(x.dtype)
        y = np.empty_like(x)

        def gemm() -> None:
            if threadpool_limits is not None:
                with threadpool_limits(threads):
                    np.matmul(x, h.T, out=y)
            else:
                np.matmul(x, h.T, out=y)

        out["numpy H@x"] = gemm
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (smoke run)")
    args = parser.parse_args()
    min_total = 0.05 if args.quick else 0.3

    cases = [(1, 1 << k) for k in (8, 10, 12, 16, 20)] + [(4096, 1024), (50000, 32), (256, 65536)]
    print(f"analogkernels {analogkernels.__version__}; isas {hadamard.available_isas()}")
    print(
        f"peers: ffht={'yes' if ffht else 'no'} fht-cpu={'yes' if fht_cpu else 'no'}; "
        f"cpus={os.cpu_count()}; python {sys.version.split()[0]}"
    )
    bw = copy_bandwidth()
    print(f"numpy 512 MB copy bandwidth: {bw:.2f} GB/s (read + write)\n")
    header = (
        f"{'shape':>12} {'dtype':>7} {'thr':>3} | {'ours ns/el':>10} {'GB/s':>6} "
        f"{'alloc ns/el':>11} | {'best peer':>10} {'ns/el':>7} | {'ratio':>6} | {'% copy bw':>9}"
    )
    print(header)
    print("-" * len(header))
    rng = np.random.default_rng(0)
    for threads in (1, 2):
        for rows, n in cases:
            for dtype in (np.float32, np.float64):
                x = rng.standard_normal((rows, n)).astype(dtype)
                elements = rows * n
                analogkernels.set_num_threads(threads)
                # normalize=False like the peers; values overflow to inf/nan over
                # repeats, which costs nothing extra on x86 (no denormals).
                v = x[0] if rows == 1 else x
                contenders = {
                    "ours": lambda v=v: hadamard.fwht(v, out=v),
                    "ours-alloc": lambda v=v: hadamard.fwht(v),
                    **peers(x, threads),
                }
                timings = best_times(contenders, min_total * len(contenders))
                t_ours = timings.pop("ours")
                t_alloc = timings.pop("ours-alloc")
                if timings:
                    peer, t_peer = min(timings.items(), key=lambda kv: kv[1])
                    ratio = f"{t_peer / t_ours:6.2f}"
                    peer_ns = f"{t_peer / elements * 1e9:7.3f}"
                else:
                    peer, ratio, peer_ns = "-", "     -", "      -"
                gbs = 2 * x.nbytes / t_ours / 1e9
                shape = f"{rows}x{n}" if rows > 1 else f"n=2^{n.bit_length() - 1}"
                ns_ours, ns_alloc = t_ours / elements * 1e9, t_alloc / elements * 1e9
                print(
                    f"{shape:>12} {np.dtype(dtype).name:>7} {threads:>3} | "
                    f"{ns_ours:10.3f} {gbs:6.2f} {ns_alloc:11.3f} | "
                    f"{peer:>10} {peer_ns} | {ratio} | {100 * gbs / bw:8.1f}%",
                    flush=True,
                )
    analogkernels.set_num_threads(1)
    v = rng.standard_normal(256).astype(np.float32)
    calls = best_times(
        {"in place": lambda: hadamard.fwht(v, out=v), "new": lambda: hadamard.fwht(v)}, 1.0
    )
    t_call, t_new = calls["in place"], calls["new"]
    print(
        f"\nper-call time at n=256 (f32, 1 thread): in place {t_call * 1e6:.3f} µs, "
        f"allocating {t_new * 1e6:.3f} µs"
    )
    analogkernels.set_num_threads(0)


if __name__ == "__main__":
    main()
