"""Independent plain-NumPy reference of the noise-free crossbar datapath.

Stages 1 (mapping), 4 (input DAC), 5 (exact accumulation), 7 (ADC, rescaling,
affine correction, tile sums in input-tile order) and 8 (drift compensation,
which is exactly 1 without noise), written from the specification in
``rust/core/src/crossbar.rs`` with int64/float64 numpy arithmetic — no code is
shared with the engine.
"""

from __future__ import annotations

import numpy as np


def reference_matmul(
    W: np.ndarray,
    X: np.ndarray,
    *,
    tile_rows: int,
    tile_cols: int,
    weight_scaling: str = "tile",
    devices_per_polarity: int = 2,
    conductance_bits: int = 14,
    input_bits: int = 8,
    input_range: float | None = None,
    output_bits: int = 0,
    out_bound: float = 12.0,
    affine: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    W = np.asarray(W, dtype=np.float64)
    X = np.asarray(X, dtype=np.float64)
    out_dim, in_dim = W.shape
    n = X.shape[0]
    full = 2**conductance_bits
    dev_max = full // devices_per_polarity
    m = max(2 ** (input_bits - 1) - 1, 1)  # 1 bit: ternary codes
    unit = 1.0 / (float(m) * float(full))
    y = np.zeros((n, out_dim))
    affine_index = 0
    for r0 in range(0, out_dim, tile_rows):
        for c0 in range(0, in_dim, tile_cols):
            w = W[r0 : r0 + tile_rows, c0 : c0 + tile_cols]
            rows = w.shape[0]
            # 1. mapping: integer codes, split over devices (first device first)
            if weight_scaling == "tile":
                w_max = np.full(rows, np.abs(w).max())
            else:
                w_max = np.abs(w).max(axis=1)
            with np.errstate(divide="ignore", over="ignore"):
                w_max = np.where(np.isfinite(float(full) / w_max), w_max, 0.0)
                q = np.where(w_max > 0, float(full) / w_max, 0.0)
            codes = np.rint(w * q[:, None]).astype(np.int64)
            mag = np.abs(codes)
            split = []
            rest = mag.copy()
            for _ in range(devices_per_polarity):
                take = np.minimum(rest, dev_max)
                split.append(take)
                rest = rest - take
            g = np.sign(codes) * sum(split)
            # 4. DAC
            xs = X[:, c0 : c0 + tile_cols]
            if input_range is None:
                s_in = np.abs(xs).max(axis=1)
            else:
                s_in = np.full(n, float(input_range))
            with np.errstate(divide="ignore", over="ignore"):
                s_in = np.where(np.isfinite(float(m) / s_in), s_in, 0.0)
                ratio = np.where(s_in > 0, float(m) / s_in, 0.0)
            xc = np.clip(np.rint(xs * ratio[:, None]), -m, m).astype(np.int64)
            # 5. exact accumulation
            acc = xc @ g.T
            # 7. ADC, rescale, (8. compensation = 1), affine; products of
            # constants are formed first, each rounded once:
            #   ADC:    clip(rint(acc·(unit·k/B)), ±k) · (B/k·s_in) · (w_max·1·a) + b
            #   no ADC: acc·unit · s_in · (w_max·1·a) + b
            if affine is not None:
                a = affine[0][affine_index : affine_index + rows]
                b = affine[1][affine_index : affine_index + rows]
            else:
                a, b = np.ones(rows), np.zeros(rows)
            gain = (w_max * 1.0) * a
            if output_bits > 0:
                k = float(max(2 ** (output_bits - 1) - 1, 1))
                code = np.clip(np.rint(acc.astype(np.float64) * (unit * (k / out_bound))), -k, k)
                v = code * ((out_bound / k) * s_in)[:, None]
            else:
                v = acc.astype(np.float64) * unit * s_in[:, None]
            v = v * gain[None, :] + b[None, :]
            affine_index += rows
            y[:, r0 : r0 + rows] = y[:, r0 : r0 + rows] + v
    return y
