"""Tests of analogkernels.hadamard against scipy and against itself."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import analogkernels
from analogkernels import hadamard
from analogkernels.exceptions import AnalogKernelsError, DTypeError, ShapeError

ISAS = hadamard.available_isas()


def scipy_fwht(x: np.ndarray) -> np.ndarray:
    n = x.shape[-1]
    return x.astype(np.float64) @ scipy.linalg.hadamard(n).T.astype(np.float64)


finite = st.floats(-1e3, 1e3, allow_nan=False, width=32)


@st.composite
def row_arrays(draw, max_log=10):
    log_n = draw(st.integers(0, max_log))
    rows = draw(st.integers(1, 6))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    one_d = draw(st.booleans())
    shape = (1 << log_n,) if one_d else (rows, 1 << log_n)
    return draw(hnp.arrays(dtype, shape, elements=finite))


@given(row_arrays())
def test_matches_scipy_hadamard(x):
    y = hadamard.fwht(x)
    assert y.dtype == x.dtype and y.shape == x.shape
    expected = scipy_fwht(x)
    n = x.shape[-1]
    # Each output is a signed sum of n inputs: our error ≤ (log2(n)+1)·eps·Σ|x|
    # per row; the float64 reference product adds up to n·eps64·Σ|x| of its own.
    eps = np.finfo(x.dtype).eps
    total = np.abs(x.astype(np.float64)).sum(axis=-1, keepdims=True)
    bound = ((np.log2(n) + 1) * eps + n * np.finfo(np.float64).eps) * total + 1e-30
    assert np.all(np.abs(y - expected) <= bound)


@given(row_arrays(max_log=12), st.booleans())
def test_every_isa_gives_the_same_bits(x, normalize):
    results = [hadamard.fwht(x, normalize=normalize, isa=isa) for isa in ISAS]
    for r in results[1:]:
        assert r.tobytes() == results[0].tobytes()


@given(row_arrays())
def test_normalized_transform_is_orthonormal(x):
    y = hadamard.fwht(x, normalize=True)
    z = hadamard.fwht(y, normalize=True)
    tol = 1e-4 if x.dtype == np.float32 else 1e-11
    np.testing.assert_allclose(z, x, rtol=tol, atol=tol * (np.abs(x).max() + 1))


def test_input_is_not_modified_and_out_semantics():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 64))
    keep = x.copy()
    y = hadamard.fwht(x)
    assert np.array_equal(x, keep)
    out = np.empty_like(x)
    r = hadamard.fwht(x, out=out)
    assert r is out
    assert np.array_equal(out, y)
    assert np.array_equal(x, keep)
    # out=x: in place
    r = hadamard.fwht(x, out=x)
    assert r is x
    assert np.array_equal(x, y)


def test_out_overlapping_input_reads_input_first():
    base = np.arange(16, dtype=np.float64)
    x = base[:8]
    expected = hadamard.fwht(x.copy())
    out = base[4:12]  # overlaps x, different start
    hadamard.fwht(x, out=out)
    assert np.array_equal(out, expected)


def test_out_errors():
    x = np.ones((2, 8), dtype=np.float32)
    with pytest.raises(DTypeError, match="float32"):
        hadamard.fwht(x, out=np.empty((2, 8), dtype=np.float64))
    with pytest.raises(ShapeError, match=r"out has shape \[2, 4\]"):
        hadamard.fwht(x, out=np.empty((2, 4), dtype=np.float32))
    with pytest.raises(ShapeError, match="C-contiguous"):
        hadamard.fwht(x, out=np.empty((8, 2), dtype=np.float32).T)
    ro = np.empty((2, 8), dtype=np.float32)
    ro.flags.writeable = False
    with pytest.raises(AnalogKernelsError, match="read-only"):
        hadamard.fwht(x, out=ro)
    with pytest.raises(DTypeError):
        hadamard.fwht(x, out=[[0.0] * 8] * 2)


@pytest.mark.parametrize(
    ("bad", "error", "pattern"),
    [
        (np.zeros(6), ShapeError, r"row length 6 is not a power of two; pad each row to 8"),
        (np.zeros((3, 100)), ShapeError, r"row length 100 .* 128"),
        (np.zeros((2, 2, 2)), ShapeError, "got 3 dimension"),
        (np.float64(3.0), ShapeError, "got 0 dimension"),
        (np.zeros(4, dtype=np.complex128), DTypeError, "complex"),
        (np.array(["a", "b"]), DTypeError, "cannot be read as real numbers"),
    ],
)
def test_bad_input_errors(bad, error, pattern):
    with pytest.raises(error, match=pattern):
        hadamard.fwht(bad)


def test_errors_are_value_errors():
    with pytest.raises(ValueError):
        hadamard.fwht(np.zeros(3))
    assert issubclass(DTypeError, TypeError)


def test_too_long_rows_rejected():
    # A non-materialised view of 2^27 elements would need 512 MiB; check the
    # message through a zero-stride broadcast instead.
    x = np.broadcast_to(np.float32(0), (1 << 27,))
    with pytest.raises(ShapeError, match="exceeds the supported maximum"):
        hadamard.fwht(x)


def test_dtypes_and_array_likes():
    assert hadamard.fwht(np.arange(4, dtype=np.int32)).dtype == np.float64
    assert hadamard.fwht([True, False]).dtype == np.float64
    assert hadamard.fwht(np.ones(4, np.float16)).dtype == np.float64
    assert hadamard.fwht(np.ones(4, np.float32)).dtype == np.float32
    np.testing.assert_array_equal(hadamard.fwht([1, 2, 3, 4]), [10, -2, -4, 0])
    # non-contiguous input is fine
    x = np.arange(32, dtype=np.float64).reshape(4, 8)[:, ::2]
    np.testing.assert_allclose(hadamard.fwht(x), scipy_fwht(x))
    # Fortran order
    f = np.asfortranarray(np.random.default_rng(1).standard_normal((5, 16)))
    np.testing.assert_allclose(hadamard.fwht(f), scipy_fwht(f), atol=1e-12)


def test_empty_arrays_return_empty():
    for shape in [(0,), (0, 8), (3, 0)]:
        x = np.zeros(shape, dtype=np.float32)
        y = hadamard.fwht(x)
        assert y.shape == shape and y.dtype == np.float32 and y is not x


def test_nan_and_inf_propagate():
    x = np.array([1.0, np.nan, 2.0, 3.0])
    assert np.isnan(hadamard.fwht(x)).all()
    y = hadamard.fwht(np.array([np.inf, 0.0, 0.0, 0.0]))
    assert np.isinf(y).all()


def test_thread_count_does_not_change_bits():
    rng = np.random.default_rng(2)
    cases = [rng.standard_normal((64, 4096)).astype(np.float32), rng.standard_normal(1 << 18)]
    before = analogkernels.get_num_threads()
    try:
        outs = []
        for threads in (1, 2, 3):
            analogkernels.set_num_threads(threads)
            assert analogkernels.get_num_threads() == threads
            outs.append([hadamard.fwht(c).tobytes() for c in cases])
        assert outs[0] == outs[1] == outs[2]
    finally:
        analogkernels.set_num_threads(0)
    assert analogkernels.get_num_threads() == before


@given(row_arrays(max_log=9), st.data())
def test_randomized_hadamard_is_h_times_diag(x, data):
    n = x.shape[-1]
    signs = np.array(data.draw(st.lists(st.sampled_from([-1.0, 1.0]), min_size=n, max_size=n)))
    y = hadamard.randomized_hadamard(x, signs)
    # Same bits as multiplying first, then transforming (exact: signs are ±1).
    assert y.tobytes() == hadamard.fwht(x * signs.astype(x.dtype)).tobytes()


def test_sorf_block_matches_explicit_matrix():
    rng = np.random.default_rng(3)
    n = 32
    d = [rng.choice([-1.0, 1.0], size=n) for _ in range(3)]
    hn = scipy.linalg.hadamard(n) / np.sqrt(n)
    m = np.sqrt(n) * hn @ np.diag(d[0]) @ hn @ np.diag(d[1]) @ hn @ np.diag(d[2])
    x = rng.standard_normal((7, n))
    np.testing.assert_allclose(hadamard.sorf_block(x, *d), x @ m.T, atol=1e-12)
    # Rows of the block have norm sqrt(n): it is sqrt(n) times an orthogonal matrix.
    np.testing.assert_allclose(m @ m.T, n * np.eye(n), atol=1e-10)


def test_unknown_isa_is_an_error():
    # The message names the argument and lists the core's choices.
    with pytest.raises(AnalogKernelsError, match=r'`isa`: "mmx"; expected one of "scalar"'):
        hadamard.fwht(np.ones(4), isa="mmx")


def test_fork_safety():
    """A forked child can use the thread pool the parent already started."""
    import multiprocessing as mp

    x = np.random.default_rng(4).standard_normal((256, 1024))
    expected = hadamard.fwht(x)  # starts the pool in the parent
    ctx = mp.get_context("fork")
    with ctx.Pool(1) as pool:
        got = pool.apply(hadamard.fwht, (x,))
    assert np.array_equal(got, expected)
