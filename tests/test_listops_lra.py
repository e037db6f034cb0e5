"""ListOps generator rules; the small Performer pipeline and the attention CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from analogkernels import cli
from analogkernels.paper import listops
from analogkernels.paper.listops import VOCAB, ListOpsConfig, evaluate, generate


def test_evaluation_rules():
    # [MAX 4 3 [MIN 2 3 ] 1 0 [MED 1 5 8 9 2 ] ]  -> 5 (the example of Tay et al., ICLR 2021)
    tree = ("[MAX", [4, 3, ("[MIN", [2, 3]), 1, 0, ("[MED", [1, 5, 8, 9, 2])])
    assert evaluate(tree) == 5
    assert evaluate(("[MED", [1, 2, 3, 4])) == 2  # median 2.5 truncated
    assert evaluate(("[SM", [7, 8, 9])) == 4  # 24 mod 10
    assert evaluate(("[MIN", [3, ("[MAX", [1, 9])])) == 3
    ids = listops.tokenize(tree, 20)
    assert list(ids[:3]) == [VOCAB["[MAX"], VOCAB["4"], VOCAB["3"]]
    assert ids[-1] == 0 and len(VOCAB) == 16  # 4 operators, X, 10 digits, padding


def test_generator_window_uniqueness_and_determinism():
    cfg = ListOpsConfig(max_depth=4, max_args=5, min_length=8, max_length=64)
    X, y = generate(500, cfg, seed=3)
    lengths = (X != 0).sum(axis=1)
    assert lengths.min() > 8 and lengths.max() < 64
    assert len({row.tobytes() for row in X}) == 500
    assert set(np.unique(y)) <= set(range(10))
    X2, y2 = generate(500, cfg, seed=3)
    assert np.array_equal(X, X2) and np.array_equal(y, y2)
    with pytest.raises(ValueError):
        ListOpsConfig(max_args=1)


def test_performer_initialisation_is_seeded_and_leaves_the_global_rng_alone():
    torch = pytest.importorskip("torch")
    from analogkernels.paper.lra import Performer

    state = torch.get_rng_state()
    a, b, c = (Performer(max_len=16, random_state=s) for s in (3, 3, 4))
    assert torch.equal(torch.get_rng_state(), state)
    pairs = list(zip(a.parameters(), b.parameters(), c.parameters(), strict=True))
    assert all(torch.equal(p, q) for p, q, _ in pairs)
    assert any(not torch.equal(p, r) for p, _, r in pairs)


def test_performer_pipeline_and_attention_cli(tmp_path):
    pytest.importorskip("torch")
    from analogkernels.paper import lra

    n_test = 100
    run = lra.run_listops(n_train=300, n_test=n_test, train_steps=5, hwa_steps=2, seeds=2)
    # Every accuracy (FP, and each programming seed on the chip) is the fraction
    # of the n_test test trees classified right: a whole number of trees, not a
    # mean over batches or over another set; the majority rate is one too, and
    # of ten classes one holds at least a tenth of the trees.
    accuracies = [run.fp, run.hwa_fp, *run.attention_only, *run.full, *run.hwa_full]
    assert len(accuracies) == 2 + 3 * 2
    for v in [*accuracies, run.settings["majority"]]:
        assert 0 <= round(v * n_test) <= n_test
        assert v * n_test == pytest.approx(round(v * n_test), abs=1e-9)
    assert run.settings["majority"] >= 1 / 10
    assert len(run.full) == 2 and "| trained FP |" in run.table()
    out = tmp_path / "attn"
    assert (
        cli.main(
            [
                "attention",
                "listops",
                "--quick",
                "--steps",
                "3",
                "--hwa-steps",
                "2",
                "--seeds",
                "1",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert (out / "listops.png").stat().st_size > 5000
    assert json.loads((out / "listops.json").read_text())["settings"]["seeds"] == 1
    assert (
        cli.main(
            [
                "attention",
                "error",
                "--quick",
                "--model",
                str(out / "model.pt"),
                "--seeds",
                "1",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    table = (out / "attention_error.md").read_text()
    assert "gaussian" in table and "ListOps model" in table


def test_chip_evaluation_is_reproducible_and_reads_afresh():
    torch = pytest.importorskip("torch")
    from analogkernels.analog import CrossbarConfig
    from analogkernels.paper import lra

    cfg = ListOpsConfig(max_depth=3, max_args=4, min_length=4, max_length=16)
    X, y = generate(40, cfg, seed=1, pad_to=16)
    model = lra._freeze(lra.Performer(max_len=16, random_state=0)).eval()
    before = [p.detach().clone() for p in model.parameters()]
    chip = CrossbarConfig.hermes()
    # One programming per seed, fresh reads over the test set: the same seeds
    # give the same accuracies.
    for full in (False, True):
        runs = [lra.analog_accuracies(model, X, y, chip, 2, full=full) for _ in range(2)]
        assert runs[0] == runs[1] and len(runs[0]) == 2
    assert all(torch.equal(p, q) for p, q in zip(before, model.parameters(), strict=True))
    # The logits (not only the accuracy): two passes over the same trees on one
    # programmed model differ by read noise; a new conversion repeats the first.
    tokens = torch.from_numpy(X)
    analog = lra.convert_to_analog(model, chip, seed=1000)
    with torch.no_grad():
        first, second = analog(tokens), analog(tokens)
        assert not torch.equal(first, second)
        assert torch.equal(lra.convert_to_analog(model, chip, seed=1000)(tokens), first)


def test_attention_error_study_is_reproducible():
    pytest.importorskip("torch")
    from analogkernels.paper import lra

    rng = np.random.default_rng(0)
    sets = {"gaussian": [tuple(rng.standard_normal((1, 1, 12, 4)) * 0.5 for _ in range(3))]}
    runs = [lra.attention_error_study(sets, ks=range(1, 3), seeds=2) for _ in range(2)]
    assert runs[0] == runs[1]
    chip = [r for r in runs[0] if r["backend"] == "analog"]
    assert len(chip) == 2 and all(r["error_std"] > 0 for r in chip)


def test_package_works_without_torch():
    """Importing analogkernels (and the numpy attention) never needs torch."""
    import subprocess
    import sys

    code = (
        "import sys, importlib.abc\n"
        "class NoTorch(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name == 'torch' or name.startswith('torch.'):\n"
        "            raise ModuleNotFoundError(\"No module named 'torch'\")\n"
        "sys.meta_path.insert(0, NoTorch())\n"
        "import numpy as np, analogkernels\n"
        "from analogkernels import attention, kernel_approximation, cli\n"
        "from analogkernels.paper import listops\n"
        "f = kernel_approximation.FavorPlusFeatures(n_components=8, random_state=0)"
        ".fit(np.zeros((2, 4)))\n"
        "q = np.ones((1, 1, 3, 4)) * 0.1\n"
        "print(attention.favor_attention(q, q, q, f).shape)\n"
        "print(cli.main(['attention', 'error']))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "(1, 1, 3, 4)" in res.stdout and res.stdout.strip().endswith("1")
    assert "needs PyTorch" in res.stderr


def test_vectorized_generator_follows_the_rules():
    from analogkernels.paper.listops import REDUCED, generate_vectorized, parse

    X, y = generate_vectorized(400, REDUCED, seed=5, chunk=2048)
    assert X.dtype == np.uint8 and X.shape == (400, REDUCED.max_length)
    lengths = (X != 0).sum(axis=1)
    assert lengths.min() > REDUCED.min_length and lengths.max() < REDUCED.max_length
    assert len({row.tobytes() for row in X}) == 400

    # Every tree is well formed, within the depth and argument limits, and its
    # label is its value by the reference evaluator.
    def depth_args(tree, d=1):
        if isinstance(tree, int):
            return d, 0
        sub = [depth_args(c, d + 1) for c in tree[1]]
        return max(s[0] for s in sub), max(len(tree[1]), *(s[1] for s in sub))

    for row, label in zip(X, y, strict=True):
        tree = parse(row)
        assert evaluate(tree) == label
        depth, args = depth_args(tree)
        assert depth <= REDUCED.max_depth and args <= REDUCED.max_args
    X2, y2 = generate_vectorized(400, REDUCED, seed=5, chunk=2048)
    assert np.array_equal(X, X2) and np.array_equal(y, y2)
    assert not np.array_equal(generate_vectorized(400, REDUCED, seed=6, chunk=2048)[0], X)


def test_vectorized_generator_matches_the_reference_distribution():
    # Same rules, different random streams: the accepted trees' mean length and
    # the share of each operator at the root agree within sampling error.
    from analogkernels.paper.listops import REDUCED, generate_vectorized

    n = 3000
    Xa, _ = generate(n, REDUCED, seed=0)
    Xb, _ = generate_vectorized(n, REDUCED, seed=0, chunk=8192)
    la, lb = (Xa != 0).sum(axis=1), (Xb != 0).sum(axis=1)
    se = np.sqrt(la.var() / n + lb.var() / n)
    assert abs(la.mean() - lb.mean()) < 4 * se
    for op in range(1, 5):  # root operator shares, binomial standard error
        pa, pb = (Xa[:, 0] == op).mean(), (Xb[:, 0] == op).mean()
        assert abs(pa - pb) < 4 * np.sqrt(0.25 * 2 / n)


def test_lra_trees_and_the_checksummed_cache(tmp_path, caplog):
    from analogkernels.paper.listops import LRA, load_or_generate, parse

    X, y = load_or_generate(30, LRA, seed=2, cache_dir=tmp_path)
    lengths = (X != 0).sum(axis=1)
    assert X.shape == (30, 2000) and lengths.min() > 500 and lengths.max() < 2000
    assert all(evaluate(parse(r)) == v for r, v in zip(X[:5], y[:5], strict=True))
    files = sorted(p.name for p in tmp_path.iterdir())
    assert len(files) == 2 and files[0].endswith(".npz") and files[1].endswith(".sha256")
    npz = next(tmp_path.glob("*.npz"))
    stamp = npz.stat().st_mtime_ns
    X2, _ = load_or_generate(30, LRA, seed=2, cache_dir=tmp_path)  # from the cache
    assert npz.stat().st_mtime_ns == stamp and np.array_equal(X, X2)
    with open(npz, "r+b") as f:  # damage the cache: regenerated, with a warning
        f.seek(200)
        f.write(b"\xff\xff\xff\xff")
    with caplog.at_level("WARNING", logger="analogkernels.paper.listops"):
        X3, y3 = load_or_generate(30, LRA, seed=2, cache_dir=tmp_path)
    assert "SHA-256" in caplog.text
    assert np.array_equal(X, X3) and np.array_equal(y, y3)
    with pytest.raises(ValueError, match="n must be"):
        load_or_generate(-1, LRA, cache_dir=tmp_path)


def test_recipe_schedules_and_devices():
    pytest.importorskip("torch")
    from analogkernels.paper import lra

    p = lra.PAPER
    assert p.factor(0) == pytest.approx(1 / 1000) and p.factor(999) == pytest.approx(1.0)
    assert p.factor(3999) == pytest.approx(0.5)  # sqrt(1000 / 4000)
    assert lra.QUICK.factor(5000) == 1.0
    with pytest.raises(ValueError, match="schedule"):
        lra.Recipe(schedule="cosine")
    assert str(lra.resolve_device("cpu")) == "cpu"
    with pytest.raises(ValueError, match=r"unknown device|unsupported device"):
        lra.resolve_device("tpu")
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            lra.resolve_device("cuda:0")


def test_paper_model_training_is_reproducible_on_cpu_with_bf16():
    torch = pytest.importorskip("torch")
    from analogkernels.paper import lra

    cfg = ListOpsConfig(max_depth=3, max_args=4, min_length=4, max_length=24)
    X, y = generate(64, cfg, seed=1, pad_to=24)
    model = lra.Performer.lra_listops(random_state=0, max_len=24)
    assert len(model.blocks) == 1 and model.depth == 2  # tied layers
    assert model.head2.bias is None and model.blocks[0].attn.n_components == 128
    runs = []
    for _ in range(2):
        m = lra.Performer.lra_listops(random_state=0, max_len=24)
        losses = lra.train(
            m, X.astype(np.uint8), y, steps=3, recipe=lra.PAPER, batch=8, device="cpu", amp=True
        )
        runs.append((losses, [p.detach().clone() for p in m.parameters()]))
    assert runs[0][0] == runs[1][0] and len(runs[0][0]) == 3
    assert all(torch.equal(a, b) for a, b in zip(runs[0][1], runs[1][1], strict=True))
    # Trimmed, length-sorted evaluation batches give the accuracy of padded ones.
    m = lra._freeze(model).eval()
    a = lra.accuracy(m, X, y, batch=16)
    b = lra.accuracy(m, X, y, batch=16, trim=True)
    assert a == b
    # A time budget stops training early.
    short = lra.train(model, X, y, steps=1000, batch=4, time_budget=0.0, log_every=1000)
    assert len(short) == 1
    # Training leaves the process's floating-point state alone: subnormals
    # still survive arithmetic (flush-to-zero / denormals-are-zero would give 0).
    tiny = np.array([5e-324]) * np.array([1.0])
    assert tiny[0] > 0


def test_full_listops_cli_end_to_end_on_cpu(tmp_path):
    pytest.importorskip("torch")
    out = tmp_path / "full"
    args = ["attention", "listops", "--full", "--max-steps", "20", "--hwa-steps", "2"]
    args += ["--trees", "48,8,16", "--batch", "4", "--seeds", "1", "--device", "cpu"]
    args += ["--cache-dir", str(tmp_path / "cache"), "--out", str(out)]
    assert cli.main(args) == 0
    record = json.loads((out / "listops.json").read_text())
    s = record["settings"]
    assert s["full"] and s["train_steps"] == 20 and s["hwa_steps"] == 2 and s["batch"] == 4
    assert s["max_length"] == 2000 and s["device"] == "cpu" and s["amp"] is False
    assert s["arch"]["tie_layers"] and s["arch"]["norm"] == "post"
    assert set(s["throughput"]) >= {"FP evaluation", "evaluation, full model on chip"}
    assert all(v > 0 for v in s["throughput"].values())
    assert "samples/s" in (out / "listops.md").read_text()
    # The saved model carries its architecture: the error study loads it.
    assert (
        cli.main(
            [
                *("attention", "error", "--quick", "--seeds", "1"),
                *("--model", str(out / "model.pt"), "--out", str(out)),
            ]
        )
        == 0
    )


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--device", "tpu"], "expected cpu, cuda or cuda:N"),
        (["--trees", "10,5"], "TRAIN,VAL,TEST"),
        (["--max-steps", "0"], "positive integer"),
    ],
)
def test_attention_cli_refuses_bad_device_and_counts(extra, message, capsys, tmp_path):
    with pytest.raises(SystemExit) as exc:
        cli.main(["attention", "listops", "--out", str(tmp_path), *extra])
    assert exc.value.code == 2 and message in capsys.readouterr().err


def test_attention_cli_cuda_without_cuda(capsys, tmp_path):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    assert cli.main(["attention", "listops", "--device", "cuda", "--out", str(tmp_path)]) == 2
    assert "CUDA is not available" in capsys.readouterr().err


def test_padding_token_and_cache_folder_have_one_owner(tmp_path, monkeypatch):
    from analogkernels import datasets

    assert listops.PAD == VOCAB["<pad>"]
    tokens = listops.tokenize(5, 4)
    assert tokens.tolist() == [VOCAB["5"], listops.PAD, listops.PAD, listops.PAD]
    X, _ = listops.generate_vectorized(3, ListOpsConfig(4, 5, 8, 64), pad_to=80, chunk=256)
    assert (X[:, 64:] == listops.PAD).all()
    # Without cache_dir the trees are cached under datasets.cache_dir().
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    listops.load_or_generate(3, ListOpsConfig(4, 5, 8, 64), seed=1)
    folder = datasets.cache_dir() / listops.CACHE_FOLDER
    assert folder.parent == tmp_path / "analogkernels" and len(list(folder.glob("*.npz"))) == 1


def test_attention_defaults_are_the_papers():
    pytest.importorskip("torch")
    import inspect

    from analogkernels.paper import attention_study, lra, protocol

    run = inspect.signature(lra.run_listops).parameters
    study = inspect.signature(lra.attention_error_study).parameters
    assert run["seeds"].default == study["seeds"].default == protocol.PAPER_SEEDS
    assert study["ks"].default == attention_study.ATTENTION_KS == range(1, 8)
    assert lra.parse_device("cuda:1").index == 1
    with pytest.raises(ValueError, match="expected cpu, cuda or cuda:N"):
        lra.parse_device("mps")
