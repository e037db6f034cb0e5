"""Dask: out-of-core ridge equal to the in-memory fit, lazy prediction and
transform, sweeps on a distributed scheduler (with a worker killed mid-sweep),
and the error without the [dask] extra."""

from __future__ import annotations

import copy
import json
import os
import signal
import sys
import threading
import time

import numpy as np
import pytest

import analogkernels.linear_model as lm
from analogkernels import cli
from analogkernels import dask as akdask
from analogkernels.analog import CrossbarConfig
from analogkernels.exceptions import ConfigError, ShapeError
from analogkernels.kernel_approximation import RandomFourierFeatures
from analogkernels.linear_model import RidgeClassifier, RidgeClassifierCV
from analogkernels.paper import sweep
from analogkernels.paper.protocol import RunConfig

from .conftest import write_tiny_magic04

dask = pytest.importorskip("dask")
da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

BLOCK = 64  # BLOCK_ROWS in these tests: a few hundred rows span several blocks


@pytest.fixture(scope="module")
def client():
    """Two single-threaded workers in this process (module globals such as a
    patched BLOCK_ROWS are shared with them)."""
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0"
        ) as cluster,
        distributed.Client(cluster) as c,
    ):
        yield c


@pytest.fixture
def small_blocks(monkeypatch):
    monkeypatch.setattr(lm, "BLOCK_ROWS", BLOCK)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    n, d = 700, 6
    centres = 2.0 * rng.standard_normal((3, d))
    y = rng.integers(0, 3, n)
    X = centres[y] + rng.standard_normal((n, d))
    return X, y


def rff(analog: bool, **kw):
    return RandomFourierFeatures(
        n_components=24,
        gamma=0.2,
        truncation=3.0,
        backend=CrossbarConfig.hermes() if analog else None,
        backend_seed=11,
        random_state=3,
        **kw,
    )


