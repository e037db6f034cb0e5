"""Regression tests of issue 12 ("no input crashes, hangs or silently corrupts"):
one test per defect, each failing on the code before the fix.

Cases that can hang or kill the interpreter run in a subprocess with a timeout.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

import analogkernels
from analogkernels import _core
from analogkernels.exceptions import ConfigError, DTypeError, ShapeError
from analogkernels.hadamard import fwht, randomized_hadamard, sorf_block
from analogkernels.pcm import DeviceArray, PCMConfig


def run_python(code: str, *, timeout: float, env: dict[str, str] | None = None):
    """Run ``code`` in a fresh interpreter; returns the CompletedProcess."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-W", "default", "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
    )


# ---------------------------------------------------------------------------
# item 3: fork while another thread rebuilds the pool


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_fork_while_another_thread_resizes_the_pool_does_not_hang():
    code = """
    import os, sys, threading, time
    import numpy as np
    import analogkernels
    from analogkernels.hadamard import fwht

    x = np.ones((64, 2048), np.float32)  # large enough for the pool
    stop = False

    def churn():
        n = 0
        while not stop:
            analogkernels.set_num_threads(8 if n % 2 else 16)
            fwht(x)
            n += 1

    t = threading.Thread(target=churn, daemon=True)
    t.start()
    for i in range(40):
        pid = os.fork()
        if pid == 0:
            fwht(x)  # needs the pool in the child
            os._exit(0)
        deadline = time.monotonic() + 10
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() > deadline:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
                print(f"HANG at fork {i}")
                sys.exit(3)
            time.sleep(0.005)
        assert os.waitstatus_to_exitcode(status) == 0, status
    stop = True
    t.join()
    print("OK")
    """
    proc = run_python(code, timeout=300)
    assert proc.returncode == 0 and "OK" in proc.stdout, proc.stdout + proc.stderr


# ---------------------------------------------------------------------------
# item 6: thread counts


@pytest.mark.parametrize("n", [2**63, 2**64, 100_000, analogkernels._core.MAX_THREADS + 1, -1])
def test_thread_count_out_of_range_is_a_config_error_naming_n(n):
    before = analogkernels.get_num_threads()
    with pytest.raises(ConfigError, match="`n`"):
        analogkernels.set_num_threads(n)
    assert analogkernels.get_num_threads() == before


@pytest.mark.parametrize("n", [1.5, "3", True, None])
def test_thread_count_of_the_wrong_type_is_a_config_error(n):
    with pytest.raises(ConfigError, match=r"`n`.*integer"):
        analogkernels.set_num_threads(n)


def test_largest_thread_count_works_and_zero_restores_the_default():
    before = analogkernels.get_num_threads()
    try:
        analogkernels.set_num_threads(np.int64(3))
        assert analogkernels.get_num_threads() == 3
        x = np.ones((8, 4096))
        np.testing.assert_array_equal(fwht(x)[:, 0], 4096.0)
    finally:
        analogkernels.set_num_threads(0)
    assert analogkernels.get_num_threads() == before


@pytest.mark.parametrize("value", ["0", "abc", "-3", "100000", "2.5"])
def test_invalid_thread_variable_warns_naming_it_and_is_ignored(value):
    code = """
    import os, warnings
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        import analogkernels
    msgs = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    print(repr(msgs))
    assert len(msgs) == 1 and "ANALOGKERNELS_NUM_THREADS" in msgs[0], msgs
    expected = min(len(os.sched_getaffinity(0)), analogkernels._core.MAX_THREADS)
    assert analogkernels.get_num_threads() == expected, analogkernels.get_num_threads()
    print("OK")
    """
    proc = run_python(code, timeout=60, env={"ANALOGKERNELS_NUM_THREADS": value})
    assert proc.returncode == 0 and "OK" in proc.stdout, proc.stdout + proc.stderr


def test_valid_thread_variable_is_used_without_warning():
    code = """
    import warnings
    warnings.simplefilter("error")
    import analogkernels
    assert analogkernels.get_num_threads() == 3
    print("OK")
    """
    proc = run_python(code, timeout=60, env={"ANALOGKERNELS_NUM_THREADS": " 3 "})
    assert proc.returncode == 0 and "OK" in proc.stdout, proc.stdout + proc.stderr


