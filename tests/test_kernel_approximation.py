"""Feature maps: convergence to the exact kernels, unbiasedness, orthogonality,
fused SORF == explicit matrix, analog backend (fresh reads), scikit-learn conformance."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.pipeline import make_pipeline
from sklearn.utils import get_tags
from sklearn.utils.estimator_checks import parametrize_with_checks

from analogkernels.analog import CrossbarConfig
from analogkernels.exceptions import ConfigError, DataError
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

HERMES = CrossbarConfig.hermes()

#: The analog configurations: the projection on the simulated HERMES chip.
ANALOG_ESTIMATORS = [
    RandomFourierFeatures(n_components=20, backend=HERMES, random_state=0),
    RandomFourierFeatures(
        kernel="arccos",
        order=1,
        n_components=20,
        sampler="sorf",
        backend=HERMES,
        t_inference=3600.0,
        backend_seed=2**64 - 1,
        random_state=0,
    ),
    FavorPlusFeatures(n_components=16, backend=HERMES, random_state=0),
    RidgeClassifier(
        alpha=0.5,
        feature_map=RandomFourierFeatures(n_components=20, backend=HERMES, random_state=0),
    ),
]


def _expected_failures(estimator):
    """Checks that compare two reads of the chip bit for bit and that scikit-learn
    does not skip for ``non_deterministic`` estimators. Strict xfail
    (pyproject ``xfail_strict``): if the chip stopped drawing fresh noise they
    would pass, and the test would fail."""
    fm = getattr(estimator, "feature_map", None)
    if fm is None or fm.backend is None:
        return {}
    return {
        "check_classifiers_train": (
            "compares predict(X) with argmax decision_function(X): two reads of the "
            "chip with independent noise (the rest of the check is in "
            "test_analog_classifier_trains_and_replayed_reads_agree)"
        ),
        "check_sample_weight_equivalence_on_dense_data": (
            "a sample repeated w times is read w times with independent noise, a "
            "sample of weight w is read once: the fits differ by read noise"
        ),
    }


@parametrize_with_checks(
    [
        RandomFourierFeatures(n_components=20, random_state=0),
        RandomFourierFeatures(n_components=20, sampler="orf", random_state=0),
        RandomFourierFeatures(n_components=20, sampler="sorf", random_state=0),
        RandomFourierFeatures(kernel="arccos", order=1, n_components=20, random_state=0),
        FavorPlusFeatures(n_components=16, random_state=0),
        RidgeClassifier(alpha=0.5),
        *ANALOG_ESTIMATORS,
    ],
    expected_failed_checks=_expected_failures,
)
def test_scikit_learn_conformance(estimator, check):
    check(estimator)


def test_non_deterministic_tag_only_on_the_chip():
    # scikit-learn skips the checks that compare two calls for these
    # (sample-order and subset invariance, pipeline and transformer consistency).
    assert all(get_tags(est).non_deterministic for est in ANALOG_ESTIMATORS)
    digital = [
        RandomFourierFeatures(),
        FavorPlusFeatures(),
        RidgeClassifier(),
        RidgeClassifier(feature_map=RandomFourierFeatures()),
    ]
    assert not any(get_tags(est).non_deterministic for est in digital)


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


def _lapack_reference(seed: int, s: int, d: int) -> np.ndarray:
    """ORF rows built independently of the library: the same draws (truncated
    normal blocks, then chi(d) row norms from one RandomState), ``Q`` taken from
    ``scipy.linalg.qr`` as LAPACK returns it, as in the paper's code."""
    import scipy.linalg
    import scipy.stats

    rng = np.random.RandomState(seed)
    blocks = []
    for _ in range(-(-s // d)):
        g = scipy.stats.truncnorm.rvs(-3.0, 3.0, size=(d, d), random_state=rng)
        blocks.append(scipy.linalg.qr(g)[0].T)
    w = np.vstack(blocks)[:s]
    return w * np.sqrt(rng.chisquare(d, size=s))[:, None]


@pytest.mark.parametrize(("s", "d"), [(7, 3), (12, 4), (29, 5)])
def test_orf_lapack_signs_match_an_independent_qr(s, d):
    f = RandomFourierFeatures(
        kernel="arccos",
        n_components=s,
        sampler="orf",
        truncation=3.0,
        orf_signs="lapack",
        random_state=11,
    ).fit(np.zeros((2, d)))
    np.testing.assert_allclose(
        f.random_weights_, _lapack_reference(11, s, d), rtol=1e-12, atol=1e-12
    )
    # LAPACK's convention: the first row of every block starts negative.
    assert (f.random_weights_[::d, 0] < 0).all()


def test_orf_haar_signs_are_unbiased():
    # Haar blocks: the first entry of a block's first row is negative with
    # probability 1/2. 400 blocks: standard deviation of the count 10; allow 5.
    d, blocks = 4, 400
    f = RandomFourierFeatures(
        kernel="arccos", n_components=d * blocks, sampler="orf", random_state=5
    ).fit(np.zeros((1, d)))
    negative = int((f.random_weights_[::d, 0] < 0).sum())
    assert abs(negative - blocks / 2) <= 5 * np.sqrt(blocks / 4)
    # Both conventions differ only by the signs of whole rows.
    g = clone(f).set_params(orf_signs="lapack").fit(np.zeros((1, d)))
    np.testing.assert_allclose(np.abs(g.random_weights_), np.abs(f.random_weights_))


def test_orf_signs_leave_rbf_features_unchanged():
    # A row's sign flips sin(w·x) and keeps cos(w·x): the Gram matrix is the same.
    X = data(d=5)
    grams = [
        (lambda P: P @ P.T)(
            RandomFourierFeatures(
                n_components=40, sampler="orf", orf_signs=signs, random_state=2
            ).fit_transform(X)
        )
        for signs in ("haar", "lapack")
    ]
    np.testing.assert_allclose(grams[0], grams[1], atol=1e-12)


def test_orf_lapack_signs_bias_the_arc_cosine_estimate():
    # k0(x, x) = 1 is estimated by 2/s · #{rows with w·x > 0}. With d = 2 and
    # x = e1, LAPACK's first row of a block (half of all rows) always has
    # w_1 < 0, and the second, (b, a) with b of random sign, is positive half
    # the time: the estimate is 0.5, not 1. Haar blocks: 1 ± 2·sqrt(0.25/s).
    x = np.array([[1.0, 0.0]])
    s = 4000
    est = {}
    for signs in ("haar", "lapack"):
        P = RandomFourierFeatures(
            kernel="arccos", n_components=s, sampler="orf", orf_signs=signs, random_state=0
        ).fit_transform(x)
        est[signs] = float(P[0] @ P[0])
    tolerance = 5 * 2 * np.sqrt(0.25 / s)  # 5 standard errors of 2/s · Binomial(s, 1/2)
    assert abs(est["haar"] - 1.0) < tolerance
    assert abs(est["lapack"] - 0.5) < tolerance


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
        backend=HERMES,
        t_inference=3600.0,
        backend_seed=4,
    )
    Pd = digital.fit_transform(X)
    analog.fit(X)
    # fit programs and drifts the chip; nothing is read yet.
    assert analog.analog_.t_inference == 3600.0 and analog.analog_.read_position == 0
    assert analog.analog_.seed == analog.backend_seed_ == 4
    Pa = analog.transform(X)
    assert analog.analog_.read_position == X.shape[0]
    np.testing.assert_array_equal(analog.random_weights_, digital.random_weights_)
    K = rbf_kernel(X, gamma=0.05)
    # The chip adds noise but the estimate stays close to the digital one.
    assert abs(approximation_error(K, Pa @ Pa.T) - approximation_error(K, Pd @ Pd.T)) < 0.05
    assert not np.array_equal(Pa, Pd)
    # Pipeline with the classifier.
    y = (X[:, 0] > 0).astype(int)
    pipe = make_pipeline(clone(analog), RidgeClassifier(alpha=0.5)).fit(X, y)
    reference = make_pipeline(clone(digital), RidgeClassifier(alpha=0.5)).fit(X, y)
    # The chip classifies as the digital projection does (same W): within five
    # binomial standard errors of the 200 rows.
    p = reference.score(X, y)
    assert p > 0.9  # a linear label, 86 features: near-perfect digitally
    assert abs(pipe.score(X, y) - p) <= 5 * np.sqrt(max(p * (1 - p), 0.01) / X.shape[0])


@pytest.mark.parametrize(
    "est",
    [
        RandomFourierFeatures(gamma=0.1, n_components=40, sampler="orf"),
        RandomFourierFeatures(kernel="arccos", order=1, n_components=40, sampler="sorf"),
        FavorPlusFeatures(n_components=24, kind="trig"),
        FavorPlusFeatures(n_components=24),
    ],
    ids=["rbf-orf", "arccos-sorf", "favor-trig", "favor-positive"],
)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_transform_is_a_fresh_read_reproducible_as_a_sequence(est, dtype):
    X = data(n=150, d=10, scale=0.3).astype(dtype)
    est = clone(est).set_params(backend=HERMES, backend_seed=7, random_state=1)
    est.fit(X)
    first, second = est.transform(X), est.transform(X)
    assert first.dtype == dtype
    # Two reads of the same X draw independent noise ...
    assert not np.array_equal(first, second)
    # ... in every row (the noise is not keyed by row position within the call).
    assert np.all(np.any(first != second, axis=1))
    # Re-fitting with the same seeds reproduces the sequence of reads bit for bit.
    again = clone(est).fit(X)
    assert again.transform(X).tobytes() == first.tobytes()
    assert again.transform(X).tobytes() == second.tobytes()
    # Any split of the rows into calls reads as one call.
    split = clone(est).fit(X)
    parts = [split.transform(X[a:b]) for a, b in ((0, 1), (1, 64), (64, 150))]
    assert np.vstack(parts).tobytes() == first.tobytes()
    # Repeating a read: set the read position back.
    est.analog_.read_position = X.shape[0]
    assert est.transform(X).tobytes() == second.tobytes()
    assert est.analog_.read_position == 2 * X.shape[0]
    # Pickling keeps the position: the copy continues the same sequence.
    copy = pickle.loads(pickle.dumps(est))
    assert copy.analog_.read_position == est.analog_.read_position
    assert copy.transform(X).tobytes() == est.transform(X).tobytes()


def test_pinned_projection_equals_the_fresh_read_at_its_position():
    from analogkernels import _core

    X = data(n=40, d=9)
    est = RandomFourierFeatures(n_components=30, backend=HERMES, backend_seed=11, random_state=0)
    est.fit(X)
    est.transform(X)  # rows 0..39
    second = est.transform(X)  # rows 40..79
    u = est.analog_.matmul(X, seed=est.backend_seed_, row_offset=40)  # pinned: no cursor move
    assert est.analog_.read_position == 80
    assert _core.rbf_features(u, 1.0 / np.sqrt(30)).tobytes() == second.tobytes()


def test_reads_of_the_chip_are_independent():
    # Differences of two reads of the same input cancel programming noise, drift
    # and quantisation (the same in every read) and keep only read noise. X is
    # stacked on itself, so one call reads every input in two rows. With
    # independent reads these correlations are 0 up to sampling error; the
    # tolerance is derived from the sample size: 5 standard errors of a
    # correlation over N pairs, 5/sqrt(N).
    X = data(n=500, d=16, scale=0.3)
    stacked = np.vstack([X, X])
    est = RandomFourierFeatures(gamma=0.1, n_components=64, backend=HERMES, backend_seed=3)
    est.fit(stacked)
    p1, p2, p3, p4 = (est.transform(stacked) for _ in range(4))
    d1, d2 = p1 - p2, p3 - p4
    n = d1.size
    # Across calls.
    assert abs(np.corrcoef(d1.ravel(), d2.ravel())[0, 1]) < 5 / np.sqrt(n)
    # Across rows of one call holding the same input.
    half = d1[:500].ravel(), d1[500:].ravel()
    assert abs(np.corrcoef(*half)[0, 1]) < 5 / np.sqrt(n // 2)


def test_backend_seed_takes_every_64_bit_value_and_names_bad_ones():
    X = data(n=20, d=5)
    for seed in (0, 2**63, 2**64 - 1):
        est = RandomFourierFeatures(n_components=8, backend=HERMES, backend_seed=seed).fit(X)
        assert est.transform(X).shape == (20, 16) and est.analog_.seed == seed
    for bad in (-1, 2**64, 1.5, "7"):
        with pytest.raises(ValueError, match="backend_seed"):
            RandomFourierFeatures(backend=HERMES, backend_seed=bad).fit(X)


def test_digital_transform_is_deterministic():
    X = data(n=50, d=6)
    est = RandomFourierFeatures(n_components=16, sampler="orf", random_state=0).fit(X)
    assert est.transform(X).tobytes() == est.transform(X).tobytes()
    assert est.analog_ is None


def test_paper_feature_counts():
    assert paper_feature_counts(13) == [
        2 * 13 - 1,
        4 * 13 - 2,
        8 * 13 - 3,
        16 * 13 - 4,
        32 * 13 - 5,
    ]
    for bad in (0, -3, 2.5, True, "13", None):
        with pytest.raises(ConfigError, match="`d`"):
            paper_feature_counts(bad)
    for ks in (3, [1, -1], [1.5], [True]):
        with pytest.raises(ConfigError, match="ks"):
            paper_feature_counts(13, ks)
    with pytest.raises(ConfigError, match=r"`ks\[1\]`.*got -1"):
        paper_feature_counts(13, [1, -1])
    assert paper_feature_counts(4, [0, 2]) == [4, 14]


# Extreme but finite inputs (issue 12): features that are not finite are a
# DataError naming the rows, never NaN handed on silently.
@pytest.mark.parametrize(
    "make",
    [
        lambda: RandomFourierFeatures(n_components=32, sampler="sorf", random_state=0),
        lambda: RandomFourierFeatures(kernel="arccos", order=2, n_components=32, random_state=0),
        lambda: FavorPlusFeatures(n_components=32, kind="trig", random_state=0),
    ],
    ids=["sorf", "arccos-2", "favor-trig"],
)
def test_features_that_overflow_raise_a_data_error(make):
    X = data(n=20, d=6).astype(np.float32)
    est = make().fit(X)
    assert np.isfinite(est.transform(X)).all()
    big = X.copy()
    big[7, 2] = 1e38
    with pytest.raises(DataError, match=r"row 7.*not finite|not finite.*row 7") as err:
        est.transform(big)
    assert "Rescale X" in str(err.value)


def test_extreme_inputs_that_map_to_finite_features_are_accepted():
    # cos/sin of a huge (finite) projection is finite, as with scikit-learn's
    # RBFSampler; positive FAVOR+ features of a row whose ‖x‖² overflows are
    # exp(−inf) = 0, the rounded exact value.
    X = data(n=20, d=6).astype(np.float32)
    big = X.copy()
    big[7, 2] = 1e30
    for est in (
        RandomFourierFeatures(n_components=32, random_state=0),
        FavorPlusFeatures(n_components=32, random_state=0),
    ):
        phi = est.fit(X).transform(big)
        assert np.isfinite(phi).all()
        np.testing.assert_array_equal(np.delete(phi, 7, 0), np.delete(est.transform(X), 7, 0))


def test_invalid_parameters_are_named():
    with pytest.raises(ValueError, match="sampler"):
        RandomFourierFeatures(sampler="fastfood").fit(data())
    with pytest.raises(ValueError, match="gamma"):
        RandomFourierFeatures(gamma=-1.0).fit(data())
    with pytest.raises(ValueError, match="backend"):
        RandomFourierFeatures(backend="hermes").fit(data())
