"""Device-level PCM programming: iterative program-and-verify as on IBM HERMES.

Where aihwkit's statistical models describe programmed conductances after the
fact, :class:`DeviceArray` simulates how the chip gets there: RESET every
device, SET the device(s) of the weight's polarity, then trim pulses whose
current is updated in proportion to the (noisy) verify error until the device
is within tolerance or the iteration limit — for millions of devices, in
parallel, reproducibly (the engine is ``rust/core/src/pcm.rs``; its module
documentation gives the device model).

Sources: Le Gallo et al., "A 64-core mixed-signal in-memory compute chip based on
phase-change memory for deep neural network inference", Nat. Electron. 6, 680–693
(2023) (the HERMES chip), Methods (pulses: RESET 700 µA/125 ns, SET 125 µA/250 ns,
trim 125 ns at 125–700 µA;
stop at |error| < 5 ADC counts or 30 iterations; the two-devices-per-polarity
rule; G_max 80 ADC counts for one device), Extended Data Fig. 3 (programming
curve from ~10 µS SET to ~0.1 µS RESET over ~50–500 µA); Joshi et al., "Accurate
deep neural network inference using computational phase-change memory", Nat.
Commun. 11, 2473 (2020), Methods A (proportional current update); the PCM drift and
1/f read-noise laws of IBM aihwkit (``aihwkit/inference/noise/pcm.py``,
``PCMLikeNoiseModel``; Nandakumar et al., ICECS 2019).

The defaults (:meth:`PCMConfig.pcm_like`) give a programming-error spread within
±10 % of aihwkit's ``PCMLikeNoiseModel`` polynomial over 0.1–1 g_max with more
than 99 % of healthy devices converged; :meth:`PCMConfig.hermes` is within ±10 % of
the HERMES-fitted cubic (one device) over 0.1–0.75 g_max and 13 % above it at
g_max, with a 10-count verify window.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _core
from ._validation import as_float_array
from .exceptions import ConfigError

__all__ = ["FAULTS", "PHASES", "DeviceArray", "PCMConfig"]

# The code tables are the core's (``enum Phase`` / ``enum Fault`` and their
# names in ``names.rs``), so the codes a DeviceArray stores and their names
# cannot drift apart.
_CODES: dict[str, dict[int, str]] = _core._device_codes()
#: Phase codes of :attr:`DeviceArray.phase`: ``{0: "reset", 1: "set", 2: "intermediate"}``.
PHASES: dict[int, str] = _CODES["phase"]
#: Fault codes of :attr:`DeviceArray.fault`: ``{0: "none", 1: "stuck_reset", 2: "stuck_set"}``.
FAULTS: dict[int, str] = _CODES["fault"]


#: The core's default device model (``PcmParams::pcm_like``): the defaults of
#: :class:`PCMConfig` are views of it, so a recalibration in the core reaches
#: Python unchanged.
_PCM_LIKE: dict[str, Any] = _core._pcm_preset("pcm_like")


@dataclass(frozen=True)
class PCMConfig:
    """Device model and programming algorithm.

    Conductances in units of ``g_max`` unless stated, currents in µA, times in
    seconds.

    Parameters
    ----------
    g_max : float
        Largest target conductance of one *device*, µS (aihwkit PCM: 25) — not
        of one polarity as in :class:`~analogkernels.analog.CrossbarConfig`;
        a polarity reaches :attr:`g_max_per_polarity` ``= devices_per_polarity ·
        g_max``.
    g_set_mean, g_set_sd : float
        SET conductance and its device-to-device spread (1.15, 0.06).
    g_reset : float
        RESET conductance (0.004: ~0.1 µS of 25, Le Gallo et al. 2023, Ext. Data Fig. 3).
    i_low, i_high, i_sd : float
        Programming curve: fully SET below ``i_low``, fully RESET above
        ``i_high`` (log-linear between; 100, 500 µA), device-to-device shift ``i_sd``.
    i_min, i_max : float
        Trim current limits (50, 700 µA).
    c2c, additive : float
        Cycle-to-cycle noise of a trim pulse, relative and absolute.
    relaxation : float
        Relative conductance relaxation after programming.
    verify_noise : float
        Standard deviation of a verify read.
    tolerance_counts, counts_per_gmax : float
        Stop when ``|read − target| < tolerance_counts`` ADC counts, with
        ``counts_per_gmax`` counts per ``g_max`` (HERMES, Le Gallo et al. 2023:
        5 counts; 80 counts for one device).
    max_iterations : int
        Trim iterations at most (HERMES, Le Gallo et al. 2023: 30).
    gain : float
        Proportional gain of the current update (a damped Newton step, 0.8).
    stuck_reset_prob, stuck_set_prob : float
        Probability that a device is stuck at RESET / at SET (no published
        per-device rates; 0 by default).
    devices_per_polarity : {1, 2}
        Targets are per polarity; with 2 devices the HERMES TDP rule applies.
    t0, t_read : float
        Drift reference time and read duration for :meth:`DeviceArray.read`.
    seed : int
        The devices' programming seed: every pulse and verify read of
        program-and-verify (:ref:`seed-vocabulary`).
    """

    g_max: float = _PCM_LIKE["g_max"]
    g_set_mean: float = _PCM_LIKE["g_set_mean"]
    g_set_sd: float = _PCM_LIKE["g_set_sd"]
    g_reset: float = _PCM_LIKE["g_reset"]
    i_low: float = _PCM_LIKE["i_low"]
    i_high: float = _PCM_LIKE["i_high"]
    i_sd: float = _PCM_LIKE["i_sd"]
    i_min: float = _PCM_LIKE["i_min"]
    i_max: float = _PCM_LIKE["i_max"]
    c2c: float = _PCM_LIKE["c2c"]
    additive: float = _PCM_LIKE["additive"]
    relaxation: float = _PCM_LIKE["relaxation"]
    verify_noise: float = _PCM_LIKE["verify_noise"]
    tolerance_counts: float = _PCM_LIKE["tolerance_counts"]
    counts_per_gmax: float = _PCM_LIKE["counts_per_gmax"]
    max_iterations: int = _PCM_LIKE["max_iterations"]
    gain: float = _PCM_LIKE["gain"]
    stuck_reset_prob: float = _PCM_LIKE["stuck_reset_prob"]
    stuck_set_prob: float = _PCM_LIKE["stuck_set_prob"]
    devices_per_polarity: int = _PCM_LIKE["devices_per_polarity"]
    t0: float = _PCM_LIKE["t0"]
    t_read: float = _PCM_LIKE["t_read"]
    seed: int = _PCM_LIKE["seed"]

    @classmethod
    def pcm_like(cls, **overrides: Any) -> PCMConfig:
        """Calibrated to aihwkit's PCMLikeNoiseModel spread (the defaults)."""
        return cls(**overrides)

    @classmethod
    def hermes(cls, **overrides: Any) -> PCMConfig:
        """Calibrated to aihwkit's HERMES-fitted cubic (one device, g_max 10.35 µS)."""
        return cls(**{**_core._pcm_preset("hermes"), **overrides})

    @property
    def g_max_per_polarity(self) -> float:
        """Largest target of one polarity, µS: ``devices_per_polarity · g_max``.

        The unit of :attr:`CrossbarConfig.g_max
        <analogkernels.analog.CrossbarConfig.g_max>`.
        """
        return self.devices_per_polarity * self.g_max

    def __post_init__(self) -> None:
        """Check the fields: their types in the bindings, their ranges in the core.

        A bad config fails where it is written, naming the field, instead of
        programming devices to inf or NaN later.

        Raises
        ------
        ConfigError
            Naming the first invalid field.
        """
        _core._PcmArray(np.empty(0), dataclasses.asdict(self))


