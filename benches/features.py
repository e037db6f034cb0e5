"""Random-feature benchmark against scikit-learn, in one process.

1. Transform 50000×22 → 704 features (float32): ``RBFSampler(n_components=704)``
   against ``RandomFourierFeatures(n_components=352)`` (cos and sin of 352
   projections = 704 features) with the RFF and the fused SORF samplers.
2. Feature map + ridge fit: ``RBFSampler`` + ``sklearn RidgeClassifier`` (the
   n × 704 feature matrix materialised) against ``RidgeClassifier(feature_map=...)``
   (streamed normal equations, float64 accumulation), time and peak traced
   memory (``tracemalloc``: numpy registers its buffers with it).

Timed in alternating rounds (minimum of each); prints ratios (peer / ours).
Run: ``python benches/features.py [--quick]``.
"""

from __future__ import annotations

import argparse
import tracemalloc
from collections.abc import Callable

import numpy as np
from _timing import best_times
from sklearn.kernel_approximation import RBFSampler
from sklearn.linear_model import RidgeClassifier as SkRidge

from analogkernels.kernel_approximation import RandomFourierFeatures
from analogkernels.linear_model import RidgeClassifier


def peak_memory(fn: Callable[[], object]) -> float:
    """Peak traced allocation (MB) during ``fn``."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    rounds = 3 if args.quick else 7
    rng = np.random.default_rng(0)
    X = rng.standard_normal((50000, 22)).astype(np.float32)
    y = (X[:, 0] * X[:, 1] + 0.3 * X[:, 2] > 0).astype(int)

    sk = RBFSampler(gamma=0.05, n_components=704, random_state=0).fit(X)
    rff = RandomFourierFeatures(gamma=0.05, n_components=352, random_state=0).fit(X)
    sorf = RandomFourierFeatures(gamma=0.05, n_components=352, sampler="sorf", random_state=0)
    sorf.fit(X)

    t = best_times(
        {
            "sklearn": lambda: sk.transform(X),
            "rff": lambda: rff.transform(X),
            "sorf": lambda: sorf.transform(X),
        },
        rounds,
    )
    print("transform 50000x22 -> 704 features, float32")
    print(f"  sklearn RBFSampler       {t['sklearn'] * 1e3:8.1f} ms")
    for k in ("rff", "sorf"):
        speedup = t["sklearn"] / t[k]
        print(f"  analogkernels {k:<5}      {t[k] * 1e3:8.1f} ms   speed-up {speedup:.2f}x")

    def sk_pipeline():
        phi = RBFSampler(gamma=0.05, n_components=704, random_state=0).fit_transform(X)
        return SkRidge(alpha=0.5).fit(phi, y)

    def ours(sampler):
        fm = RandomFourierFeatures(gamma=0.05, n_components=352, sampler=sampler, random_state=0)
        return lambda: RidgeClassifier(alpha=0.5, feature_map=fm).fit(X, y)

    fits = {"sklearn": sk_pipeline, "rff": ours("rff"), "sorf": ours("sorf")}
    t = best_times(fits, max(2, rounds // 2))
    mem = {k: peak_memory(f) for k, f in fits.items()}
    print("feature map + ridge fit (50000 x 704 features)")
    print(f"  sklearn RBFSampler+Ridge {t['sklearn'] * 1e3:8.1f} ms  peak {mem['sklearn']:7.1f} MB")
    for k in ("rff", "sorf"):
        print(
            f"  analogkernels {k:<5}      {t[k] * 1e3:8.1f} ms  peak {mem[k]:7.1f} MB   "
            f"speed-up {t['sklearn'] / t[k]:.2f}x, memory {mem[k] / mem['sklearn']:.3f}x"
        )
    # Floor of the float64 accumulation the issue asks for: ΦᵀΦ of the 50000 × 704
    # features in float64 (BLAS syrk, every core), the features already computed.
    phi64 = rff.fit(X).transform(X).astype(np.float64)
    t_gram = best_times({"gram": lambda: phi64.T @ phi64}, max(2, rounds // 2))["gram"]
    print(
        f"  floor: float64 Gram alone  {t_gram * 1e3:6.1f} ms   "
        f"(largest possible speed-up {t['sklearn'] / t_gram:.2f}x)"
    )


if __name__ == "__main__":
    main()