# ---------------------------------------------------------------------------
# item 5: outputs that cannot be allocated

HUGE = np.broadcast_to(np.ones(4), (2**40, 4))


@pytest.mark.parametrize(
    "call",
    [
        lambda: fwht(HUGE),
        lambda: randomized_hadamard(HUGE, np.ones(4)),
        lambda: sorf_block(HUGE, np.ones(4), np.ones(4), np.ones(4)),
        lambda: _core.rbf_features(HUGE, 1.0),
        lambda: _core.sorf_project(HUGE, np.ones((1, 3, 4)), 4),
        # empty output, huge input: the input copy itself cannot be made
        lambda: _core.sorf_project(HUGE, np.ones((1, 3, 4)), 0),
        lambda: _core.rbf_features_fused(np.ones((2, 16)), 2**62, 1.0, signs=np.ones((1, 3, 16))),
        lambda: _core.sorf_project(np.ones((2, 16)), np.ones((1, 3, 16)), 2**62),
    ],
)
def test_unallocatable_results_raise_memory_or_shape_error_not_a_panic(call):
    try:
        call()
    except (MemoryError, ShapeError):
        pass
    except BaseException as exc:  # PanicException is a BaseException
        pytest.fail(f"{type(exc).__module__}.{type(exc).__name__}: {exc}")
    else:
        pytest.fail("no error")


# ---------------------------------------------------------------------------
# item 8: overflow where the exact result is finite


def test_normalised_fwht_does_not_overflow_where_the_result_is_finite():
    x = np.array([3e38, 3e38, 0, 0], np.float32)
    for isa in analogkernels.hadamard.available_isas():
        np.testing.assert_array_equal(
            fwht(x, normalize=True, isa=isa), np.array([3e38, 0, 3e38, 0], np.float32)
        )
        np.testing.assert_array_equal(
            randomized_hadamard(-x, -np.ones(4, np.float32), normalize=True, isa=isa),
            np.array([3e38, 0, 3e38, 0], np.float32),
        )
    big = np.full(1024, 1e305)
    y = fwht(big, normalize=True)
    assert y[0] == pytest.approx(32 * 1e305) and np.all(y[1:] == 0)


def test_sorf_block_does_not_overflow_where_the_result_is_finite():
    # With unit diagonals sqrt(n)·Ĥ³ = H: H [b, b, 0, 0] = [2b, 0, 2b, 0].
    ones = np.ones(4, np.float32)
    b = 1e38
    got = sorf_block(np.array([[b, b, 0, 0], [1, 2, 3, 4]], np.float32), ones, ones, ones)
    np.testing.assert_array_equal(got[0], np.array([2 * b, 0, 2 * b, 0], np.float32))
    np.testing.assert_array_equal(got[1], sorf_block(np.float32([1, 2, 3, 4]), ones, ones, ones))


