"""The attention experiment: a small Performer on ListOps, FP vs simulated chip,
before and after hardware-aware fine-tuning (needs the ``[torch]`` extra).

Model (the 2-layer ListOps Performer of Büchel et al., Nat. Mach. Intell. 2024,
scaled down; ListOps with the Long Range Arena rules, Tay et al., ICLR 2021):
token embedding 64 plus fixed sinusoidal positions, 2 pre-LN layers with 2 heads
(d = 32), FAVOR+ positive features with m = 64 orthogonal projections
(redrawn every 1000 training calls, frozen for evaluation), FFN 128 with GELU,
mean pooling over non-pad tokens, classifier 64 → 128 → 10.

Protocol: train FP (AdamW, warm-up, gradient clipping); evaluate FP, then with
the FAVOR projection on the simulated HERMES chip ("attention-only") and with
every linear layer and the projection on it ("full"), each over several
programming seeds (mean ± std; per seed the model is programmed once and the
test set is then read batch by batch, every batch a fresh read with new read
noise, so the spread over seeds includes programming and read noise);
fine-tune hardware-aware (:class:`HWALinear`:
weight noise 0.12·max|W|, output noise 0.1, 8-bit inputs with learned ranges,
2σ clipping; LR / 10) and evaluate again.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .analog import CrossbarConfig
from .attention import attention_error, favor_attention, softmax_attention
from .kernel_approximation import FavorPlusFeatures
from .listops import VOCAB, ListOpsConfig, generate
from .torch import FavorAttention, HWALinear, convert_to_analog

__all__ = ["ListOpsRun", "Performer", "attention_error_study", "run_listops"]

logger = logging.getLogger(__name__)


class Block(nn.Module):
    def __init__(self, dim: int, heads: int, ffn: int, nb_features: int, seed: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim)
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)
        self.attn = FavorAttention(dim // heads, nb_features, redraw_interval=1000, seed=seed)
        self.norm2 = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, ffn)
        self.fc2 = nn.Linear(ffn, dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, L, dim = x.shape
        h = self.norm1(x)

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.view(b, L, self.heads, dim // self.heads).transpose(1, 2)

        q, k, v = split(self.q(h)), split(self.k(h)), split(self.v(h))
        a = self.attn(q, k, v, key_padding_mask=mask[:, None, :].expand(b, self.heads, L))
        x = x + self.out(a.transpose(1, 2).reshape(b, L, dim))
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))


class Performer(nn.Module):
    """The small ListOps Performer (about 80k parameters)."""

    def __init__(
        self,
        *,
        vocab: int = len(VOCAB),
        dim: int = 64,
        heads: int = 2,
        layers: int = 2,
        ffn: int = 128,
        nb_features: int = 64,
        max_len: int = 64,
        classes: int = 10,
        seed: int = 0,
    ) -> None:
        super().__init__()
        # Initial weights from `seed`, without touching the global RNG.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self._build(vocab, dim, heads, layers, ffn, nb_features, max_len, classes, seed)

    def _build(
        self,
        vocab: int,
        dim: int,
        heads: int,
        layers: int,
        ffn: int,
        nb_features: int,
        max_len: int,
        classes: int,
        seed: int,
    ) -> None:
        self.embed = nn.Embedding(vocab, dim, padding_idx=0)
        pos = torch.arange(max_len)[:, None] / torch.pow(10000, torch.arange(0, dim, 2) / dim)
        pe = torch.zeros(max_len, dim)
        pe[:, 0::2], pe[:, 1::2] = torch.sin(pos), torch.cos(pos)
        self.register_buffer("positions", pe)
        self.blocks = nn.ModuleList(
            Block(dim, heads, ffn, nb_features, seed + i) for i in range(layers)
        )
        self.norm = nn.LayerNorm(dim)
        self.head1 = nn.Linear(dim, 128)
        self.head2 = nn.Linear(128, classes)
        self.dim = dim

    def forward(self, tokens: torch.Tensor, return_qkv: bool = False) -> Any:
        mask = tokens != 0
        x = self.embed(tokens) * math.sqrt(self.dim) + self.positions[: tokens.shape[1]]
        for block in self.blocks:
            x = block(x, mask)
        x = self.norm(x)
        m = mask[..., None].to(x.dtype)
        pooled = (x * m).sum(1) / m.sum(1).clamp_min(1.0)
        return self.head2(F.gelu(self.head1(pooled)))


def to_hwa(model: nn.Module) -> nn.Module:
    """A copy whose ``nn.Linear`` layers are :class:`HWALinear` (same weights)."""
    model = copy.deepcopy(model)

    def convert(module: nn.Module) -> None:
        for name, child in list(module.named_children()):
            if type(child) is nn.Linear:
                hwa = HWALinear(child.in_features, child.out_features, bias=child.bias is not None)
                hwa.load_state_dict(child.state_dict(), strict=False)
                setattr(module, name, hwa)
            else:
                convert(child)

    convert(model)
    return model


def train(
    model: nn.Module,
    X: np.ndarray,
    y: np.ndarray,
    *,
    steps: int,
    lr: float,
    batch: int = 64,
    warmup: int = 300,
    seed: int = 0,
    log_every: int = 100,
) -> list[float]:
    """AdamW with linear warm-up, gradient clipping 1.0; returns the loss curve.

    Every ``log_every`` steps (and at the last) logs the step, the mean loss
    since the previous line and the elapsed time at INFO on the
    ``analogkernels.lra`` logger (the CLI shows it; ``-q`` hides it).
    """
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / max(1, warmup)))
    model.train()
    losses = []
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    t0 = time.perf_counter()
    for step in range(steps):
        idx = torch.from_numpy(rng.integers(0, len(X), batch))
        loss = F.cross_entropy(model(Xt[idx]), yt[idx])
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        for mod in model.modules():
            if isinstance(mod, HWALinear):
                mod.clip_weights_()
        losses.append(float(loss.detach()))
        if (step + 1) % max(1, log_every) == 0 or step + 1 == steps:
            recent = losses[-(step % max(1, log_every) + 1) :]
            logger.info(
                "step %d/%d  loss %.4f  (%.0f s)",
                step + 1,
                steps,
                float(np.mean(recent)),
                time.perf_counter() - t0,
            )
    return losses


@torch.no_grad()
def accuracy(model: nn.Module, X: np.ndarray, y: np.ndarray, batch: int = 500) -> float:
    model.eval()
    correct = 0
    for i in range(0, len(X), batch):
        pred = model(torch.from_numpy(X[i : i + batch])).argmax(-1).numpy()
        correct += int((pred == y[i : i + batch]).sum())
    return correct / len(X)


def _freeze(model: nn.Module) -> nn.Module:
    for mod in model.modules():
        if isinstance(mod, FavorAttention):
            mod.freeze()
    return model


def analog_accuracies(
    model: nn.Module,
    X: np.ndarray,
    y: np.ndarray,
    config: CrossbarConfig,
    seeds: int,
    *,
    full: bool,
    t_inference: float = 0.0,
) -> list[float]:
    """Accuracy with the projection (``full=False``) or every linear layer and
    the projection (``full=True``) on the chip, one programming per seed.

    Seed ``s`` programs the chips with seeds ``1000·(s + 1)``, ``+ 1``, … (one per
    layer, :func:`convert_to_analog`); the test set is then read once, batch by
    batch, each batch a fresh read of the same programmed chips. Reproducible:
    the same model, data and ``seeds`` give the same accuracies.
    """
    out = []
    for s in range(seeds):
        analog = convert_to_analog(
            model, config, seed=1000 * (s + 1), linear=full, attention=True, t_inference=t_inference
        )
        out.append(accuracy(analog, X, y))
        logger.info(
            "%s on the chip, seed %d/%d: accuracy %.2f %%",
            "full model" if full else "projection",
            s + 1,
            seeds,
            100 * out[-1],
        )
    return out


@dataclass
class ListOpsRun:
    """Results of :func:`run_listops` (accuracies in [0, 1])."""

    fp: float
    attention_only: list[float]
    full: list[float]
    hwa_fp: float
    hwa_attention_only: list[float]
    hwa_full: list[float]
    train_seconds: float
    settings: dict[str, Any]
    model: Any = None

    def table(self) -> str:
        def fmt(v: Any) -> str:
            if isinstance(v, list):
                return f"{100 * np.mean(v):.2f} ± {100 * np.std(v):.2f}"
            return f"{100 * v:.2f}"

        s = self.settings
        return "\n".join(
            [
                f"# ListOps (depth {s['max_depth']}, ≤ {s['max_args']} arguments, length "
                f"{s['min_length']}–{s['max_length']}): FP vs simulated HERMES chip",
                "",
                f"Test accuracy (%) on {s['n_test']} trees; chip rows: mean ± std over "
                f"{s['seeds']} programming seeds (HERMES preset, "
                f"t_inference {s['t_inference']} s). "
                f"Majority class: {100 * s['majority']:.2f} %.",
                "",
                "| model | FP | projection on chip | full model on chip |",
                "|---|---|---|---|",
                f"| trained FP | {fmt(self.fp)} | {fmt(self.attention_only)} | {fmt(self.full)} |",
                f"| after HW-aware fine-tuning | {fmt(self.hwa_fp)} | "
                f"{fmt(self.hwa_attention_only)} | {fmt(self.hwa_full)} |",
                "",
                f"{s['train_steps']} FP steps + {s['hwa_steps']} HW-aware steps, "
                f"batch {s['batch']}, "
                f"{s['n_train']} training trees; training took {self.train_seconds:.0f} s.",
                "",
            ]
        )


def run_listops(
    *,
    quick: bool = False,
    seeds: int = 10,
    t_inference: float = 0.0,
    config: CrossbarConfig | None = None,
    listops: ListOpsConfig | None = None,
    n_train: int | None = None,
    n_test: int | None = None,
    train_steps: int | None = None,
    hwa_steps: int | None = None,
    seed: int = 0,
    progress: Any = None,
) -> ListOpsRun:
    """Train, evaluate on the chip, fine-tune hardware-aware, evaluate again."""
    cfg = listops or ListOpsConfig(max_depth=4, max_args=5, min_length=8, max_length=64)
    n_train = n_train or (8000 if quick else 20000)
    n_test = n_test or (1000 if quick else 2000)
    train_steps = train_steps or (1500 if quick else 4000)
    hwa_steps = hwa_steps or (300 if quick else 1000)
    chip = config or CrossbarConfig.hermes()
    X, y = generate(n_train + n_test, cfg, seed=seed, pad_to=cfg.max_length)
    Xtr, ytr, Xte, yte = X[:n_train], y[:n_train], X[n_train:], y[n_train:]
    model = Performer(max_len=cfg.max_length, seed=seed)
    say = progress or (lambda *_: None)
    t0 = time.perf_counter()
    say(f"training FP ({train_steps} steps)")
    train(model, Xtr, ytr, steps=train_steps, lr=1e-3, seed=seed)
    _freeze(model)
    say("evaluating FP and on the chip")
    fp = accuracy(model, Xte, yte)
    att = analog_accuracies(model, Xte, yte, chip, seeds, full=False, t_inference=t_inference)
    full = analog_accuracies(model, Xte, yte, chip, seeds, full=True, t_inference=t_inference)
    say(f"hardware-aware fine-tuning ({hwa_steps} steps)")
    hwa = _freeze(to_hwa(model))
    train(hwa, Xtr, ytr, steps=hwa_steps, lr=1e-4, warmup=0, seed=seed + 1)
    train_seconds = time.perf_counter() - t0
    say("evaluating the fine-tuned model")
    hwa_fp = accuracy(hwa, Xte, yte)
    hwa_att = analog_accuracies(hwa, Xte, yte, chip, seeds, full=False, t_inference=t_inference)
    hwa_full = analog_accuracies(hwa, Xte, yte, chip, seeds, full=True, t_inference=t_inference)
    settings = {
        **{k: getattr(cfg, k) for k in ("max_depth", "max_args", "min_length", "max_length")},
        "n_train": n_train,
        "n_test": n_test,
        "train_steps": train_steps,
        "hwa_steps": hwa_steps,
        "batch": 64,
        "seeds": seeds,
        "t_inference": t_inference,
        "majority": float(np.bincount(yte, minlength=10).max() / len(yte)),
    }
    return ListOpsRun(fp, att, full, hwa_fp, hwa_att, hwa_full, train_seconds, settings, model)


@torch.no_grad()
def capture_qkv(model: Performer, tokens: np.ndarray) -> list[tuple[np.ndarray, ...]]:
    """Queries, keys and values (batch, heads, L, d) entering each layer's attention."""
    captured: list[tuple[np.ndarray, ...]] = []
    hooks = []
    for block in model.blocks:

        def hook(mod, args, kwargs, out=None):
            q, k, v = args[:3]
            captured.append(tuple(t.detach().numpy().astype(np.float64) for t in (q, k, v)))

        hooks.append(block.attn.register_forward_pre_hook(hook, with_kwargs=True))
    model.eval()(torch.from_numpy(tokens))
    for h in hooks:
        h.remove()
    return captured


