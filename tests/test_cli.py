"""The command line end to end on tiny generated data, and the energy model's
arithmetic on hand-computed cases."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from analogkernels import cli, energy, experiments


@pytest.fixture
def tiny_data(tmp_path):
    """A small magic04-format file (two Gaussian classes)."""
    rng = np.random.default_rng(0)
    lines = []
    for i in range(400):
        cls = "g" if i % 3 else "h"
        x = rng.standard_normal(10) + (0.8 if cls == "g" else -0.8)
        lines.append(",".join(f"{v:.4f}" for v in x) + f",{cls}")
    folder = tmp_path / "data" / "magic04"
    folder.mkdir(parents=True)
    (folder / "magic04.data").write_text("\n".join(lines) + "\n")
    return tmp_path / "data"


def ridge_args(data, out, *extra):
    return [
        "ridge",
        "--dataset",
        "magic04",
        "--data-dir",
        str(data),
        "--k",
        "1,2",
        "--seeds",
        "2",
        "--sampler",
        "rff,sorf",
        "--out",
        str(out),
        "--no-progress",
        *extra,
    ]


def test_ridge_end_to_end_writes_everything(tiny_data, tmp_path, capsys):
    out = tmp_path / "out"
    assert cli.main(ridge_args(tiny_data, out)) == 0
    runs = json.loads((out / "runs.json").read_text())
    # 2 kernels × 2 samplers × 2 k × 2 seeds × 2 backends
    assert len(runs) == 32
    assert {r["backend"] for r in runs} == {"fp", "analog"}
    for r in runs:
        assert r["n_projections"] == 2 ** r["k"] * 10 - r["k"]
        assert 0.5 < r["accuracy"] <= 1.0
        assert 0 < r["approximation_error"] < 1.5
        assert r["version"]
    header = (out / "runs.csv").read_text().splitlines()[0]
    assert "accuracy" in header and "approximation_error" in header and "seed" in header
    summary = (out / "summary.md").read_text()
    assert "| magic04 | rbf |" in summary and "chip − FP" in summary
    assert (out / "figure_magic04.png").stat().st_size > 10_000
    assert "32 runs in" in capsys.readouterr().out


def test_resume_after_interruption(tiny_data, tmp_path, monkeypatch):
    out = tmp_path / "out"
    real = experiments.run_one
    calls = {"n": 0}

    def flaky(cfg):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return real(cfg)

    monkeypatch.setattr(experiments, "run_one", flaky)
    assert cli.main(ridge_args(tiny_data, out)) == 130
    saved = sorted((out / "runs").glob("*.json"))
    assert len(saved) == 4  # the four finished runs, nothing partial
    assert not list((out / "runs").glob(".*tmp"))
    stamps = {p: p.stat().st_mtime_ns for p in saved}
    monkeypatch.setattr(experiments, "run_one", real)
    calls["n"] = 0
    assert cli.main(ridge_args(tiny_data, out)) == 0
    assert len(list((out / "runs").glob("*.json"))) == 32
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items())  # not recomputed


def test_parallel_jobs_give_the_same_results(tiny_data, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    assert cli.main(ridge_args(tiny_data, a, "--kernel", "rbf")) == 0
    assert cli.main(ridge_args(tiny_data, b, "--kernel", "rbf", "--jobs", "2")) == 0
    ra = json.loads((a / "runs.json").read_text())
    rb = json.loads((b / "runs.json").read_text())
    key = lambda r: (r["sampler"], r["k"], r["seed"], r["backend"])  # noqa: E731
    # Our engines give the same bits for any thread count; numpy's BLAS (the
    # digital projection, the exact kernel) may differ in the last bits when the
    # worker processes run it with fewer threads.
    for x, y in zip(sorted(ra, key=key), sorted(rb, key=key), strict=True):
        assert x["accuracy"] == y["accuracy"]
        assert x["approximation_error"] == pytest.approx(y["approximation_error"], rel=1e-12)


@pytest.mark.parametrize(
    "argv",
    [
        ["ridge", "--kernel", "poly"],
        ["ridge", "--k", "0..3"],
        ["ridge", "--k", "one"],
        ["ridge", "--seeds", "-1"],
        ["ridge", "--t-inference", "-5"],
        ["ridge", "--backend", "gpu"],
        ["bogus"],
        [],
    ],
)
def test_bad_arguments_give_a_usage_error(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "usage:" in err and "Traceback" not in err


def test_missing_data_file_is_a_message_not_a_traceback(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("ANALOGKERNELS_DATA_URL", "http://127.0.0.1:9")
    code = cli.main(["ridge", "--dataset", "magic04", "--data-dir", str(tmp_path), "--no-progress"])
    assert code == 1
    err = capsys.readouterr().err
    assert "magic04.data" in err and "Traceback" not in err
    assert cli.main(["ridge", "--dataset", "mnist", "--no-progress"]) == 2


def test_demo_runs_on_bundled_data(tmp_path, capsys):
    assert cli.main(["demo", "--out", str(tmp_path / "demo"), "--seeds", "1"]) == 0
    out = capsys.readouterr().out
    assert "SORF" in out and "chip acc" in out
    assert (tmp_path / "demo" / "figure_sklearn_breast_cancer.png").is_file()


def test_energy_command_prints_a_table(capsys):
    assert cli.main(["energy", "--dataset", "ijcnn1,skin"]) == 0
    out = capsys.readouterr().out
    assert out.count("| ijcnn1 |") == 5 and out.count("| skin |") == 5


def test_energy_arithmetic_by_hand():
    # ijcnn1, k = 5: d = 13, s = 411, RBF, 4-phase.
    e = energy.estimate(13, 411, kernel="rbf", mode="4-phase")
    e_flop = 400.0 / 19.5e12
    cores = 2  # ceil(411/256) · ceil(13/256)
    f_feat = 2 * 10 * 411 + 2 * 411  # cos + sin + scaling
    f_ridge = 2 * 822
    f_proj = 2 * 411 * 13
    assert e.cores == cores
    assert e.analog_energy_j == pytest.approx(cores * 3.38e-6 / 64 + (f_feat + f_ridge) * e_flop)
    assert e.gpu_energy_j == pytest.approx((f_proj + f_feat + f_ridge) * e_flop)
    assert e.analog_samples_per_s == pytest.approx(1 / 520e-9)
    assert e.gpu_samples_per_s == pytest.approx(19.5e12 / (f_proj + f_feat + f_ridge))
    assert e.energy_ratio == pytest.approx(e.gpu_energy_j / e.analog_energy_j)
    # More than 64 cores run in rounds; 1-phase is cheaper and faster.
    big = energy.estimate(300, 256 * 40, kernel="arccos0", mode="1-phase")
    assert big.cores == 80
    assert big.analog_samples_per_s == pytest.approx(1 / (2 * 133e-9))
    assert big.analog_energy_j == pytest.approx(
        80 * 0.86e-6 / 64 + (256 * 40 + 2 * 256 * 40) * e_flop
    )
    with pytest.raises(ValueError, match="mode"):
        energy.estimate(3, 5, mode="2-phase")
    assert math.isfinite(energy.estimate(1, 1).energy_ratio)


def test_iterative_programming_option(tiny_data, tmp_path):
    out = tmp_path / "it"
    args = ridge_args(tiny_data, out, "--programming", "iterative", "--kernel", "rbf")
    assert cli.main(args) == 0
    runs = json.loads((out / "runs.json").read_text())
    assert {r["programming"] for r in runs} == {"iterative"}
    assert all(0.5 < r["accuracy"] <= 1 for r in runs)


# --- robustness (issue 12) ------------------------------------------------------------


def small_sweep(data, out):
    return [
        "ridge",
        "--dataset",
        "magic04",
        "--data-dir",
        str(data),
        "--kernel",
        "rbf",
        "--sampler",
        "rff",
        "--k",
        "1",
        "--seeds",
        "2",
        "--backend",
        "fp",
        "--out",
        str(out),
        "--no-progress",
    ]


def test_sweep_cache_records_are_validated_against_key_ranges_and_version(tiny_data, tmp_path):
    out = tmp_path / "out"
    assert cli.main(small_sweep(tiny_data, out)) == 0
    first = {r["seed"]: r for r in json.loads((out / "runs.json").read_text())}
    files = {json.loads(p.read_text())["seed"]: p for p in (out / "runs").glob("*.json")}
    assert set(files) == {0, 1}

    def rerun():
        assert cli.main(small_sweep(tiny_data, out)) == 0
        runs = json.loads((out / "runs.json").read_text())
        assert sorted(r["seed"] for r in runs) == [0, 1]  # each run exactly once
        for r in runs:
            assert r == {**first[r["seed"]], "wall_time_s": r["wall_time_s"]}
        return runs

    # an out-of-range value (was reported as 250 %)
    record = json.loads(files[0].read_text())
    files[0].write_text(json.dumps({**record, "accuracy": 2.5}))
    rerun()
    # a record copied over another configuration's file (was: one run twice)
    files[1].write_text(files[0].read_text())
    rerun()
    # a record of another package version (was reused after an upgrade)
    record = json.loads(files[0].read_text())
    files[0].write_text(json.dumps({**record, "version": "0.0.1", "accuracy": 0.5}))
    rerun()
    # not JSON, a list, a missing field, a bool or NaN where a number belongs
    for text in ("{", "[1]", json.dumps({k: v for k, v in record.items() if k != "n_eval"})):
        files[0].write_text(text)
        rerun()
    files[0].write_text(json.dumps({**record, "accuracy": True}).replace("true", "NaN"))
    rerun()
    # a valid record is reused, not recomputed
    stamp = files[1].stat().st_mtime_ns
    rerun()
    assert files[1].stat().st_mtime_ns == stamp


def test_record_problem_names_the_field():
    cfg = experiments.RunConfig("magic04", "rbf", "rff", 1, 0, "fp")
    assert "not a JSON object" in experiments.record_problem([], cfg)
    assert "'seed'" in experiments.record_problem({**cfg.__dict__, "seed": 1}, cfg)


def test_k_range_is_checked_before_the_list_is_built():
    import argparse
    import tracemalloc

    tracemalloc.start()
    try:
        with pytest.raises(argparse.ArgumentTypeError, match=r"k must lie in 1\.\.8"):
            cli._k_range("1..3000000")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000
    with pytest.raises(argparse.ArgumentTypeError, match="empty range"):
        cli._k_range("5..2")
    assert cli._k_range("2..4") == [2, 3, 4] and cli._k_range("1,8") == [1, 8]


@pytest.mark.parametrize("command", ["ridge", "demo"])
def test_out_pointing_at_a_file_is_a_one_line_error(tmp_path, capsys, command):
    target = tmp_path / "a-file"
    target.write_text("not a folder")
    argv = [command, "--out", str(target)]
    if command == "ridge":
        argv.append("--no-progress")
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is a file, not a folder" in err and "Traceback" not in err
    assert target.read_text() == "not a folder"
    assert cli.main([command, "--out", str(target / "sub")]) == 2  # a folder below a file
    assert "cannot write to the output folder" in capsys.readouterr().err


def test_demo_in_a_read_only_folder_is_a_one_line_error(tmp_path, monkeypatch, capsys):
    import pathlib

    monkeypatch.chdir(tmp_path)

    def refuse(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(self))

    # As root, chmod does not stop writes: refuse them the way a read-only folder does.
    monkeypatch.setattr(pathlib.Path, "mkdir", refuse)
    assert cli.main(["demo", "--seeds", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Permission denied" in err and "analogkernels-demo" in err
