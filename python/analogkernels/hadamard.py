"""Fast Walsh–Hadamard transform (FWHT) and the structured blocks built on it.

The transform is ``y = H x`` with ``H`` the Sylvester-ordered Hadamard matrix of
size ``n`` (``scipy.linalg.hadamard(n)``), ``n`` a power of two from 1 to 2**26.
It runs in the Rust core with run-time SIMD dispatch (AVX-512F, AVX2, SSE2 on
x86-64; NEON on aarch64), gives the same bits on every instruction set and
thread count, and releases the GIL while it computes.

Functions
---------
fwht
    Transform of a vector or of every row of a 2-D array.
randomized_hadamard
    ``H · diag(signs) · x`` in one pass.
sorf_block
    One structured orthogonal random feature block
    ``sqrt(n) · Ĥ D1 Ĥ D2 Ĥ D3 x`` (Yu et al., NeurIPS 2016), ``Ĥ = H / sqrt(n)``.
available_isas
    The instruction sets this CPU runs.
"""

from __future__ import annotations

from ._core import available_isas, fwht, randomized_hadamard, sorf_block

__all__ = ["available_isas", "fwht", "randomized_hadamard", "sorf_block"]
