"""CrossbarConfig as a nested parameter object of scikit-learn estimators:
get_params / set_params / clone, nested ``backend__*`` parameters in
``set_params`` and ``GridSearchCV``."""

from __future__ import annotations

import dataclasses
import pickle
import typing

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.linear_model import RidgeClassifier
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline

from analogkernels import _core
from analogkernels.analog import AnalogMatrix, CrossbarConfig
from analogkernels.exceptions import ConfigError
from analogkernels.kernel_approximation import FavorPlusFeatures, RandomFourierFeatures


def _data(n: int = 120, d: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int)
    return X, y


def test_get_params_lists_every_field_and_rebuilds_the_config():
    cfg = CrossbarConfig.hermes(g_max=12.0, out_noise=0.05)
    params = cfg.get_params()
    assert list(params) == [f.name for f in dataclasses.fields(CrossbarConfig)]
    assert params["g_max"] == 12.0 and params["t0"] is None  # unresolved
    assert cfg.get_params(deep=False) == params
    assert CrossbarConfig(**params) == cfg


def test_set_params_changes_in_place_and_returns_self():
    cfg = CrossbarConfig.hermes()
    assert cfg.set_params(g_max=5.0, out_noise=0.2) is cfg
    assert (cfg.g_max, cfg.out_noise) == (5.0, 0.2)
    assert cfg.resolved()["g_max"] == 5.0
    assert cfg.set_params() is cfg  # nothing to change


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"g_max": -1.0}, "g_max"),
        ({"noise_model": "foo"}, "noise_model"),
        ({"out_noise": 0.3, "tile_cols": 2.0}, "tile_cols"),  # the first one valid
    ],
)
def test_set_params_validates_the_whole_change_first(params, field):
    cfg = CrossbarConfig.hermes()
    before = cfg.get_params()
    with pytest.raises(ConfigError, match=field):
        cfg.set_params(**params)
    assert cfg.get_params() == before  # nothing changed


def test_set_params_rejects_unknown_names_as_valueerror():
    cfg = CrossbarConfig.hermes()
    with pytest.raises(ValueError, match="Invalid parameter 'gmax'"):
        cfg.set_params(gmax=5.0)
    assert cfg == CrossbarConfig.hermes()


def test_fields_still_cannot_be_assigned_and_config_is_unhashable():
    cfg = CrossbarConfig.hermes()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.g_max = 5.0  # type: ignore[misc]
    # set_params may change it, so it must not hash by value.
    with pytest.raises(TypeError, match="unhashable"):
        hash(cfg)


def test_clone_gives_an_equal_independent_config():
    cfg = CrossbarConfig.ideal(g_max=7.0)
    copy = clone(cfg)
    assert copy == cfg and copy is not cfg
    copy.set_params(g_max=9.0)
    assert cfg.g_max == 7.0


@pytest.mark.parametrize("cls", [RandomFourierFeatures, FavorPlusFeatures])
def test_nested_set_params_reaches_the_programmed_chip(cls):
    X, _ = _data()
    est = cls(n_components=16, backend=CrossbarConfig.hermes(), random_state=0, backend_seed=3)
    assert est.get_params()["backend__g_max"] is None
    est.set_params(backend__g_max=5.0, backend__noise_model="pcm")
    assert est.get_params()["backend__g_max"] == 5.0
    est.fit(X)
    assert est.analog_.config.g_max == 5.0
    assert est.analog_.config.noise_model == "pcm"
    # The chip was programmed with those values: the same as programming by hand.
    direct = AnalogMatrix.program(
        est.projection_matrix(), CrossbarConfig.hermes(g_max=5.0, noise_model="pcm"), seed=3
    )
    np.testing.assert_array_equal(est.analog_.effective_weights(), direct.effective_weights())


def test_nested_set_params_with_an_invalid_value_fails_at_set_params():
    est = RandomFourierFeatures(backend=CrossbarConfig.hermes())
    with pytest.raises(ConfigError, match="g_max"):
        est.set_params(backend__g_max=-1.0)
    assert est.backend.g_max is None


def test_a_fitted_chip_keeps_the_config_it_was_programmed_with():
    X, _ = _data()
    cfg = CrossbarConfig.hermes()
    est = RandomFourierFeatures(n_components=16, backend=cfg, random_state=0, backend_seed=1).fit(X)
    W_eff = est.analog_.effective_weights()
    est.set_params(backend__g_max=3.0)  # changes cfg in place
    assert cfg.g_max == 3.0
    assert est.analog_.config.g_max is None  # the chip's own copy
    # A pickled copy rebuilds the chip that was programmed, not one with g_max=3.
    again = pickle.loads(pickle.dumps(est))
    assert again.analog_.config == CrossbarConfig.hermes()
    np.testing.assert_array_equal(again.analog_.effective_weights(), W_eff)