def attention_error_study(
    qkv_sets: dict[str, list[tuple[np.ndarray, ...]]],
    *,
    d: int | None = None,
    ks: range = range(1, 8),
    seeds: int = 10,
    config: CrossbarConfig | None = None,
) -> list[dict[str, Any]]:
    """Relative error of FAVOR+ attention against softmax attention for
    ``s = k·d − 1`` projections (the paper's attention protocol), FP and chip,
    mean over seeds; one record per (source, k, backend).

    Seed ``i`` draws the projection with ``random_state=i`` and, on the chip,
    programs it once with ``backend_seed=i``; the (Q, K, V) sets are then read
    in order, each a fresh read of that chip (new read noise).
    """
    chip = config or CrossbarConfig.hermes()
    records = []
    for name, sets in qkv_sets.items():
        dim = d or sets[0][0].shape[-1]
        exact = [softmax_attention(q, k, v) for q, k, v in sets]
        for k in ks:
            s = k * dim - 1
            logger.info("attention error: %s, k = %d (s = %d), %d seeds", name, k, s, seeds)
            for backend in ("fp", "analog"):
                errs = []
                for seed in range(seeds):
                    f = FavorPlusFeatures(
                        n_components=s,
                        sampler="sorf",
                        random_state=seed,
                        backend=chip if backend == "analog" else None,
                        backend_seed=seed,
                    ).fit(np.zeros((2, dim)))
                    errs.append(
                        np.mean(
                            [
                                attention_error(e, favor_attention(q, kk, v, f))
                                for (q, kk, v), e in zip(sets, exact, strict=True)
                            ]
                        )
                    )
                records.append(
                    {
                        "source": name,
                        "k": k,
                        "s": s,
                        "backend": backend,
                        "error_mean": float(np.mean(errs)),
                        "error_std": float(np.std(errs)),
                    }
                )
    return records
