"""FAVOR+ attention: convergence to softmax attention, causal == masked
bidirectional, padding masks, stability, the analog projection."""

from __future__ import annotations

import numpy as np
import pytest

from analogkernels.analog import CrossbarConfig
from analogkernels.attention import attention_error, favor_attention, softmax_attention
from analogkernels.exceptions import DataError, DTypeError, ShapeError
from analogkernels.kernel_approximation import FavorPlusFeatures


def qkv(b=2, h=2, L=48, d=16, scale=0.7, seed=0):
    rng = np.random.default_rng(seed)
    return (
        rng.standard_normal((b, h, L, d)) * scale,
        rng.standard_normal((b, h, L, d)) * scale,
        rng.standard_normal((b, h, L, d)),
    )


def fitted(m, d=16, seed=0, **kw):
    return FavorPlusFeatures(n_components=m, random_state=seed, **kw).fit(np.zeros((2, d)))


@pytest.mark.parametrize("causal", [False, True])
def test_converges_to_softmax_attention(causal):
    # ‖q·d^(-1/4)‖² ≈ 0.64: positive features have a variance growing like
    # exp(2‖q′ + k′‖²), so larger norms converge (without bias) but slowly.
    Q, K, V = qkv(scale=0.4)
    exact = softmax_attention(Q, K, V, causal=causal)
    errors = [
        np.mean(
            [
                attention_error(exact, favor_attention(Q, K, V, fitted(m, seed=s), causal=causal))
                for s in range(3)
            ]
        )
        for m in (8, 128, 2048)
    ]
    # Monte-Carlo error ~ 1/sqrt(m): 16x the features, about 4x less error.
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 0.03  # measured ≈ 0.017 (bidirectional)


def test_causal_equals_prefix_masked_bidirectional():
    Q, K, V = qkv(b=1, h=2, L=12)
    f = fitted(64)
    causal = favor_attention(Q, K, V, f, causal=True)
    exact_causal = softmax_attention(Q, K, V, causal=True)
    for i in range(Q.shape[-2]):
        prefix = np.arange(Q.shape[-2]) <= i
        row = favor_attention(Q, K, V, f, key_padding_mask=prefix)[..., i, :]
        np.testing.assert_allclose(causal[..., i, :], row, rtol=1e-10, atol=1e-12)
        exact_row = softmax_attention(Q, K, V, key_padding_mask=prefix)[..., i, :]
        np.testing.assert_allclose(exact_causal[..., i, :], exact_row, rtol=1e-12)


def test_padding_mask_ignores_masked_keys():
    Q, K, V = qkv(b=2, h=1, L=20)
    mask = np.ones((2, 1, 20), dtype=bool)
    mask[0, 0, 15:] = False
    mask[1, 0, :3] = False
    f = fitted(128)
    out = favor_attention(Q, K, V, f, key_padding_mask=mask)
    K2, V2 = K.copy(), V.copy()
    K2[~mask] = 100.0  # garbage in masked positions
    V2[~mask] = -7.0
    np.testing.assert_allclose(out, favor_attention(Q, K2, V2, f, key_padding_mask=mask), rtol=1e-6)
    np.testing.assert_allclose(
        softmax_attention(Q, K, V, key_padding_mask=mask),
        softmax_attention(Q, K2, V2, key_padding_mask=mask),
        rtol=1e-12,
    )


def test_large_logits_stay_finite():
    Q, K, V = qkv(scale=6.0)  # logits ~ 36·16/4 ≫ exp's range without stabilising
    out = favor_attention(Q, K, V, fitted(64))
    assert np.all(np.isfinite(out))
    assert np.all(np.isfinite(softmax_attention(Q, K, V)))


def test_analog_projection_reads_afresh_and_reproduces_from_its_seed():
    Q, K, V = qkv(b=1, h=2, L=32)
    exact = softmax_attention(Q, K, V)
    fp = fitted(256, sampler="sorf")
    chip = fitted(256, sampler="sorf", backend=CrossbarConfig.hermes(), backend_seed=3)
    e_fp = attention_error(exact, favor_attention(Q, K, V, fp))
    a1 = favor_attention(Q, K, V, chip)
    e_chip = attention_error(exact, a1)
    assert e_chip < e_fp + 0.1  # the chip adds noise, the estimate stays usable
    rows = Q[..., 0].size + K[..., 0].size  # queries, then keys: one fresh read each
    assert chip.analog_.read_position == rows
    # A second call reads afresh: new noise, a different output ...
    a2 = favor_attention(Q, K, V, chip)
    assert not np.array_equal(a1, a2)
    # ... and the sequence is reproducible from the seeds,
    again = fitted(256, sampler="sorf", backend=CrossbarConfig.hermes(), backend_seed=3)
    assert favor_attention(Q, K, V, again).tobytes() == a1.tobytes()
    assert favor_attention(Q, K, V, again).tobytes() == a2.tobytes()
    # or by setting the read position back.
    chip.analog_.read_position = rows
    assert favor_attention(Q, K, V, chip).tobytes() == a2.tobytes()
    # The digital map stays deterministic.
    assert favor_attention(Q, K, V, fp).tobytes() == favor_attention(Q, K, V, fp).tobytes()