def test_grid_search_over_hardware_parameters():
    X, y = _data(n=160)
    cfg = CrossbarConfig.hermes()
    pipe = make_pipeline(
        RandomFourierFeatures(
            gamma=0.5, n_components=32, backend=cfg, random_state=0, backend_seed=7
        ),
        RidgeClassifier(alpha=0.1),
    )
    grid = {
        "randomfourierfeatures__backend__out_noise": [0.0, 3.0],
        "randomfourierfeatures__backend__g_max": [5.0, 20.7],
    }
    search = GridSearchCV(pipe, grid, cv=2).fit(X, y)
    scores = search.cv_results_["mean_test_score"]
    noise = np.array(search.cv_results_["param_randomfourierfeatures__backend__out_noise"])
    # Each candidate was fitted with its own hardware: huge output noise hurts.
    assert scores[noise == 0.0].min() > scores[noise == 3.0].max() + 0.1
    best = search.best_estimator_[0]
    assert (
        best.backend.out_noise == search.best_params_["randomfourierfeatures__backend__out_noise"]
    )
    assert best.analog_.config.g_max == search.best_params_["randomfourierfeatures__backend__g_max"]
    # The user's config and pipeline were cloned, never changed.
    assert cfg == CrossbarConfig.hermes()
    assert pipe[0].backend is cfg


def test_grid_search_over_whole_presets_leaves_the_grid_objects_alone():
    X, y = _data(n=80)
    presets = [CrossbarConfig.hermes(), CrossbarConfig.ideal()]
    pipe = make_pipeline(
        RandomFourierFeatures(n_components=8, random_state=0, backend_seed=0), RidgeClassifier()
    )
    search = GridSearchCV(pipe, {"randomfourierfeatures__backend": presets}, cv=2).fit(X, y)
    assert search.best_estimator_[0].backend in presets  # equal by value
    assert all(search.best_estimator_[0].backend is not p for p in presets)
    assert presets == [CrossbarConfig.hermes(), CrossbarConfig.ideal()]


def test_g_max_units_per_polarity_and_per_device():
    # CrossbarConfig.g_max is per polarity, PCMConfig.g_max per device: the
    # properties convert between them and are not parameters.
    from analogkernels.pcm import PCMConfig

    assert CrossbarConfig.hermes().g_max_per_device == 10.35  # 20.7 µS over 2 devices
    assert CrossbarConfig.hermes(g_max=30.0, devices_per_polarity=1).g_max_per_device == 30.0
    assert PCMConfig(g_max=25.0, devices_per_polarity=2).g_max_per_polarity == 50.0
    assert "g_max_per_device" not in CrossbarConfig().get_params()


def _field_types() -> dict[str, typing.Any]:
    return typing.get_type_hints(CrossbarConfig)


def test_literal_hints_are_the_cores_choices():
    # The hints spell the names again (static typing cannot derive them);
    # this ties them to the core's name tables.
    literal = {
        name: typing.get_args(hint)
        for name, hint in _field_types().items()
        if typing.get_origin(hint) is typing.Literal
    }
    choices = _core._choices()
    assert set(literal) == {"weight_scaling", "noise_model", "programming", "drift_compensation"}
    for name, names in literal.items():
        assert list(names) == choices[name], name


def test_defaults_are_the_cores_hermes_preset():
    # The defaults are the core's preset (g_max, t0 and t_read stay None:
    # the noise model's values, which resolve to the preset's).
    assert CrossbarConfig().resolved() == _core._crossbar_hermes()
    assert CrossbarConfig.hermes() == CrossbarConfig()


@pytest.mark.parametrize(
    "field", [f.name for f in dataclasses.fields(CrossbarConfig) if _field_types()[f.name] is int]
)
@pytest.mark.parametrize("value", [True, np.bool_(True), 2.0, "2", None, 2**64])
def test_integer_fields_refuse_bools_floats_and_strings(field, value):
    # Read by the bindings as PCMConfig's integers are: a bool is not an integer.
    with pytest.raises(ConfigError, match=f"`{field}`"):
        CrossbarConfig(**{field: value})


@pytest.mark.parametrize("value", [True, "1.0", 1 + 0j, np.array([1.0]), 10**400])
@pytest.mark.parametrize("field", ["out_noise", "g_max", "input_range"])
def test_real_fields_refuse_non_reals(field, value):
    with pytest.raises(ConfigError, match=f"`{field}`"):
        CrossbarConfig(**{field: value})


def test_resolved_gives_the_engines_types():
    cfg = CrossbarConfig(tile_rows=np.int64(64), out_noise=np.float32(0.5), w_noise=0, g_max=3)
    d = cfg.resolved()
    assert type(d["tile_rows"]) is int and d["tile_rows"] == 64
    assert type(d["out_noise"]) is float and d["out_noise"] == 0.5
    assert type(d["w_noise"]) is float and type(d["g_max"]) is float
    assert d["input_range"] is None
    assert list(d) == [f.name for f in dataclasses.fields(CrossbarConfig)]
