"""PyTorch layers: agreement with the numpy path, same bits on the simulated
chip, fresh reads per forward pass, gradients (gradcheck), masks, redraws,
hardware-aware training layers."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from analogkernels.analog import CrossbarConfig  # noqa: E402
from analogkernels.attention import favor_attention, favor_features, softmax_attention  # noqa: E402
from analogkernels.torch import (  # noqa: E402
    AnalogLinear,
    FavorAttention,
    HWALinear,
    convert_to_analog,
)


def qkv(b=2, h=2, L=16, d=8, scale=0.5, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return tuple((rng.standard_normal((b, h, L, d)) * s).astype(dtype) for s in (scale, scale, 1.0))


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("kind", ["positive", "trig"])
def test_torch_matches_numpy_path(causal, kind):
    Q, K, V = qkv()
    mask = np.ones((2, 2, 16), dtype=bool)
    mask[1, :, 10:] = False
    attn = FavorAttention(8, 64, causal=causal, kind=kind, random_state=3).eval()
    got = attn(*(torch.from_numpy(a) for a in (Q, K, V)), key_padding_mask=torch.from_numpy(mask))
    ref = favor_attention(Q, K, V, attn._numpy_features(3), causal=causal, key_padding_mask=mask)
    np.testing.assert_allclose(got.numpy(), ref, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("query", [True, False])
@pytest.mark.parametrize("kind", ["positive", "trig"])
def test_torch_features_match_favor_features(kind, query):
    # issue 17: FavorAttention._features repeats the maps and the stabiliser
    # (per-row shift for queries, one for the keys) in torch, for autograd; it
    # must agree with attention.favor_features, which uses FavorPlusFeatures.
    X = qkv()[0]
    attn = FavorAttention(8, 64, kind=kind, random_state=3)
    got = attn._features(torch.from_numpy(X), query=query).numpy()
    ref = favor_features(X, attn._numpy_features(3), query=query)
    assert got.shape == ref.shape
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=0)


def test_favor_attention_shares_the_defaults_and_checks_of_favor_plus_features():
    # issue 17: one set of defaults, and n_components checked once (by
    # FavorPlusFeatures, naming it) before any tensor is made.
    import inspect

    from analogkernels.exceptions import ConfigError
    from analogkernels.kernel_approximation import FavorPlusFeatures

    ours = inspect.signature(FavorAttention).parameters
    theirs = inspect.signature(FavorPlusFeatures).parameters
    for name in ("n_components", "kind", "sampler"):
        assert ours[name].default == theirs[name].default
    for bad in (0, -2, 2.5):
        with pytest.raises(ConfigError, match="`n_components`"):
            FavorAttention(8, bad)
    for bad in (0, -1, 8.0):
        with pytest.raises(ConfigError, match="`dim_heads`"):
            FavorAttention(bad)


def test_analog_path_gives_the_numpy_bits():
    Q, K, V = qkv(dtype=np.float32)
    tq, tk, tv = (torch.from_numpy(a) for a in (Q, K, V))
    attn = FavorAttention(8, 64, random_state=1).eval()
    attn.use_analog(CrossbarConfig.hermes(), t_inference=3600.0, seed=5)
    chip = attn.analog_features.analog_
    assert chip.seed == 5 and chip.t_inference == 3600.0
    got = attn(tq, tk, tv)
    rows = 2 * Q[..., 0].size  # queries, then keys: one read
    assert chip.read_position == rows
    again = attn(tq, tk, tv)
    # Each forward pass is a fresh read of the chip ...
    assert not np.array_equal(got.numpy(), again.numpy())
    # ... of the rows the numpy path reads (queries then keys, same read
    # positions, so the same chip outputs); the features are then computed
    # by torch, which rounds differently from numpy only in the last bits.
    chip.read_position = 0
    for out in (got, again):
        ref = favor_attention(Q, K, V, attn.analog_features)
        np.testing.assert_allclose(out.numpy(), ref, rtol=2e-5, atol=1e-6)
    assert chip.read_position == 2 * rows
    # The projection itself is the chip's read: queries and keys in one matmul.
    chip.read_position = 0
    u = chip.matmul(np.concatenate([Q.reshape(-1, 8), K.reshape(-1, 8)]) * np.float32(8**-0.25))
    chip.read_position = 0
    u_q = chip.matmul(Q.reshape(-1, 8) * np.float32(8**-0.25))
    assert u[: len(u_q)].tobytes() == u_q.tobytes()
    # Programming again with the same seed reproduces the sequence.
    attn.use_analog(CrossbarConfig.hermes(), t_inference=3600.0, seed=5)
    assert attn(tq, tk, tv).detach().numpy().tobytes() == got.numpy().tobytes()
    attn.use_analog(None)
    assert attn.analog_features is None
    assert not np.array_equal(attn(tq, tk, tv).numpy(), got.numpy())


def test_gradcheck_float64():
    Q, K, V = (torch.from_numpy(a).requires_grad_() for a in qkv(b=1, h=1, L=5, d=4))
    for causal in (False, True):
        for fmap in ("positive", "trig", "relu"):
            attn = FavorAttention(4, 8, causal=causal, kind=fmap, random_state=2).double()
            assert torch.autograd.gradcheck(attn, (Q, K, V))


def test_converges_to_softmax_and_masks():
    Q, K, V = qkv(L=24, d=16, scale=0.4)
    exact = softmax_attention(Q, K, V)
    attn = FavorAttention(16, 4096, random_state=0).eval()
    out = attn(*(torch.from_numpy(a) for a in (Q, K, V))).numpy()
    assert np.linalg.norm(out - exact) / np.linalg.norm(exact) < 0.05
    mask = torch.ones(2, 2, 24, dtype=torch.bool)
    mask[..., 20:] = False
    tq, tk, tv = (torch.from_numpy(a) for a in (Q, K, V))
    a = attn(tq, tk, tv, key_padding_mask=mask)
    tk2, tv2 = tk.clone(), tv.clone()
    tk2[..., 20:, :] = 9.0
    tv2[..., 20:, :] = -3.0
    torch.testing.assert_close(a, attn(tq, tk2, tv2, key_padding_mask=mask))


def test_redraw_interval_and_freeze():
    attn = FavorAttention(8, 16, redraw_interval=2, random_state=0).train()
    q = torch.randn(1, 1, 4, 8, dtype=torch.float64)
    w0 = attn.projection.clone()
    attn(q, q, q)
    assert torch.equal(attn.projection, w0)
    attn(q, q, q)
    assert not torch.equal(attn.projection, w0)  # redrawn after 2 calls
    attn.freeze()
    w1 = attn.projection.clone()
    for _ in range(4):
        attn(q, q, q)
    assert torch.equal(attn.projection, w1)
    attn.eval()
    with pytest.raises(ValueError, match="head dimension"):
        attn(torch.randn(1, 1, 4, 5), q, q)


@pytest.mark.parametrize("kind", ["positive", "trig", "relu"])
@pytest.mark.parametrize("sampler", ["orf", "rff"])
def test_favor_attention_names_match_favor_plus_features(kind, sampler):
    # issue 17: n_components, kind, sampler and random_state mean what they mean
    # in FavorPlusFeatures; the projection is that estimator's W.
    from analogkernels.exceptions import ConfigError
    from analogkernels.kernel_approximation import FavorPlusFeatures

    attn = FavorAttention(8, 24, kind=kind, sampler=sampler, random_state=5)
    assert (attn.n_components, attn.kind, attn.sampler, attn.random_state) == (24, kind, sampler, 5)
    ref = FavorPlusFeatures(n_components=24, sampler=sampler, random_state=5)
    np.testing.assert_array_equal(
        attn.projection.numpy(), ref.fit(np.zeros((2, 8))).projection_matrix()
    )
    q = torch.from_numpy(qkv()[0])
    assert attn(q, q, q).shape == q.shape
    with pytest.raises(ConfigError, match="sampler"):
        FavorAttention(8, 24, sampler="sorf")


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ({"nb_features": 24}, {"n_components": 24}),
        ({"feature_map": "trig"}, {"kind": "trig"}),
        ({"feature_map": "relu"}, {"kind": "relu"}),
        ({"orthogonal": True}, {"sampler": "orf"}),
        ({"orthogonal": False}, {"sampler": "rff"}),
        ({"seed": 7}, {"random_state": 7}),
    ],
)
def test_favor_attention_deprecated_names_warn_and_give_the_same_bits(old, new):
    [(old_name, old_value)], [(new_name, _)] = old.items(), new.items()
    ref = FavorAttention(8, **new, redraw_interval=2).train()
    with pytest.warns(FutureWarning, match=new_name) as record:
        got = FavorAttention(8, **old, redraw_interval=2).train()
    assert len(record) == 1 and old_name in str(record[0].message)
    assert record[0].filename == __file__  # points at the caller
    q, k, v = (torch.from_numpy(a) for a in qkv())
    for _ in range(3):  # across a redraw
        assert torch.equal(got(q, k, v), ref(q, k, v))
    assert torch.equal(got.projection, ref.projection)
    # The old attribute reads the new one, with a warning.
    with pytest.warns(FutureWarning, match=new_name):
        assert getattr(got, old_name) == old_value
    with pytest.raises(TypeError, match=new_name):
        FavorAttention(8, **old, **new)


def test_favor_attention_all_deprecated_names_at_once():
    with pytest.warns(FutureWarning) as record:
        old = FavorAttention(8, nb_features=16, feature_map="trig", orthogonal=False, seed=3)
    assert {str(w.message).split("'")[1] for w in record} == {
        "nb_features",
        "feature_map",
        "orthogonal",
        "seed",
    }
    new = FavorAttention(8, n_components=16, kind="trig", sampler="rff", random_state=3)
    assert torch.equal(old.projection, new.projection)
    q = torch.from_numpy(qkv()[0])
    assert torch.equal(old.eval()(q, q, q), new.eval()(q, q, q))
    with pytest.raises(TypeError, match="n_components"):
        FavorAttention(8, 16, nb_features=16)  # positionally and by its old name
    # The chip seed keeps its name: no warning.
    new.use_analog(CrossbarConfig.ideal(), seed=4)
    assert new.analog_features.analog_.seed == 4


def test_performer_deprecated_names():
    from analogkernels.paper.lra import Performer

    ref = Performer(max_len=16, n_components=32, random_state=2)
    assert ref.arch["n_components"] == 32 and ref.arch["random_state"] == 2
    with pytest.warns(FutureWarning, match="n_components"):
        with pytest.warns(FutureWarning, match="random_state"):
            old = Performer(max_len=16, nb_features=32, seed=2)
    for a, b in zip(old.state_dict().values(), ref.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    with pytest.warns(FutureWarning, match="random_state"):
        tied = Performer.lra_listops(seed=1, max_len=16)
    ref = Performer.lra_listops(random_state=1, max_len=16)
    assert torch.equal(tied.blocks[0].attn.projection, ref.blocks[0].attn.projection)
    with pytest.raises(TypeError, match="random_state"):
        Performer(seed=1, random_state=1)


def test_model_saved_with_the_old_architecture_names_loads_without_warning(tmp_path):
    from analogkernels.paper.attention_study import load_model
    from analogkernels.paper.lra import Performer

    model = Performer(max_len=16, n_components=32, random_state=2)
    arch = dict(model.arch)
    arch["nb_features"], arch["seed"] = arch.pop("n_components"), arch.pop("random_state")
    torch.save({"arch": arch, "state_dict": model.state_dict()}, tmp_path / "model.pt")
    loaded = load_model(tmp_path / "model.pt")  # filterwarnings = error: no warning
    assert loaded.arch == model.arch


def test_hwa_linear_noise_and_conversion():
    torch.manual_seed(0)
    layer = HWALinear(32, 16)
    x = torch.randn(512, 32)
    layer.train()
    noisy = layer(x)
    assert layer.range_initialised.item()
    clean = torch.nn.functional.linear(x, layer.weight, layer.bias)
    err = (noisy - clean).std().item()
    wmax = layer.weight.abs().max().item()
    # weight noise 0.12·max|W|·‖x‖ plus output noise 0.1·range·max|W| (plus quantisation)
    expect = wmax * np.sqrt(0.12**2 * 32 + (0.1 * layer.input_range.item()) ** 2)
    assert 0.7 * expect < err < 1.4 * expect
    noisy.sum().backward()
    assert layer.weight.grad is not None and layer.input_range.grad is not None
    layer.clip_weights_()
    assert layer.weight.abs().max() <= 2.0 * layer.weight.std() + 1e-6
    layer.eval()
    torch.testing.assert_close(layer(x), clean)

    model = torch.nn.Sequential(torch.nn.Linear(32, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4))
    analog = convert_to_analog(model, CrossbarConfig.hermes(), seed=4)
    assert isinstance(analog[0], AnalogLinear) and isinstance(analog[2], AnalogLinear)
    assert isinstance(model[0], torch.nn.Linear)  # the original is untouched
    y_chip, y_fp = analog(x), model(x)
    rel = (torch.linalg.norm(y_chip - y_fp) / torch.linalg.norm(y_fp)).item()
    assert rel < 0.2


def test_analog_linear_reads_afresh_and_reproduces_from_its_seed():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(32, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4))
    x = torch.randn(3, 40, 32)  # batch of sequences: flattened to 120 rows per read
    analog = convert_to_analog(model, CrossbarConfig.hermes(), seed=4, t_inference=60.0)
    # One chip per layer, each with its own seed (the conversion seed, then + 1).
    assert (analog[0].analog.seed, analog[2].analog.seed) == (4, 5)
    assert analog[0].analog.t_inference == 60.0
    first, second = analog(x), analog(x)
    # Every forward pass draws fresh read noise ...
    assert not torch.equal(first, second)
    assert analog[0].analog.read_position == analog[2].analog.read_position == 2 * 120
    # ... reproducible from the seed: a new conversion gives the same sequence,
    again = convert_to_analog(model, CrossbarConfig.hermes(), seed=4, t_inference=60.0)
    assert again(x).detach().numpy().tobytes() == first.detach().numpy().tobytes()
    assert again(x).detach().numpy().tobytes() == second.detach().numpy().tobytes()
    # for any split of the rows into forward passes (each layer reads row-wise),
    split = convert_to_analog(model, CrossbarConfig.hermes(), seed=4, t_inference=60.0)
    parts = torch.cat([split(x[:1]), split(x[1:])])
    assert parts.detach().numpy().tobytes() == first.detach().numpy().tobytes()
    # and a read is repeated by setting the read positions back.
    analog[0].analog.read_position = 0
    assert not torch.equal(analog(x), first)  # the second layer still read afresh
    analog[0].analog.read_position = analog[2].analog.read_position = 0
    assert analog(x).detach().numpy().tobytes() == first.detach().numpy().tobytes()
    # The noise is the chip's: a different seed gives a different read.
    other = convert_to_analog(model, CrossbarConfig.hermes(), seed=6, t_inference=60.0)
    assert not torch.equal(other(x), first)


def test_masks_of_another_dtype_and_complex_inputs_are_refused():
    # issue 12: a float mask used to weight the keys on the digital path and to
    # be rounded to bool on the analog one; complex input lost its imaginary part.
    from analogkernels.exceptions import ConfigError, DTypeError, ShapeError

    tq, tk, tv = (torch.from_numpy(a) for a in qkv())
    attn = FavorAttention(8, 32, random_state=0).eval()
    analog = FavorAttention(8, 32, random_state=0).eval().use_analog(CrossbarConfig.ideal())
    for layer in (attn, analog):
        for dtype in (torch.float64, torch.int64, torch.uint8):
            with pytest.raises(DTypeError, match=r"torch\.bool"):
                layer(tq, tk, tv, key_padding_mask=torch.ones(2, 2, 16, dtype=dtype))
        with pytest.raises(DTypeError, match="complex"):
            layer(tq.to(torch.complex128), tk, tv)
        with pytest.raises(ShapeError, match="head dimension"):
            layer(tq[..., :5], tk, tv)
    with pytest.raises(ConfigError, match="kind"):
        FavorAttention(8, 32, kind="softmax")
    with pytest.raises(ConfigError, match="analog path"):
        FavorAttention(8, 32, kind="relu").use_analog(CrossbarConfig.ideal())


def test_analog_linear_straight_through_gradient_and_reprogramming():
    torch.manual_seed(0)
    lin = torch.nn.Linear(16, 8)
    layer = AnalogLinear(lin, CrossbarConfig.hermes(), seed=3)
    x = torch.randn(32, 16, requires_grad=True)
    y = layer(x)
    # The forward pass is the chip's (noisy, not the digital layer) ...
    digital = lin(x)
    assert not torch.allclose(y, digital)
    layer.analog.read_position = 0
    with torch.no_grad():
        assert torch.equal(layer(x), y.detach())
    # ... the backward pass the digital layer's: d/dx (g·y) = g·W, d/dW = gᵀx.
    g = torch.randn_like(y)
    (y * g).sum().backward()
    torch.testing.assert_close(x.grad, g @ lin.weight.detach())
    torch.testing.assert_close(layer.weight.grad, g.T @ x.detach())
    torch.testing.assert_close(layer.bias.grad, g.sum(0))
    # An optimiser step changes the weights; sync programs them (next seed).
    assert not layer.sync()
    opt = torch.optim.SGD(layer.parameters(), lr=0.5)
    opt.step()
    assert layer.sync() and layer.analog.seed == 4 and layer.programmings == 2
    new_w = layer.analog.effective_weights(0.0)
    rel = np.linalg.norm(new_w - layer.weight.detach().double().numpy()) / np.linalg.norm(new_w)
    assert rel < 0.2
    assert not layer.sync()
    with pytest.raises(ValueError, match="input features"):
        layer(torch.randn(4, 5))


def test_convert_to_analog_reports_layers_left_digital():
    from analogkernels.exceptions import ConfigError

    model = torch.nn.Sequential(
        torch.nn.Conv1d(2, 4, 3),
        torch.nn.Flatten(),
        torch.nn.LayerNorm(8),
        torch.nn.Linear(8, 3),
    )
    with pytest.warns(UserWarning, match=r"0 \(Conv1d\)"):
        analog = convert_to_analog(model, CrossbarConfig.ideal())
    assert isinstance(analog[3], AnalogLinear) and isinstance(analog[0], torch.nn.Conv1d)
    assert analog.digital_layers_ == {"0": "Conv1d", "2": "LayerNorm"}
    with pytest.raises(ConfigError, match="Conv1d"):
        convert_to_analog(model, CrossbarConfig.ideal(), strict=True)
    # Only digital-by-design layers: no warning, still listed.
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plain = convert_to_analog(model[2:], CrossbarConfig.ideal())
    assert plain.digital_layers_ == {"2": "LayerNorm"}  # slicing keeps the names


def test_layers_under_bfloat16_autocast():
    # Autocast runs the linear layers in bfloat16; the FAVOR features stay float32.
    Q, K, V = (torch.from_numpy(a) for a in qkv(dtype=np.float32))
    attn = FavorAttention(8, 64, random_state=0).eval()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = attn(Q.bfloat16(), K.bfloat16(), V.bfloat16())
    assert out.dtype == torch.float32
    ref = attn(Q.bfloat16().float(), K.bfloat16().float(), V.bfloat16().float())
    torch.testing.assert_close(out, ref)
    lin = convert_to_analog(torch.nn.Linear(8, 4), CrossbarConfig.ideal())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = lin(torch.randn(5, 8).bfloat16())
    assert y.shape == (5, 4) and torch.isfinite(y).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_tensors_stay_on_the_device():
    Q, K, V = (torch.from_numpy(a).cuda() for a in qkv(dtype=np.float32))
    attn = (
        FavorAttention(8, 64, random_state=1)
        .cuda()
        .eval()
        .use_analog(CrossbarConfig.hermes(), seed=2)
    )
    assert attn(Q, K, V).device.type == "cuda"
    lin = convert_to_analog(torch.nn.Linear(8, 4).cuda(), CrossbarConfig.hermes())
    assert lin(Q).device.type == "cuda"
