"""Simulated analog in-memory computing crossbars (IBM HERMES / PCM).

:class:`CrossbarConfig` describes the hardware; :meth:`AnalogMatrix.program`
maps a weight matrix onto tiles of it and :meth:`AnalogMatrix.matmul`
computes ``X @ W.T`` through the simulated datapath: 8-bit input DAC, exact
integer accumulation of input codes times conductance codes, per-MVM noise,
ADC, per-column affine correction, drift compensation. The engine is
``rust/core/src/crossbar/``; its module documentation lists the stages.

Sources: Le Gallo et al., "A 64-core mixed-signal in-memory compute chip based on
phase-change memory for deep neural network inference", Nat. Electron. 6, 680–693
(2023) (the HERMES chip); IBM aihwkit, ``PCMLikeNoiseModel``
(``aihwkit/inference/noise/pcm.py``), ``HermesNoiseModel``
(``aihwkit/inference/noise/hermes.py``), ``IOParameters``
(``aihwkit/simulator/parameters/io.py``), ``GlobalDriftCompensation``
(``aihwkit/inference/compensation/drift.py``); Joshi et al., "Accurate deep neural
network inference using computational phase-change memory", Nat. Commun. 11, 2473
(2020).

Reads. A chip draws fresh noise at every read, and so does an
:class:`AnalogMatrix`: each row an MVM reads takes the next row of the matrix's
read stream (a cursor, :attr:`AnalogMatrix.read_position`), so two reads never
share a noise realisation — whether they are different inputs, the same input
twice, rows of one call or of successive calls. All randomness comes from a
counter-based generator keyed by ``(seed, purpose, global row, output)``: the
same programming seed and the same sequence of reads give the same bits for any
thread count and any split of the rows into calls. A read can be pinned
(repeated exactly) by passing ``seed=`` (and ``row_offset=``) to
:meth:`AnalogMatrix.matmul`, or replayed by resetting ``read_position``.
"""

from __future__ import annotations

import copy
import dataclasses
import operator
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from . import _core
from ._validation import as_float_array
from .exceptions import ConfigError, DataError

__all__ = ["AnalogMatrix", "CrossbarConfig"]

#: The core's HERMES preset (``CrossbarParams::hermes``): the defaults of
#: :class:`CrossbarConfig` are views of it, so a change in the core reaches
#: Python unchanged. ``g_max``, ``t0`` and ``t_read`` default to None instead
#: (the noise model's values, see :meth:`CrossbarConfig.resolved`).
_HERMES: dict[str, Any] = _core._crossbar_hermes()


