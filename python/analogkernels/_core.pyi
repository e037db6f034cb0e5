"""Type stubs of the Rust extension ``analogkernels._core`` (checked by mypy.stubtest)."""

from typing import Any, final

import numpy as np
import numpy.typing as npt

__version__: str
MAX_THREADS: int

def set_num_threads(n: int) -> None:
    """Set the Rust core's thread count, 0 to ``MAX_THREADS`` (0 restores the default).

    Raises
    ------
    ConfigError
        Naming ``n``, when it is not an integer in that range.
    """

def get_num_threads() -> int:
    """The Rust core's thread count."""

def _num_threads_env_problem() -> str | None:
    """Why ``ANALOGKERNELS_NUM_THREADS`` is ignored, if it is set and invalid."""

def fwht(
    x: npt.ArrayLike,
    *,
    normalize: bool = False,
    out: np.ndarray[Any, Any] | None = None,
    isa: str | None = None,
) -> np.ndarray[Any, Any]:
    """Fast Walsh–Hadamard transform of a vector or of every row of a 2-D array.

    Parameters
    ----------
    x : array_like, shape (n,) or (m, n)
        Real input; float32 and float64 are kept, integers become float64.
        ``n`` must be a power of two from 1 to 2**26.
    normalize : bool, default False
        Multiply by ``1/sqrt(n)`` (orthonormal transform).
    out : ndarray, optional
        C-contiguous array of the result's shape and dtype to write into; may be
        ``x`` itself for an in-place transform.
    isa : str, optional
        Force an instruction set (see :func:`available_isas`); for tests and
        benchmarks. The result bits are the same on every instruction set.

    Returns
    -------
    ndarray
        ``H x`` row by row (``out`` if given).
    """

def randomized_hadamard(
    x: npt.ArrayLike,
    signs: npt.ArrayLike,
    *,
    normalize: bool = False,
    out: np.ndarray[Any, Any] | None = None,
    isa: str | None = None,
) -> np.ndarray[Any, Any]:
    """``H · diag(signs) · x`` for a vector or every row of a 2-D array, in one pass."""

def sorf_block(
    x: npt.ArrayLike,
    d1: npt.ArrayLike,
    d2: npt.ArrayLike,
    d3: npt.ArrayLike,
    *,
    out: np.ndarray[Any, Any] | None = None,
    isa: str | None = None,
) -> np.ndarray[Any, Any]:
    """One SORF block ``sqrt(n) · Ĥ D1 Ĥ D2 Ĥ D3 x`` with ``Ĥ = H/sqrt(n)``."""

def rbf_features(u: npt.ArrayLike, scale: float) -> np.ndarray[Any, Any]:
    """``scale · [cos(U), sin(U)]`` row by row (float32/float64 kept)."""

def rbf_features_fused(
    x: npt.ArrayLike,
    n_components: int,
    scale: float,
    *,
    weights: npt.ArrayLike | None = None,
    signs: npt.ArrayLike | None = None,
    projection_scale: float = 1.0,
) -> np.ndarray[Any, Any]:
    """``scale · [cos(X Wᵀ), sin(X Wᵀ)]`` fused chunk by chunk (dense W or SORF signs)."""

def sorf_project(
    x: npt.ArrayLike, signs: npt.ArrayLike, n_components: int, scale: float = 1.0
) -> np.ndarray[Any, Any]:
    """``X Wᵀ · scale`` for the SORF matrix of ``signs`` (blocks × 3 × n)."""

def available_isas() -> list[str]:
    """Names of the instruction sets this CPU runs, best last."""

@final
class _AnalogMatrix:
    """Rust crossbar state; use :class:`analogkernels.analog.AnalogMatrix`."""

    @staticmethod
    def program(w: npt.ArrayLike, config: dict[str, Any], seed: int) -> _AnalogMatrix: ...
    def copy(self) -> _AnalogMatrix: ...
    def read(self, x: npt.ArrayLike) -> np.ndarray[Any, Any]: ...
    def matmul(
        self, x: np.ndarray[Any, Any], seed: int, row_offset: int
    ) -> np.ndarray[Any, Any]: ...
    def _read_terms(
        self, x: np.ndarray[Any, Any], seed: int, row_offset: int
    ) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], np.ndarray[Any, Any]]: ...
    def _adc_mismatch(self) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]: ...
    def drift_to(self, t_inference: float, seed: int) -> None: ...
    def effective_weights(self) -> np.ndarray[Any, Any]: ...
    def tile_layout(self) -> list[tuple[int, int, int, int]]: ...
    def set_affine(self, scale: npt.ArrayLike, offset: npt.ArrayLike) -> None: ...
    @property
    def t_inference(self) -> float: ...
    @property
    def shape(self) -> tuple[int, int]: ...
    @property
    def read_position(self) -> int: ...
    @read_position.setter
    def read_position(self, position: int) -> None: ...
    @property
    def seed(self) -> int: ...

@final
class _PcmArray:
    """Rust PCM device array; use :class:`analogkernels.pcm.DeviceArray`."""

    def __new__(cls, targets: npt.ArrayLike, config: dict[str, Any]) -> _PcmArray: ...
    def program(self) -> dict[str, Any]: ...
    def read(self, t_inference: float, seed: int, per_read_noise: bool) -> np.ndarray[Any, Any]: ...
    def stats(self) -> dict[str, Any]: ...
    def arrays(self) -> dict[str, np.ndarray[Any, Any]]: ...
    @property
    def programmed(self) -> bool: ...

def _pcm_preset(name: str) -> dict[str, Any]:
    """Fields of the core's PCM preset ``name`` (``"pcm_like"`` or ``"hermes"``).

    Raises
    ------
    ConfigError
        Naming ``preset``, for any other name.
    """

def _noise_model_defaults(noise_model: str, devices_per_polarity: int) -> dict[str, float]:
    """The core's ``g_max`` (µS per polarity), ``t0`` (s) and ``t_read`` (s) of a noise model.

    Raises
    ------
    ConfigError
        Naming ``noise_model`` or ``devices_per_polarity``, for an invalid value.
    """

def _choices() -> dict[str, list[str]]:
    """The names each mode field accepts, from the core's name tables."""

def _crossbar_config(config: dict[str, Any]) -> dict[str, Any]:
    """A ``CrossbarConfig`` dict as the engine takes it, checked with the core's rules.

    Every field is converted (integers as ``int``, reals as ``float``, modes
    by name) and validated.

    Raises
    ------
    ConfigError
        Naming the first field of the wrong type or out of range.
    """

def _crossbar_hermes() -> dict[str, Any]:
    """Fields of the core's HERMES crossbar preset (the ``CrossbarConfig`` defaults)."""

def _device_codes() -> dict[str, dict[int, str]]:
    """``{"phase": {code: name}, "fault": {code: name}}`` of a PCM device array."""
