"""The systematic ADC stages of the crossbar and the calibration fit."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from analogkernels import cli
from analogkernels.analog import AnalogMatrix, CrossbarConfig
from analogkernels.calibration import (
    HERMES_MEASURED,
    PARAMETERS,
    Target,
    fit,
    load_targets,
    simulate_accuracy_drops,
    simulate_errors,
)
from analogkernels.exceptions import ConfigError, DataError
from analogkernels.paper.protocol import RunConfig, run_one

# A bundled dataset keeps the fit tests free of downloads (d = 30).
EMBEDDED = "sklearn:breast_cancer"


# --- the DAC range set from data --------------------------------------------------


def test_input_range_quantile_resolves_to_the_quantile_of_the_absolute_inputs():
    X = np.random.default_rng(0).standard_normal((400, 6)) * np.arange(1, 7)
    config = CrossbarConfig.hermes(input_range_quantile=0.99)
    resolved = config.with_input_range_from(X)
    assert resolved.input_range == np.quantile(np.abs(X), 0.99)
    assert resolved.input_range_quantile is None
    # Everything else is the config's.
    rest = {k: v for k, v in config.get_params().items() if not k.startswith("input_range")}
    assert {k: v for k, v in resolved.get_params().items() if k in rest} == rest
    # Off: the config itself.
    plain = CrossbarConfig.hermes()
    assert plain.with_input_range_from(X) is plain


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ({"input_range_quantile": 0.3}, "input_range_quantile"),
        ({"input_range_quantile": 1.5}, "input_range_quantile"),
        ({"input_range_quantile": float("nan")}, "input_range_quantile"),
        ({"input_range_quantile": 0.9, "input_range": 2.0}, "give one of them"),
    ],
)
def test_input_range_quantile_is_validated(fields, match):
    with pytest.raises(ConfigError, match=match):
        CrossbarConfig.hermes(**fields)


def test_unresolved_quantile_is_refused_where_no_data_is_seen():
    config = CrossbarConfig.hermes(input_range_quantile=0.99)
    with pytest.raises(ConfigError, match=r"input_range_quantile.*resolved"):
        AnalogMatrix.program(np.ones((3, 2)), config)
    with pytest.raises(DataError, match="empty"):
        config.with_input_range_from(np.zeros((0, 2)))
    with pytest.raises(DataError, match="quantile of \\|X\\| is 0"):
        config.with_input_range_from(np.zeros((5, 2)))
    with pytest.raises(DataError, match=r"is nan: .*finite"):
        config.with_input_range_from(np.array([[1.0, np.nan]]))
    dask_array = pytest.importorskip("dask.array")
    from analogkernels.kernel_approximation import RandomFourierFeatures

    with pytest.raises(ConfigError, match="dask"):
        RandomFourierFeatures(backend=config).fit(dask_array.ones((10, 2), chunks=5))


def test_feature_map_programs_the_range_of_its_fitted_inputs():
    from analogkernels.kernel_approximation import RandomFourierFeatures

    rng = np.random.default_rng(1)
    X_fit, X = rng.standard_normal((300, 5)), rng.standard_normal((20, 5))
    config = CrossbarConfig.hermes(input_range_quantile=0.995)
    implicit = RandomFourierFeatures(n_components=40, backend=config, random_state=3).fit(X_fit)
    explicit = RandomFourierFeatures(
        n_components=40, backend=config.with_input_range_from(X_fit), random_state=3
    ).fit(X_fit)
    assert implicit.input_range_ == explicit.input_range_ == np.quantile(np.abs(X_fit), 0.995)
    # The same chip, the same reads: bit for bit.
    np.testing.assert_array_equal(implicit.transform(X), explicit.transform(X))
    # The range is fixed by the fit: inputs beyond it are clipped, not rescaled.
    per_vector = RandomFourierFeatures(n_components=40, backend=CrossbarConfig.hermes())
    assert per_vector.fit(X_fit).input_range_ is None


def test_simulated_errors_take_the_range_from_the_training_rows():
    cell = (EMBEDDED, "rbf", "rff", 1)
    config = CrossbarConfig.hermes(input_range_quantile=0.99)
    from analogkernels.calibration import _paper_dataset

    train = _paper_dataset(EMBEDDED, None).X_train
    implicit = simulate_errors(config, [cell], range(2))[cell]
    explicit = simulate_errors(config.with_input_range_from(train), [cell], range(2))[cell]
    np.testing.assert_array_equal(implicit, explicit)


def test_a_free_quantile_starts_at_its_upper_bound():
    measured = simulate_errors(
        CrossbarConfig.hermes(input_range_quantile=1.0), [(EMBEDDED, "rbf", "rff", 1)], range(2)
    )
    targets = {c: Target(float(e.mean()), 0.01, 10) for c, e in measured.items()}
    result = fit(targets, parameters=["input_range_quantile"], seeds=range(2), max_evaluations=3)
    # The start (q = 1, the base config has no quantile) simulates the targets' config.
    assert result.cells[0]["simulated_base"] == pytest.approx(
        float(measured[next(iter(measured))].mean())
    )
    assert 0.99 <= result.values["input_range_quantile"] <= 1.0


# --- the ADC stages ------------------------------------------------------------


def test_adc_mismatch_is_drawn_per_output_with_the_configured_law():
    # 64 tiles of 256 outputs: 16384 independent draws per quantity.
    rng = np.random.default_rng(0)
    W = rng.standard_normal((16384, 4))
    config = CrossbarConfig.hermes(adc_offset=0.05, adc_offset_std=0.02, adc_gain_std=0.03)
    m = AnalogMatrix.program(W, config, seed=7)
    gain, offset_codes = m._core._adc_mismatch()
    offset = offset_codes / (2047 / 24.0)  # codes back to normalised units
    n = gain.size
    assert n == 16384
    # Sample mean within 4 standard errors, sample std within 4 standard
    # errors of a normal's std (σ·sqrt(1/(2n))).
    assert abs(gain.mean() - 1.0) < 4 * 0.03 / math.sqrt(n)
    assert abs(gain.std() - 0.03) < 4 * 0.03 / math.sqrt(2 * n)
    assert abs(offset.mean() - 0.05) < 4 * 0.02 / math.sqrt(n)
    assert abs(offset.std() - 0.02) < 4 * 0.02 / math.sqrt(2 * n)
    # Gain and offset of an ADC are independent draws.
    assert abs(np.corrcoef(gain, offset)[0, 1]) < 4 / math.sqrt(n)
    # A property of the chip: the same programming seed, the same values;
    # another seed, others.
    again = AnalogMatrix.program(W, config, seed=7)._core._adc_mismatch()
    other = AnalogMatrix.program(W, config, seed=8)._core._adc_mismatch()
    assert again[0].tobytes() == gain.tobytes() and again[1].tobytes() == offset_codes.tobytes()
    assert not np.array_equal(other[0], gain)


def test_adc_stages_off_leave_every_bit_of_hermes():
    rng = np.random.default_rng(1)
    W = rng.standard_normal((300, 40))
    X = rng.standard_normal((50, 40))
    base = AnalogMatrix.program(W, CrossbarConfig.hermes(), seed=3)
    gain, offset = base._core._adc_mismatch()
    assert np.all(gain == 1.0) and np.all(offset == 0.0)
    zero = CrossbarConfig.hermes(adc_offset=0.0, adc_offset_std=0.0, adc_gain_std=0.0)
    again = AnalogMatrix.program(W, zero, seed=3)
    assert base.matmul(X, seed=9).tobytes() == again.matmul(X, seed=9).tobytes()


def test_common_adc_offset_shifts_every_output_by_offset_times_scales():
    # Without ADC and noise the output is (acc·unit + e)·s_in·w_max: the offset
    # adds e·s_in·w_max to every output (s_in = max|x| of the row).
    rng = np.random.default_rng(2)
    W = rng.standard_normal((20, 12))
    X = rng.standard_normal((30, 12))
    e = 0.37
    clean = AnalogMatrix.program(W, CrossbarConfig.ideal(), seed=0).matmul(X)
    shifted = AnalogMatrix.program(W, CrossbarConfig.ideal(adc_offset=e), seed=0).matmul(X)
    expected = e * np.abs(X).max(axis=1)[:, None] * np.abs(W).max()
    np.testing.assert_allclose(shifted - clean, np.broadcast_to(expected, clean.shape), rtol=1e-9)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("adc_gain_std", 0.21),
        ("adc_gain_std", -0.01),
        ("adc_offset_std", -1.0),
        ("adc_offset", math.nan),
    ],
)
def test_adc_fields_are_validated(field, value):
    with pytest.raises(ConfigError, match=field):
        CrossbarConfig.hermes(**{field: value})


def test_common_offset_biases_the_step_kernel_but_not_the_rbf_kernel():
    # The physics the calibration relies on: [cos, sin] features cancel a
    # common offset (cos(u + e − u' − e)); Θ(u + e) estimates another kernel.
    cells = [(EMBEDDED, kernel, "rff", 3) for kernel in ("rbf", "arccos0")]
    seeds = range(4)
    base = simulate_errors(CrossbarConfig.hermes(), cells, seeds)
    shifted = simulate_errors(CrossbarConfig.hermes(adc_offset=0.3), cells, seeds)
    rbf, arccos = cells
    # The offset in weight units is e·max|x|·w_max, so it cancels in cos(u − u')
    # only up to the spread of max|x| between rows: the RBF error moves by a
    # small fraction of the step kernel's change.
    arccos_change = np.mean(shifted[arccos] / base[arccos]) - 1
    rbf_change = abs(np.mean(shifted[rbf] / base[rbf]) - 1)
    assert arccos_change > 0.5
    assert rbf_change < 0.1 * arccos_change


# --- targets --------------------------------------------------------------------


def _targets_file(tmp_path, cells: dict, names=None, accuracies: dict | None = None):
    """A targets file: ``cells`` are hardware errors, ``accuracies`` map a cell to
    ``{"hardware_acc": (mean, std, n), "fp_acc": (...)}``."""
    results: dict = {}
    for (dataset, kernel, sampler, k), (mean, std, n) in cells.items():
        node = results.setdefault(dataset, {}).setdefault(kernel, {}).setdefault(sampler, {})
        node[str(k)] = {"hardware_err": {"mean": mean, "std": std, "n": n}}
    for (dataset, kernel, sampler, k), metrics in (accuracies or {}).items():
        node = results[dataset][kernel][sampler][str(k)]
        for metric, (mean, std, n) in metrics.items():
            node[metric] = {"mean": mean, "std": std, "n": n}
    path = tmp_path / "targets.json"
    path.write_text(json.dumps({"results": results, "dataset_names": names or {}}))
    return path


def test_load_targets_maps_names_and_filters(tmp_path):
    path = _targets_file(
        tmp_path,
        {
            ("magic", "rbf", "rff", 1): (0.2, 0.01, 10),
            ("skin", "arccos0", "orf", 5): (0.3, 0.02, 9),
        },
        names={"magic": "magic04"},
    )
    all_ = load_targets(path)
    assert all_ == {
        ("magic04", "rbf", "rff", 1): Target(0.2, 0.01, 10),
        ("skin", "arccos0", "orf", 5): Target(0.3, 0.02, 9),
    }
    assert list(load_targets(path, datasets=["magic04"])) == [("magic04", "rbf", "rff", 1)]
    with pytest.raises(DataError, match=r"datasets.*cod-rna"):
        load_targets(path, datasets=["cod-rna"])
    with pytest.raises(DataError, match="metric 'fp_acc'"):
        load_targets(path, metric="fp_acc")


def test_accuracy_drop_is_chip_minus_fp_with_the_unpaired_spread(tmp_path):
    cell = ("magic", "rbf", "rff", 5)
    path = _targets_file(
        tmp_path,
        {cell: (0.2, 0.01, 10), ("magic", "rbf", "rff", 4): (0.2, 0.01, 10)},
        accuracies={cell: {"hardware_acc": (0.84, 0.003, 10), "fp_acc": (0.85, 0.004, 8)}},
    )
    drop = load_targets(path, metric="accuracy_drop", ks=[5])[cell]
    assert drop.mean == pytest.approx(0.84 - 0.85, abs=1e-15)
    assert drop.std == pytest.approx(0.005, rel=1e-12) and drop.n == 8
    # k = 4 has errors but no accuracies: asking for it names the missing metric.
    with pytest.raises(DataError, match="k=4 has no metric 'hardware_acc'"):
        load_targets(path, metric="accuracy_drop")


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[]",
        '{"results": 3}',
        '{"results": {"a": {"rbf": {"rff": {"1": {"hardware_err": {}}}}}}}',
    ],
)
def test_load_targets_rejects_malformed_files(tmp_path, text):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(DataError, match=r"bad\.json"):
        load_targets(path)


def test_shared_paper_targets_cover_the_protocol(data_dir):
    targets = load_targets(data_dir / "paper-hermes-results.json")
    assert len(targets) == 4 * 2 * 3 * 5
    assert {c[0] for c in targets} == {"ijcnn1", "cod-rna", "skin", "magic04"}
    assert all(t.n == 10 and t.std >= 0 for t in targets.values())


# --- the fit --------------------------------------------------------------------


def test_fit_rejects_bad_parameters():
    targets = {(EMBEDDED, "arccos0", "rff", 1): Target(0.3, 0.01, 10)}
    with pytest.raises(ConfigError, match="parameters"):
        fit(targets, parameters=["g_max"])
    with pytest.raises(ConfigError, match="2 seeds"):
        fit(targets, parameters=["adc_offset"], seeds=[0])
    with pytest.raises(ConfigError, match="outside"):
        fit(targets, parameters=["adc_offset"], start={"adc_offset": 3.0})
    with pytest.raises(ConfigError, match="not free parameters"):
        fit(targets, parameters=["adc_offset"], start={"out_noise": 0.1})


def test_fit_recovers_known_parameters_from_data_simulated_with_them():
    # "Measurements": a chip with a known residual ADC offset and output noise,
    # 8 seeds disjoint from the fit's own simulation seeds. The fit starts from
    # the published model (offset 0) and must find the truth within its
    # reported uncertainty (3 standard errors) — and that uncertainty must be
    # informative (small against the parameter's range).
    truth = {"adc_offset": 0.12, "out_noise": 0.3}
    cells = [(EMBEDDED, kernel, "rff", k) for kernel in ("arccos0", "rbf") for k in (1, 2, 3)]
    measured = simulate_errors(CrossbarConfig.hermes(**truth), cells, range(100, 108))
    targets = {
        c: Target(float(e.mean()), float(e.std(ddof=1)), e.size) for c, e in measured.items()
    }
    result = fit(targets, parameters=list(truth), seeds=range(4), max_evaluations=60)
    assert result.chi2 < result.start_chi2
    for name, value in truth.items():
        spec = next(p for p in PARAMETERS if p.name == name)
        err = result.stderr[name]
        assert math.isfinite(err) and err < 0.1 * (spec.high - spec.low)
        assert abs(result.values[name] - value) < 3 * err + 0.01 * (spec.high - spec.low)
    # Every cell is reported, before and after.
    assert len(result.cells) == len(cells)
    assert {"simulated_base", "residual_base", "relative_difference"} <= set(result.cells[0])


def test_simulated_accuracy_drop_is_the_protocols_chip_minus_fp_run():
    # The same seed, data and chip as two runs of the paper's protocol.
    cell = (EMBEDDED, "arccos0", "sorf", 2)
    runs = {
        backend: run_one(RunConfig(*cell, seed=3, backend=backend, preset="hermes"))
        for backend in ("fp", "analog")
    }
    drops = simulate_accuracy_drops(CrossbarConfig.hermes(), [cell], [3, 4])[cell]
    assert drops.shape == (2,)
    assert drops[0] == runs["analog"]["accuracy"] - runs["fp"]["accuracy"]


def test_fit_adds_accuracy_drops_to_chi2():
    err_cells = [(EMBEDDED, "arccos0", "rff", k) for k in (1, 2)]
    acc_cell = (EMBEDDED, "arccos0", "rff", 2)
    truth = CrossbarConfig.hermes(adc_offset=0.1)
    measured = simulate_errors(truth, err_cells, range(100, 104))
    targets = {
        c: Target(float(e.mean()), float(e.std(ddof=1)), e.size) for c, e in measured.items()
    }
    drops = simulate_accuracy_drops(truth, [acc_cell], range(100, 104))[acc_cell]
    acc = {acc_cell: Target(float(drops.mean()), max(float(drops.std(ddof=1)), 0.01), 4)}
    with_acc = fit(
        targets, accuracy_drops=acc, parameters=["adc_offset"], seeds=range(2), max_evaluations=4
    )
    without = fit(targets, parameters=["adc_offset"], seeds=range(2), max_evaluations=4)
    assert [c["metric"] for c in with_acc.cells] == ["hardware_err"] * 2 + ["accuracy_drop"]
    assert with_acc.dof == 3 - 1 and without.dof == 2 - 1
    # χ² is the sum of the squared standardised residuals of every term.
    start = math.fsum(c["residual_base"] ** 2 for c in with_acc.cells)
    assert with_acc.start_chi2 == pytest.approx(start, rel=1e-9)
    assert with_acc.start_chi2 > without.start_chi2
    assert "accuracy drops: 1 of the 3 terms" in with_acc.summary()
    # The split by dataset × kernel and metric adds up to χ² at the minimum.
    rows = with_acc.chi2_by_row()
    assert list(rows) == [(EMBEDDED, "arccos0")]
    parts = rows[(EMBEDDED, "arccos0")]
    assert parts["hardware_err"] == pytest.approx(
        math.fsum(c["residual"] ** 2 for c in with_acc.cells[:2]), rel=1e-12
    )
    assert parts["accuracy_drop"] == pytest.approx(with_acc.cells[2]["residual"] ** 2, rel=1e-12)
    assert sum(parts.values()) == pytest.approx(with_acc.chi2, rel=1e-9)
    assert without.chi2_by_row()[(EMBEDDED, "arccos0")]["accuracy_drop"] == 0.0
    assert f"{EMBEDDED} arccos0: {with_acc.chi2:.1f}" in with_acc.summary()


def test_hermes_measured_is_hermes_plus_the_fitted_values():
    config = CrossbarConfig.hermes_measured()
    for name, value in HERMES_MEASURED.items():
        assert getattr(config, name) == value
    published = CrossbarConfig.hermes()
    untouched = set(published.get_params()) - set(HERMES_MEASURED)
    assert all(getattr(config, f) == getattr(published, f) for f in untouched)
    # Every fitted value lies in the range the fit allows.
    for p in PARAMETERS:
        assert p.low <= HERMES_MEASURED[p.name] <= p.high


def test_calibrate_command_writes_the_fit(tmp_path, capsys):
    measured = simulate_errors(
        CrossbarConfig.hermes(adc_offset=0.1), [(EMBEDDED, "arccos0", "rff", 2)], range(50, 54)
    )
    cell = (EMBEDDED, "arccos0", "rff", 2)
    path = _targets_file(
        tmp_path,
        {c: (float(e.mean()), float(e.std(ddof=1)), e.size) for c, e in measured.items()},
        accuracies={cell: {"hardware_acc": (0.90, 0.01, 10), "fp_acc": (0.92, 0.01, 10)}},
    )
    out = tmp_path / "cal"
    code = cli.main(
        [
            "-q",
            "calibrate",
            "--targets",
            str(path),
            "--parameters",
            "adc_offset",
            "--seeds",
            "2",
            "--max-evaluations",
            "8",
            "--start",
            "adc_offset=0.05",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    doc = json.loads((out / "calibration.json").read_text())
    assert set(doc["values"]) == {"adc_offset"}
    assert doc["parameters"][0]["name"] == "adc_offset"
    assert "adc_offset =" in capsys.readouterr().out
    # By default the accuracy drop of the largest k with accuracies is fitted too.
    assert [c["metric"] for c in doc["cells"]] == ["hardware_err", "accuracy_drop"]
    assert doc["cells"][1]["target"] == pytest.approx(-0.02)
    base = ["-q", "calibrate", "--targets", str(path), "--parameters", "adc_offset"]
    quick = ["--seeds", "2", "--max-evaluations", "2", "--out", str(out)]
    assert cli.main([*base, "--accuracy-k", "none", *quick]) == 0
    doc = json.loads((out / "calibration.json").read_text())
    assert [c["metric"] for c in doc["cells"]] == ["hardware_err"]
    assert cli.main(["calibrate", "--targets", str(path), "--seeds", "1", "--out", str(out)]) == 2
    bad_start = ["calibrate", "--targets", str(path), "--start", "adc_offset:0.1"]
    with pytest.raises(SystemExit) as exit_info:
        cli.main([*bad_start, "--out", str(out)])
    assert exit_info.value.code == 2


def test_accuracy_ks_are_the_cells_with_both_accuracies(tmp_path):
    from analogkernels.calibration import FP_ACC, HARDWARE_ACC, accuracy_ks

    cells = {
        ("magic04", "rbf", "rff", 1): (0.2, 0.01, 10),
        ("magic04", "rbf", "rff", 3): (0.1, 0.01, 10),
        ("skin", "rbf", "rff", 5): (0.1, 0.01, 10),
    }
    both = {HARDWARE_ACC: (0.9, 0.01, 10), FP_ACC: (0.92, 0.01, 10)}
    path = _targets_file(
        tmp_path,
        cells,
        accuracies={
            ("magic04", "rbf", "rff", 1): both,
            ("magic04", "rbf", "rff", 3): {FP_ACC: (0.92, 0.01, 10)},  # one is not enough
            ("skin", "rbf", "rff", 5): both,
        },
    )
    assert accuracy_ks(path) == [1, 5]
    assert accuracy_ks(path, datasets=["magic04"]) == [1]
    assert accuracy_ks(path, datasets=["magic04"]) == sorted(
        {c[3] for c in load_targets(path, metric="accuracy_drop", datasets=["magic04"], ks=[1])}
    )


def test_one_seed_check_for_the_fit_and_the_command(tmp_path, capsys):
    from analogkernels.calibration import DEFAULT_SEEDS, MIN_SEEDS, check_seeds

    assert len(DEFAULT_SEEDS) == MIN_SEEDS and check_seeds(DEFAULT_SEEDS) == DEFAULT_SEEDS
    with pytest.raises(ConfigError, match=f"at least {MIN_SEEDS} seeds"):
        fit({}, seeds=range(MIN_SEEDS - 1))
    path = _targets_file(tmp_path, {(EMBEDDED, "rbf", "rff", 1): (0.2, 0.01, 10)})
    argv = ["calibrate", "--targets", str(path), "--seeds", "1", "--out", str(tmp_path / "o")]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"at least {MIN_SEEDS} seeds" in err
    assert not (tmp_path / "o").exists()  # refused before any output


def test_kernel_points_are_the_protocols():
    from analogkernels.calibration import _kernel_points
    from analogkernels.paper import protocol

    # The same exact kernel and points as run_one: APPROX_POINTS by default.
    X, K = _kernel_points(EMBEDDED, "arccos0", None, None)
    data = protocol._dataset(EMBEDDED, "paper", None, "paper")
    np.testing.assert_array_equal(X, data.X_eval[: protocol.APPROX_POINTS])
    np.testing.assert_array_equal(K, protocol.exact_kernel("arccos0", X))
    with pytest.raises(ConfigError, match="unknown kernel"):
        simulate_errors(None, [(EMBEDDED, "poly", "rff", 1)], [0])


# --- per-dataset parameters: a diagnostic of run conditions ----------------------

#: A second bundled dataset (d = 13) beside EMBEDDED.
EMBEDDED_2 = "sklearn:wine"


def test_a_per_dataset_fit_with_equal_values_is_the_chip_wide_fit():
    # fit simulates each dataset with its own config; with every dataset at the
    # shared value that must be the chip-wide simulation, bit for bit, for the
    # error curves and the accuracy drops alike.
    cells = [(ds, "rbf", "rff", 1) for ds in (EMBEDDED, EMBEDDED_2)]
    targets = {c: Target(0.2, 0.01, 10) for c in cells}
    drops = {(EMBEDDED, "rbf", "rff", 1): Target(-0.01, 0.01, 10)}
    kw = {
        "accuracy_drops": drops,
        "parameters": ["out_noise"],
        "start": {"out_noise": 0.2},
        "seeds": range(2),
        "max_evaluations": 1,
    }
    split, shared = fit(targets, per_dataset=["out_noise"], **kw), fit(targets, **kw)
    assert split.start_chi2 == shared.start_chi2
    assert [c["simulated_base"] for c in split.cells] == [c["simulated_base"] for c in shared.cells]
    assert [c["metric"] for c in split.cells] == ["hardware_err"] * 2 + ["accuracy_drop"]


def test_fit_recovers_per_dataset_values_and_gains_chi2_over_the_shared_fit():
    # "Measurements" of two datasets made with different output noise: the
    # per-dataset fit must find each value within 3 standard errors, and the
    # chip-wide fit of the same data must be worse (it cannot follow both).
    truth = {EMBEDDED: 0.35, EMBEDDED_2: 0.2}
    cells = [(ds, "rbf", "rff", k) for ds in truth for k in (2, 3)]
    targets = {}
    for ds, noise in truth.items():
        measured = simulate_errors(
            CrossbarConfig.hermes(out_noise=noise),
            [c for c in cells if c[0] == ds],
            range(100, 108),
        )
        targets |= {
            c: Target(float(e.mean()), float(e.std(ddof=1)), e.size) for c, e in measured.items()
        }
    kw = {"parameters": ["out_noise"], "seeds": range(4), "max_evaluations": 40}
    split = fit(targets, per_dataset=["out_noise"], **kw)
    assert split.per_dataset == ["out_noise"]
    assert set(split.values) == {f"out_noise[{ds}]" for ds in truth}
    for ds, noise in truth.items():
        err = split.stderr[f"out_noise[{ds}]"]
        assert math.isfinite(err) and err < 0.05
        assert abs(split.values[f"out_noise[{ds}]"] - noise) < 3 * err + 0.005
    assert split.dof == len(cells) - 2
    shared = fit(targets, **kw)
    assert set(shared.values) == {"out_noise"} and shared.per_dataset == []
    assert shared.chi2 > split.chi2 + 10
    # The JSON names the parameter once; the summary prints each value.
    doc = split.to_json()
    assert [p["name"] for p in doc["parameters"]] == ["out_noise"]
    assert f"out_noise[{EMBEDDED_2}] =" in split.summary()


def test_per_dataset_parameters_and_their_starts_are_checked():
    targets = {(ds, "rbf", "rff", 1): Target(0.2, 0.01, 10) for ds in (EMBEDDED, EMBEDDED_2)}
    with pytest.raises(ConfigError, match="no targets"):
        fit({}, parameters=["out_noise"], per_dataset=["out_noise"])
    with pytest.raises(ConfigError, match="per-dataset parameters must be"):
        fit(targets, parameters=["adc_offset"], per_dataset=["out_noise"])
    with pytest.raises(ConfigError, match="not free parameters"):
        fit(
            targets,
            parameters=["out_noise"],
            per_dataset=["out_noise"],
            start={"out_noise[x]": 0.1},
        )
    with pytest.raises(ConfigError, match=r"out_noise\[sklearn:wine\] 0.9 outside"):
        fit(
            targets,
            parameters=["out_noise"],
            per_dataset=["out_noise"],
            start={"out_noise": 0.1, f"out_noise[{EMBEDDED_2}]": 0.9},
        )
    # A name[dataset] start applies to that dataset only, the name to the others.
    result = fit(
        targets,
        parameters=["out_noise"],
        per_dataset=["out_noise"],
        start={"out_noise": 0.1, f"out_noise[{EMBEDDED_2}]": 0.2},
        seeds=range(2),
        max_evaluations=1,
    )
    base = {c["dataset"]: c["simulated_base"] for c in result.cells}
    again = {}
    for ds, value in ((EMBEDDED, 0.1), (EMBEDDED_2, 0.2)):
        cell = (ds, "rbf", "rff", 1)
        chip = CrossbarConfig.hermes(out_noise=value)
        again[ds] = float(simulate_errors(chip, [cell], range(2))[cell].mean())
    assert base == pytest.approx(again, rel=1e-12)


def test_calibrate_command_takes_per_dataset_parameters(tmp_path, capsys):
    cells = {(ds, "rbf", "rff", 1): (0.2, 0.01, 10) for ds in (EMBEDDED, EMBEDDED_2)}
    path = _targets_file(tmp_path, cells)
    out = tmp_path / "cal"
    base = ["-q", "calibrate", "--targets", str(path), "--seeds", "2", "--out", str(out)]
    argv = [*base, "--parameters", "out_noise", "--per-dataset", "out_noise"]
    assert cli.main([*argv, "--max-evaluations", "2"]) == 0
    doc = json.loads((out / "calibration.json").read_text())
    assert set(doc["values"]) == {f"out_noise[{EMBEDDED}]", f"out_noise[{EMBEDDED_2}]"}
    assert doc["per_dataset"] == ["out_noise"]
    # A per-dataset parameter must be free, and a start must name a fitted value:
    # both refused before any output.
    fresh = [*base[:-1], str(tmp_path / "fresh")]
    assert cli.main([*fresh, "--parameters", "adc_offset", "--per-dataset", "out_noise"]) == 2
    assert cli.main([*fresh[1:], *argv[-4:], "--start", "out_noise[nope]=0.1"]) == 2
    assert "not a free parameter or NAME[DATASET]" in capsys.readouterr().err
    assert not (tmp_path / "fresh").exists()


def test_a_value_the_residuals_ignore_has_no_error_and_leaves_the_others_theirs():
    from analogkernels.calibration import _standard_errors

    rng = np.random.default_rng(3)
    a, b = rng.normal(size=12), rng.normal(size=12)
    # (JᵀJ)⁻¹ of the two live columns, scaled by the reduced χ² 30/10 = 3.
    cov = np.linalg.inv(np.array([[a @ a, a @ b], [a @ b, b @ b]])) * 3.0
    got = _standard_errors(np.column_stack([a, np.zeros(12), b]), chi2=30.0, dof=10)
    assert math.isnan(got[1])
    np.testing.assert_allclose(got[[0, 2]], np.sqrt(np.diag(cov)), rtol=1e-12)
    # A reduced χ² below 1 does not shrink the errors.
    np.testing.assert_allclose(
        _standard_errors(a[:, None], chi2=1.0, dof=10), [1 / np.linalg.norm(a)]
    )
    # Two live columns that are the same: nothing is determined.
    assert np.isnan(_standard_errors(np.column_stack([a, a]), chi2=5.0, dof=10)).all()


def test_a_fit_simulates_each_dataset_once_per_value(monkeypatch):
    # One dataset's simulation depends only on its own values, so a Jacobian
    # column or a simplex step that moves another dataset's value reuses it:
    # no (dataset, value) pair is simulated twice.
    import analogkernels.calibration as calibration

    calls = []
    real = calibration.simulate_errors

    def counting(config, cells, seeds, **kw):
        calls.append((cells[0][0], config.out_noise))
        return real(config, cells, seeds, **kw)

    monkeypatch.setattr(calibration, "simulate_errors", counting)
    targets = {(ds, "rbf", "rff", 1): Target(0.2, 0.01, 10) for ds in (EMBEDDED, EMBEDDED_2)}
    result = fit(
        targets,
        parameters=["out_noise"],
        per_dataset=["out_noise"],
        start={"out_noise": 0.1},
        seeds=range(2),
        max_evaluations=6,
    )
    assert len(calls) == len(set(calls))
    # The start, the simplex and the Jacobian visit several values of each.
    assert {ds for ds, _ in calls} == {EMBEDDED, EMBEDDED_2} and len(calls) > 4
    assert result.evaluations >= 3