def test_true_overflow_and_nan_are_kept():
    assert np.isinf(fwht(np.full(4, np.finfo(np.float32).max))[0])
    assert np.all(np.isnan(fwht(np.array([np.nan, 1e308, 0, 0]), normalize=True)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_unnormalised_overflow_is_inf_where_exact_result_overflows_and_exact_elsewhere(dtype):
    # Found by the fuzz suite: H [MAX]*4 = [4 MAX, 0, 0, 0] gave [inf, 0, NaN, 0]
    # (inf - inf in the last butterfly stage).
    big = np.finfo(dtype).max
    for isa in analogkernels.hadamard.available_isas():
        np.testing.assert_array_equal(
            fwht(np.full(4, big, dtype), isa=isa), np.array([np.inf, 0, 0, 0], dtype)
        )
        # Rows of every kernel path (in registers, several passes, several
        # L1 blocks), among ordinary rows: -inf where the exact sum
        # overflows, the exact zeros elsewhere, ordinary rows unchanged.
        for n in (2, 64, 1024, 1 << 14):
            x = np.ones((3, n), dtype)
            x[1] = -big
            got = fwht(x, isa=isa)
            assert got[1, 0] == -np.inf and np.all(got[1, 1:] == 0), (isa, n)
            np.testing.assert_array_equal(got[[0, 2]], fwht(np.ones((2, n), dtype), isa=isa))
    # The diagonal's products overflow: H [2 MAX, -2 MAX] = [0, 4 MAX].
    y = randomized_hadamard(np.full(2, big, dtype), np.array([2, -2], dtype))
    np.testing.assert_array_equal(y, np.array([0, np.inf], dtype))


# ---------------------------------------------------------------------------
# error classes, out= left alone on failure


def test_failed_transform_leaves_out_untouched():
    x = np.ones(4)
    out = np.arange(4.0)
    with pytest.raises(ShapeError, match="signs"):
        randomized_hadamard(x, np.ones(3), out=out)
    np.testing.assert_array_equal(out, np.arange(4.0))
    with pytest.raises(ShapeError, match="d2"):
        sorf_block(x, np.ones(4), np.ones(2), np.ones(4), out=out)
    np.testing.assert_array_equal(out, np.arange(4.0))
    # Every CPU lacks one of these (NEON on x86-64, the x86 sets on aarch64).
    isas = ("scalar", "sse2", "avx2", "avx512f", "neon")
    unavailable = [i for i in isas if i not in analogkernels.hadamard.available_isas()]
    with pytest.raises(ConfigError, match="isa"):
        fwht(x, out=out, isa=unavailable[0])
    np.testing.assert_array_equal(out, np.arange(4.0))


# ---------------------------------------------------------------------------
# item 9 and the config/seed error classes: PCMConfig, DeviceArray


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("g_max", 1e300),
        ("c2c", 1e300),
        ("additive", 1e300),
        ("relaxation", 1e300),
        ("verify_noise", 1e300),
        ("t_read", 5e-324),
        ("g_max", float("inf")),
        ("g_max", -1.0),
    ],
)
def test_pcm_config_out_of_range_is_refused_naming_the_field(field, value):
    with pytest.raises(ConfigError, match=f"`{field}`"):
        PCMConfig(**{field: value})


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("g_max", "25"),
        ("g_max", None),
        ("c2c", 1 + 2j),
        ("g_max", True),
        ("g_max", 10**400),
        ("max_iterations", 3.0),
        ("max_iterations", 2**40),
        ("devices_per_polarity", "1"),
        ("seed", "3"),
        ("seed", 1.7),
        ("seed", -1),
        ("seed", 2**64),
        ("seed", True),
    ],
)
def test_pcm_config_wrong_type_is_a_config_error_naming_the_field(field, value):
    with pytest.raises(ConfigError, match=f"`{field}`"):
        PCMConfig(**{field: value})


def test_pcm_seed_range_ends_are_accepted():
    PCMConfig(seed=2**64 - 1)
    PCMConfig(seed=np.uint64(2**64 - 1))
    arr = DeviceArray([5.0, 10.0], PCMConfig(seed=0))
    arr.program()
    assert arr.read(1.0, seed=2**64 - 1).shape == (2,)
    for bad in ("3", 1.7, -1, 2**64):
        with pytest.raises(ConfigError, match="`seed`"):
            arr.read(1.0, seed=bad)
    with pytest.raises(ConfigError, match="`t_inference`"):
        arr.read("1")


def test_pcm_reads_at_extreme_times_stay_finite():
    arr = DeviceArray(np.linspace(0, 25, 50), PCMConfig(t_read=1e-15))
    arr.program()
    for t in (0.0, 1e300, np.finfo(np.float64).max):
        assert np.all(np.isfinite(arr.read(t, per_read_noise=True)))


def test_device_array_copies_its_targets():
    t = np.full(20, 10.0)
    arr = DeviceArray(t, PCMConfig(seed=2))
    arr.program()
    before = arr.conductance
    t[:] = 0.0
    np.testing.assert_array_equal(arr.targets, 10.0)
    again = pickle.loads(pickle.dumps(arr))
    np.testing.assert_array_equal(again.targets, 10.0)
    np.testing.assert_array_equal(again.conductance, before)


def test_device_array_refuses_complex_targets():
    with pytest.raises(DTypeError, match="targets"):
        DeviceArray(np.array([1 + 1j, 2.0]))