class DeviceArray:
    """PCM devices programmed to target conductances.

    Parameters
    ----------
    targets : array_like of float
        Target conductance per polarity, µS, in ``[0, devices_per_polarity · g_max]``.
    config : PCMConfig, optional

    Examples
    --------
    >>> arr = DeviceArray(np.linspace(2.5, 25.0, 1000), PCMConfig(seed=1))
    >>> report = arr.program()
    >>> report["converged_healthy"] > 0.99
    True
    """

    def __init__(self, targets: Any, config: PCMConfig | None = None) -> None:
        config = PCMConfig() if config is None else config
        if not isinstance(config, PCMConfig):
            raise ConfigError(f"config must be a PCMConfig, got {type(config).__name__}")
        # as_float_array refuses complex input (its imaginary part would be
        # dropped); the copy keeps the caller's array from aliasing ours. The
        # shape (1-D) and the values are checked by the bindings and the core.
        t = np.array(as_float_array(targets, "targets"), dtype=np.float64, order="C", copy=True)
        self._targets = t
        self._config = config
        self._core = _core._PcmArray(self._targets, dataclasses.asdict(config))

    @property
    def config(self) -> PCMConfig:
        """The device model and programming settings of the array."""
        return self._config

    @property
    def targets(self) -> np.ndarray:
        """Targets per polarity, µS."""
        return self._targets.copy()

    def program(self) -> dict[str, Any]:
        """Run program-and-verify on every device; returns :meth:`stats`."""
        return self._core.program()

    def read(
        self, t_inference: float = 0.0, *, seed: int = 0, per_read_noise: bool = False
    ) -> np.ndarray:
        """Conductance of every device (µS) ``t_inference`` s after programming.

        Drift ``(t/t0)^−ν`` (the phase decides ν: small for SET, aihwkit's law for
        RESET and intermediate states) and accumulated 1/f read noise drawn with
        ``seed``; ``per_read_noise`` adds the instantaneous noise of one read
        (``verify_noise``).
        """
        # The bindings check t_inference (a real number) and seed (an integer
        # in 0 .. 2**64 - 1), naming them; the core checks the time's range.
        return self._core.read(t_inference, seed, bool(per_read_noise))

    def stats(self) -> dict[str, Any]:
        """Yield report of the programming.

        Counts of stuck devices, fraction converged (healthy and all), total pulses,
        mean trim iterations, iteration histogram, and the spread of (programmed −
        target) in µS.
        """
        return self._core.stats()

    def _array(self, name: str) -> np.ndarray:
        return self._core.arrays()[name]

    @property
    def conductance(self) -> np.ndarray:
        """Programmed conductance per device, µS (targets × devices_per_polarity)."""
        return self._array("conductance")

    @property
    def phase(self) -> np.ndarray:
        """Phase per device (see :data:`PHASES`)."""
        return self._array("phase")

    @property
    def fault(self) -> np.ndarray:
        """Fault per device (see :data:`FAULTS`)."""
        return self._array("fault")

    @property
    def nu(self) -> np.ndarray:
        """Drift exponent per device."""
        return self._array("nu")

    @property
    def iterations(self) -> np.ndarray:
        """Trim iterations per device."""
        return self._array("iterations")

    @property
    def pulses(self) -> np.ndarray:
        """Pulses per device (RESET, SET, trims)."""
        return self._array("pulses")

    @property
    def t_last_pulse(self) -> np.ndarray:
        """End of each device's last pulse, s after the start of its programming.

        RESET 125 ns, SET 300 ns, trim 125 ns + verify 768 ns (Le Gallo et al. 2023,
        Methods).
        """
        return self._array("t_last_pulse")

    @property
    def converged(self) -> np.ndarray:
        """Whether each target was reached within tolerance."""
        return self._array("converged")

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle support: the targets, the config and whether the array was programmed.

        Unpickling programs the array again when it was (deterministic: the same
        bits).
        """
        return (_restore, (self._targets, self._config, bool(self._core.programmed)))

    def __repr__(self) -> str:
        """A one-line summary: the number of targets and whether they are programmed."""
        state = "programmed" if self._core.programmed else "not programmed"
        return f"DeviceArray({self._targets.size} targets, {state})"


def _restore(targets: np.ndarray, config: PCMConfig, programmed: bool) -> DeviceArray:
    arr = DeviceArray(targets, config)
    if programmed:
        arr.program()  # deterministic: the same seed gives the same bits
    return arr