def test_trig_features_and_float32():
    Q, K, V = (a.astype(np.float32) for a in qkv(scale=0.4))
    out = favor_attention(Q, K, V, fitted(512, kind="trig"))
    assert out.dtype == np.float32
    assert favor_attention(Q, K, V, fitted(64)).dtype == np.float32
    assert attention_error(softmax_attention(Q, K, V), out) < 0.2


def test_shape_errors():
    Q, K, V = qkv()
    f = fitted(16)
    with pytest.raises(ShapeError, match="head dimension"):
        favor_attention(Q, K[..., :8], V, f)
    with pytest.raises(ShapeError, match="positions"):
        favor_attention(Q, K, V[..., :5, :], f)
    with pytest.raises(ShapeError, match="fitted on"):
        favor_attention(Q[..., :8], K[..., :8], V, f)
    with pytest.raises(ShapeError, match="key_padding_mask"):
        favor_attention(Q, K, V, f, key_padding_mask=np.ones(5, dtype=bool))
    with pytest.raises(ShapeError):
        attention_error(np.ones(3), np.ones(4))


def test_attention_error_is_the_kernel_metric():
    # issue 17: one relative-error implementation (kernels.approximation_error);
    # a zero reference is refused as there, not turned into NaN.
    from analogkernels.exceptions import ConfigError
    from analogkernels.kernels import approximation_error

    rng = np.random.default_rng(1)
    A = rng.standard_normal((2, 3, 5, 4))
    A_hat = A + 0.1 * rng.standard_normal(A.shape)
    flat = (A.reshape(-1, 4), A_hat.reshape(-1, 4))
    assert attention_error(A, A_hat) == approximation_error(*flat)
    with pytest.raises(ConfigError, match=r"A is all zeros.*undefined"):
        attention_error(np.zeros((2, 3)), np.ones((2, 3)))
    with pytest.raises(ShapeError, match=r"A has shape \(3,\) but A_hat has shape \(4,\)"):
        attention_error(np.ones(3), np.ones(4))
    with pytest.raises(DTypeError, match="A_hat has complex"):
        attention_error(np.ones(3), np.ones(3) + 1j)


# Error classes (issue 12): NaN/inf is bad data (DataError), a mask of the
# wrong dtype or complex input a DTypeError, never silently converted.
@pytest.mark.parametrize("which", [0, 1, 2])
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_inputs_are_data_errors(which, value):
    arrays = list(qkv())
    arrays[which] = arrays[which].copy()
    arrays[which][0, 1, 2, 3] = value
    name = "QKV"[which]
    for fn in (lambda *a: favor_attention(*a, fitted(16)), softmax_attention):
        with pytest.raises(DataError, match=rf"{name} contains 1 non-finite.*\(0, 1, 2, 3\)"):
            fn(*arrays)


def test_mask_must_be_boolean():
    Q, K, V = qkv()
    for mask in (np.ones(48), np.ones(48, dtype=np.int8), np.full(48, 0.5)):
        for fn in (lambda **kw: favor_attention(Q, K, V, fitted(16), **kw), softmax_attention):
            with pytest.raises(DTypeError, match="boolean"):
                if fn is softmax_attention:
                    fn(Q, K, V, key_padding_mask=mask)
                else:
                    fn(key_padding_mask=mask)


def test_complex_inputs_are_refused_not_truncated():
    Q, K, V = qkv()
    f = fitted(16)
    for which in range(3):
        arrays = [Q, K, V]
        arrays[which] = arrays[which] + 1j
        with pytest.raises(DTypeError, match="complex"):
            favor_attention(*arrays, f)
        with pytest.raises(DTypeError, match="complex"):
            softmax_attention(*arrays)
    with pytest.raises(DTypeError, match="real numbers"):
        favor_attention(np.full(Q.shape, "x"), K, V, f)