@dataclass(frozen=True)
class CrossbarConfig:
    """Every parameter of the simulated crossbar, validated when the config is made.

    Fields cannot be assigned (``config.g_max = 5`` raises); derive a variant
    with :func:`dataclasses.replace`, or change fields with :meth:`set_params`,
    which validates the new combination first. :meth:`get_params` and
    :meth:`set_params` follow scikit-learn's estimator protocol, so a config
    given as ``backend=`` is tuned like a nested estimator:
    ``GridSearchCV(pipe, {"randomfourierfeatures__backend__g_max": [5.0, 20.7]})``.

    The defaults are the HERMES preset (:meth:`hermes`); :meth:`ideal` switches
    every non-ideality off except the 8-bit input DAC and weight quantisation.

    Parameters
    ----------
    tile_rows, tile_cols : int
        Outputs × inputs of one crossbar tile (default 256 × 256, as on HERMES).
        Larger matrices are split into tiles; edge tiles are smaller (the unused
        cells of a physical array hold zero and carry no current).
    weight_scaling : {"tile", "column"}
        ``w_max`` per tile (HERMES: "W_max the largest |W| in the core") or per
        output column of a tile.
    devices_per_polarity : {1, 2}
        PCM devices per polarity of a unit cell (2: HERMES two-device
        programming, TDP). The first device is filled before the second.
    conductance_bits : int
        Conductance codes have LSB ``g_max / 2**conductance_bits`` (default 14:
        0.0013 µS at 20.7 µS, far below the ~0.3–1 µS programming noise), so the
        column sums are exact integers.
    noise_model : {"hermes", "pcm", "none"}
        Statistical device model: aihwkit ``HermesNoiseModel`` (fitted on HERMES
        devices), ``PCMLikeNoiseModel`` (Nandakumar et al., ICECS 2019), or
        ideal devices. Its drift and 1/f read-noise laws apply at inference.
    programming : {"statistical", "iterative"}
        ``"statistical"``: each device gets its target plus the model's
        programming noise. ``"iterative"``: the device-level program-and-verify
        engine of :mod:`analogkernels.pcm` (RESET, SET, trim pulses with noisy
        verify reads, HERMES TDP rule), calibrated to the same model's spread.
    g_max : float or None
        Maximum conductance of one *polarity* (the sum of its
        ``devices_per_polarity`` devices), µS — not of one device as in
        :class:`~analogkernels.pcm.PCMConfig`; :attr:`g_max_per_device` gives that.
        None: the model's default — HERMES 10.35 µS per device, 20.7 µS for two;
        PCM 25 µS per device.
    prog_noise_scale, drift_scale, read_noise_scale : float
        Multipliers of the programming noise, drift exponent and 1/f read noise
        (aihwkit's scale factors; 1 = published model).
    t0 : float or None
        Reference time of drift, s (None: model default, HERMES 300 s for two
        devices / 200 s for one, PCM 20 s; aihwkit's defaults).
    t_read : float or None
        Duration of a read for the 1/f noise, s (None: HERMES 512 ns, PCM 250 ns).
    input_bits : int
        Signed DAC resolution: codes ``-(2**(b-1)-1) .. 2**(b-1)-1`` (default 8:
        -127..127, HERMES 8-bit PWM inputs).
    input_range : float or None
        Fixed input range (inputs clipped to it); None scales each input vector
        (per tile) by its absolute maximum (aihwkit ABS_MAX noise management).
    input_range_quantile : float or None
        Set the fixed input range from data: the ``q``-quantile of the absolute
        values of the inputs a feature map is fitted on (``q`` in 0.5 … 1; the
        inputs above it are clipped). A chip maps its inputs onto the DAC with one
        scale per layer rather than a digital maximum per vector — the code of
        Büchel et al. (2024) converts inputs as
        ``clamp(round(x·127/input_range), −127, 127)`` with a range per layer
        (``imka-lra/imc_performer/src/utils.py``), and aihwkit initialises such
        ranges from data (``InputRangeParameter``,
        ``aihwkit/simulator/parameters/pre_post.py``). A data-dependent setting:
        the feature maps resolve it in ``fit`` (:meth:`with_input_range_from`);
        :meth:`AnalogMatrix.program` refuses a config that still holds it.
        Exclusive with ``input_range``. None: off.
    out_noise : float
        Standard deviation of the Gaussian output noise in normalised output units
        (the unit of ``out_bound``: a weight at ``w_max`` times an input at full
        scale is 1), drawn per MVM and output — aihwkit's ``IOParameters.out_noise``
        (default there 0.06; ``StandardHWATrainingPreset`` 0.04). Default 0.096,
        i.e. 0.4 % of the 24-unit ADC range. Per-MVM normals come from a
        counter-based inverse-CDF sampler on 16 random bits (quantile error < 5e-6,
        tails cut at 4.33σ); device states use a finer Box–Muller draw.
    w_noise : float
        PCM read noise per MVM, ``σ_i = w_noise·sqrt(Σ_j |ŵ_ij| x̂_j²)`` (aihwkit
        ``WeightNoiseType.PCM_READ``; 0.0175 matches PCM measurements, aihwkit
        inference tutorial). Drawn at every read together with the output noise as
        one normal of variance ``σ_i² + out_noise²`` (independent Gaussians added
        before the ADC: the same law). ``Σ|ŵ|x̂²`` is an exact integer sum with
        ``|ŵ|`` on a grid of ``2**-9 · g_max`` for the default 14-bit codes (the
        noise-free product keeps all 14 bits), so σ is exact to well below 0.1 %.
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
        20.7 µS under a 0.2 V read (derived from Le Gallo et al. 2023).
    drift_compensation : {"global", "column", "none"}
        Global drift compensation (Joshi et al. 2020, Methods E; aihwkit
        ``GlobalDriftCompensation``): outputs rescaled by the summed device
        conductance right after programming over the same at ``t_inference``,
        per tile ("global") or per output column of a tile.
    adc_offset : float
        Residual offset of every ADC after the chip's per-column affine
        calibration, normalised output units (0: off), added to the column
        value before the ADC rounds it, fixed for every read. A common residual
        (e.g. a read-voltage or comparator offset that the one-time calibration
        of Le Gallo et al. 2023 leaves) biases a step feature ``Θ(w·x)`` to
        first order — ``Θ(w·x + e)`` is a different kernel — while ``[cos, sin]``
        features do not see it (the offset cancels in ``cos(u − u')``).
    adc_offset_std : float
        Spread of the residual offset between ADCs (one Gaussian draw per tile
        output at programming, keyed by the programming seed), normalised units.
    adc_gain_std : float
        Spread of the residual relative gain between ADCs (``gain = 1 +
        adc_gain_std·ξ`` per tile output, fixed at programming; at most 0.2).
        A gain error acts on the whole column value, noise included.

    References
    ----------
    M. Le Gallo et al., "A 64-core mixed-signal in-memory compute chip based on
    phase-change memory for deep neural network inference", Nat. Electron. 6,
    680–693 (2023): the HERMES chip (tiles, TDP, 8-bit PWM inputs, ADC, the
    functional model). IBM aihwkit: ``aihwkit/inference/noise/hermes.py``,
    ``aihwkit/inference/noise/pcm.py`` (noise models),
    ``aihwkit/simulator/parameters/io.py`` (``out_noise``, ``w_noise``,
    ``ir_drop``), ``aihwkit/inference/compensation/drift.py``; M. Le Gallo et al.,
    "Using the IBM analog in-memory hardware acceleration kit for neural network
    training and inference", APL Mach. Learn. 1, 041102 (2023). V. Joshi et al.,
    "Accurate deep neural network inference using computational phase-change
    memory", Nat. Commun. 11, 2473 (2020). S. R. Nandakumar et al., "Phase-change
    memory models for deep learning training and inference", ICECS (2019).
    """

    tile_rows: int = _HERMES["tile_rows"]
    tile_cols: int = _HERMES["tile_cols"]
    weight_scaling: Literal["tile", "column"] = _HERMES["weight_scaling"]
    devices_per_polarity: int = _HERMES["devices_per_polarity"]
    conductance_bits: int = _HERMES["conductance_bits"]
    noise_model: Literal["hermes", "pcm", "none"] = _HERMES["noise_model"]
    programming: Literal["statistical", "iterative"] = _HERMES["programming"]
    g_max: float | None = None
    prog_noise_scale: float = _HERMES["prog_noise_scale"]
    drift_scale: float = _HERMES["drift_scale"]
    read_noise_scale: float = _HERMES["read_noise_scale"]
    t0: float | None = None
    t_read: float | None = None
    input_bits: int = _HERMES["input_bits"]
    input_range: float | None = _HERMES["input_range"]
    input_range_quantile: float | None = _HERMES["input_range_quantile"]
    out_noise: float = _HERMES["out_noise"]
    w_noise: float = _HERMES["w_noise"]
    ir_drop: float = _HERMES["ir_drop"]
    ir_drop_g_ratio: float = _HERMES["ir_drop_g_ratio"]
    output_bits: int = _HERMES["output_bits"]
    out_bound: float = _HERMES["out_bound"]
    drift_compensation: Literal["global", "column", "none"] = _HERMES["drift_compensation"]
    adc_offset: float = _HERMES["adc_offset"]
    adc_offset_std: float = _HERMES["adc_offset_std"]
    adc_gain_std: float = _HERMES["adc_gain_std"]

    def __post_init__(self) -> None:
        """Check the fields with the engine's own rules when the config is made.

        Raises
        ------
        ConfigError
            Naming the first invalid field.
        """
        # Checked with the engine's own rules when the config is made, so a bad
        # field fails here, naming it, and not later inside ``fit``.
        self.resolved()

    # ``set_params`` changes a config in place (scikit-learn's nested
    # ``set_params`` ignores the return value, see ``set_params``), so a config
    # must not hash by value: its hash could change while it sits in a set.
    __hash__ = None  # type: ignore[assignment]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The fields as a dict, as :meth:`sklearn.base.BaseEstimator.get_params`.

        This makes a config a nested parameter object for scikit-learn:
        ``estimator.get_params()`` lists ``backend__g_max`` etc., and
        :func:`sklearn.base.clone` builds an equal, independent config.

        Parameters
        ----------
        deep : bool, default True
            Ignored (a config holds no nested objects).

        Returns
        -------
        dict
            Field name to value, unresolved (``None`` stays ``None``; see
            :meth:`resolved`).
        """
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def set_params(self, **params: Any) -> CrossbarConfig:
        """Change fields in place, after validating the new combination.

        scikit-learn sets nested parameters by calling ``set_params`` on the
        object it finds (``pipe.set_params(randomfourierfeatures__backend__g_max=5.0)``
        calls ``backend.set_params(g_max=5.0)``) and ignores the return value,
        so the change has to happen in the object itself, as for a nested
        estimator. The new field values are validated as a whole first (the same
        checks as the constructor): on any error nothing changes.

        An :class:`AnalogMatrix` already programmed with this config keeps a
        copy of the config it was programmed with; an estimator fitted with it
        must be refitted to use the new values, as after any ``set_params``.
        Use :func:`dataclasses.replace` for a new config that leaves this one
        unchanged.

        Parameters
        ----------
        **params
            Field names and their new values.

        Returns
        -------
        CrossbarConfig
            ``self``.

        Raises
        ------
        ConfigError
            For a name that is not a field, or an invalid value (naming the
            field). A :class:`~analogkernels.exceptions.ConfigError` is a
            :class:`ValueError`, as scikit-learn raises for an unknown name.
        """
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(params) - names)
        if unknown:
            raise ConfigError(
                f"Invalid parameter {unknown[0]!r} for CrossbarConfig. "
                f"Valid parameters are: {sorted(names)!r}."
            )
        candidate = dataclasses.replace(self, **params)  # validates, or raises
        for name in params:
            object.__setattr__(self, name, getattr(candidate, name))
        return self

    @classmethod
    def hermes(cls, **overrides: Any) -> CrossbarConfig:
        """The HERMES preset (the defaults), with optional field overrides."""
        return cls(**overrides)

    @classmethod
    def hermes_measured(cls, **overrides: Any) -> CrossbarConfig:
        """:meth:`hermes` plus the systematic stages fitted to the measured chip.

        The published HERMES device and periphery parameters of :meth:`hermes`,
        with a fixed input range set from the data a map is fitted on
        (``input_range_quantile``), a residual ADC offset (offset and gain spreads
        stay 0) and the per-MVM output noise, fitted once to the kernel-approximation
        errors and accuracy drops
        that Büchel et al., Nat. Mach. Intell. 6, 1605–1615 (2024) measured on
        the IBM HERMES chip (ijcnn1, cod-rna, skin, magic04; RBF and arc-cosine
        kernels; RFF, ORF, SORF; k = 1..5). The values, their uncertainties and
        the residual misfit are in ``docs/results/calibration/calibration.json``;
        ``analogkernels calibrate`` reruns the fit (:mod:`analogkernels.calibration`).
        An ``input_range`` override needs ``input_range_quantile=None`` with it (the
        two are exclusive).
        """
        from .calibration import HERMES_MEASURED

        return cls(**{**HERMES_MEASURED, **overrides})

    @classmethod
    def ideal(cls, **overrides: Any) -> CrossbarConfig:
        """The crossbar without device noise, drift, per-MVM noise or ADC.

        Only the input DAC and the (14-bit) weight quantisation remain.
        """
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

    def with_input_range_from(self, X: Any) -> CrossbarConfig:
        """A copy with ``input_range_quantile`` resolved on the inputs ``X``.

        Parameters
        ----------
        X : array_like
            The inputs the chip will be read with (e.g. the training set of a
            feature map), any shape; finite reals.

        Returns
        -------
        CrossbarConfig
            A copy whose ``input_range`` is the ``input_range_quantile``-quantile of
            ``|X|`` (``numpy.quantile``, linear interpolation) and whose
            ``input_range_quantile`` is None; ``self`` when the quantile is None.

        Raises
        ------
        DataError
            If ``X`` is empty, or its quantile is 0 or not finite (no range to set).
        """
        q = self.input_range_quantile
        if q is None:
            return self
        a = np.abs(as_float_array(X, "X")).ravel()
        if a.size == 0:
            raise DataError("X is empty: input_range_quantile needs inputs to set the range")
        r = float(np.quantile(a, q))
        if not (np.isfinite(r) and r > 0):  # all 0 there, or NaN in X
            raise DataError(
                f"the {q}-quantile of |X| is {r}: input_range_quantile needs finite "
                "inputs, not all 0, to set a range"
            )
        return dataclasses.replace(self, input_range=r, input_range_quantile=None)

    @property
    def g_max_per_device(self) -> float:
        """Maximum conductance of one device, µS.

        The resolved ``g_max`` (per polarity) over ``devices_per_polarity`` (the unit of
        :attr:`PCMConfig.g_max <analogkernels.pcm.PCMConfig.g_max>`).
        """
        return self.resolved()["g_max"] / self.devices_per_polarity

    @property
    def is_perfect(self) -> bool:
        """True when the crossbar adds no noise (only quantisation)."""
        return (
            self.noise_model == "none"
            and self.out_noise == 0
            and self.w_noise == 0
            and self.ir_drop == 0
            and self.adc_offset == 0
            and self.adc_offset_std == 0
            and self.adc_gain_std == 0
        )

    def resolved(self) -> dict[str, Any]:
        """The fields with model defaults filled in, as the engine takes them.

        Returns
        -------
        dict
            Field name to value: integers as ``int``, real numbers as
            ``float``, modes by name, and ``g_max``, ``t0`` and ``t_read``
            (when None) the noise model's defaults.

        Raises
        ------
        ConfigError
            Naming the first field of the wrong type or out of range.
        """
        d = dataclasses.asdict(self)
        unset = [key for key in ("g_max", "t0", "t_read") if d[key] is None]
        if unset:
            # The noise model's calibrated defaults are the core's
            # (``NoiseModel::default_*``); a bad model name or device count
            # raises ConfigError naming that field.
            defaults = _core._noise_model_defaults(self.noise_model, self.devices_per_polarity)
            for key in unset:
                d[key] = defaults[key]
        # The bindings convert every field (its type) and the core checks it
        # (its range); both know the field lists, so none is spelt here.
        checked = _core._crossbar_config(d)
        return {key: checked[key] for key in d}  # in field order, as asdict


class AnalogMatrix:
    """A weight matrix programmed onto simulated crossbar tiles.

    Create it with :meth:`program`; compute with :meth:`matmul`. Every
    :meth:`matmul` is a *read*: it draws fresh per-MVM noise (output noise, PCM
    read noise) from the next rows of the matrix's read stream and advances
    :attr:`read_position` by the number of rows read, as a physical chip draws
    new noise at every read. The same programming seed and the same sequence of
    reads reproduce the same bits, for any thread count and however the rows are
    split into calls. Picklable (the state — devices, drift, affine correction
    and read position — is rebuilt bit for bit from a private copy of the
    weights, the config and the seeds).
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
            Finite real weights (copied: later changes to ``W`` do not reach the chip).
        config : CrossbarConfig, optional
            The hardware (default: :meth:`CrossbarConfig.hermes`).
        seed : int
            The chip's seed, ``0 .. 2**64 - 1``: programming noise and drift
            exponents, the default drift realisation (:meth:`drift_to`) and the
            read stream of :meth:`matmul` all derive from it (independent streams;
            an estimator's ``backend_seed``, see :ref:`seed-vocabulary`).
        """
        if config is None:
            config = CrossbarConfig.hermes()
        if not isinstance(config, CrossbarConfig):
            raise ConfigError(f"config must be a CrossbarConfig, got {type(config).__name__}")
        # A private float64 copy, kept for pickling; its shape is checked by
        # the bindings (through the same conversion helper), its values by the core.
        w = np.array(as_float_array(W, "W"), dtype=np.float64, order="C", copy=True)
        self = object.__new__(cls)
        # A copy: ``config.set_params`` changes a config in place, and the chip
        # keeps the config it was programmed with (pickling rebuilds from it).
        self._config = copy.copy(config)
        self._weights = w
        # The bindings check the seed (an integer in 0 .. 2**64 - 1, naming it).
        self._core = _core._AnalogMatrix.program(w, config.resolved(), seed)
        self._seed: int = self._core.seed
        self._drift = (0.0, self._seed)
        self._affine: tuple[np.ndarray, np.ndarray] | None = None
        return self

    @property
    def config(self) -> CrossbarConfig:
        """The hardware configuration."""
        return self._config

    @property
    def seed(self) -> int:
        """The programming seed (also the seed of the read stream)."""
        return self._seed

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

    @property
    def read_position(self) -> int:
        """Rows read so far from the matrix's read stream.

        The next :meth:`matmul` (without ``seed``) reads rows ``read_position ..
        read_position + n - 1`` of it. Set it to replay reads: setting it back to
        ``p`` makes the following reads repeat those that started at ``p``.
        """
        return int(self._core.read_position)

    @read_position.setter
    def read_position(self, value: int) -> None:
        self._core.read_position = value

    def drift_to(self, t_inference: float, *, seed: int | None = None) -> AnalogMatrix:
        """Move the devices to ``t_inference`` seconds after programming.

        Drift and accumulated 1/f read noise are drawn with ``seed`` (default: the
        programming seed, so that one chip has one drift history). Returns
        ``self``.
        """
        seed = self._seed if seed is None else seed
        self._core.drift_to(float(t_inference), seed)
        # The bindings accepted the seed, so it is an integer (any kind).
        self._drift = (float(t_inference), operator.index(seed))
        return self

    def effective_weights(
        self, t_inference: float | None = None, *, seed: int | None = None
    ) -> np.ndarray:
        """The weights the devices realise (out × in, weight units).

        At ``t_inference`` if given (drifting there with ``seed``, default the
        programming seed), else now.
        """
        if t_inference is not None:
            self.drift_to(t_inference, seed=seed)
        return self._core.effective_weights()

    def set_affine(self, scale: Any, offset: Any) -> None:
        """Set the per-column affine correction ``a·y + b`` of every tile output.

        ``scale`` and ``offset`` are arrays with one entry per (tile, output row), in
        tile order; they are copied.
        """
        # Private float64 copies, kept for pickling; shapes checked by the bindings.
        s = np.array(as_float_array(scale, "scale"), dtype=np.float64, order="C", copy=True)
        b = np.array(as_float_array(offset, "offset"), dtype=np.float64, order="C", copy=True)
        self._core.set_affine(s, b)
        self._affine = (s, b)

    def matmul(
        self,
        X: Any,
        *,
        t_inference: float | None = None,
        seed: int | None = None,
        row_offset: int | None = None,
    ) -> np.ndarray:
        """``X @ W.T`` through the simulated crossbar: one read of every row of ``X``.

        Parameters
        ----------
        X : array_like, shape (n, in_features) or (in_features,)
            Finite real inputs; float32 results stay float32.
        t_inference : float, optional
            Seconds after programming; if the devices are elsewhere they drift
            there first (with the programming seed, see :meth:`drift_to`).
        seed : int, optional
            None (default): a fresh read — the rows take the next ``n`` rows of
            the matrix's read stream and :attr:`read_position` advances by ``n``;
            a sequence of calls gives the same bits as one call on the stacked
            rows. An integer pins the read: the per-MVM noise of row ``i`` is row
            ``row_offset + i`` of the stream keyed by ``seed`` (the same seed and
            offset repeat the same noise; :attr:`read_position` is unchanged). A
            fresh read at position ``p`` equals the pinned read with
            ``seed=self.seed, row_offset=p``.
        row_offset : int, optional
            For a pinned read: the stream row of ``X``'s first row (default 0).

        Returns
        -------
        ndarray, shape (n, out_features) or (out_features,)
        """
        # The bindings convert X (float32 kept, other real dtypes read as
        # float64), check its shape (a vector is one row) and copy it before
        # releasing the GIL (so no other thread can change it under the DAC).
        if seed is None and row_offset is not None:
            raise ConfigError(
                "row_offset applies to a pinned read: pass seed= as well "
                "(fresh reads continue at read_position)"
            )
        if t_inference is not None and float(t_inference) != self.t_inference:
            self.drift_to(t_inference)
        if seed is None:
            return self._core.read(X)
        return self._core.matmul(X, seed, 0 if row_offset is None else row_offset)

    def __repr__(self) -> str:
        """A one-line summary: shape, tile count, inference time, noise model, read position."""
        o, i = self.shape
        return (
            f"AnalogMatrix(shape=({o}, {i}), tiles={len(self.tiles)}, "
            f"t_inference={self.t_inference:g} s, noise_model={self._config.noise_model!r}, "
            f"read_position={self.read_position})"
        )

    def copy(self) -> AnalogMatrix:
        """An independent copy of the chip, without programming it again.

        The copy has the same devices, drift, affine correction and read position (the
        copy's next read is the original's next read, bit for bit); afterwards the two
        read and drift independently. :func:`copy.copy` and :func:`copy.deepcopy`
        do the same.
        """
        return self.__deepcopy__({})

    def __copy__(self) -> AnalogMatrix:
        """An independent copy of the chip (as :meth:`copy`)."""
        return self.__deepcopy__({})

    def __deepcopy__(self, memo: dict[int, Any]) -> AnalogMatrix:
        """An independent copy of the chip (as :meth:`copy`).

        The engine state is cloned in Rust, without programming the devices again;
        the other attributes are deep-copied with ``memo``.
        """
        new = object.__new__(type(self))
        memo[id(self)] = new
        for name, value in self.__dict__.items():
            # The engine state is cloned in Rust (a pickle round trip would
            # program the devices again).
            new.__dict__[name] = value.copy() if name == "_core" else copy.deepcopy(value, memo)
        return new

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle support: the weights, config, seed, drift, affine correction and read position.

        Unpickling programs the chip again from its seed (the same bits), then
        replays the drift, the affine correction and the read position.
        """
        return (
            _restore,
            (
                self._weights,
                self._config,
                self._seed,
                self._drift,
                self._affine,
                self.read_position,
            ),
        )


def _restore(
    weights: np.ndarray,
    config: CrossbarConfig,
    seed: int,
    drift: tuple[float, int],
    affine: tuple[np.ndarray, np.ndarray] | None,
    read_position: int = 0,
) -> AnalogMatrix:
    m = AnalogMatrix.program(weights, config, seed=seed)
    if drift != (0.0, seed):
        m.drift_to(drift[0], seed=drift[1])
    if affine is not None:
        m.set_affine(*affine)
    m.read_position = read_position
    return m
