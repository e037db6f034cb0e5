"""Exact kernels against direct formulas; ridge against scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.linear_model import RidgeClassifier as SkRidge
from sklearn.linear_model import RidgeClassifierCV as SkRidgeCV

from analogkernels.exceptions import ShapeError
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
