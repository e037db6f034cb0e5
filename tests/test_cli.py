"""The command line end to end on tiny generated data, and the energy model's
arithmetic on hand-computed cases."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from analogkernels import cli
from analogkernels.analog import CrossbarConfig
from analogkernels.paper import energy, figures, outputs, protocol, sweep

from .conftest import write_tiny_magic04


@pytest.fixture
def tiny_data(tmp_path):
    """A small magic04-format file (two Gaussian classes)."""
    return write_tiny_magic04(tmp_path, 400)


#: Accuracy of the Bayes classifier on ``write_tiny_magic04``'s data: two
#: Gaussian classes with identity covariance whose means differ by 1.6 in each
#: of 10 features, so the error is Φ(−0.8·√10) ≈ 0.6 %.
TINY_BAYES_ACCURACY = 0.5 * (1 + math.erf(0.8 * math.sqrt(10) / math.sqrt(2)))


def assert_accuracies_follow_the_task(runs):
    """Every run close to the Bayes rate (ridge on 2^k·d − k ≥ 19 random
    features of a linear problem: within 10 points), and the chip within five
    binomial standard errors of the evaluation rows of the FP run with the
    same draws (the chip reproduces the FP accuracy, as the paper reports)."""
    fp = {}
    for r in runs:
        assert TINY_BAYES_ACCURACY - 0.10 <= r["accuracy"] <= 1.0, r
        if r["backend"] == "fp":
            fp[(r["kernel"], r["sampler"], r["k"], r["seed"])] = r["accuracy"]
    for r in runs:
        key = (r["kernel"], r["sampler"], r["k"], r["seed"])
        if r["backend"] == "analog" and key in fp:
            p = fp[key]
            tolerance = 5 * math.sqrt(max(p * (1 - p), 0.01) / r["n_eval"])
            assert abs(r["accuracy"] - p) <= tolerance, (r, p)


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
        assert 0 < r["approximation_error"] < 1.5
        assert r["version"]
    header = (out / "runs.csv").read_text().splitlines()[0]
    assert "accuracy" in header and "approximation_error" in header and "seed" in header
    assert_accuracies_follow_the_task(runs)
    summary = (out / "summary.md").read_text()
    assert "| magic04 | rbf |" in summary and "chip − FP" in summary
    assert (out / "figure_magic04.png").stat().st_size > 10_000
    assert "32 runs in" in capsys.readouterr().out


def test_resume_after_interruption(tiny_data, tmp_path, monkeypatch):
    out = tmp_path / "out"
    real = protocol.run_one
    calls = {"n": 0}

    def flaky(cfg):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return real(cfg)

    monkeypatch.setattr(protocol, "run_one", flaky)
    assert cli.main(ridge_args(tiny_data, out)) == 130
    saved = sorted((out / "runs").glob("*.json"))
    assert len(saved) == 4  # the four finished runs, nothing partial
    assert not list((out / "runs").glob(".*tmp"))
    stamps = {p: p.stat().st_mtime_ns for p in saved}
    monkeypatch.setattr(protocol, "run_one", real)
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
    assert_accuracies_follow_the_task(runs)


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
    cfg = protocol.RunConfig("magic04", "rbf", "rff", 1, 0, "fp")
    assert "not a JSON object" in sweep.record_problem([], cfg)
    assert "'seed'" in sweep.record_problem({**cfg.__dict__, "seed": 1}, cfg)


def _valid_record(cfg, **extra):
    """A record that record_problem accepts for ``cfg`` (every check but the chip's)."""
    from analogkernels import __version__

    measured = {
        "accuracy": 0.8,
        "approximation_error": 0.1,
        "log2_s_over_d": 1.0,
        "wall_time_s": 0.1,
        "n_features_in": 10,
        "n_projections": 20,
        "n_features": 40,
        "n_train": 100,
        "n_eval": 100,
    }
    return {**cfg.__dict__, **measured, "version": __version__, **extra}


def test_a_refitted_preset_does_not_reuse_records(monkeypatch):
    # The preset's name does not pin its values: a record computed with
    # hermes_measured() before a refit (same package version) must not stand for
    # a run with the refitted values.
    import dataclasses
    import os
    import subprocess
    import sys

    cfg = protocol.RunConfig("magic04", "rbf", "rff", 1, 0, "analog", preset="hermes-measured")
    fp = protocol.RunConfig("magic04", "rbf", "rff", 1, 0, "fp")
    before = _valid_record(cfg, chip_digest=cfg.chip_digest())
    assert sweep.record_problem(before, cfg) is None
    assert sweep.record_problem(_valid_record(fp), fp) is None  # a floating-point run has no chip
    assert "no 'chip_digest'" in sweep.record_problem(_valid_record(cfg), cfg)
    key, fp_key = cfg.key(), fp.key()
    assert fp.chip() is None and fp.chip_digest() == ""
    assert cfg.chip() == CrossbarConfig.hermes_measured()
    # The digest is a function of the values: the same in another process (with
    # another hash seed), and for an equal config whose 0 is an int.
    code = (
        "from analogkernels.paper import protocol; "
        "print(protocol.RunConfig('magic04', 'rbf', 'rff', 1, 0, 'analog', "
        "preset='hermes-measured').chip_digest())"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert other.returncode == 0, other.stderr
    assert other.stdout.strip() == cfg.chip_digest()
    equal = dataclasses.replace(CrossbarConfig.hermes_measured(), adc_gain_std=0)
    monkeypatch.setattr(CrossbarConfig, "hermes_measured", classmethod(lambda cls, **kw: equal))
    assert cfg.key() == key

    refit = dataclasses.replace(equal, out_noise=0.05)
    monkeypatch.setattr(CrossbarConfig, "hermes_measured", classmethod(lambda cls, **kw: refit))
    assert cfg.chip() == refit
    assert cfg.key() != key and fp.key() == fp_key
    assert "other parameter values" in sweep.record_problem(before, cfg)
    assert sweep.record_problem(_valid_record(cfg, chip_digest=cfg.chip_digest()), cfg) is None


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


# --- CLI conventions and figures (issue 14) ------------------------------------------


def cli_code(argv):
    """The exit code of ``analogkernels argv`` (argparse's errors raise SystemExit)."""
    try:
        return cli.main(argv)
    except SystemExit as exc:
        return exc.code


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["ridge", "--k", "5..1"], "'5..1' is an empty range"),
        (["ridge", "--k", "0..3"], "k must lie in 1..8, got 0"),
        (["ridge", "--data-dir", "/nonexistent-folder"], "/nonexistent-folder does not exist"),
        (["ridge", "--dataset", "mnist"], "unknown dataset 'mnist'"),
        (["ridge", "--kernel", "poly"], "invalid choice(s) poly"),
        (["ridge", "--jobs", "2", "--scheduler", "local:2"], "exclude each other"),
        (["ridge", "--scheduler", "local:x"], "local:N needs a positive number of workers"),
        (["ridge", "--scheduler", "nonsense"], "expected a scheduler address"),
        (["demo", "--seeds", "0"], "expected a positive integer, got 0"),
        (["demo", "--t-inference", "-1"], "expected a number >= 0"),
        (["energy", "--dataset", "mnist"], "unknown dataset 'mnist'"),
        (["energy", "--mode", "2-phase"], "invalid choice: '2-phase'"),
        (["attention"], "required: STUDY"),
        (["attention", "listops", "--steps", "0"], "expected a positive integer"),
        (["attention", "error", "--model", "/nonexistent.pt"], "/nonexistent.pt does not exist"),
        (["bogus"], "invalid choice: 'bogus'"),
        ([], "required: COMMAND"),
    ],
)
def test_every_user_mistake_is_one_line_and_exit_2(argv, says, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # nothing may be written, not even results/<timestamp>
    assert cli_code(argv) == 2
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1, captured.err
    assert says in captured.err and "Traceback" not in captured.err
    assert captured.err.startswith("analogkernels")
    assert list(tmp_path.iterdir()) == []


def test_data_dir_that_is_a_file_is_named(tmp_path, capsys):
    f = tmp_path / "data.txt"
    f.write_text("")
    assert cli_code(["ridge", "--data-dir", str(f)]) == 2
    assert f"{f} is not a folder" in capsys.readouterr().err


def test_a_model_file_that_is_not_a_model_is_one_line(tmp_path, capsys):
    pytest.importorskip("torch")
    bad = tmp_path / "model.pt"
    bad.write_bytes(b"not a model")
    out = tmp_path / "out"
    assert cli_code(["attention", "error", "--model", str(bad), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is not a model saved by" in err and "Traceback" not in err
    assert not out.exists()  # refused before any output


def _subparsers(parser):
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield name, sub
                yield from _subparsers(sub)


def _help_of(help_text, option):
    """The help paragraph of ``option`` in a --help text."""
    lines = help_text.splitlines()
    start = next(
        i
        for i, line in enumerate(lines)
        if line.lstrip().startswith(option + " ") or line.strip() == option
    )
    block = [lines[start]]
    for line in lines[start + 1 :]:
        if line.lstrip().startswith("-"):
            break
        block.append(line)
    return " ".join(part.strip() for part in block)


def test_every_help_has_a_description_and_names_every_default():
    import argparse

    subs = dict(_subparsers(cli.build_parser()))
    assert set(subs) == {"demo", "ridge", "attention", "listops", "error", "energy", "calibrate"}
    for name, sub in subs.items():
        assert sub.description and len(sub.description) > 40, name
        text = sub.format_help()
        for action in sub._actions:
            if not action.option_strings or action.nargs == 0:
                continue  # flags (--quick, -v) have no value to default
            if action.default is argparse.SUPPRESS or action.required:
                continue  # a required option has no default to name
            para = _help_of(text, action.option_strings[-1])
            assert "default" in para, (name, action.option_strings, para)
            if action.choices:
                assert all(str(c) in para for c in action.choices), para
    ridge = subs["ridge"].format_help()
    assert "(default: 1..5)" in _help_of(ridge, "--k")
    assert "rbf, arccos0" in _help_of(ridge, "--kernel")
    assert "(default: analogkernels-demo)" in _help_of(subs["demo"].format_help(), "--out")
    assert "(default: 4-phase)" in _help_of(subs["energy"].format_help(), "--mode")


def test_help_exits_0_and_prints_defaults(capsys):
    assert cli_code(["ridge", "--help"]) == 0
    assert "(default: 10)" in capsys.readouterr().out


def test_defaults_and_choices_come_from_the_library():
    import dataclasses

    from analogkernels import calibration, datasets
    from analogkernels.paper import attention_study

    subs = dict(_subparsers(cli.build_parser()))

    def action(sub, dest):
        return next(a for a in subs[sub]._actions if a.dest == dest)

    run = {f.name: f.default for f in dataclasses.fields(protocol.RunConfig)}
    for dest in ("preset", "programming", "ijcnn1_encoding", "skin_rows"):
        assert subs["ridge"].get_default(dest) == run[dest], dest
    assert tuple(action("ridge", "ijcnn1_encoding").choices) == datasets.IJCNN1_ENCODINGS
    assert tuple(action("ridge", "skin_rows").choices) == datasets.SKIN_ROWS
    assert action("ridge", "k").default == f"{protocol.PAPER_KS[0]}..{protocol.PAPER_KS[-1]}"
    for sub in ("ridge", "listops", "error"):
        assert subs[sub].get_default("seeds") == protocol.PAPER_SEEDS, sub
    assert tuple(action("energy", "mode").choices) == energy.MODES
    assert subs["energy"].get_default("mode") == energy.DEFAULT_MODE
    assert tuple(action("energy", "kernel").choices) == protocol.KERNELS
    assert subs["energy"].get_default("kernel") == energy.DEFAULT_KERNEL
    assert subs["calibrate"].get_default("seeds") == len(calibration.DEFAULT_SEEDS)
    assert subs["calibrate"].get_default("max_evaluations") == calibration.DEFAULT_MAX_EVALUATIONS
    quick = _help_of(subs["ridge"].format_help(), "--quick")
    assert f"{sweep.QUICK_SEEDS} seeds" in quick and str(sweep.QUICK_ROWS) in quick
    quick = _help_of(subs["error"].format_help(), "--quick")
    assert f"at most {attention_study.QUICK_ATTENTION_SEEDS} seeds" in quick
    full = attention_study.LISTOPS_SIZES["full"]
    trees = _help_of(subs["listops"].format_help(), "--trees")
    assert f"{full.n_train},{full.n_val},{full.n_test} with --full" in trees


def test_energy_model_takes_widths_tile_and_ks_from_their_owners():
    from analogkernels.analog import CrossbarConfig
    from analogkernels.datasets import WIDTHS
    from analogkernels.kernel_approximation import paper_feature_counts

    hermes = CrossbarConfig.hermes()
    assert energy.HERMES_CORE_SHAPE == (hermes.tile_rows, hermes.tile_cols) == (256, 256)
    assert energy.PAPER_WIDTHS == {
        "ijcnn1": 13, "cod-rna": 8, "skin": 3, "magic04": 10, "letter": 16, "eeg": 14
    }  # fmt: skip
    assert all(WIDTHS[name] == d for name, d in energy.PAPER_WIDTHS.items())
    rows = [line for line in energy.table(["skin"]).splitlines() if line.startswith("| skin")]
    assert [int(r.split("|")[4]) for r in rows] == paper_feature_counts(3, protocol.PAPER_KS)
    assert energy.feature_flops("arccos", 7) == energy.feature_flops("arccos0", 7) == (7.0, 7)
    with pytest.raises(ValueError, match="unknown kernel 'poly'"):
        energy.feature_flops("poly", 7)


def test_one_read_time_default_for_every_subcommand():
    subs = dict(_subparsers(cli.build_parser()))
    defaults = {
        name: sub.get_default("t_inference")
        for name, sub in subs.items()
        if any(a.dest == "t_inference" for a in sub._actions)
    }
    assert set(defaults) == {"demo", "ridge", "listops"}
    assert set(defaults.values()) == {cli.DEFAULT_T_INFERENCE}


def test_info_logs_by_default_quiet_silences_them_verbose_adds_debug(tiny_data, tmp_path, capsys):
    import logging

    assert cli.main(small_sweep(tiny_data, tmp_path / "a")) == 0
    err = capsys.readouterr().err
    assert "writing results to" in err and "loading magic04" in err
    for argv in (
        ["-q", *small_sweep(tiny_data, tmp_path / "b")],
        [*small_sweep(tiny_data, tmp_path / "c"), "-q"],
    ):
        argv.remove("--no-progress")  # -q hides the progress bar too
        assert cli.main(argv) == 0
        captured = capsys.readouterr()
        assert captured.err == "" and "2 runs in" in captured.out  # results still print
    seen = []
    real = cli.configure_logging

    def spy(verbose, quiet):
        handler = real(verbose, quiet)
        seen.append(logging.getLogger("analogkernels").getEffectiveLevel())
        return handler

    cli.configure_logging = spy
    try:
        assert cli.main(["energy", "-v", "--dataset", "skin"]) == 0
    finally:
        cli.configure_logging = real
    assert seen == [logging.DEBUG]
    # main() leaves no handler behind
    assert not any(
        isinstance(h, cli._TqdmHandler) for h in logging.getLogger("analogkernels").handlers
    )


def test_sweep_records_and_summary_name_the_software_versions(tiny_data, tmp_path):
    import platform

    import scipy
    import sklearn

    out = tmp_path / "out"
    assert cli.main(small_sweep(tiny_data, out)) == 0
    runs = json.loads((out / "runs.json").read_text())
    for r in runs:
        assert r["numpy_version"] == np.__version__
        assert r["scipy_version"] == scipy.__version__
        assert r["sklearn_version"] == sklearn.__version__
        assert r["python_version"] == platform.python_version()
    cached = [json.loads(p.read_text()) for p in (out / "runs").glob("*.json")]
    assert all(c["numpy_version"] == np.__version__ for c in cached)
    header = (out / "runs.csv").read_text().splitlines()[0].split(",")
    assert {"numpy_version", "scipy_version", "sklearn_version", "version"} <= set(header)
    summary = (out / "summary.md").read_text()
    assert f"numpy {np.__version__}" in summary
    assert f"scikit-learn {sklearn.__version__}" in summary
    # Records cached before versions were recorded: empty CSV cells, "not recorded".
    old = [{k: v for k, v in runs[0].items() if not k.endswith("_version")}, runs[1]]
    outputs.write_outputs(old, out)
    rows = (out / "runs.csv").read_text().splitlines()
    assert len(rows) == 3 and "numpy_version" in rows[0]
    assert f"numpy {np.__version__}" in (out / "summary.md").read_text()
    outputs.write_outputs(old[:1], out)
    assert "numpy not recorded" in (out / "summary.md").read_text()


def test_summary_calls_the_analog_backend_chip(tiny_data, tmp_path):
    out = tmp_path / "out"
    argv = small_sweep(tiny_data, out)
    argv[argv.index("fp")] = "fp,analog"
    assert cli.main(argv) == 0
    summary = (out / "summary.md").read_text()
    assert "| FP acc. (%) | chip acc. (%) | chip − FP (pp) |" in summary
    assert "ANALOG" not in summary and "| analog |" not in summary
    assert "| magic04 | rbf | chip |" in summary


def test_demo_says_where_it_writes_and_takes_a_read_time(tmp_path, capsys):
    out = tmp_path / "demo-here"
    argv = ["demo", "--out", str(out), "--seeds", "1", "--t-inference", "3600", "-q"]
    assert cli.main(argv) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    assert "read 3600 s after programming" in captured.out
    for name in ("runs.json", "runs.csv", "summary.md", "figure_sklearn_breast_cancer.png"):
        assert f"  {out / name}\n" in captured.out and (out / name).is_file()
    runs = json.loads((out / "runs.json").read_text())
    assert {r["t_inference"] for r in runs} == {3600.0}


@pytest.fixture
def saved_figures(monkeypatch):
    """Every matplotlib figure saved during the test, as an object."""
    from matplotlib.figure import Figure

    figures = []
    real = Figure.savefig

    def save(self, *args, **kwargs):
        figures.append(self)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", save)
    return figures


def fake_record(k, seed, backend, sampler="rff", kernel="rbf"):
    rng = np.random.default_rng(hash((k, seed, backend, sampler, kernel)) % 2**32)
    d = 10
    return {
        "dataset": "magic04",
        "kernel": kernel,
        "sampler": sampler,
        "k": k,
        "seed": seed,
        "backend": backend,
        "preset": "hermes",
        "t_inference": 0.0,
        "version": "0",
        "log2_s_over_d": math.log2((2**k * d - k) / d),
        "accuracy": 0.8 + 0.02 * k + 0.01 * rng.standard_normal(),
        "approximation_error": 0.3 / k * (1 + 0.1 * rng.random()),
    }


def test_sweep_figure_axes(tmp_path, saved_figures):
    records = [
        fake_record(k, s, b, smp, kern)
        for k in (1, 2, 3)
        for s in range(4)
        for b in ("fp", "analog")
        for smp in ("rff", "sorf")
        for kern in ("rbf", "arccos0")
    ]
    figures.plot_dataset(records, "magic04", tmp_path / "f.png")
    (fig,) = saved_figures
    assert "± 1 std over seeds" in fig._suptitle.get_text()
    assert "mean over 4 seeds" in fig._suptitle.get_text()
    axes = fig.axes
    assert len(axes) == 4
    for ax in axes:
        assert ax.get_xlabel() == "k = log2(s/d)"
        assert list(ax.get_xticks()) == [1, 2, 3]
        for line in ax.lines:  # points at the integer k, not at log2(s/d)
            assert set(line.get_xdata()) <= {1, 2, 3}
    err_ax, acc_ax = axes[0], axes[1]
    assert "kernel approximation error" in err_ax.get_ylabel()
    assert "‖K − ΦΦᵀ‖_F / ‖K‖_F" in err_ax.get_ylabel()
    assert acc_ax.get_ylabel() == "test accuracy (%)"
    labels = [t.get_text() for t in acc_ax.get_legend().get_texts()]
    assert labels == ["RFF", "SORF", "FP", "chip"]


def test_listops_figure_starts_at_zero_and_explains_error_bars(tmp_path, saved_figures):
    record = {
        "fp": 0.34,
        "attention_only": [0.34, 0.35, 0.345],
        "full": [0.33, 0.35, 0.34],
        "hwa_fp": 0.37,
        "hwa_attention_only": [0.36, 0.365, 0.36],
        "hwa_full": [0.35, 0.36, 0.355],
        "settings": {"majority": 0.12, "seeds": 3},
    }
    figures.plot_listops(record, tmp_path / "l.png")
    (fig,) = saved_figures
    (ax,) = fig.axes
    assert ax.get_ylim()[0] == 0
    assert ax.get_ylim()[1] > 37
    assert ax.get_ylabel() == "test accuracy (%)"
    assert "error bars ± 1 std over 3 programming seeds" in ax.get_title()


def test_attention_error_study_records_versions_and_figure_axes(tmp_path, capsys, saved_figures):
    torch = pytest.importorskip("torch")
    out = tmp_path / "att"
    assert cli.main(["attention", "error", "--quick", "--seeds", "1", "--out", str(out)]) == 0
    records = json.loads((out / "attention_error.json").read_text())
    assert {r["versions"]["torch_version"] for r in records} == {str(torch.__version__)}
    assert {r["seeds"] for r in records} == {1}
    assert f"torch {torch.__version__}" in (out / "attention_error.md").read_text()
    assert "k = 4 (s = 255)" in capsys.readouterr().err  # progress per k
    (fig,) = saved_figures
    (ax,) = fig.axes
    assert list(ax.get_xticks()) == [1, 2, 3, 4]
    assert "‖A − Â‖_F / ‖A‖_F" in ax.get_ylabel()
    assert "± 1 std over 1 seeds" in ax.get_title()
    assert {t.get_text() for t in ax.get_legend().get_texts()} == {
        "gaussian (d=64), FP",
        "gaussian (d=64), chip",
    }


def test_listops_results_record_versions(tmp_path, monkeypatch, capsys, saved_figures):
    torch = pytest.importorskip("torch")
    from analogkernels.paper import lra

    def fake_run(**kwargs):
        kwargs["progress"]("training FP (1 steps)")
        settings = {
            "max_depth": 4,
            "max_args": 5,
            "min_length": 8,
            "max_length": 64,
            "n_train": 10,
            "n_test": 10,
            "train_steps": 1,
            "hwa_steps": 1,
            "batch": 64,
            "seeds": 2,
            "t_inference": kwargs["t_inference"],
            "majority": 0.1,
        }
        return lra.ListOpsRun(
            0.3,
            [0.3, 0.31],
            [0.29, 0.3],
            0.32,
            [0.31, 0.3],
            [0.3, 0.3],
            1.0,
            settings,
            lra.Performer(),
        )

    monkeypatch.setattr(lra, "run_listops", fake_run)
    out = tmp_path / "lo"
    assert cli.main(["attention", "listops", "--out", str(out)]) == 0
    record = json.loads((out / "listops.json").read_text())
    versions = record["versions"]
    assert versions["torch_version"] == str(torch.__version__)
    assert versions["numpy_version"] == np.__version__
    assert {"scipy_version", "sklearn_version", "analogkernels_version"} <= set(versions)
    assert record["settings"]["t_inference"] == cli.DEFAULT_T_INFERENCE
    assert f"torch {torch.__version__}" in (out / "listops.md").read_text()
    assert "training FP" in capsys.readouterr().err
    assert saved_figures and saved_figures[0].axes[0].get_ylim()[0] == 0


def test_training_logs_its_loss(caplog):
    pytest.importorskip("torch")
    import logging

    from analogkernels.paper import lra
    from analogkernels.paper.listops import ListOpsConfig, generate

    cfg = ListOpsConfig(max_depth=2, max_args=3, min_length=4, max_length=16)
    X, y = generate(32, cfg, seed=0, pad_to=16)
    model = lra.Performer(max_len=16)
    with caplog.at_level(logging.INFO, logger="analogkernels"):
        losses = lra.train(model, X, y, steps=5, lr=1e-3, batch=8, warmup=1, log_every=2)
    lines = [r.getMessage() for r in caplog.records if r.name == "analogkernels.paper.lra"]
    assert [line.split()[1] for line in lines] == ["2/5", "4/5", "5/5"]
    assert f"loss {np.mean(losses[4:]):.4f}" in lines[-1]
    assert f"loss {np.mean(losses[:2]):.4f}" in lines[0]


def test_repeated_names_and_ks_run_once():
    args = cli.build_parser().parse_args(["ridge", "--kernel", "rbf,rbf", "--k", "3,1,3"])
    assert args.kernel == ["rbf"] and args.k == [3, 1]
    assert cli.build_parser().parse_args(["ridge", "--scheduler", "local:2"]).scheduler == "local:2"


@pytest.mark.parametrize(
    ("old", "new"),
    [("experiments", "protocol"), ("lra", "lra"), ("listops", "listops"), ("energy", "energy")],
)
def test_old_module_paths_warn_and_alias_the_paper_modules(old, new):
    import importlib
    import sys

    if old == "lra":
        pytest.importorskip("torch")
    sys.modules.pop(f"analogkernels.{old}", None)
    with pytest.warns(FutureWarning, match=f"analogkernels.paper.{new}"):
        module = importlib.import_module(f"analogkernels.{old}")
    target = importlib.import_module(f"analogkernels.paper.{new}")
    assert set(target.__all__) <= set(module.__all__)
    for name in target.__all__:
        assert getattr(module, name) is getattr(target, name)
    if old == "experiments":  # the old module's other names, private ones included
        assert module.plot_dataset is figures.plot_dataset
        assert module.read_record is sweep.read_record
        assert module._dataset is protocol._dataset
    with pytest.raises(AttributeError):
        module.no_such_name  # noqa: B018


def test_figures_leave_the_callers_matplotlib_state_alone(tmp_path):
    # A library must not switch the user's backend (e.g. inside a notebook) or
    # leave figures open in pyplot's registry.
    import matplotlib
    import matplotlib.pyplot as plt

    from analogkernels.paper.figures import plot_dataset
    from analogkernels.paper.protocol import RunConfig, run_one

    previous = matplotlib.get_backend()
    matplotlib.use("pdf")
    try:
        cfg = RunConfig(
            dataset="sklearn:breast_cancer", kernel="rbf", sampler="rff", k=1, seed=0, backend="fp"
        )
        plot_dataset([run_one(cfg)], "sklearn:breast_cancer", tmp_path / "f.png")
        assert (tmp_path / "f.png").stat().st_size > 0
        assert matplotlib.get_backend() == "pdf"
        assert plt.get_fignums() == []
    finally:
        matplotlib.use(previous)


def test_python_dash_m_runs_the_same_command_line():
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "analogkernels", "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0 and done.stdout.startswith("analogkernels ")
    bad = subprocess.run(
        [sys.executable, "-m", "analogkernels", "no-such-command"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2 and "analogkernels" in bad.stderr


def test_summary_compares_the_run_to_run_spread_with_the_papers():
    """The spread table: sample sd over seeds at the largest k, RMS over samplers,
    against the paper's sd, and both chip / FP ratios (values recomputed here)."""
    from analogkernels.calibration import FP_ACC, HARDWARE_ACC, Target

    rng = np.random.default_rng(7)
    records, acc = [], {}
    for backend in ("fp", "analog"):
        for sampler in ("rff", "orf"):
            for k in (1, 2):
                values = 0.9 + rng.normal(0, 0.01 if backend == "fp" else 0.03, size=4)
                acc[(backend, sampler, k)] = values
                for seed, a in enumerate(values):
                    records.append(
                        {
                            "dataset": "toy", "kernel": "rbf", "backend": backend,
                            "sampler": sampler, "k": k, "seed": seed, "accuracy": float(a),
                            "approximation_error": 0.1, "n_eval": 1000,
                            "preset": "hermes", "t_inference": 0.0, "version": "0",
                        }
                    )  # fmt: skip
    paper = {
        ("toy", "rbf", s, k): {
            FP_ACC: Target(0.9, 0.002 * (1 + (s == "orf")), 10),
            HARDWARE_ACC: Target(0.89, 0.006 * (1 + (s == "orf")), 10),
        }
        for s in ("rff", "orf")
        for k in (1, 2)
    }
    text = protocol.summarize(records, paper)
    assert "Run-to-run spread at k = 2" in text
    spread = text[text.index("Run-to-run spread") :]
    row = next(line for line in spread.splitlines() if line.startswith("| toy | rbf | "))
    cells = [float(c) for c in row.split("|")[3:9]]

    def rms_sd(backend):
        return 100 * np.sqrt(
            np.mean([np.var(acc[(backend, s, 2)], ddof=1) for s in ("rff", "orf")])
        )

    fp_sd, chip_sd = rms_sd("fp"), rms_sd("analog")
    paper_fp, paper_chip = (
        100 * np.sqrt((0.002**2 + 0.004**2) / 2),
        100 * np.sqrt((0.006**2 + 0.012**2) / 2),
    )
    expected = [fp_sd, chip_sd, chip_sd / fp_sd, paper_fp, paper_chip, 3.0]
    np.testing.assert_allclose(cells, expected, atol=0.006)
    # Without chip runs there is no spread table; a cell the paper lacks is nan.
    fp_only = [r for r in records if r["backend"] == "fp"]
    assert "Run-to-run" not in protocol.summarize(fp_only, paper)
    partial = {c: m for c, m in paper.items() if c[3] == 1}  # not the largest k
    spread = protocol.summarize(records, partial)
    spread = spread[spread.index("Run-to-run spread") :]
    row = next(line for line in spread.splitlines() if line.startswith("| toy | rbf | "))
    assert [c.strip() for c in row.split("|")[6:9]] == ["nan"] * 3
    np.testing.assert_allclose([float(c) for c in row.split("|")[3:6]], expected[:3], atol=0.006)
