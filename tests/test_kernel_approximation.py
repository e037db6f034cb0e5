"""Feature maps: convergence to the exact kernels, unbiasedness, orthogonality,
fused SORF == explicit matrix, analog backend, scikit-learn conformance."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.pipeline import make_pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks

from analogkernels.analog import CrossbarConfig
from analogkernels.kernel_approximation import (
    FavorPlusFeatures,
    RandomFourierFeatures,
    paper_feature_counts,
)
from analogkernels.kernels import (
    approximation_error,
    arccos_kernel,
    rbf_kernel,
    softmax_kernel,
)
from analogkernels.linear_model import RidgeClassifier


@parametrize_with_checks(
    [
        RandomFourierFeatures(n_components=20, random_state=0),
        RandomFourierFeatures(n_components=20, sampler="orf", random_state=0),
        RandomFourierFeatures(n_components=20, sampler="sorf", random_state=0),
        RandomFourierFeatures(kernel="arccos", order=1, n_components=20, random_state=0),
        FavorPlusFeatures(n_components=16, random_state=0),
        RidgeClassifier(alpha=0.5),
    ]
)
def test_scikit_learn_conformance(estimator, check):
    check(estimator)


def data(n=200, d=12, scale=0.4, seed=0):
    return np.random.default_rng(seed).standard_normal((n, d)) * scale


@pytest.mark.parametrize("sampler", ["rff", "orf", "sorf"])
@pytest.mark.parametrize("kernel", ["rbf", "arccos"])
def test_error_shrinks_as_features_grow(sampler, kernel):
    # SORF without padding (d a power of two): zero-padding a small d leaves a
    # bias floor, since its rows are not χ-rescaled (Yu et al. 2016).
    X = data(d=64, scale=0.15) if sampler == "sorf" else data()
    K = rbf_kernel(X, gamma=0.5) if kernel == "rbf" else arccos_kernel(X, order=0)
    errors = []
    for s in (32, 512, 8192):
        f = RandomFourierFeatures(
            kernel=kernel, gamma=0.5, n_components=s, sampler=sampler, random_state=0
        )
        P = f.fit_transform(X)
        errors.append(approximation_error(K, P @ P.T))
    # Monte-Carlo error ~ 1/sqrt(s): 16x more features, about 4x smaller error.
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 0.2 * errors[0] + 0.02


def test_rbf_estimate_is_unbiased():
    X = data(n=20)
    K = rbf_kernel(X, gamma=0.5)
    est = np.zeros_like(K)
    reps = 200
    for seed in range(reps):
        P = RandomFourierFeatures(gamma=0.5, n_components=64, random_state=seed).fit_transform(X)
        est += P @ P.T
    est /= reps
    # Each entry averages 200 × 64 independent cosines (variance ≤ 1/2 each):
    # standard error ≤ sqrt(0.5 / 12800) ≈ 0.0063; allow 5 standard errors.
    assert np.abs(est - K).max() < 0.032


@pytest.mark.parametrize("sampler", ["orf", "sorf"])
def test_orthogonal_blocks(sampler):
    d = 16
    f = RandomFourierFeatures(gamma=0.5, n_components=2 * d, sampler=sampler, random_state=3)
    W = f.fit(data(d=d)).projection_matrix() / np.sqrt(2 * 0.5)
    for block in (W[:d], W[d:]):
        gram = block @ block.T
        off = gram - np.diag(np.diag(gram))
        assert np.abs(off).max() < 1e-9
    if sampler == "sorf":  # rows of sqrt(n) · orthogonal: norm sqrt(d) when n = d
        np.testing.assert_allclose(np.linalg.norm(W, axis=1), np.sqrt(d))


def test_sorf_fused_path_equals_explicit_matrix():
    X = data(d=13)  # padded to 16
    f = RandomFourierFeatures(gamma=0.05, n_components=43, sampler="sorf", random_state=1).fit(X)
    explicit = X @ f.projection_matrix().T
    np.testing.assert_allclose(f._project(X), explicit, atol=1e-12)
    assert f.random_weights_ is None  # never formed for the digital path


@pytest.mark.parametrize("sampler", ["rff", "orf", "sorf"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_transform_equals_projection_then_cos_sin(sampler, dtype):
    import analogkernels
    from analogkernels import _core

    X = data(n=301, d=13).astype(dtype)  # 301: chunks of 64 rows plus a remainder
    f = RandomFourierFeatures(gamma=0.3, n_components=37, sampler=sampler, random_state=2).fit(X)
    fused = f.transform(X)
    assert fused.dtype == dtype and fused.shape == (301, 74)
    two_step = _core.rbf_features(np.ascontiguousarray(f._project(X)), 1.0 / np.sqrt(37))
    if sampler == "sorf":  # the same Hadamard code in both paths: same bits
        np.testing.assert_array_equal(fused, two_step)
    else:  # matrixmultiply vs BLAS: summation order differs in the last bits
        np.testing.assert_allclose(fused, two_step, atol=20 * np.finfo(dtype).eps)
    u = X.astype(np.float64) @ f.projection_matrix().T
    exact = np.hstack([np.cos(u), np.sin(u)]) / np.sqrt(37)
    np.testing.assert_allclose(fused, exact, atol=1e-5 if dtype == np.float32 else 1e-12)
    # Same bits for any thread count and any batch split.
    before = analogkernels.get_num_threads()
    try:
        analogkernels.set_num_threads(1)
        one = f.transform(X)
    finally:
        analogkernels.set_num_threads(before)
    np.testing.assert_array_equal(one, fused)
    np.testing.assert_array_equal(np.vstack([f.transform(X[:100]), f.transform(X[100:])]), fused)


@pytest.mark.parametrize("sampler", ["rff", "sorf"])
def test_large_transform_same_bits_with_the_populating_thread(sampler):
    # 6000 × 704 float32 = 16.9 MB: the two-thread run populates pages on one thread.
    import analogkernels

    X = data(n=6000, d=22).astype(np.float32)
    f = RandomFourierFeatures(gamma=0.05, n_components=352, sampler=sampler, random_state=0)
    f.fit(X)
    before = analogkernels.get_num_threads()
    try:
        analogkernels.set_num_threads(1)
        one = f.transform(X)
        analogkernels.set_num_threads(2)
        two = f.transform(X)
    finally:
        analogkernels.set_num_threads(before)
    assert one.nbytes >= 8 << 20
    np.testing.assert_array_equal(one, two)


def test_truncation_bounds_the_draws():
    f = RandomFourierFeatures(kernel="arccos", n_components=4000, truncation=3.0, random_state=0)
    W = f.fit(data(d=5)).random_weights_
    assert np.abs(W).max() <= 3.0
    assert 0.9 < W.std() < 1.0  # truncated normal at ±3: std 0.9866


def test_float32_preserved_and_pickle():
    X = data().astype(np.float32)
    for est in (
        RandomFourierFeatures(n_components=30, sampler="sorf", random_state=0),
        FavorPlusFeatures(n_components=30, random_state=0),
    ):
        P = est.fit_transform(X)
        assert P.dtype == np.float32
        clone = pickle.loads(pickle.dumps(est))
        np.testing.assert_array_equal(clone.transform(X), P)


@pytest.mark.parametrize("kind", ["positive", "trig"])
def test_favor_converges_to_softmax_kernel(kind):
    # Norms as after the usual d^(-1/4) scaling of queries and keys: positive
    # features have a variance growing like exp(2‖x + y‖²).
    X = data(d=16, scale=0.15)
    K = softmax_kernel(X)
    errs = [
        approximation_error(
            K,
            (P := FavorPlusFeatures(n_components=s, kind=kind, random_state=0).fit_transform(X))
            @ P.T,
        )
        for s in (16, 1024)
    ]
    assert errs[1] < errs[0] / 3
    assert errs[1] < 0.03


def test_positive_features_are_positive():
    P = FavorPlusFeatures(n_components=64, random_state=0).fit_transform(data(scale=2.0))
    assert (P > 0).all()


def test_analog_backend_projection_runs_on_the_chip():
    X = data(d=22)
    digital = RandomFourierFeatures(gamma=0.05, n_components=86, sampler="orf", random_state=0)
    analog = RandomFourierFeatures(
        gamma=0.05,
        n_components=86,
        sampler="orf",
        random_state=0,
        backend=CrossbarConfig.hermes(),
        t_inference=3600.0,
        backend_seed=4,
    )
    Pd = digital.fit_transform(X)
    Pa = analog.fit_transform(X)
    assert analog.analog_ is not None and analog.analog_.t_inference == 3600.0
    np.testing.assert_array_equal(analog.random_weights_, digital.random_weights_)
    K = rbf_kernel(X, gamma=0.05)
    # The chip adds noise but the estimate stays close to the digital one.
    assert abs(approximation_error(K, Pa @ Pa.T) - approximation_error(K, Pd @ Pd.T)) < 0.05
    assert not np.array_equal(Pa, Pd)
    # Deterministic: the same seeds give the same bits.
    again = analog.transform(X)
    assert again.tobytes() == Pa.tobytes()
    # Pipeline with the classifier.
    y = (X[:, 0] > 0).astype(int)
    pipe = make_pipeline(analog, RidgeClassifier(alpha=0.5)).fit(X, y)
    assert pipe.score(X, y) > 0.8


def test_paper_feature_counts():
    assert paper_feature_counts(13) == [
        2 * 13 - 1,
        4 * 13 - 2,
        8 * 13 - 3,
        16 * 13 - 4,
        32 * 13 - 5,
    ]
    with pytest.raises(ValueError):
        paper_feature_counts(0)


def test_invalid_parameters_are_named():
    with pytest.raises(ValueError, match="sampler"):
        RandomFourierFeatures(sampler="fastfood").fit(data())
    with pytest.raises(ValueError, match="gamma"):
        RandomFourierFeatures(gamma=-1.0).fit(data())
    with pytest.raises(ValueError, match="backend"):
        RandomFourierFeatures(backend="hermes").fit(data())
