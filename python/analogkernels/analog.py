"""Simulated analog in-memory computing crossbars (IBM HERMES / PCM).

:class:`CrossbarConfig` describes the hardware; :meth:`AnalogMatrix.program`
maps a weight matrix onto tiles of it and :meth:`AnalogMatrix.matmul`
computes ``X @ W.T`` through the simulated datapath: 8-bit input DAC, exact
integer accumulation of input codes times conductance codes, per-MVM noise,
ADC, per-column affine correction, drift compensation. The engine is
``rust/core/src/crossbar.rs``; its module documentation lists the stages.

Sources (``shared/docs/hardware-facts.md``): [HERMES] Le Gallo et al.,
Nat. Electron. 6, 680–693 (2023); [AIHWKIT] IBM aihwkit (``PCMLikeNoiseModel``,
``HermesNoiseModel``, ``IOParameters``); [Joshi20] Joshi et al., Nat. Commun. 11,
2473 (2020).

Reproducibility: all randomness comes from a counter-based generator keyed by
``(seed, stream, index)``; the same seeds give the same bits for any thread
count and any split of a batch (pass ``row_offset`` for a sub-batch).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from . import _core
from .exceptions import ConfigError, ShapeError

__all__ = ["AnalogMatrix", "CrossbarConfig"]

_HERMES_G_MAX = {1: 10.35, 2: 20.7}
_HERMES_T0 = {1: 200.0, 2: 300.0}


@dataclass(frozen=True)
class CrossbarConfig:
    """Every parameter of the simulated crossbar. Immutable; use
    :func:`dataclasses.replace` to derive a variant.

    The defaults are the HERMES preset (:meth:`hermes`); :meth:`ideal` switches
    every non-ideality off except the 8-bit input DAC and weight quantisation.

    Parameters
    ----------
    tile_rows, tile_cols : int
        Outputs × inputs of one crossbar tile (default 256 × 256 [HERMES]).
        Larger matrices are split into tiles; edge tiles are smaller (the unused
        cells of a physical array hold zero and carry no current).
    weight_scaling : {"tile", "column"}
        ``w_max`` per tile ([HERMES]: "W_max the largest |W| in the core") or per
        output column of a tile.
    devices_per_polarity : {1, 2}
        PCM devices per polarity of a unit cell (2: HERMES two-device
        programming, TDP [HERMES]). The first device is filled before the second.
    conductance_bits : int
        Conductance codes have LSB ``g_max / 2**conductance_bits`` (default 14:
        0.0013 µS at 20.7 µS, far below the ~0.3–1 µS programming noise), so the
        column sums are exact integers.
    noise_model : {"hermes", "pcm", "none"}
        Statistical device model: aihwkit ``HermesNoiseModel`` (fitted on HERMES
        devices), ``PCMLikeNoiseModel`` (Nandakumar et al. 2019) [AIHWKIT], or
        ideal devices. Its drift and 1/f read-noise laws apply at inference.
    programming : {"statistical", "iterative"}
        ``"statistical"``: each device gets its target plus the model's
        programming noise. ``"iterative"``: the device-level program-and-verify
        engine of :mod:`analogkernels.pcm` (RESET, SET, trim pulses with noisy
        verify reads, HERMES TDP rule), calibrated to the same model's spread.
    g_max : float or None
        Maximum conductance of one polarity, µS (None: the model's default —
        HERMES 10.35 µS per device, 20.7 µS for two; PCM 25 µS per device).
    prog_noise_scale, drift_scale, read_noise_scale : float
        Multipliers of the programming noise, drift exponent and 1/f read noise
        (aihwkit's scale factors; 1 = published model).
    t0 : float or None
        Reference time of drift, s (None: model default, HERMES 300 s for two
        devices / 200 s for one, PCM 20 s) [AIHWKIT].
    t_read : float or None
        Duration of a read for the 1/f noise, s (None: HERMES 512 ns, PCM 250 ns).
    input_bits : int
        Signed DAC resolution: codes ``-(2**(b-1)-1) .. 2**(b-1)-1`` (default 8:
        -127..127, HERMES 8-bit PWM inputs).
    input_range : float or None
        Fixed input range (inputs clipped to it); None scales each input vector
        (per tile) by its absolute maximum (aihwkit ABS_MAX noise management).
    out_noise : float
        Standard deviation of the Gaussian output noise as a fraction of the ADC
        range ``out_bound``, drawn per MVM and output (default 0.004, i.e. σ = 0.04
        at out_bound 10 as in aihwkit ``StandardHWATrainingPreset``). Per-MVM
        normals (this and ``w_noise``) come from a counter-based inverse-CDF
        sampler on 16 random bits (quantile error < 5e-6, tails cut at 4.33σ;
        ``rust/core/src/rng.rs``); device states use a finer Box–Muller draw.
    w_noise : float
        PCM read noise per MVM, ``σ_i = w_noise·sqrt(Σ_j |ŵ_ij| x̂_j²)`` (aihwkit
        PCM_READ; 0.0175 matches PCM measurements [AIHWKIT-tut]).
    ir_drop : float
        Scale of aihwkit's IR-drop model (0: off; not published for HERMES).
    ir_drop_g_ratio : float
        aihwkit ``ir_drop_g_ratio`` = 1/(0.35 Ω · 5 µS).
    output_bits : int
        Signed ADC resolution (0: no ADC). Default 12 (HERMES functional model:
        12-bit ADC quantisation). Rounding half to even; saturation at ±bound.
    out_bound : float
        ADC range in normalised units (|ŵ| ≤ 1 at g_max, |x̂| ≤ 1 at full input).
        Default 24: the HERMES ADC saturates near 100 µA, i.e. 24 cells at
        20.7 µS under a 0.2 V read (derived from [HERMES]).
    drift_compensation : {"global", "column", "none"}
        Global drift compensation [Joshi20 Methods E; aihwkit
        GlobalDriftCompensation]: outputs rescaled by the summed device
        conductance right after programming over the same at ``t_inference``,
        per tile ("global") or per output column of a tile.
    """

    tile_rows: int = 256
    tile_cols: int = 256
    weight_scaling: Literal["tile", "column"] = "tile"
    devices_per_polarity: int = 2
    conductance_bits: int = 14
    noise_model: Literal["hermes", "pcm", "none"] = "hermes"
    programming: Literal["statistical", "iterative"] = "statistical"
    g_max: float | None = None
    prog_noise_scale: float = 1.0
    drift_scale: float = 1.0
    read_noise_scale: float = 1.0
    t0: float | None = None
    t_read: float | None = None
    input_bits: int = 8
    input_range: float | None = None
    out_noise: float = 0.004
    w_noise: float = 0.0175
    ir_drop: float = 0.0
    ir_drop_g_ratio: float = field(default=1.0 / (0.35 * 5e-6))
    output_bits: int = 12
    out_bound: float = 24.0
    drift_compensation: Literal["global", "column", "none"] = "global"

    @classmethod
    def hermes(cls, **overrides: Any) -> CrossbarConfig:
        """The HERMES preset (the defaults), with optional field overrides."""
        return cls(**overrides)

    @classmethod
    def ideal(cls, **overrides: Any) -> CrossbarConfig:
        """No device noise, no drift, no per-MVM noise, no ADC: only the input
        DAC and the (14-bit) weight quantisation remain."""
        base: dict[str, Any] = {
            "noise_model": "none",
            "out_noise": 0.0,
            "w_noise": 0.0,
            "ir_drop": 0.0,
            "output_bits": 0,
            "drift_compensation": "none",
        }
        base.update(overrides)
        return cls(**base)

    @property
    def is_perfect(self) -> bool:
        """True when the crossbar adds no noise (only quantisation)."""
        return (
            self.noise_model == "none"
            and self.out_noise == 0
            and self.w_noise == 0
            and self.ir_drop == 0
        )

    def resolved(self) -> dict[str, Any]:
        """The fields with model defaults filled in (what the engine uses)."""
        d = dataclasses.asdict(self)
        devices = self.devices_per_polarity
        model = self.noise_model
        if d["g_max"] is None:
            d["g_max"] = _HERMES_G_MAX.get(devices, 20.7) if model == "hermes" else 25.0 * devices
        if d["t0"] is None:
            d["t0"] = _HERMES_T0.get(devices, 300.0) if model == "hermes" else 20.0
        if d["t_read"] is None:
            d["t_read"] = 512e-9 if model == "hermes" else 250e-9
        for key in (
            "g_max",
            "prog_noise_scale",
            "drift_scale",
            "read_noise_scale",
            "t0",
            "t_read",
            "out_noise",
            "w_noise",
            "ir_drop",
            "ir_drop_g_ratio",
            "out_bound",
        ):
            d[key] = float(d[key])
        if d["input_range"] is not None:
            d["input_range"] = float(d["input_range"])
        return d


def _as_matrix(a: Any, name: str, ndim_ok: tuple[int, ...]) -> np.ndarray:
    arr = np.asarray(a)
    if arr.dtype.kind == "c":
        raise ConfigError(f"{name} must be real, got dtype {arr.dtype}")
    if arr.ndim not in ndim_ok:
        raise ShapeError(
            f"{name} must have {' or '.join(map(str, ndim_ok))} dimensions, got shape {arr.shape}"
        )
    return arr


class AnalogMatrix:
    """A weight matrix programmed onto simulated crossbar tiles.

    Create it with :meth:`program`; compute with :meth:`matmul`. Picklable
    (the state is rebuilt bit for bit from the weights, config and seeds).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("use AnalogMatrix.program(W, config, seed=...)")

    @classmethod
    def program(
        cls, W: Any, config: CrossbarConfig | None = None, *, seed: int = 0
    ) -> AnalogMatrix:
        """Map ``W`` (out_features × in_features) onto crossbar tiles and program it.

        Parameters
        ----------
        W : array_like, shape (out_features, in_features)
            Finite real weights.
        config : CrossbarConfig, optional
            The hardware (default: :meth:`CrossbarConfig.hermes`).
        seed : int
            Seed of the programming noise and drift exponents.
        """
        if config is None:
            config = CrossbarConfig.hermes()
        if not isinstance(config, CrossbarConfig):
            raise ConfigError(f"config must be a CrossbarConfig, got {type(config).__name__}")
        w = np.ascontiguousarray(_as_matrix(W, "W", (2,)), dtype=np.float64)
        self = object.__new__(cls)
        self._config = config
        self._weights = w
        self._seed = int(seed)
        self._core = _core._AnalogMatrix.program(w, config.resolved(), self._seed)
        self._drift = (0.0, self._seed)
        self._affine: tuple[np.ndarray, np.ndarray] | None = None
        return self

    @property
    def config(self) -> CrossbarConfig:
        """The hardware configuration."""
        return self._config

    @property
    def shape(self) -> tuple[int, int]:
        """``(out_features, in_features)``."""
        return tuple(self._core.shape)

    @property
    def t_inference(self) -> float:
        """Seconds after programming of the current device state."""
        return float(self._core.t_inference)

    @property
    def tiles(self) -> list[tuple[int, int, int, int]]:
        """``(row0, col0, rows, cols)`` of every tile (row-tile-major)."""
        return list(self._core.tile_layout())

    def drift_to(self, t_inference: float, *, seed: int = 0) -> AnalogMatrix:
        """Move the devices to ``t_inference`` seconds after programming (drift
        and accumulated 1/f read noise drawn with ``seed``). Returns ``self``."""
        self._core.drift_to(float(t_inference), int(seed))
        self._drift = (float(t_inference), int(seed))
        return self

    def effective_weights(self, t_inference: float | None = None, *, seed: int = 0) -> np.ndarray:
        """The weights the devices realise (out × in, weight units), at
        ``t_inference`` if given (drifting there with ``seed``), else now."""
        if t_inference is not None:
            self.drift_to(t_inference, seed=seed)
        return self._core.effective_weights()

    def set_affine(self, scale: Any, offset: Any) -> None:
        """Set the per-column affine correction ``a·y + b`` of every tile output
        (arrays with one entry per (tile, output row), in tile order)."""
        s = np.ascontiguousarray(scale, dtype=np.float64).ravel()
        b = np.ascontiguousarray(offset, dtype=np.float64).ravel()
        self._core.set_affine(s, b)
        self._affine = (s, b)

    def matmul(
        self,
        X: Any,
        *,
        t_inference: float | None = None,
        seed: int = 0,
        row_offset: int = 0,
    ) -> np.ndarray:
        """``X @ W.T`` through the simulated crossbar.

        Parameters
        ----------
        X : array_like, shape (n, in_features) or (in_features,)
            Finite real inputs; float32 results stay float32.
        t_inference : float, optional
            Seconds after programming; the devices drift there first (with
            ``seed``) if they are elsewhere.
        seed : int
            Seed of the per-MVM noise (and of the drift, if any).
        row_offset : int
            Index of ``X``'s first row in the whole batch: sub-batches with the
            right offsets give the same bits as one call.

        Returns
        -------
        ndarray, shape (n, out_features) or (out_features,)
        """
        x = _as_matrix(X, "X", (1, 2))
        one = x.ndim == 1
        dtype = x.dtype if x.dtype in (np.float32, np.float64) else np.dtype(np.float64)
        x2 = np.ascontiguousarray(x.reshape(1, -1) if one else x, dtype=dtype)
        if t_inference is not None and (float(t_inference), int(seed)) != self._drift:
            self.drift_to(t_inference, seed=seed)
        if row_offset < 0:
            raise ConfigError(f"row_offset must be >= 0, got {row_offset}")
        y = self._core.matmul(x2, int(seed), int(row_offset))
        return y[0] if one else y

    def __repr__(self) -> str:
        o, i = self.shape
        return (
            f"AnalogMatrix(shape=({o}, {i}), tiles={len(self.tiles)}, "
            f"t_inference={self.t_inference:g} s, noise_model={self._config.noise_model!r})"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (_restore, (self._weights, self._config, self._seed, self._drift, self._affine))


def _restore(
    weights: np.ndarray,
    config: CrossbarConfig,
    seed: int,
    drift: tuple[float, int],
    affine: tuple[np.ndarray, np.ndarray] | None,
) -> AnalogMatrix:
    m = AnalogMatrix.program(weights, config, seed=seed)
    if drift != (0.0, seed):
        m.drift_to(drift[0], seed=drift[1])
    if affine is not None:
        m.set_affine(*affine)
    return m
