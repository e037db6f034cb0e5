"""Independent plain-NumPy reference of the noise-free crossbar datapath.

Stages 1 (mapping), 4 (input DAC), 5 (exact accumulation), 7 (ADC, rescaling,
affine correction, tile sums in input-tile order) and 8 (drift compensation,
which is exactly 1 without noise), written from the specification in
``rust/core/src/crossbar.rs`` with int64/float64 numpy arithmetic — no code is
shared with the engine.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np


def _fma(a: np.ndarray, b: float, c: np.ndarray) -> np.ndarray:
    """``a·b + c`` rounded once (exact rational arithmetic, then one rounding)."""
    out = np.empty(np.broadcast(a, c).shape)
    for i, (x, z) in enumerate(zip(np.ravel(a), np.ravel(c), strict=True)):
        out.flat[i] = float(Fraction(float(x)) * Fraction(b) + Fraction(float(z)))
    return out


def _tile_codes(
    w: np.ndarray, weight_scaling: str, full: int, devices_per_polarity: int
) -> tuple[np.ndarray, np.ndarray]:
    """Stage 1 for one tile: ``w_max`` per row and the cell codes ``g⁺ − g⁻``
    (codes split over the devices of a polarity, the first filled first)."""
    rows = w.shape[0]
    if weight_scaling == "tile":
        w_max = np.full(rows, np.abs(w).max())
    else:
        w_max = np.abs(w).max(axis=1)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        q = np.where(w_max > 0, float(full) / w_max, 0.0)
        # 2^b / w_max overflows (|W| below ~1e-304): the ratio w / w_max first.
        tiny = ~np.isfinite(q)
        codes = np.where(
            tiny[:, None], np.rint(w / w_max[:, None] * full), np.rint(w * q[:, None])
        ).astype(np.int64)
    dev_max = full // devices_per_polarity
    split, rest = [], np.abs(codes)
    for _ in range(devices_per_polarity):
        take = np.minimum(rest, dev_max)
        split.append(take)
        rest = rest - take
    return w_max, np.sign(codes) * sum(split)


def _dac(xs: np.ndarray, input_range: float | None, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Stage 4: the input scale ``s_in`` per row and the signed input codes."""
    if input_range is None:
        s_in = np.abs(xs).max(axis=1)
    else:
        s_in = np.full(xs.shape[0], float(input_range))
    with np.errstate(divide="ignore", over="ignore"):
        s_in = np.where(np.isfinite(float(m) / s_in), s_in, 0.0)
        ratio = np.where(s_in > 0, float(m) / s_in, 0.0)
    return s_in, np.clip(np.rint(xs * ratio[:, None]), -m, m).astype(np.int64)


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
    noise: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    out_noise: float = 0.0,
    w_noise: float = 0.0,
    ir_drop: float = 0.0,
    adc: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """``X @ W.T`` through the datapath. With ``noise = (sigma, ir, xi)`` (each
    n × input tiles × outputs: the engine's normals and the terms of
    :func:`reference_read_terms`), the per-MVM stage is included: with PCM read
    noise or IR drop on, ``v = acc·unit − ir + f64(f32(sigma)·f32(xi))``, then
    ``v·to_code``; otherwise the output noise by one fused multiply-add,
    ``fma(xi, σ_out·to_code, acc·(unit·to_code))``. With ``adc = (gain,
    offset)`` (per tile output, tiles in order; the offset in the domain the
    ADC rounds in, as the engine's ``_adc_mismatch`` hook returns them) the
    column value becomes ``pre·gain + offset`` before the ADC."""
    W = np.asarray(W, dtype=np.float64)
    X = np.asarray(X, dtype=np.float64)
    out_dim, in_dim = W.shape
    n = X.shape[0]
    full = 2**conductance_bits
    m = max(2 ** (input_bits - 1) - 1, 1)  # 1 bit: ternary codes
    unit = 1.0 / (float(m) * float(full))
    y = np.zeros((n, out_dim))
    affine_index = 0
    extras = w_noise > 0 or ir_drop > 0
    for r0 in range(0, out_dim, tile_rows):
        for ct, c0 in enumerate(range(0, in_dim, tile_cols)):
            w = W[r0 : r0 + tile_rows, c0 : c0 + tile_cols]
            rows = w.shape[0]
            # 1. mapping: integer codes, split over devices (first device first)
            w_max, g = _tile_codes(w, weight_scaling, full, devices_per_polarity)
            # 4. DAC
            s_in, xc = _dac(X[:, c0 : c0 + tile_cols], input_range, m)
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
            k = float(max(2 ** (output_bits - 1) - 1, 1))
            to_code = k / out_bound if output_bits > 0 else 1.0
            if noise is None:
                pre = acc.astype(np.float64) * (unit * to_code)
            else:
                sig, irr, xi = (t[:, ct, r0 : r0 + rows] for t in noise)
                if extras:
                    v = acc.astype(np.float64) * unit
                    if ir_drop > 0:
                        v = v - irr
                    v = v + (sig.astype(np.float32) * xi.astype(np.float32)).astype(np.float64)
                    pre = v * to_code
                else:
                    base = acc.astype(np.float64) * (unit * to_code)
                    pre = _fma(xi, out_noise * to_code, base)
            if adc is not None:
                ga = adc[0][affine_index : affine_index + rows]
                ob = adc[1][affine_index : affine_index + rows]
                pre = pre * ga[None, :] + ob[None, :]
            if output_bits > 0:
                code = np.clip(np.rint(pre), -k, k)
                v = code * ((out_bound / k) * s_in)[:, None]
            else:
                v = pre * s_in[:, None]
            v = v * gain[None, :] + b[None, :]
            affine_index += rows
            y[:, r0 : r0 + rows] = y[:, r0 : r0 + rows] + v
    return y


