"""Fuzz suite: hypothesis draws arrays (dtypes, layouts, strides, empty and
huge shapes, extreme values) and configs, and drives them against the ``_core``
entry points and the public API; each case runs in its own forked process with
a timeout and a memory limit (``tests/fuzz_harness.py``), which classifies
crash / hang / panic / wrong exception class / wrong result.

Profiles (``tests/conftest.py``): quick by default (a few seconds), thorough
under ``CI=true`` (about ten times the examples).
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

sys.path.insert(0, str(Path(__file__).parent))
import fuzz_harness as fh

FUZZ_SETTINGS = settings(
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.fixture(scope="module")
def server():
    s = fh.FuzzServer()
    yield s
    s.close()


#: ``ANALOGKERNELS_FUZZ_TIMES=path`` appends each case's seconds and target to
#: ``path`` (to size the timeout against the slowest cases).
_TIMES = os.environ.get("ANALOGKERNELS_FUZZ_TIMES")


def check(server: fh.FuzzServer, case: fh.Case) -> None:
    result = server.run(case)
    if _TIMES:
        with open(_TIMES, "a") as f:
            f.write(f"{result.seconds:.3f} {case.target} {result.outcome}\n")
    assert result.ok, f"{case.target}{case.args}\n{result.describe()}"


# ---------------------------------------------------------------------------
# strategies

FLOAT_DTYPES = [np.float32, np.float64]
OTHER_DTYPES = [np.int8, np.int64, np.uint64, np.bool_, np.float16, np.complex64]


def extreme_floats(dtype) -> st.SearchStrategy[float]:
    info = np.finfo(dtype)
    specials = [
        0.0,
        -0.0,
        1.0,
        -1.0,
        float(info.max),
        -float(info.max),
        float(info.max) / 2,
        float(info.tiny),
        float(info.tiny) / 4,  # subnormal
        math.inf,
        -math.inf,
        math.nan,
        1e30 if dtype == np.float32 else 1e300,
    ]
    return st.one_of(
        st.sampled_from(specials),
        st.floats(-1e3, 1e3, width=32 if dtype == np.float32 else 64),
        st.floats(allow_nan=True, allow_infinity=True, width=32 if dtype == np.float32 else 64),
    )


@st.composite
def base_arrays(draw, shape, dtypes=None, elements=None) -> np.ndarray:
    dtype = np.dtype(draw(st.sampled_from(dtypes or FLOAT_DTYPES + OTHER_DTYPES)))
    if dtype.kind == "f" and dtype.itemsize >= 4:
        elems = elements if elements is not None else extreme_floats(dtype.type)
    else:
        elems = None
    return draw(hnp.arrays(dtype, shape, elements=elems))


@st.composite
def layouts(draw, base: np.ndarray, allow_huge: bool = True, fortran: bool = True) -> fh.ArraySpec:
    """A layout on ``base``: as is, Fortran order, every other row of a
    doubled array, reversed rows, read-only, or broadcast to a huge number of
    rows."""
    kinds = ["c", "strided", "flip", "readonly"]
    kinds += ["fortran"] if fortran else []
    kinds += ["huge"] if allow_huge else []
    kind = draw(st.sampled_from(kinds))
    if kind == "c":
        return fh.ArraySpec(base)
    if kind == "fortran":
        return fh.ArraySpec(base, (("fortran",),))
    if kind == "strided" and base.ndim >= 1:
        doubled = np.repeat(base, 2, axis=0)
        return fh.ArraySpec(doubled, (("step", 2),))
    if kind == "flip" and base.ndim >= 1:
        return fh.ArraySpec(base[::-1].copy(), (("flip",),))
    if kind == "readonly":
        return fh.ArraySpec(base, (("readonly",),))
    if kind == "huge" and base.ndim == 2 and base.shape[0] >= 1:
        rows = draw(st.sampled_from([2**31, 2**40]))
        return fh.ArraySpec(base[:1], (("broadcast", (rows, base.shape[1])),))
    return fh.ArraySpec(base)


@st.composite
def transform_inputs(draw):
    """(x spec, row length n) for the Hadamard transforms."""
    n = draw(st.sampled_from([0, 1, 2, 3, 4, 8, 16, 32, 64, 128, 256, 1024, 8192, 12]))
    ndim = draw(st.sampled_from([1, 2, 2, 2, 0, 3]))
    if ndim == 0:
        shape: tuple[int, ...] = ()
    elif ndim == 1:
        shape = (n,)
    elif ndim == 2:
        shape = (draw(st.integers(0, 5)), n)
    else:
        shape = (2, 2, n)
    if math.prod(shape) > 20000:
        shape = (1, *shape[1:]) if len(shape) > 1 else shape
    base = draw(base_arrays(shape))
    return draw(layouts(base)), n


def diagonal(n: int) -> st.SearchStrategy:
    return st.one_of(
        base_arrays((n,), FLOAT_DTYPES).map(fh.ArraySpec),
        st.builds(lambda s: fh.ArraySpec(np.where(s, 1.0, -1.0)), hnp.arrays(np.bool_, (n,))),
        base_arrays((max(n - 1, 0),), FLOAT_DTYPES).map(fh.ArraySpec),  # wrong length
        st.just(fh.ArraySpec(np.ones((1, n)))),  # 2-D
        st.just(fh.ArraySpec(np.ones(n, np.complex128))),
    )


OUT_CHOICES = st.sampled_from([None, None, "x", "fresh", "wrong-dtype", "wrong-shape", "fortran"])


def out_for(choice, x: fh.ArraySpec):
    if choice in (None, "x"):
        return choice
    xa = fh.build(x)
    if xa.size > 1 << 16:
        return None
    dtype = xa.dtype if xa.dtype in (np.float32, np.float64) else np.dtype(np.float64)
    if choice == "fresh":
        return fh.ArraySpec(np.full(xa.shape, 7, dtype))
    if choice == "wrong-dtype":
        other = np.float32 if dtype == np.float64 else np.float64
        return fh.ArraySpec(np.full(xa.shape, 7, other))
    if choice == "wrong-shape":
        return fh.ArraySpec(np.full((*xa.shape, 1), 7, dtype))
    return fh.ArraySpec(np.full(xa.shape, 7, dtype), (("fortran",),))


ISAS = st.sampled_from([None, None, "scalar", "sse2", "avx2", "avx512f", "neon", "bogus"])
THREADS = st.sampled_from([0, 1, 2, 3])


# ---------------------------------------------------------------------------
# the Hadamard transforms


@FUZZ_SETTINGS
@given(data=st.data())
def test_fuzz_fwht(server, data):
    x, _ = data.draw(transform_inputs())
    out = out_for(data.draw(OUT_CHOICES), x)
    args = {"x": x, "normalize": data.draw(st.booleans()), "out": out, "isa": data.draw(ISAS)}
    check(server, fh.Case("fwht", args, data.draw(THREADS)))


@FUZZ_SETTINGS
@given(data=st.data())
def test_fuzz_randomized_hadamard(server, data):
    x, n = data.draw(transform_inputs())
    args = {
        "x": x,
        "signs": data.draw(diagonal(n)),
        "normalize": data.draw(st.booleans()),
        "out": out_for(data.draw(OUT_CHOICES), x),
        "isa": data.draw(ISAS),
    }
    check(server, fh.Case("randomized_hadamard", args, data.draw(THREADS)))


@FUZZ_SETTINGS
@given(data=st.data())
def test_fuzz_sorf_block(server, data):
    x, n = data.draw(transform_inputs())
    args = {
        "x": x,
        "d1": data.draw(diagonal(n)),
        "d2": data.draw(diagonal(n)),
        "d3": data.draw(diagonal(n)),
        "out": out_for(data.draw(OUT_CHOICES), x),
        "isa": data.draw(ISAS),
    }
    check(server, fh.Case("sorf_block", args, data.draw(THREADS)))


# ---------------------------------------------------------------------------
# feature functions


@st.composite
def matrices(draw, max_rows=6, max_cols=20):
    shape = draw(
        st.one_of(
            st.tuples(st.integers(0, max_rows), st.integers(0, max_cols)),
            st.sampled_from([(3,), (1, 2, 3), ()]),
        )
    )
    base = draw(base_arrays(shape))
    return draw(layouts(base))


SCALES = st.one_of(
    st.sampled_from([1.0, 0.5, 0.0, -2.0, 1e30, math.nan, math.inf]), st.floats(-10, 10)
)


@FUZZ_SETTINGS
@given(u=matrices(), scale=SCALES, threads=THREADS)
def test_fuzz_rbf_features(server, u, scale, threads):
    check(server, fh.Case("rbf_features", {"u": u, "scale": scale}, threads))


@st.composite
def sorf_signs(draw, d: int):
    n = draw(st.sampled_from([max(1, 1 << max(0, d - 1).bit_length()), 16, 64, 3, 0, 256]))
    blocks = draw(st.integers(0, 3))
    kind = draw(st.sampled_from(["pm1", "float", "bad-shape"]))
    if kind == "pm1":
        base = np.where(draw(hnp.arrays(np.bool_, (blocks, 3, n))), 1.0, -1.0)
    elif kind == "float":
        base = draw(base_arrays((blocks, 3, n), FLOAT_DTYPES))
    else:
        base = np.ones((blocks, 2, n))
    return fh.ArraySpec(base), n, blocks


N_COMPONENTS = st.one_of(
    st.integers(0, 140), st.sampled_from([2**40, 2**62, 2**63, -1, 1.5, True, "3"])
)


@FUZZ_SETTINGS
@given(data=st.data())
def test_fuzz_sorf_project(server, data):
    x = data.draw(matrices(max_cols=70))
    d = fh.build(x).shape[-1] if fh.build(x).ndim else 0
    signs, n, blocks = data.draw(sorf_signs(d))
    s = data.draw(st.one_of(st.integers(0, max(1, blocks * n)), N_COMPONENTS))
    args = {"x": x, "signs": signs, "n_components": s, "scale": data.draw(SCALES)}
    check(server, fh.Case("sorf_project", args, data.draw(THREADS)))


@FUZZ_SETTINGS
@given(data=st.data())
def test_fuzz_rbf_features_fused(server, data):
    x = data.draw(matrices(max_cols=40))
    xa = fh.build(x)
    d = xa.shape[-1] if xa.ndim else 0
    args = {"x": x, "scale": data.draw(SCALES), "proj": data.draw(SCALES)}
    if data.draw(st.booleans()):
        s = data.draw(st.one_of(st.integers(0, 50), N_COMPONENTS))
        fits = isinstance(s, int) and not isinstance(s, bool) and 0 <= s <= 50
        shape = (s, d) if fits else (3, d)
        if data.draw(st.integers(0, 9)) == 0:
            shape = (shape[0], d + 1)  # mismatched width
        args["weights"] = fh.ArraySpec(data.draw(base_arrays(shape, FLOAT_DTYPES)))
    else:
        signs, n, blocks = data.draw(sorf_signs(d))
        s = data.draw(st.one_of(st.integers(0, max(1, blocks * n)), N_COMPONENTS))
        args["signs"] = signs
    args["n_components"] = s
    check(server, fh.Case("rbf_features_fused", args, data.draw(THREADS)))


# ---------------------------------------------------------------------------
# thread count, PCM devices


@FUZZ_SETTINGS
@given(
    n=st.one_of(
        st.integers(-5, 1100),
        st.sampled_from([2**63, 2**64, -(2**63), 1.0, "2", None, True]),
        st.integers(-(2**70), 2**70),
    )
)
def test_fuzz_set_num_threads(server, n):
    check(server, fh.Case("set_num_threads", {"n": n}))


PCM_FIELDS = [
    "g_max",
    "g_set_mean",
    "g_set_sd",
    "g_reset",
    "i_low",
    "i_high",
    "i_sd",
    "i_min",
    "i_max",
    "c2c",
    "additive",
    "relaxation",
    "verify_noise",
    "tolerance_counts",
    "counts_per_gmax",
    "gain",
    "t0",
    "t_read",
]
WILD = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, 1e-300, 5e-324, 1e300, 1e6, 1e3, 10.0, 100.0, -1.0]),
    st.floats(0, 20),
)


@FUZZ_SETTINGS
@given(
    targets=st.one_of(
        hnp.arrays(np.float64, st.integers(0, 40), elements=st.floats(0, 60)),
        hnp.arrays(np.float64, st.integers(0, 5)),
    ),
    fields=st.dictionaries(
        st.sampled_from([*PCM_FIELDS, "max_iterations", "devices_per_polarity", "stuck_set_prob"]),
        st.one_of(WILD, st.integers(-3, 300)),
        max_size=4,
    ),
    t_inference=st.one_of(st.floats(0, 1e308), st.sampled_from([-1.0, math.nan, 1e300])),
    seed=st.one_of(st.integers(0, 2**64 - 1), st.sampled_from([-1, 2**64, "3", 1.7])),
)
def test_fuzz_pcm_device_array(server, targets, fields, t_inference, seed):
    args = {"targets": targets, "fields": fields, "t_inference": t_inference, "seed": seed}
    check(server, fh.Case("pcm", args))


# ---------------------------------------------------------------------------
# AnalogMatrix, as a caller (the crossbar code belongs to another part of the
# project): sizes of at least one row and column, moderate magnitudes; the
# known defects at the edges are the explicit cases below.


@FUZZ_SETTINGS
@given(data=st.data())
def test_fuzz_analog_matrix(server, data):
    out_f = data.draw(st.integers(1, 12))
    in_f = data.draw(st.integers(1, 20))
    # Magnitudes a float32 device state holds (tiny weights: a case below).
    moderate = st.one_of(st.just(0.0), st.floats(1e-6, 1e3), st.floats(-1e3, -1e-6))
    w = data.draw(base_arrays((out_f, in_f), FLOAT_DTYPES, moderate))
    x_shape = data.draw(st.sampled_from([(in_f,), (3, in_f), (1, in_f), (2, in_f + 1)]))
    x = data.draw(base_arrays(x_shape, FLOAT_DTYPES, moderate))
    args = {
        "w": data.draw(layouts(w, allow_huge=False)),
        "x": data.draw(layouts(x, allow_huge=False)),
        "preset": data.draw(st.sampled_from(["ideal", "hermes"])),
        "seed": data.draw(st.integers(0, 2**64 - 1)),
    }
    check(server, fh.Case("analog_matmul", args, data.draw(THREADS)))


# Edge cases of the crossbar from issue 12 and from this suite, as exact cases.
# A known defect is marked xfail (strict: an unexpected pass fails too, so the
# marker goes when the fix lands).
S = fh.ArraySpec
KNOWN_CROSSBAR_CASES = [
    pytest.param(
        {"w": S(np.zeros((3, 0))), "x": S(np.zeros((5, 0)))},
        id="no-input-columns",
    ),
    pytest.param(
        {"w": S(np.zeros((0, 4))), "x": S(np.ones((2, 4)))},
        id="no-output-rows",
    ),
    pytest.param(
        {"w": S(np.zeros((3, 0))), "x": S(np.zeros((1, 0)), (("broadcast", (2**40, 0)),))},
        id="huge-empty-input",
    ),
    pytest.param(
        {
            "w": S(np.array([[1.0, 0.0]], np.float32)),
            "x": S(np.array([[0, 0], [1, 0], [0, 0]], np.float32), (("fortran",),)),
        },
        id="fortran-ordered-input",
    ),
    # Weights below the float32 range: exact in float64 (3.5e-53), and 0 in a
    # float32 output, the correctly rounded value (it was a strict xfail while
    # the oracle ignored the output dtype's resolution).
    pytest.param(
        {"w": S(np.array([[3.5e-53]])), "x": S(np.ones(1, np.float64))},
        id="weights-below-float32-range",
    ),
    pytest.param(
        {"w": S(np.array([[3.5e-53]])), "x": S(np.ones(1, np.float32))},
        id="weights-below-float32-range-float32-output",
    ),
    pytest.param(
        {"w": S(np.array([[1e-306, 5e-307]])), "x": S(np.ones(2, np.float64))},
        id="weights-below-2^b/max",
    ),
]


@pytest.mark.parametrize("args", KNOWN_CROSSBAR_CASES)
def test_analog_matrix_edge_cases(server, args):
    check(server, fh.Case("analog_matmul", {**args, "preset": "ideal", "seed": 0}))
