"""analogkernels: kernel approximation on simulated analog in-memory computing hardware.

After Büchel et al., "Kernel approximation using analogue in-memory computing",
Nature Machine Intelligence 6, 1605–1615 (2024). The numerical engines live in
a Rust core (``analogkernels._core``); this package is the Python layer.
"""

from __future__ import annotations

from . import exceptions, hadamard
from ._core import __version__, get_num_threads, set_num_threads

__all__ = ["__version__", "exceptions", "get_num_threads", "hadamard", "set_num_threads"]