def aux_shift(*, tile_cols: int, max_cell: int, m: int, conductance_bits: int) -> int:
    """The coarse conductance grid of the per-MVM noise terms: the smallest shift
    ``k`` for which ``tile_cols · ((max_cell + h) >> k) · m²`` fits i32 (``h`` the
    rounding half), at most ``conductance_bits − 8``."""
    cap = max(0, conductance_bits - 8)
    k = 0
    while k < cap and tile_cols * ((max_cell + ((1 << k) >> 1)) >> k) * m * m > 2**31 - 1:
        k += 1
    return k


def reference_read_terms(
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
    w_noise: float = 0.0,
    ir_drop: float = 0.0,
    ir_drop_g_ratio: float = 1.0 / (0.35 * 5e-6),
    out_noise: float = 0.0,
    out_bound: float = 12.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The integer column sums ``acc`` and the per-MVM terms before the normals
    are applied: the PCM read-noise σ and the IR-drop correction, per (sample,
    input tile, output), for ideal devices (``noise_model="none"``).

    Specification (``rust/core/src/crossbar/datapath.rs``): with ``c`` the input
    codes, ``g`` the cell codes and ``k`` the shift of :func:`aux_shift`,
    ``gq = (|g| + h) >> k`` and ``gs = (g + h) >> k`` (``h = 2**k >> 1``),
    ``n`` the tile's columns, ``j`` the column within the tile:

    - ``S = Σ gq·c²``; the PCM read noise and the output noise are one normal
      with σ = ``sqrt(f32(S)·var_w + var_out)`` in float32, ``var_w =
      f32(w_noise·w_noise·((2**k/2**b)/(m·m)))``, ``var_out = f32(σ_out²)``,
      ``σ_out = out_noise`` (without read noise and IR drop σ is
      ``σ_out`` itself, applied in the per-output stage);
    - ``A = Σ gq·|c|``, ``a = A · ((n/ratio) · ((2**k/2**b)/m))``,
      ``cfac = a·(a·(0.05·a − 0.2) + 0.5)``;
    - ``H = Σ gs·c·j·(2n − j)``, ``shaped = H · (((2**k/2**b)/m)/(n·n))``,
      ``ir = (ir_drop · cfac) · shaped``.

    The sums are exact int64 here (the engine splits them into i32 passes).
    """
    W = np.asarray(W, dtype=np.float64)
    X = np.asarray(X, dtype=np.float64)
    out_dim, in_dim = W.shape
    n = X.shape[0]
    full = 2**conductance_bits
    dev_max = full // devices_per_polarity
    m = max(2 ** (input_bits - 1) - 1, 1)
    k = aux_shift(
        tile_cols=tile_cols,
        max_cell=dev_max * devices_per_polarity,
        m=m,
        conductance_bits=conductance_bits,
    )
    half = (1 << k) >> 1
    step = float(2**k) / float(full)
    n_ct = -(-in_dim // tile_cols)
    extras = w_noise > 0 or ir_drop > 0
    sigma_out = out_noise
    var_w = np.float32(w_noise * w_noise * (step / float(m * m)))
    var_out = np.float32(sigma_out * sigma_out)
    acc_all = np.zeros((n, n_ct, out_dim), dtype=np.int64)
    sigma = np.full((n, n_ct, out_dim), 0.0 if extras else sigma_out)
    ir = np.zeros((n, n_ct, out_dim))
    for r0 in range(0, out_dim, tile_rows):
        for ct, c0 in enumerate(range(0, in_dim, tile_cols)):
            w = W[r0 : r0 + tile_rows, c0 : c0 + tile_cols]
            rows, cols = w.shape
            _, g = _tile_codes(w, weight_scaling, full, devices_per_polarity)
            _, c = _dac(X[:, c0 : c0 + tile_cols], input_range, m)
            acc_all[:, ct, r0 : r0 + rows] = c @ g.T
            gq = (np.abs(g) + half) >> k
            gs = (g + half) >> k
            j = np.arange(cols, dtype=np.int64)
            if extras:
                s_sum = (c * c) @ gq.T if w_noise > 0 else np.zeros((n, rows), np.int64)
                var = s_sum.astype(np.float32) * var_w + var_out
                sigma[:, ct, r0 : r0 + rows] = np.sqrt(var).astype(np.float64)
            if ir_drop > 0:
                nf = float(cols)
                a_sum = np.abs(c) @ gq.T
                a = a_sum.astype(np.float64) * ((nf / ir_drop_g_ratio) * (step / float(m)))
                cfac = a * (a * (0.05 * a - 0.2) + 0.5)
                h_sum = (c * (j * (2 * cols - j))[None, :]) @ gs.T
                shaped = h_sum.astype(np.float64) * ((step / float(m)) / (nf * nf))
                ir[:, ct, r0 : r0 + rows] = (ir_drop * cfac) * shaped
    return acc_all, sigma, ir