def test_device_array_can_be_shared_between_threads():
    arr = DeviceArray(np.full(30_000, 10.0), PCMConfig(seed=4))
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            for _ in range(3):
                if i % 2:
                    arr.program()
                else:
                    _ = arr.conductance
                    _ = arr.stats()
                    if arr._core.programmed:
                        arr.read(10.0, seed=i)
        except BaseException as exc:  # collected, asserted empty below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    reference = DeviceArray(np.full(30_000, 10.0), PCMConfig(seed=4))
    reference.program()
    np.testing.assert_array_equal(arr.conductance, reference.conductance)


# ---------------------------------------------------------------------------
# Ctrl-C during a long call


def test_ctrl_c_stops_a_long_call_promptly_and_keeps_the_state():
    code = """
    import os, signal, threading, time
    import numpy as np
    import analogkernels
    from analogkernels.pcm import DeviceArray, PCMConfig

    analogkernels.set_num_threads(1)  # at least 20 s of work on any CPU
    cfg = PCMConfig(max_iterations=255, tolerance_counts=1e-6)
    arr = DeviceArray(np.full(1_000_000, 10.0), cfg)
    sent = []

    def interrupt():
        sent.append(time.perf_counter())
        os.kill(os.getpid(), signal.SIGINT)

    threading.Timer(0.5, interrupt).start()
    try:
        arr.program()
        print("NOT INTERRUPTED")
    except KeyboardInterrupt:
        print(f"DELAY {time.perf_counter() - sent[0]:.3f}")
    assert not arr._core.programmed  # nothing half-written was committed
    print("OK")
    """
    proc = run_python(code, timeout=120)
    assert proc.returncode == 0 and "OK" in proc.stdout, proc.stdout + proc.stderr
    delay = float(proc.stdout.split("DELAY")[1].split()[0])
    assert delay < 2.0, proc.stdout


# ---------------------------------------------------------------------------
# found by the fuzz suite


def test_thread_pool_that_cannot_be_created_falls_back_to_the_calling_thread():
    code = """
    import resource
    import numpy as np
    import analogkernels
    from analogkernels.hadamard import fwht

    x = np.ones((16, 8192), np.float32)
    expected = fwht(x)
    analogkernels.set_num_threads(64)
    # No room for 63 thread stacks and arenas any more.
    with open("/proc/self/status") as fh:
        vm = next(int(l.split()[1]) * 1024 for l in fh if l.startswith("VmSize:"))
    resource.setrlimit(resource.RLIMIT_AS, (vm + (48 << 20), vm + (48 << 20)))
    got = fwht(x)  # used to panic: "building the analogkernels thread pool"
    assert np.array_equal(got, expected)
    with open("/proc/self/status") as fh:
        threads = next(int(l.split()[1]) for l in fh if l.startswith("Threads:"))
    assert threads < 63, threads  # the pool was indeed not built
    print("OK")
    """
    proc = run_python(code, timeout=120, env={"MALLOC_ARENA_MAX": "2"})
    assert proc.returncode == 0 and "OK" in proc.stdout, proc.stdout + proc.stderr


def test_empty_transforms_are_validated_like_any_other():
    with pytest.raises(ShapeError, match="power of two"):
        fwht(np.zeros((0, 3)))
    with pytest.raises(ShapeError, match="signs"):
        randomized_hadamard(np.zeros((0, 4)), np.ones(3))
    unavailable = [i for i in ("sse2", "neon") if i not in analogkernels.hadamard.available_isas()]
    with pytest.raises(ConfigError, match="isa"):
        fwht(np.zeros(0), isa=unavailable[0])
    assert fwht(np.zeros((0, 4))).shape == (0, 4)


@pytest.mark.parametrize("n", [-1, 2**64, 1.5, "3", True])
def test_feature_counts_out_of_range_are_config_errors(n):
    with pytest.raises(ConfigError, match="`n_components`"):
        _core.sorf_project(np.ones((2, 4)), np.ones((1, 3, 4)), n)
    with pytest.raises(ConfigError, match="`n_components`"):
        _core.rbf_features_fused(np.ones((2, 4)), n, 1.0, signs=np.ones((1, 3, 4)))


