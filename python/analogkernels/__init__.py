"""analogkernels: kernel approximation on simulated analog in-memory computing hardware.

After Büchel et al., "Kernel approximation using analogue in-memory computing",
Nature Machine Intelligence 6, 1605–1615 (2024). The numerical engines live in
a Rust core (``analogkernels._core``); this package is the Python layer.

The Rust core's thread count is ``set_num_threads(n)`` (``0 <= n <=
_core.MAX_THREADS``; 0 restores the default), else the environment variable
``ANALOGKERNELS_NUM_THREADS`` (an integer from 1 to ``MAX_THREADS``; any other
value is ignored with a ``RuntimeWarning`` on import), else the CPU count.
"""

from __future__ import annotations

import warnings

from . import _core, exceptions, hadamard
from ._core import __version__, get_num_threads, set_num_threads

__all__ = ["__version__", "exceptions", "get_num_threads", "hadamard", "set_num_threads"]

_env_problem = _core._num_threads_env_problem()
if _env_problem is not None:
    warnings.warn(
        f"{_env_problem}; ignoring it and using the CPU count", RuntimeWarning, stacklevel=2
    )
del _env_problem
