"""Timing helper shared by the benchmark scripts."""

from __future__ import annotations

import time
from collections.abc import Callable


def best_times(
    fns: dict[str, Callable[[], object]], rounds: int, calls: int = 1
) -> dict[str, float]:
    """Minimum seconds per call of each function over ``rounds`` alternating
    rounds (A, B, C, A, B, C, ...), so that a slow spell of a shared machine hits
    every contender alike. A short pause before each batch lets the previous
    contender's idle workers (OpenMP threads spin-wait after a parallel region,
    BLAS threads likewise) go to sleep, so they do not steal a core from the next."""
    for f in fns.values():
        f()
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(rounds):
        for k, f in fns.items():
            time.sleep(0.3)
            t0 = time.perf_counter()
            for _ in range(calls):
                f()
            best[k] = min(best[k], (time.perf_counter() - t0) / calls)
    return best
