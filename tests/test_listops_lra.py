"""ListOps generator rules; the small Performer pipeline and the attention CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from analogkernels import cli, listops
from analogkernels.listops import VOCAB, ListOpsConfig, evaluate, generate


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
    from analogkernels.lra import Performer

    state = torch.get_rng_state()
    a, b, c = (Performer(max_len=16, seed=s) for s in (3, 3, 4))
    assert torch.equal(torch.get_rng_state(), state)
    pairs = list(zip(a.parameters(), b.parameters(), c.parameters(), strict=True))
    assert all(torch.equal(p, q) for p, q, _ in pairs)
    assert any(not torch.equal(p, r) for p, _, r in pairs)


def test_performer_pipeline_and_attention_cli(tmp_path):
    pytest.importorskip("torch")
    from analogkernels import lra

    run = lra.run_listops(n_train=300, n_test=100, train_steps=5, hwa_steps=2, seeds=2)
    for v in (run.fp, run.hwa_fp, *run.attention_only, *run.full, *run.hwa_full):
        assert 0.0 <= v <= 1.0
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
    from analogkernels import lra
    from analogkernels.analog import CrossbarConfig

    cfg = ListOpsConfig(max_depth=3, max_args=4, min_length=4, max_length=16)
    X, y = generate(40, cfg, seed=1, pad_to=16)
    model = lra._freeze(lra.Performer(max_len=16, seed=0)).eval()
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
    from analogkernels import lra

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
        "from analogkernels import attention, kernel_approximation, listops, cli\n"
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