def test_kernels_and_energy_raise_the_project_classes():
    from analogkernels import kernels
    from analogkernels.exceptions import DataError
    from analogkernels.paper import energy

    with pytest.raises(DataError, match="X contains NaN"):
        kernels.rbf_kernel(np.array([[np.nan, 1.0]]))
    with pytest.raises(ShapeError, match="X must be 2-D"):
        kernels.rbf_kernel(np.ones(3))
    with pytest.raises(DTypeError, match="Y has complex dtype"):
        kernels.arccos_kernel(np.ones((2, 2)), np.ones((2, 2), complex))
    with pytest.raises(ConfigError, match="`gamma`"):
        kernels.rbf_kernel(np.ones((2, 2)), gamma="0.5")
    with pytest.raises(ConfigError, match="`d`"):
        energy.estimate("13", 10)
    with pytest.raises(ConfigError, match="mode"):
        energy.estimate(13, 10, mode="2-phase")


# ---------------------------------------------------------------------------
# AnalogMatrix.copy: the engine state cloned, not programmed again


@pytest.mark.parametrize("preset", ["hermes", "ideal"])
def test_analog_matrix_copy_clones_the_state_and_then_reads_independently(preset, monkeypatch):
    import copy as copy_module

    from analogkernels import analog
    from analogkernels.analog import AnalogMatrix, CrossbarConfig

    config = getattr(CrossbarConfig, preset)()
    rng = np.random.default_rng(0)
    W = rng.standard_normal((6, 40))
    X = rng.standard_normal((5, 40))
    m = AnalogMatrix.program(W, config, seed=11)
    m.drift_to(3600.0, seed=5)
    rows = len(m.tiles) * 6  # one (scale, offset) per tile output row
    m.set_affine(np.full(rows, 1.01), np.full(rows, 0.002))
    m.matmul(X)  # read position 5
    m.read_position = 7

    # Neither path may program the devices again (a pickle round trip would).
    def no_programming(*args, **kwargs):
        raise AssertionError("copy programmed the matrix again")

    monkeypatch.setattr(AnalogMatrix, "program", no_programming)
    monkeypatch.setattr(analog, "_restore", no_programming)
    for make in (m.copy, lambda: copy_module.copy(m), lambda: copy_module.deepcopy(m)):
        dup = make()
        assert type(dup) is AnalogMatrix and dup._core is not m._core
        assert (dup.read_position, dup.t_inference, dup.seed) == (m.read_position, 3600.0, 11)
        np.testing.assert_array_equal(dup.effective_weights(), m.effective_weights())
        # The copy's next read is the original's next read, bit for bit ...
        start = m.read_position
        a, b = m.matmul(X), dup.matmul(X)
        assert a.tobytes() == b.tobytes()
        assert m.read_position == dup.read_position == start + 5
        # ... and then they advance independently: reading one does not move
        # the other, and they stay in step when read alike.
        dup.matmul(X[:2])
        assert dup.read_position == start + 7 and m.read_position == start + 5
        m.matmul(X[:2])
        assert m.matmul(X).tobytes() == dup.matmul(X).tobytes()
        # Drift on the copy leaves the original's devices alone.
        before = m.effective_weights()
        dup.drift_to(1e6)
        np.testing.assert_array_equal(m.effective_weights(), before)
        # The affine correction was copied, not shared.
        assert dup._affine[0] is not m._affine[0]
        np.testing.assert_array_equal(dup._affine[0], m._affine[0])


def test_copied_feature_map_continues_the_reads_of_the_original():
    # RidgeClassifier deep-copies a fitted map on the chip: the copy must read
    # on from the map's read position, as the map itself would.
    from analogkernels.analog import CrossbarConfig
    from analogkernels.kernel_approximation import RandomFourierFeatures

    X = np.random.default_rng(1).standard_normal((8, 5))
    fm = RandomFourierFeatures(
        n_components=16, backend=CrossbarConfig.hermes(), random_state=0
    ).fit(X)
    fm.transform(X)
    import copy as copy_module

    dup = copy_module.deepcopy(fm)
    assert dup.analog_.read_position == fm.analog_.read_position == 8
    assert dup.transform(X).tobytes() == fm.transform(X).tobytes()
