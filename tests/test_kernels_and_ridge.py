"""Exact kernels against direct formulas; ridge against scikit-learn; ridge with
a feature map on the chip (batch-size invariance, fresh reads); one paper run."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, make_blobs
from sklearn.linear_model import RidgeClassifier as SkRidge
from sklearn.linear_model import RidgeClassifierCV as SkRidgeCV
from sklearn.preprocessing import StandardScaler

from analogkernels import linear_model
from analogkernels.analog import CrossbarConfig
from analogkernels.exceptions import ConfigError, DataError, ShapeError
from analogkernels.kernel_approximation import RandomFourierFeatures
from analogkernels.kernels import (
    approximation_error,
    arccos_kernel,
    rbf_kernel,
    softmax_kernel,
)
from analogkernels.linear_model import RidgeClassifier, RidgeClassifierCV


def naive_arccos(x, y, order):
    nx, ny = np.linalg.norm(x), np.linalg.norm(y)
    t = np.arccos(np.clip(x @ y / (nx * ny), -1, 1))
    j = [
        np.pi - t,
        np.sin(t) + (np.pi - t) * np.cos(t),
        3 * np.sin(t) * np.cos(t) + (np.pi - t) * (1 + 2 * np.cos(t) ** 2),
    ][order]
    return (nx * ny) ** order * j / np.pi


@pytest.mark.parametrize("order", [0, 1, 2])
def test_arccos_matches_formula(order):
    rng = np.random.default_rng(order)
    X, Y = rng.standard_normal((7, 5)), rng.standard_normal((4, 5))
    K = arccos_kernel(X, Y, order=order)
    for i in range(7):
        for j in range(4):
            assert K[i, j] == pytest.approx(naive_arccos(X[i], Y[j], order), rel=1e-10)


def test_rbf_and_softmax_match_formulas_and_keep_float32():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((9, 3))
    expect = np.exp(-0.3 * ((X[:, None, :] - X[None, :, :]) ** 2).sum(-1))
    np.testing.assert_allclose(rbf_kernel(X, gamma=0.3), expect, rtol=1e-12)
    np.testing.assert_allclose(softmax_kernel(X), np.exp(X @ X.T), rtol=1e-12)
    A = softmax_kernel(X, normalize=True, scale=0.5)
    np.testing.assert_allclose(A.sum(axis=1), 1.0)
    assert rbf_kernel(X.astype(np.float32)).dtype == np.float32
    with pytest.raises(ShapeError):
        rbf_kernel(X, np.ones((2, 4)))
    with pytest.raises(ShapeError):
        approximation_error(np.ones((2, 2)), np.ones((3, 2)))
    assert approximation_error(np.eye(3), np.eye(3)) == 0.0


def features(n=400, d=8, s=60, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    P = RandomFourierFeatures(gamma=0.2, n_components=s, random_state=seed).fit_transform(X)
    return X, P


@given(st.integers(2, 4), st.floats(0.01, 10), st.integers(0, 1000))
def test_ridge_matches_scikit_learn(n_classes, alpha, seed):
    _, P = features(n=150, seed=seed % 7)
    y = np.random.default_rng(seed).integers(0, n_classes, P.shape[0])
    ours = RidgeClassifier(alpha=alpha).fit(P, y)
    ref = SkRidge(alpha=alpha).fit(P, y)
    np.testing.assert_array_equal(ours.classes_, ref.classes_)
    np.testing.assert_allclose(ours.coef_, ref.coef_.reshape(ours.coef_.shape), atol=1e-8)
    np.testing.assert_allclose(ours.intercept_, np.ravel(ref.intercept_), atol=1e-8)
    np.testing.assert_array_equal(ours.predict(P), ref.predict(P))


def test_streaming_equals_in_memory_and_float32_accumulates_in_float64():
    X, P = features()
    y = (X[:, 0] * X[:, 1] > 0).astype(int)
    fm = RandomFourierFeatures(gamma=0.2, n_components=60, random_state=0)
    streamed = RidgeClassifier(alpha=0.5, feature_map=fm, batch_size=33).fit(X, y)
    full = RidgeClassifier(alpha=0.5).fit(P, y)
    np.testing.assert_allclose(streamed.coef_, full.coef_, atol=1e-10)
    assert fm.__dict__.get("projection_scale_") is None  # the user's map was cloned, not fitted
    batches = ((P[i : i + 50], y[i : i + 50]) for i in range(0, len(y), 50))
    from_iter = RidgeClassifier(alpha=0.5).fit_batches(batches, classes=[0, 1])
    np.testing.assert_allclose(from_iter.coef_, full.coef_, atol=1e-10)
    f32 = RidgeClassifier(alpha=0.5).fit(P.astype(np.float32), y)
    assert f32.coef_.dtype == np.float64
    np.testing.assert_allclose(f32.coef_, full.coef_, atol=1e-4)


def test_paper_solver_regularises_the_intercept():
    X, P = features()
    y = (X[:, 0] > 0).astype(int)
    model = RidgeClassifier(alpha=0.5, regularize_intercept=True).fit(P, y)
    # Direct formula: W = (AᵀA + αI)⁻¹ Aᵀ t with A = [1, Φ], t = ±1.
    A = np.hstack([np.ones((P.shape[0], 1)), P])
    t = np.where(y == 1, 1.0, -1.0)
    w = np.linalg.solve(A.T @ A + 0.5 * np.eye(A.shape[1]), A.T @ t)
    np.testing.assert_allclose(model.intercept_, [w[0]], atol=1e-10)
    np.testing.assert_allclose(model.coef_.ravel(), w[1:], atol=1e-10)


def test_cv_matches_scikit_learn_leave_one_out():
    X, P = features()
    y = (X[:, 0] + X[:, 2] > 0).astype(int)
    alphas = [0.01, 0.1, 1.0, 10.0]
    ours = RidgeClassifierCV(alphas=alphas).fit(P, y)
    ref = SkRidgeCV(alphas=alphas, store_cv_results=True).fit(P, y)
    assert ours.alpha_ == ref.alpha_
    np.testing.assert_allclose(ours.cv_errors_, ref.cv_results_.mean(axis=0).ravel(), rtol=1e-8)
    np.testing.assert_array_equal(ours.predict(P), ref.predict(P))
    with pytest.raises(ValueError, match="alphas"):
        RidgeClassifierCV(alphas=[0.0]).fit(P, y)


def test_cv_shares_the_constraints_and_defaults_of_ridge_classifier():
    # issue 17: the shared parameters are constrained and defaulted once.
    import inspect

    ours = RidgeClassifierCV._parameter_constraints
    theirs = RidgeClassifier._parameter_constraints
    for name in ("fit_intercept", "feature_map", "batch_size"):
        assert ours[name] is theirs[name]
    cv, base = (inspect.signature(c).parameters for c in (RidgeClassifierCV, RidgeClassifier))
    for name in ("fit_intercept", "feature_map", "batch_size"):
        assert cv[name].default == base[name].default
    assert list(ours) == ["alphas", "fit_intercept", "feature_map", "batch_size"]


def test_paper_targets_01_with_threshold_half():
    X, P = features()
    y = (X[:, 0] > 0).astype(int)
    model = RidgeClassifier(alpha=0.5, regularize_intercept=True, targets="01").fit(P, y)
    A = np.hstack([np.ones((P.shape[0], 1)), P])
    w = np.linalg.solve(A.T @ A + 0.5 * np.eye(A.shape[1]), A.T @ y.astype(float))
    np.testing.assert_allclose(model.coef_.ravel(), w[1:], atol=1e-10)
    # The paper: prediction = round(clip(A w, 0, 1)).
    expected = np.rint(np.clip(A @ w, 0, 1)).astype(int)
    np.testing.assert_array_equal(model.predict(P), expected)


# -- feature maps on the simulated chip ---------------------------------------


def breast_cancer():
    X, y = load_breast_cancer(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def chip_map(**kw):
    params = {
        "gamma": 0.05,
        "n_components": 59,
        "backend": CrossbarConfig.hermes(),
        "random_state": 1,
        "backend_seed": 5,
    }
    params.update(kw)
    return RandomFourierFeatures(**params)


def _bits(clf, X):
    return (
        clf.coef_.tobytes(),
        clf.intercept_.tobytes(),
        clf.decision_function(X).tobytes(),
        clf.predict(X).tobytes(),
    )


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("cls", [linear_model.RidgeClassifier, linear_model.RidgeClassifierCV])
def test_chip_feature_map_results_do_not_depend_on_batch_size(cls, dtype):
    # Breast cancer with batch_size=7 flipped 4 of 569 predictions when every
    # batch reused the same noise rows.
    X, y = breast_cancer()
    X = X.astype(dtype)
    kw = {"alpha": 0.5} if cls is linear_model.RidgeClassifier else {}
    ref = _bits(cls(feature_map=chip_map(), **kw).fit(X, y), X)
    for batch_size in (7, 100):
        got = _bits(cls(feature_map=chip_map(), batch_size=batch_size, **kw).fit(X, y), X)
        assert got == ref


def test_batch_size_invariance_across_several_blocks(monkeypatch):
    # Blocks of 64 rows: 569 rows make 8 full blocks and a partial one, and
    # batches of 7, 100, 64 or 300 rows straddle the block boundaries.
    monkeypatch.setattr(linear_model, "BLOCK_ROWS", 64)
    X, y = breast_cancer()
    w = np.random.default_rng(0).uniform(0.5, 2.0, X.shape[0])
    ref = None
    for batch_size in (7, 64, 100, 300, 4096):
        for fm in (chip_map(), chip_map(backend=None)):
            clf = linear_model.RidgeClassifier(alpha=0.5, feature_map=fm, batch_size=batch_size)
            got = (_bits(clf.fit(X, y), X), _bits(clf.fit(X, y, sample_weight=w), X))
            ref = ref or {}
            assert ref.setdefault(fm.backend is None, got) == got
    # The weighted blocks still give scikit-learn's solution.
    P = chip_map(backend=None).fit(X).transform(X)
    ours = linear_model.RidgeClassifier(alpha=0.5).fit(P, y, sample_weight=w)
    theirs = SkRidge(alpha=0.5).fit(P, y, sample_weight=w)
    np.testing.assert_allclose(ours.coef_.ravel(), theirs.coef_.ravel(), atol=1e-8)


def test_fit_batches_does_not_depend_on_the_split(monkeypatch):
    monkeypatch.setattr(linear_model, "BLOCK_ROWS", 50)
    X, P = features()
    y = (X[:, 0] > 0).astype(int)
    fits = []
    for size in (7, 50, 133, len(y)):
        batches = ((P[i : i + size], y[i : i + size]) for i in range(0, len(y), size))
        fits.append(linear_model.RidgeClassifier(alpha=0.5).fit_batches(batches, classes=[0, 1]))
    assert len({f.coef_.tobytes() + f.intercept_.tobytes() for f in fits}) == 1


def test_classifier_reads_training_then_prediction_rows_afresh():
    X, y = breast_cancer()
    clf = linear_model.RidgeClassifier(alpha=0.5, feature_map=chip_map()).fit(X, y)
    chip = clf.feature_map_.analog_
    assert chip.read_position == X.shape[0]
    # The same chip read in the same order: the training features are its first
    # read, the next prediction is its second (same bits as the in-memory solver).
    twin = chip_map().fit(X)
    first, second = twin.transform(X), twin.transform(X)
    in_memory = linear_model.RidgeClassifier(alpha=0.5).fit(first, y)
    assert clf.coef_.tobytes() == in_memory.coef_.tobytes()
    assert clf.decision_function(X).tobytes() == in_memory.decision_function(second).tobytes()
    assert chip.read_position == 2 * X.shape[0]
    # Every prediction is a fresh read: the scores differ by read noise.
    assert not np.array_equal(clf.decision_function(X), clf.decision_function(X))
    # Refitting starts a new chip with the same seeds: the same sequence again.
    assert clone(clf).fit(X, y).decision_function(X).tobytes() == (
        in_memory.decision_function(second).tobytes()
    )


def test_fitted_feature_map_is_copied_not_advanced():
    X, y = breast_cancer()
    fm = chip_map().fit(X)
    clf = linear_model.RidgeClassifier(alpha=0.5, feature_map=fm).fit(X, y)
    clf.predict(X)
    assert clf.feature_map_ is not fm and clf.feature_map_.analog_ is not fm.analog_
    assert fm.analog_.read_position == 0  # the caller's chip was never read
    assert clf.feature_map_.analog_.read_position == 2 * X.shape[0]
    # The copy is the same chip: the classifier's training read is fm's first read.
    assert clf.coef_.tobytes() == (
        linear_model.RidgeClassifier(alpha=0.5).fit(fm.transform(X), y).coef_.tobytes()
    )


def test_cv_leave_one_out_uses_the_features_it_was_fitted_on():
    # The leave-one-out pass replays the training reads: its errors are those of
    # the in-memory solver on the chip's first read of X, bit for bit.
    X, y = breast_cancer()
    alphas = [0.01, 0.1, 1.0, 10.0]
    cv = linear_model.RidgeClassifierCV(alphas=alphas, feature_map=chip_map()).fit(X, y)
    first = chip_map().fit(X).transform(X)
    ref = linear_model.RidgeClassifierCV(alphas=alphas).fit(first, y)
    assert cv.cv_errors_.tobytes() == ref.cv_errors_.tobytes()
    assert cv.alpha_ == ref.alpha_ and cv.coef_.tobytes() == ref.coef_.tobytes()
    assert cv.feature_map_.analog_.read_position == X.shape[0]  # read once, replayed once
    # ... and scikit-learn agrees on those features.
    sk = SkRidgeCV(alphas=alphas, store_cv_results=True).fit(first, y)
    np.testing.assert_allclose(cv.cv_errors_, sk.cv_results_.mean(axis=0).ravel(), rtol=1e-8)


def test_analog_classifier_trains_and_replayed_reads_agree():
    # What check_classifiers_train tests, apart from comparing two reads: the
    # accuracy on its blobs (> 0.83), shapes, and predict == argmax of the scores
    # of the same read (replayed by resetting the read position).
    X, y = make_blobs(n_samples=300, random_state=0)
    X = StandardScaler().fit_transform(X)
    for Xp, yp in ((X[y != 2], y[y != 2]), (X, y)):
        fm = RandomFourierFeatures(n_components=20, backend=CrossbarConfig.hermes(), random_state=0)
        clf = linear_model.RidgeClassifier(alpha=0.5, feature_map=fm).fit(Xp, yp)
        chip = clf.feature_map_.analog_
        start = chip.read_position
        pred = clf.predict(Xp)
        assert pred.shape == yp.shape and np.mean(pred == yp) > 0.83
        chip.read_position = start
        scores = clf.decision_function(Xp)
        labels = (scores > 0).astype(int) if scores.ndim == 1 else scores.argmax(axis=1)
        np.testing.assert_array_equal(clf.classes_[labels], pred)
        with pytest.raises(ValueError):
            clf.predict(Xp[:, :1])


def test_paper_run_reads_training_evaluation_and_kernel_points_in_turn():
    from analogkernels.paper import protocol as experiments

    cfg = experiments.RunConfig(
        dataset="sklearn:breast_cancer", kernel="rbf", sampler="orf", k=1, seed=3, backend="analog"
    )
    record = experiments.run_one(cfg)
    assert experiments.run_one(cfg)["accuracy"] == record["accuracy"]  # reproducible
    # The same run by hand: one chip, read in turn for the training rows, the
    # evaluation rows and the kernel-error points (independent reads).
    data = experiments._dataset(cfg.dataset, cfg.ijcnn1_encoding, cfg.data_dir, cfg.skin_rows)
    fm = experiments.feature_map(cfg, data.X_train.shape[1]).fit(data.X_train)
    train = fm.transform(data.X_train)
    evaluation = fm.transform(data.X_eval)
    points = data.X_eval[: experiments.APPROX_POINTS]
    phi = fm.transform(points)
    clf = linear_model.RidgeClassifier(
        alpha=experiments.ALPHA, regularize_intercept=True, targets="01"
    ).fit(train, data.y_train)
    assert record["accuracy"] == float(np.mean(clf.predict(evaluation) == data.y_eval))
    K = rbf_kernel(points, gamma=experiments.GAMMA)
    assert record["approximation_error"] == approximation_error(K, phi @ phi.T)
    # Not the evaluation read again: the kernel points got their own read.
    assert not np.array_equal(phi, evaluation[: len(points)])


# Extreme but finite inputs (issue 12): both classifiers raise the same clear
# DataError (RidgeClassifierCV used to return NaN coefficients silently).
@pytest.mark.parametrize("cls", [RidgeClassifier, RidgeClassifierCV])
def test_ridge_refuses_features_that_overflow(cls):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 8))
    y = (X[:, 0] > 0).astype(int)
    huge = X.copy()
    huge[3, 2] = 1e200  # φφᵀ overflows float64
    with pytest.raises(DataError, match="normal equations"):
        cls().fit(huge, y)
    sorf = RandomFourierFeatures(sampler="sorf", n_components=16, random_state=0)
    big = X.astype(np.float32)
    big[3, 2] = 1e38  # the SORF projection overflows float32
    with pytest.raises(DataError, match="row 3"):
        cls(feature_map=sorf).fit(big, y)
    # Features given directly (fit_batches) with NaN: the same error.
    phi = X.copy()
    phi[5, 1] = np.nan
    with pytest.raises(DataError, match="normal equations"):
        RidgeClassifier().fit_batches([(phi, y)], classes=[0, 1])


def test_ridge_scores_that_overflow_raise():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((40, 8))
    y = (X[:, 0] > 0).astype(int)
    clf = RidgeClassifier().fit(X, y)
    huge = X[:4].copy()
    huge[2] = np.sign(clf.coef_[0]) * np.finfo(np.float64).max  # Σ|coef| > 1
    assert np.abs(clf.coef_).sum() > 1
    with pytest.raises(DataError, match="row 2"):
        clf.predict(huge)


def test_paper_protocol_takes_s_and_the_kernel_from_their_owners():
    from analogkernels.kernel_approximation import SAMPLERS, paper_feature_counts
    from analogkernels.paper import protocol

    assert list(protocol.PAPER_KS) == [1, 2, 3, 4, 5]
    assert protocol.SAMPLERS == SAMPLERS
    for k in protocol.PAPER_KS:
        fm = protocol.paper_feature_map("rbf", "rff", k, 13, 0)
        assert fm.n_components == paper_feature_counts(13, [k])[0] == 2**k * 13 - k
    X = np.random.default_rng(0).standard_normal((5, 3))
    np.testing.assert_array_equal(
        protocol.exact_kernel("rbf", X), rbf_kernel(X, gamma=protocol.GAMMA)
    )
    with pytest.raises(ConfigError, match="unknown kernel"):
        protocol.exact_kernel("arccos", X)


def test_paper_protocol_draws_orf_blocks_as_the_papers_code():
    # The paper's get_orthogonal_matrix keeps LAPACK's QR signs: every block's
    # first row starts negative (a Haar block would be negative half the time).
    from analogkernels.paper import protocol

    assert protocol.ORF_SIGNS == "lapack"
    fm = protocol.paper_feature_map("arccos0", "orf", 5, 3, 0).fit(np.zeros((1, 3)))
    assert fm.orf_signs == "lapack"
    assert (fm.random_weights_[::3, 0] < 0).all()