def rel(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


@pytest.mark.parametrize("analog", [False, True], ids=["digital", "analog"])
def test_fit_equals_in_memory_bit_for_bit_with_block_chunks(client, small_blocks, data, analog):
    X, y = data
    params = dict(alpha=0.5, regularize_intercept=analog, batch_size=50)
    mem = RidgeClassifier(feature_map=rff(analog), **params).fit(X, y)
    Xd, yd = da.from_array(X, chunks=BLOCK), da.from_array(y, chunks=100)
    dk = RidgeClassifier(feature_map=rff(analog), **params).fit(Xd, yd)
    assert np.array_equal(dk.coef_, mem.coef_)
    assert np.array_equal(dk.intercept_, mem.intercept_)
    assert np.array_equal(dk.classes_, mem.classes_)
    if analog:  # the training rows were read once, as in memory
        assert dk.feature_map_.analog_.read_position == mem.feature_map_.analog_.read_position
        assert mem.feature_map_.analog_.read_position == X.shape[0]
    # Prediction reads the next rows of the chip in both: the same bits.
    lazy = dk.decision_function(da.from_array(X[:300], chunks=BLOCK))
    assert isinstance(lazy, da.Array)
    assert np.array_equal(lazy.compute(), mem.decision_function(X[:300]))
    assert np.array_equal(lazy.compute(), lazy.compute())  # rows pinned at the call
    labels = dk.predict(da.from_array(X[300:], chunks=BLOCK)).compute()
    assert np.array_equal(labels, mem.predict(X[300:]))


@pytest.mark.parametrize("analog", [False, True], ids=["digital", "analog"])
def test_other_chunkings_agree_to_1e12_and_predict_the_same(client, small_blocks, data, analog):
    X, y = data
    mem = RidgeClassifier(feature_map=rff(analog), alpha=0.5).fit(X, y)
    ref = copy.deepcopy(mem)  # for predictions at the same read position
    for chunks in (100, ((7, 300, 193, 200), 6), 700):
        dk = RidgeClassifier(feature_map=rff(analog), alpha=0.5).fit(
            da.from_array(X, chunks=chunks), y
        )
        assert rel(dk.coef_, mem.coef_) < 1e-12
        assert rel(dk.intercept_, mem.intercept_) < 1e-12
        dk.feature_map_ = copy.deepcopy(ref.feature_map_)
        pred = dk.predict(da.from_array(X, chunks=chunks)).compute()
        assert np.array_equal(pred, copy.deepcopy(ref).predict(X))


def test_chunk_sums_do_not_depend_on_the_scheduler(client, small_blocks, data):
    """Distributed workers, the threaded scheduler and a single chunk: the chip's
    reads are keyed by the global row, so the features are the same everywhere."""
    X, y = data
    Xd = da.from_array(X, chunks=96)
    a = RidgeClassifier(feature_map=rff(True)).fit(Xd, y)  # on the client's workers
    with dask.config.set(scheduler="threads"):
        b = RidgeClassifier(feature_map=rff(True)).fit(Xd, y)
    assert np.array_equal(a.coef_, b.coef_)


def test_weights_float32_and_fitted_map(client, small_blocks, data):
    X, y = data
    X32 = X.astype(np.float32)
    w = np.random.default_rng(1).uniform(0.5, 2.0, X.shape[0])
    fm = rff(True).fit(X32)
    fm.analog_.read_position = 5000  # a chip that has been read before
    mem = RidgeClassifier(feature_map=fm, targets="01").fit(X32, y % 2, sample_weight=w)
    dk = RidgeClassifier(feature_map=fm, targets="01").fit(
        da.from_array(X32, chunks=BLOCK),
        da.from_array(y % 2, chunks=BLOCK),
        sample_weight=da.from_array(w, chunks=BLOCK),
    )
    assert fm.analog_.read_position == 5000  # the map passed in is not changed
    assert dk.feature_map_.analog_.read_position == 5000 + X.shape[0]
    assert np.array_equal(dk.coef_, mem.coef_)
    assert dk.coef_.shape == (1, 48)
    Xt = da.from_array(X32[:200], chunks=BLOCK)
    assert dk.score(Xt, y[:200] % 2) == mem.score(X32[:200], y[:200] % 2)


def test_fit_batches_with_dask_features(client, small_blocks, data):
    X, y = data
    fm = rff(False).fit(X)
    phi = fm.transform(X)
    mem = RidgeClassifier().fit_batches([(phi[:128], y[:128]), (phi[128:], y[128:])], [0, 1, 2])
    lazy = fm.transform(da.from_array(X, chunks=BLOCK))
    dk = RidgeClassifier().fit_batches(
        [(lazy[:128], y[:128]), (lazy[128:], da.from_array(y[128:], chunks=50))], [0, 1, 2]
    )
    assert np.array_equal(dk.coef_, mem.coef_)


def test_transform_is_lazy_and_reads_like_memory(client, data):
    X, _ = data
    fm = rff(True).fit(X)
    twin = copy.deepcopy(fm)
    lazy = fm.transform(da.from_array(X, chunks=((100, 250, 350), 6)))
    assert isinstance(lazy, da.Array) and lazy.shape == (700, 48)
    assert fm.analog_.read_position == 700  # reserved at the call
    first = lazy.compute()
    assert np.array_equal(first, twin.transform(X))  # a fresh read, as in memory
    assert np.array_equal(lazy.compute(), first)
    # The next call reads the next rows (fresh noise), like memory.
    again = fm.transform(da.from_array(X, chunks=350)).compute()
    assert np.array_equal(again, twin.transform(X))
    assert not np.array_equal(again, first)


def test_dataframe_input(client, data):
    dd = pytest.importorskip("dask.dataframe")
    pd = pytest.importorskip("pandas")
    X, y = data
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    ddf = dd.from_pandas(frame, npartitions=3)
    dk = RidgeClassifier(feature_map=rff(False)).fit(ddf, dd.from_pandas(pd.Series(y), 3))
    mem = RidgeClassifier(feature_map=rff(False)).fit(frame, y)
    assert rel(dk.coef_, mem.coef_) < 1e-12
    assert list(dk.feature_names_in_) == list(frame.columns)


def test_bad_input_is_a_clear_error(client, data):
    X, y = data
    Xd = da.from_array(X, chunks=100)
    with pytest.raises(ShapeError, match="y must have shape"):
        RidgeClassifier(feature_map=rff(False)).fit(Xd, y[:-1])
    with pytest.raises(ShapeError, match="2-D"):
        RidgeClassifier().fit(Xd[:, 0], y)
    with pytest.raises(ConfigError, match="leave-one-out"):
        RidgeClassifierCV().fit(Xd, y)

    class NoisyMap(RandomFourierFeatures):
        def __sklearn_tags__(self):
            tags = super().__sklearn_tags__()
            tags.non_deterministic = True
            return tags

    with pytest.raises(ConfigError, match="keyed by row"):
        RidgeClassifier(feature_map=NoisyMap(n_components=4)).fit(Xd, y)
    fitted = RidgeClassifier(feature_map=rff(False)).fit(Xd, y)
    with pytest.raises(ShapeError, match="expecting 6 features"):
        fitted.predict(Xd[:, :5])
    bad = X.copy()
    bad[650, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        RidgeClassifier(feature_map=rff(False)).fit(da.from_array(bad, chunks=100), y)


def test_generated_problem_is_reproducible_chunk_by_chunk():
    X, y = akdask.make_classification(1000, 5, chunks=300, seed=4)
    X2, y2 = akdask.make_classification(1000, 5, chunks=300, seed=4)
    assert X.chunks == ((300, 300, 300, 100), (5,))
    a = X.compute()
    assert np.array_equal(a, X2.compute()) and np.array_equal(y.compute(), y2.compute())
    assert np.array_equal(X[600:900].compute(), a[600:900])
    assert set(np.unique(y.compute())) <= set(range(7))
    with pytest.raises(ConfigError):
        akdask.make_classification(0, 5)
    # issue 17: the argument checks of _validation, each naming its argument.
    for kw, name in (
        ({"n_features": 2.0}, "n_features"),
        ({"chunks": True}, "chunks"),
        ({"n_classes": 1}, "n_classes"),
        ({"clusters_per_class": 0}, "clusters_per_class"),
        ({"noise": 0.0}, "noise"),
        ({"noise": "1"}, "noise"),
    ):
        with pytest.raises(ConfigError, match=f"`{name}`"):
            akdask.make_classification(**{"n_samples": 10, "n_features": 2, **kw})


def test_generated_keys_keep_their_run_spec_across_computations():
    """Dask's linear fusion must not give a key of the generated arrays (or of a
    slice of them) another task in another computation: a distributed scheduler
    that still holds the key warns "Detected different run_spec" and may fail with
    a KeyError. It did when one tuple-valued task per chunk was split into X and y
    (fused into X's chain only when y was not computed with it)."""
    from dask.array.optimization import optimize
    from dask.highlevelgraph import HighLevelGraph

    X, y = akdask.make_classification(1000, 5, chunks=300, seed=4)

    def graph(*arrays):
        g = HighLevelGraph.merge(*[a.__dask_graph__() for a in arrays])
        return dict(optimize(g, [a.__dask_keys__() for a in arrays]))

    seen = {}
    for arrays in [(X, y), (X,), (y,), (X[:400],), (X[:400], y[:400]), (X[:10],), (X, y)]:
        for key, task in graph(*arrays).items():
            assert seen.setdefault(key, task) == task, key


# ---------------------------------------------------------------------------
# sweeps


@pytest.fixture
def tiny_data(tmp_path):
    """A small magic04-format file (two Gaussian classes)."""
    return write_tiny_magic04(tmp_path, 300)


def ridge_args(data, out, *extra):
    return [
        "ridge",
        "--dataset",
        "magic04",
        "--data-dir",
        str(data),
        "--kernel",
        "rbf",
        "--sampler",
        "rff,sorf",
        "--k",
        "1,2",
        "--seeds",
        "2",
        "--out",
        str(out),
        "--no-progress",
        *extra,
    ]


def without_wall_time(path):
    rows = [line.split(",") for line in path.read_text().splitlines()]
    col = rows[0].index("wall_time_s")
    return [r[:col] + r[col + 1 :] for r in rows]


def test_sweep_on_a_scheduler_equals_the_local_sweep(client, tiny_data, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    assert cli.main(ridge_args(tiny_data, a)) == 0
    address = client.scheduler.address
    assert cli.main(ridge_args(tiny_data, b, "--scheduler", address)) == 0
    assert len(without_wall_time(b / "runs.csv")) == 1 + 16
    assert without_wall_time(b / "runs.csv") == without_wall_time(a / "runs.csv")
    # Resume: everything cached, nothing submitted.
    stamps = {p: p.stat().st_mtime_ns for p in (b / "runs").glob("*.json")}
    assert cli.main(ridge_args(tiny_data, b, "--scheduler", address)) == 0
    assert {p: p.stat().st_mtime_ns for p in (b / "runs").glob("*.json")} == stamps


def test_a_worker_with_other_chip_values_is_refused(client, tiny_data, tmp_path, monkeypatch):
    # A worker whose install holds other preset values (a refitted
    # hermes_measured()) computes another chip: its record must not be stored as
    # this run's. The workers here share this process, so the mismatch is
    # simulated on the records they return.
    real = akdask.iter_sweep

    def other_install(*args, **kwargs):
        for i, record in real(*args, **kwargs):
            yield i, {**record, "chip_digest": "0" * 20}

    monkeypatch.setattr(akdask, "iter_sweep", other_install)
    cfg = RunConfig("magic04", "rbf", "rff", 1, 0, "analog", data_dir=str(tiny_data))
    out = tmp_path / "sweep"
    with pytest.raises(ConfigError, match="other parameter values"):
        sweep.run_sweep([cfg], out, progress=False, scheduler=client.scheduler.address)
    assert not list((out / "runs").glob("*.json"))


def test_sweep_survives_a_worker_killed_mid_sweep(tiny_data, tmp_path):
    """Worker processes; one is killed (SIGKILL) after the first run is stored.
    The sweep finishes, the runs stored before the kill are kept as they were,
    and the records equal an in-process sweep's."""
    configs = [
        RunConfig(
            dataset="magic04",
            kernel="rbf",
            sampler=smp,
            k=k,
            seed=seed,
            backend=b,
            data_dir=str(tiny_data),
        )
        for smp in ("rff", "orf", "sorf")
        for k in (1, 2)
        for seed in range(2)
        for b in ("fp", "analog")
    ]
    out = tmp_path / "dask"
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        distributed.Client(cluster) as c,
    ):
        pids = list(c.run(os.getpid).values())
        seen: dict = {}

        def kill_after_first_run():
            runs = out / "runs"
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                done = list(runs.glob("*.json")) if runs.is_dir() else []
                if done:
                    seen.update({p: p.stat().st_mtime_ns for p in done})
                    os.kill(pids[0], signal.SIGKILL)
                    seen["killed"] = len(done)
                    return
                time.sleep(0.01)

        killer = threading.Thread(target=kill_after_first_run)
        killer.start()
        records = sweep.run_sweep(configs, out, progress=False, scheduler=cluster.scheduler_address)
        killer.join()
        # The nanny restarts the killed worker; let it finish starting before the
        # cluster closes (closing a worker that is still starting can fail).
        c.wait_for_workers(2, timeout=60)
    assert seen.get("killed", 0) >= 1
    assert seen["killed"] < len(configs)  # killed mid-sweep
    assert len(records) == len(configs) == len(list((out / "runs").glob("*.json")))
    for p, stamp in seen.items():
        if p != "killed":
            assert p.stat().st_mtime_ns == stamp  # a finished run is never redone
    local = sweep.run_sweep(configs, tmp_path / "local", progress=False)
    for x, y in zip(records, local, strict=True):
        x, y = dict(x), dict(y)
        x.pop("wall_time_s"), y.pop("wall_time_s")
        assert x == y


def test_without_the_extra_the_error_names_it(monkeypatch, tiny_data, tmp_path, capsys):
    for name in [m for m in sys.modules if m == "dask" or m.startswith(("dask.", "distributed"))]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "dask", None)  # import dask raises ImportError
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(ImportError, match=r"analogkernels\[dask\]"):
        akdask.require()
    with pytest.raises(ImportError, match=r"pip install 'analogkernels\[dask\]'"):
        akdask.make_classification(10, 2)
    assert not akdask.is_dask_collection(np.zeros(3))
    # The in-memory path does not need Dask.
    X = np.random.default_rng(0).standard_normal((50, 3))
    RidgeClassifier(feature_map=RandomFourierFeatures(n_components=4)).fit(X, X[:, 0] > 0)
    out = tmp_path / "out"
    assert cli.main(ridge_args(tiny_data, out, "--scheduler", "local:2")) == 1
    err = capsys.readouterr().err
    assert "analogkernels[dask]" in err and "--scheduler" in err
    assert not (out / "runs").exists()  # failed before any work


def test_records_json_round_trip_through_the_scheduler(client, tiny_data, tmp_path):
    """The records the client stores are those run_one returns (valid cache)."""
    from analogkernels.paper.sweep import read_record

    cfg = RunConfig(
        dataset="magic04", kernel="rbf", sampler="rff", k=1, seed=0, backend="analog",
        data_dir=str(tiny_data),
    )  # fmt: skip
    out = tmp_path / "one"
    (record,) = sweep.run_sweep([cfg], out, progress=False, scheduler=client.scheduler.address)
    stored = out / "runs" / f"{cfg.key()}.json"
    assert read_record(stored, cfg) == record == json.loads(stored.read_text())
