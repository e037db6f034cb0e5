"""MVM error of statistical vs iterative (program-and-verify) programming,
measured the way Le Gallo et al. measured the HERMES chip ("A 64-core mixed-signal
in-memory compute chip based on phase-change memory for deep neural network
inference", Nat. Electron. 6, 680–693, 2023): 2,048 random inputs (uniform, 30 % sparse) through one
256×256 core holding uniform weights with 30 % sparsity; the effectively
programmed weights Ŵ estimated by least squares; errors split into
ε_total = y − Wx, ε_linear = Ŵx − Wx, ε_residual = y − Ŵx (relative norms), and
the weight error std(W − Ŵ)/W_max, compared with N-bit digital weights.

HERMES reported: one device per polarity (ODP) ≈ 3-bit weights, two devices
(TDP) between 3 and 4 bits; Khaddam-Aljameh et al. ("HERMES-Core — a 1.59-TOPS/mm²
PCM on 14-nm CMOS in-memory compute core using 300-ps/LSB linearized CCO-based
ADCs", IEEE J. Solid-State Circuits 57, 1027–1038, 2022): 8-bit MVM error σ = 1.94 %.

Run: ``python examples/pcm_mvm_error.py``.
"""

from __future__ import annotations

import numpy as np

from analogkernels.analog import AnalogMatrix, CrossbarConfig


def sparse_uniform(rng, shape, sparsity=0.3):
    a = rng.uniform(-1, 1, shape)
    a[rng.random(shape) < sparsity] = 0.0
    return a


def equivalent_bits(weight_error: float) -> float:
    """Bits of a signed uniform quantiser with the same error on uniform weights:
    step = 1/(2^(N−1) − 1), σ = step/√12."""
    levels = 1.0 / (weight_error * np.sqrt(12.0))  # 2^(N−1) − 1
    return 1.0 + np.log2(levels + 1.0)


def main() -> None:
    rng = np.random.default_rng(0)
    W = sparse_uniform(rng, (256, 256))
    X = sparse_uniform(rng, (2048, 256))
    exact = X @ W.T
    print(
        f"{'programming':>11} {'devices':>7} | {'ε_total':>8} {'ε_linear':>8} {'ε_resid':>8} | "
        f"{'weight err':>10} {'≈ bits':>6}"
    )
    for devices in (1, 2):
        for programming in ("statistical", "iterative"):
            cfg = CrossbarConfig.hermes(devices_per_polarity=devices, programming=programming)
            m = AnalogMatrix.program(W, cfg, seed=1)
            Y = m.matmul(X, seed=2)
            W_hat = np.linalg.lstsq(X, Y, rcond=None)[0].T
            norm = np.linalg.norm(exact)
            e_total = np.linalg.norm(Y - exact) / norm
            e_lin = np.linalg.norm(X @ W_hat.T - exact) / norm
            e_res = np.linalg.norm(Y - X @ W_hat.T) / norm
            w_err = np.std(W - W_hat) / np.abs(W).max()
            print(
                f"{programming:>11} {'ODP' if devices == 1 else 'TDP':>7} | {e_total:8.4f} "
                f"{e_lin:8.4f} {e_res:8.4f} | {w_err:10.4f} {equivalent_bits(w_err):6.2f}"
            )
    print("\nHERMES measured: ODP ≈ 3-bit weights, TDP between 3 and 4 bits.")


if __name__ == "__main__":
    main()
