"""The attention experiment: a small Performer on ListOps, FP vs simulated chip.

Before and after hardware-aware fine-tuning (needs the ``[torch]`` extra).

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

Full length (``run_listops(full=True)``, ``analogkernels attention listops
--full``): the LRA ListOps data (depth 10, ≤ 10 arguments, 500–2000 tokens,
96,000 / 2,000 / 2,000 trees, :func:`~analogkernels.paper.listops.load_or_generate`)
and the paper's model and recipe (the ``fp`` ListOps config of GitHub
IBM/kernel-approximation-using-analog-in-memory-computing, ``imka-lra``):
:meth:`Performer.lra_listops` — one post-LN layer applied twice (tied weights),
2 heads of d = 32, embed 64, FFN 128, m = 128 projections redrawn every 1500
training calls, dropout 0.1, an embedding LayerNorm, mean pooling, classifier
64 → 128 → 10 without output bias — trained with :data:`PAPER` (batch 256, AdamW
(0.9, 0.98), ε 1e-6, weight decay 0.1, peak LR 1e-3, inverse-square-root
schedule with 1000 warm-up steps, gradient clip 0.5). Differences: the FAVOR
projection is this library's orthogonal one (d × d blocks with χ row norms),
not xformers' first d rows of an m × m orthogonal matrix; gradients flow
through it; the loss is the mean (not summed) cross entropy; padded keys are
masked out; training stops at a step budget and the last model is evaluated
(no best-of-validation checkpoint).

Devices: every function takes ``device`` (``"cpu"``, ``"cuda"``, ``"cuda:N"``);
the data are moved to it once (tokens as uint8), training batches are drawn
there from indices generated in blocks of 1000 steps, ``amp=True`` runs the
digital layers in bfloat16 autocast (the FAVOR feature maps stay float32). The
simulated chip runs on the host: one copy each way per analog layer and batch.

Reproducibility: on CPU a run is reproducible bit for bit from its seeds. On
CUDA the data, the batch order, the initial weights and every chip read are
still determined by the seeds, but training is not bit-reproducible: the
embedding's backward pass and other CUDA kernels accumulate with atomics in a
varying order, and cuBLAS may choose other algorithms (this module does not
switch on ``torch.use_deterministic_algorithms``, which would slow training);
the trained weights, and so every later accuracy, differ in the last bits from
run to run. A chip evaluation of a given model is reproducible on either
device up to the rounding of the digital layers' GPU kernels.
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

from ..analog import CrossbarConfig
from ..attention import attention_error, favor_attention, softmax_attention
from ..kernel_approximation import FavorPlusFeatures
from ..torch import (
    FavorAttention,
    HWALinear,
    _renamed_parameters,
    convert_to_analog,
    sync_analog,
)
from .attention_study import ATTENTION_KS, LISTOPS_SIZES, PAPER, QUICK, Recipe
from .listops import LRA, PAD, REDUCED, VOCAB, ListOpsConfig, generate, load_or_generate
from .protocol import BACKENDS, PAPER_SEEDS

__all__ = [
    "PAPER",
    "QUICK",
    "ListOpsRun",
    "Performer",
    "Recipe",
    "accuracy",
    "analog_accuracies",
    "attention_error_study",
    "parse_device",
    "resolve_device",
    "run_listops",
    "train",
]

logger = logging.getLogger(__name__)


class Block(nn.Module):
    def __init__(
        self,
        dim: int,
        heads: int,
        ffn: int,
        n_components: int,
        random_state: int,
        *,
        norm: str = "pre",
        dropout: float = 0.0,
        redraw_interval: int = 1000,
    ) -> None:
        super().__init__()
        self.heads = heads
        self.post_ln = norm == "post"
        self.norm1 = nn.LayerNorm(dim)
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)
        self.attn = FavorAttention(
            dim // heads, n_components, redraw_interval=redraw_interval, random_state=random_state
        )
        self.norm2 = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, ffn)
        self.fc2 = nn.Linear(ffn, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, L, dim = x.shape
        h = x if self.post_ln else self.norm1(x)

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.view(b, L, self.heads, dim // self.heads).transpose(1, 2)

        q, k, v = split(self.q(h)), split(self.k(h)), split(self.v(h))
        a = self.attn(q, k, v, key_padding_mask=mask[:, None, :].expand(b, self.heads, L))
        a = self.drop(self.out(a.transpose(1, 2).reshape(b, L, dim).to(h.dtype)))
        if self.post_ln:  # residual add, then LayerNorm (fairseq's post-LN layer)
            x = self.norm1(x + a)
            return self.norm2(x + self.drop(self.fc2(self.drop(F.gelu(self.fc1(x))))))
        x = x + a
        return x + self.drop(self.fc2(self.drop(F.gelu(self.fc1(self.norm2(x))))))


class Performer(nn.Module):
    """The ListOps Performer.

    The small reduced-ListOps model by default (about 80k parameters), the paper's
    full-length model with :meth:`lra_listops`.

    Parameters
    ----------
    vocab, dim, heads, layers, ffn, n_components, max_len, classes : int
        Vocabulary size, embedding width, heads (head dim ``dim // heads``),
        layers applied, FFN width, FAVOR projections m (``FavorAttention``'s
        ``n_components``), longest sequence (tokens), classes.
    random_state : int
        Initial weights (without touching the global RNG) and the FAVOR
        projections (layer i: ``FavorAttention(random_state=random_state + i)``);
        see :ref:`seed-vocabulary`.
    norm : {"pre", "post"}
        LayerNorm before each sub-layer (with a final LayerNorm) or after each
        residual add (the paper's fairseq layers).
    tie_layers : bool
        One layer's weights applied ``layers`` times (the paper's ListOps model).
    dropout : float
        Dropout after attention, inside and after the FFN, and on the embedding.
    embed_norm : bool
        LayerNorm on the embedding (fairseq's ``normalize_before`` encoder).
    head_bias : bool
        Bias of the classifier's output layer.
    redraw_interval : int
        FAVOR redraw every this many training calls.

    Warns
    -----
    FutureWarning
        For the deprecated names ``nb_features`` (use ``n_components``) and
        ``seed`` (``random_state``); with its new name too: :class:`TypeError`.
    """

    @_renamed_parameters(nb_features="n_components", seed="random_state")
    def __init__(
        self,
        *,
        vocab: int = len(VOCAB),
        dim: int = 64,
        heads: int = 2,
        layers: int = 2,
        ffn: int = 128,
        n_components: int = 64,
        max_len: int = 64,
        classes: int = 10,
        random_state: int = 0,
        norm: str = "pre",
        tie_layers: bool = False,
        dropout: float = 0.0,
        embed_norm: bool = False,
        head_bias: bool = True,
        redraw_interval: int = 1000,
    ) -> None:
        super().__init__()
        if norm not in ("pre", "post"):
            raise ValueError(f"norm must be 'pre' or 'post', got {norm!r}")
        if dim % heads:
            raise ValueError(f"dim ({dim}) must be a multiple of heads ({heads})")
        self.arch = {
            "vocab": vocab, "dim": dim, "heads": heads, "layers": layers, "ffn": ffn,
            "n_components": n_components, "max_len": max_len, "classes": classes,
            "random_state": random_state,
            "norm": norm, "tie_layers": tie_layers, "dropout": dropout,
            "embed_norm": embed_norm, "head_bias": head_bias, "redraw_interval": redraw_interval,
        }  # fmt: skip
        # Initial weights from `random_state`, without touching the global RNG.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(random_state)
            self._build(**self.arch)

    @classmethod
    @_renamed_parameters(seed="random_state")
    def lra_listops(cls, *, random_state: int = 0, max_len: int = 2000) -> Performer:
        """The paper's full-length ListOps model (module documentation).

        Parameters
        ----------
        random_state : int
            As in :class:`Performer` (deprecated name: ``seed``, with a
            :class:`FutureWarning`).
        max_len : int
            Longest sequence (tokens).

        Returns
        -------
        Performer
            The model, in training mode.
        """
        return cls(
            dim=64, heads=2, layers=2, ffn=128, n_components=128, max_len=max_len,
            random_state=random_state,
            norm="post", tie_layers=True, dropout=0.1, embed_norm=True, head_bias=False,
            redraw_interval=1500,
        )  # fmt: skip

    def _build(
        self, *, vocab, dim, heads, layers, ffn, n_components, max_len, classes, random_state,
        norm, tie_layers, dropout, embed_norm, head_bias, redraw_interval,
    ) -> None:  # fmt: skip
        self.embed = nn.Embedding(vocab, dim, padding_idx=PAD)
        pos = torch.arange(max_len)[:, None] / torch.pow(10000, torch.arange(0, dim, 2) / dim)
        pe = torch.zeros(max_len, dim)
        pe[:, 0::2], pe[:, 1::2] = torch.sin(pos), torch.cos(pos)
        self.register_buffer("positions", pe)
        n_blocks = 1 if tie_layers else layers
        self.blocks = nn.ModuleList(
            Block(
                dim,
                heads,
                ffn,
                n_components,
                random_state + i,
                norm=norm,
                dropout=dropout,
                redraw_interval=redraw_interval,
            )
            for i in range(n_blocks)
        )
        self.depth = layers
        self.embed_norm = nn.LayerNorm(dim) if embed_norm else nn.Identity()
        self.embed_drop = nn.Dropout(dropout)
        # Pre-LN stacks end with a LayerNorm; post-LN layers already end with one.
        self.norm = nn.LayerNorm(dim) if norm == "pre" else nn.Identity()
        self.head1 = nn.Linear(dim, 128)
        self.head2 = nn.Linear(128, classes, bias=head_bias)
        self.dim = dim

    def forward(self, tokens: torch.Tensor, return_qkv: bool = False) -> Any:
        """Class logits of a batch of token sequences.

        Parameters
        ----------
        tokens : torch.Tensor, shape (batch, L)
            Token ids, :data:`~analogkernels.paper.listops.PAD` for padding (any
            integer dtype; converted to int64).
        return_qkv : bool
            Unused (the logits are returned either way); :func:`capture_qkv`
            records the queries, keys and values.

        Returns
        -------
        torch.Tensor, shape (batch, classes)
            The logits: mean pooling over the non-padding tokens, then the
            classifier.
        """
        if tokens.dtype != torch.long:
            tokens = tokens.long()  # uint8 storage; nn.Embedding takes int64
        mask = tokens != PAD
        x = self.embed(tokens) * math.sqrt(self.dim) + self.positions[: tokens.shape[1]]
        x = self.embed_drop(self.embed_norm(x))
        for i in range(self.depth):
            x = self.blocks[i % len(self.blocks)](x, mask)
        x = self.norm(x)
        m = mask[..., None].to(x.dtype)
        pooled = (x * m).sum(1) / m.sum(1).clamp_min(1.0)
        return self.head2(F.gelu(self.head1(pooled)))


def parse_device(device: Any) -> torch.device:
    """``device`` as a :class:`torch.device`, without asking whether it is there.

    The rule for a device name, shared by :func:`resolve_device` and the command
    line's ``--device``.

    Parameters
    ----------
    device : str or torch.device
        ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.

    Returns
    -------
    torch.device

    Raises
    ------
    ValueError
        A name torch does not know, or a device other than a CPU or a CUDA GPU.
    """
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"unknown device {device!r}: expected cpu, cuda or cuda:N") from None
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"unsupported device {device!r}: expected cpu, cuda or cuda:N")
    return dev


def resolve_device(device: Any = None) -> torch.device:
    """``device`` as a :class:`torch.device` (None: CUDA when available, else CPU).

    Raises
    ------
    ValueError
        An unknown device name (:func:`parse_device`), or CUDA asked for where it
        is not available (or an index beyond the visible GPUs).
    """
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = parse_device(device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r} asked for, but CUDA is not available here")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(
                f"device {device!r} asked for, but only {torch.cuda.device_count()} GPU(s) "
                "are visible"
            )
    return dev


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


def _model_device(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def train(
    model: nn.Module,
    X: Any,
    y: Any,
    *,
    steps: int,
    lr: float | None = None,
    batch: int | None = None,
    warmup: int | None = None,
    recipe: Recipe = QUICK,
    seed: int = 0,
    log_every: int = 100,
    device: Any = None,
    amp: bool = False,
    time_budget: float | None = None,
) -> list[float]:
    """Train ``model`` on ``(X, y)`` with AdamW; returns the loss of every step.

    Parameters
    ----------
    model : nn.Module
        Moved to ``device``.
    X : array_like of int, shape (n, L)
        Token ids (uint8 is kept as it is: the data go to the device once).
    y : array_like of int, shape (n,)
    steps : int
        Most optimiser steps.
    lr, batch, warmup : optional
        Override the recipe's peak learning rate, batch and warm-up steps.
    recipe : Recipe
    seed : int
        Seeds torch's generators (dropout, hardware-aware noise) and the
        numpy generator of the batch indices (``default_rng(seed)``, drawn in
        blocks of up to 1000 steps and copied to the device once per block).
    log_every : int
        Logs the step, the mean loss since the previous line and the elapsed
        time at INFO on the ``analogkernels.paper.lra`` logger every this many steps
        (and at the last); the losses are fetched from the device only then.
    device : str or torch.device, optional
        Default: where the model's parameters are.
    amp : bool
        bfloat16 autocast for the digital layers (the FAVOR features stay
        float32).
    time_budget : float, optional
        Seconds: stop after the first step that ends past it (wall clock,
        checked every step; on CUDA the host runs at most a few steps ahead of
        the GPU, and the clock is read after a device synchronisation at each
        log line).

    After every step, :class:`HWALinear` weights are clipped and changed
    :class:`~analogkernels.torch.AnalogLinear` layers are programmed again.
    """
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    dev = resolve_device(device) if device is not None else _model_device(model)
    model.to(dev)
    recipe = Recipe(
        **{
            **recipe.__dict__,
            **{
                k: v for k, v in (("lr", lr), ("batch", batch), ("warmup", warmup)) if v is not None
            },
        }
    )
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    Xt = torch.as_tensor(np.asarray(X)).to(dev)
    yt = torch.as_tensor(np.asarray(y)).to(dev)
    n = len(Xt)
    if n == 0:
        raise ValueError("no training data")
    opt = torch.optim.AdamW(
        model.parameters(),
        lr=recipe.lr,
        betas=recipe.betas,
        eps=recipe.eps,
        weight_decay=recipe.weight_decay,
    )
    sched = torch.optim.lr_scheduler.LambdaLR(opt, recipe.factor)
    hwa = [m for m in model.modules() if isinstance(m, HWALinear)]
    model.train()
    # Not torch.set_flush_denormal(True), although exp features underflow into
    # slow denormals on x86 CPUs: it sets the process's floating-point state (FTZ
    # and DAZ) for good, and every later computation in the process, numpy's and
    # this package's Rust kernels included, would silently flush subnormals.
    losses: list[float] = []
    pending: list[torch.Tensor] = []
    t0 = time.perf_counter()
    every = max(1, log_every)
    block = np.zeros((0, recipe.batch), dtype=np.int64)
    idx_block: torch.Tensor | None = None
    for step in range(steps):
        j = step % 1000
        if j == 0:
            block = rng.integers(0, n, (min(1000, steps - step), recipe.batch))
            idx_block = torch.from_numpy(block).to(dev)
        idx = idx_block[j]
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
            loss = F.cross_entropy(model(Xt[idx]).float(), yt[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), recipe.clip)
        opt.step()
        sched.step()
        for mod in hwa:
            mod.clip_weights_()
        sync_analog(model)
        pending.append(loss.detach())
        last = step + 1 == steps
        over = time_budget is not None and time.perf_counter() - t0 > time_budget
        if (step + 1) % every == 0 or last or over:
            recent = torch.stack(pending).float().cpu().tolist()  # one sync per log line
            losses.extend(recent)
            pending.clear()
            logger.info(
                "step %d/%d  loss %.4f  (%.0f s)",
                step + 1,
                steps,
                float(np.mean(recent)),
                time.perf_counter() - t0,
            )
            if time_budget is not None and time.perf_counter() - t0 > time_budget:
                if not last:
                    logger.info(
                        "time budget of %.0f s reached after %d steps", time_budget, step + 1
                    )
                break
    return losses


def _eval_batches(X: np.ndarray, batch: int, trim: bool):
    """Evaluation order and batches ``(order, [(start, stop, length)])``.

    With ``trim``, the trees are sorted by length (longest first, stable) and every
    batch is cut to its longest tree.
    """
    n, L = X.shape
    if not trim:
        return np.arange(n), [(i, min(i + batch, n), L) for i in range(0, n, batch)]
    lengths = (X != PAD).sum(axis=1)
    order = np.argsort(-lengths, kind="stable")
    spans = []
    for i in range(0, n, batch):
        longest = int(lengths[order[i]])
        spans.append((i, min(i + batch, n), max(longest, 1)))
    return order, spans


@torch.no_grad()
def accuracy(
    model: nn.Module,
    X: Any,
    y: Any,
    batch: int = 500,
    *,
    device: Any = None,
    amp: bool = False,
    trim: bool = False,
) -> float:
    """Fraction of ``X``'s trees whose class ``model`` predicts right.

    Parameters
    ----------
    model : nn.Module
        Put in evaluation mode and moved to ``device``.
    X, y : array_like
        Token ids (n, L) and labels (n,).
    batch : int
        Trees per forward pass (one chip read per analog layer and batch).
    device : optional
        Default: where the model's parameters are.
    amp : bool
        bfloat16 autocast for the digital layers.
    trim : bool
        Sort the trees by length and cut each batch's padding to its longest
        tree (the outputs at real tokens do not depend on trailing padding;
        at full length this halves the work). The batches, and so the chip's
        read sequence, are then fixed by the data: reproducible.
    """
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    dev = resolve_device(device) if device is not None else _model_device(model)
    model.to(dev).eval()
    X = np.asarray(X)
    y = np.asarray(y)
    if len(X) == 0:
        raise ValueError("no evaluation data")
    order, spans = _eval_batches(X, batch, trim)
    Xt = torch.as_tensor(X[order]).to(dev)
    yt = torch.as_tensor(y[order]).to(dev)
    correct = torch.zeros((), dtype=torch.long, device=dev)
    for i, j, L in spans:
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
            logits = model(Xt[i:j, :L])
        correct += (logits.argmax(-1) == yt[i:j]).sum()
    return int(correct) / len(X)


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
    device: Any = None,
    amp: bool = False,
    trim: bool = False,
    batch: int = 500,
    stats: dict[str, float] | None = None,
) -> list[float]:
    """Accuracy with part of the model on the chip, one programming per seed.

    The projection (``full=False``) or every linear layer and the projection
    (``full=True``) run on the chip.

    Seed ``s`` programs the chips with seeds ``1000·(s + 1)``, ``+ 1``, … (one per
    layer, :func:`convert_to_analog`); the test set is then read once, batch by
    batch, each batch a fresh read of the same programmed chips (one read per
    analog layer and batch). Reproducible: the same model, data, ``seeds``,
    ``batch`` and ``trim`` give the same accuracies (on CUDA, up to the
    rounding of the digital layers). ``stats``, if given, receives the
    seconds spent and the trees evaluated (``seconds``, ``samples``, summed
    over seeds, programming included).
    """
    out = []
    for s in range(seeds):
        t0 = time.perf_counter()
        analog = convert_to_analog(
            model, config, seed=1000 * (s + 1), linear=full, attention=True, t_inference=t_inference
        )
        out.append(accuracy(analog, X, y, batch, device=device, amp=amp, trim=trim))
        if stats is not None:
            stats["seconds"] = stats.get("seconds", 0.0) + time.perf_counter() - t0
            stats["samples"] = stats.get("samples", 0) + len(X)
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
    """Results of :func:`run_listops` (accuracies in [0, 1]).

    ``settings`` holds the data, model and recipe settings, steps done, wall times
    and evaluation throughput.
    """

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
        """The results as a markdown report.

        Returns
        -------
        str
            A title, the accuracy table in percent (chip entries as mean ± std over
            seeds) before and after hardware-aware fine-tuning, the training
            settings and, when recorded, the device and the evaluation throughput.
        """

        def fmt(v: Any) -> str:
            if isinstance(v, list):
                return f"{100 * np.mean(v):.2f} ± {100 * np.std(v):.2f}"
            return f"{100 * v:.2f}"

        s = self.settings
        lines = [
            f"# ListOps (depth {s['max_depth']}, ≤ {s['max_args']} arguments, length "
            f"{s['min_length']}–{s['max_length']}): FP vs simulated HERMES chip",
            "",
            f"Test accuracy (%) on {s['n_test']} trees"
            + (f" (chip rows: the first {s['n_chip_test']})" if s.get("n_chip_test") else "")
            + f"; chip rows: mean ± std over {s['seeds']} programming seeds (HERMES preset, "
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
        ]
        if "device" in s:
            lines.append(
                f"Device {s['device']}"
                + (f" ({s['device_name']})" if s.get("device_name") else "")
                + f", bfloat16 autocast {'on' if s.get('amp') else 'off'}."
            )
        tp = s.get("throughput")
        if tp:
            lines += [
                "",
                "| throughput (samples/s) | value |",
                "|---|---|",
                *(f"| {k} | {v:.1f} |" for k, v in tp.items()),
            ]
        return "\n".join(lines) + "\n"


def run_listops(
    *,
    quick: bool = False,
    full: bool = False,
    seeds: int = PAPER_SEEDS,
    t_inference: float = 0.0,
    config: CrossbarConfig | None = None,
    listops: ListOpsConfig | None = None,
    n_train: int | None = None,
    n_val: int | None = None,
    n_test: int | None = None,
    n_chip_test: int | None = None,
    train_steps: int | None = None,
    hwa_steps: int | None = None,
    seed: int = 0,
    progress: Any = None,
    device: Any = None,
    amp: bool | None = None,
    time_budget: float | None = None,
    hwa_time_budget: float | None = None,
    eval_batch: int | None = None,
    cache_dir: Any = None,
    workers: int = 1,
    batch: int | None = None,
) -> ListOpsRun:
    """Train, evaluate on the chip, fine-tune hardware-aware, evaluate again.

    Parameters
    ----------
    quick : bool
        The reduced setting's short run (``LISTOPS_SIZES["quick"]`` of
        :mod:`~analogkernels.paper.attention_study`: 8000 trees, 1500 + 300 steps).
    full : bool
        Full-length ListOps with the paper's model and recipe (module
        documentation; ``LISTOPS_SIZES["full"]``): 96,000 / 2,000 / 2,000 trees,
        50,000 FP steps (the paper's) and 5,000 hardware-aware steps unless
        capped by ``train_steps`` / ``hwa_steps`` or the time budgets.
    seeds : int
        Chip programming seeds per evaluation.
    t_inference : float
        Seconds after programming at which the chips are read.
    config : CrossbarConfig, optional
        The chip (default ``CrossbarConfig.hermes()``).
    listops : ListOpsConfig, optional
        Generator settings (default: reduced; LRA with ``full``).
    n_train, n_val, n_test : int, optional
        Tree counts (default: those of the setting's ``LISTOPS_SIZES``; the
        validation trees only with ``full``; their FP accuracy is reported).
    n_chip_test : int, optional
        Evaluate the chip on the first this many test trees only (default
        all).
    train_steps, hwa_steps : int, optional
        Step budgets of FP training and hardware-aware fine-tuning.
    seed : int
        Data, initial weights, batches, noise.
    progress : callable, optional
        Called with a message at each phase.
    device : optional
        ``"cpu"``, ``"cuda"``, ``"cuda:N"`` (default: CUDA when available).
    amp : bool, optional
        bfloat16 autocast for the digital layers (default: on CUDA with
        ``full``, else off).
    time_budget, hwa_time_budget : float, optional
        Wall-clock seconds after which FP training / fine-tuning stop.
    eval_batch : int, optional
        Trees per evaluation batch (default 500; 250 with ``full``).
    cache_dir : path, optional
        Cache of the full-length trees (:func:`~analogkernels.paper.listops.load_or_generate`).
    workers : int
        Processes generating the full-length trees.
    batch : int, optional
        Override the recipe's training batch (e.g. a CPU smoke run at full
        length).
    """
    dev = resolve_device(device)
    sizes = LISTOPS_SIZES["full" if full else "quick" if quick else "reduced"]
    n_train = n_train or sizes.n_train
    n_val = sizes.n_val if n_val is None else n_val
    n_test = n_test or sizes.n_test
    train_steps = train_steps or sizes.train_steps
    hwa_steps = hwa_steps or sizes.hwa_steps
    eval_batch = eval_batch or sizes.eval_batch
    if full:
        cfg = listops or LRA
        recipe = PAPER
        amp = (dev.type == "cuda") if amp is None else amp
    else:
        cfg = listops or REDUCED
        recipe = QUICK
        amp = bool(amp)
    if batch is not None:
        recipe = Recipe(**{**recipe.__dict__, "batch": batch})
    chip = config or CrossbarConfig.hermes()
    say = progress or (lambda *_: None)
    t_all = time.perf_counter()
    total = n_train + n_val + n_test
    if full:
        say(f"generating {total} ListOps trees (cached)")
        X, y = load_or_generate(total, cfg, seed=seed, cache_dir=cache_dir, workers=workers)
    else:
        X, y = generate(total, cfg, seed=seed, pad_to=cfg.max_length)
    gen_seconds = time.perf_counter() - t_all
    Xtr, ytr = X[:n_train], y[:n_train]
    Xva, yva = X[n_train : n_train + n_val], y[n_train : n_train + n_val]
    Xte, yte = X[n_train + n_val :], y[n_train + n_val :]
    Xch, ych = (Xte, yte) if not n_chip_test else (Xte[:n_chip_test], yte[:n_chip_test])
    if full:
        model = Performer.lra_listops(random_state=seed, max_len=cfg.max_length)
    else:
        model = Performer(max_len=cfg.max_length, random_state=seed)
    ev = {"device": dev, "amp": amp, "trim": full, "batch": eval_batch}
    # A warm-up step's worth of training would include CUDA's start-up in the
    # timings; the first step's cost is part of the reported wall time instead.
    t0 = time.perf_counter()
    say(f"training FP (up to {train_steps} steps) on {dev}")
    warm = min(recipe.warmup, max(1, train_steps // 4))
    losses = train(
        model, Xtr, ytr, steps=train_steps, recipe=recipe, warmup=warm, seed=seed, device=dev,
        amp=amp, time_budget=time_budget,
    )  # fmt: skip
    fp_train_seconds = time.perf_counter() - t0
    _freeze(model)
    say("evaluating FP and on the chip")
    t1 = time.perf_counter()
    fp = accuracy(model, Xte, yte, **ev)
    _sync(dev)
    fp_eval = (time.perf_counter() - t1, len(Xte))
    val = accuracy(model, Xva, yva, **ev) if n_val else None
    st_att: dict[str, float] = {}
    st_full: dict[str, float] = {}
    att = analog_accuracies(
        model, Xch, ych, chip, seeds, full=False, t_inference=t_inference, stats=st_att, **ev
    )
    fullc = analog_accuracies(
        model, Xch, ych, chip, seeds, full=True, t_inference=t_inference, stats=st_full, **ev
    )
    say(f"hardware-aware fine-tuning (up to {hwa_steps} steps)")
    hwa = _freeze(to_hwa(model))
    t2 = time.perf_counter()
    hwa_warm = 0 if not full else min(recipe.warmup, max(1, hwa_steps // 10))
    hwa_losses = train(
        hwa, Xtr, ytr, steps=hwa_steps, recipe=recipe, lr=recipe.lr / 10, warmup=hwa_warm,
        seed=seed + 1, device=dev, amp=amp, time_budget=hwa_time_budget,
    )  # fmt: skip
    hwa_seconds = time.perf_counter() - t2
    train_seconds = fp_train_seconds + hwa_seconds
    say("evaluating the fine-tuned model")
    hwa_fp = accuracy(hwa, Xte, yte, **ev)
    hwa_att = analog_accuracies(
        hwa, Xch, ych, chip, seeds, full=False, t_inference=t_inference, stats=st_att, **ev
    )
    hwa_full = analog_accuracies(
        hwa, Xch, ych, chip, seeds, full=True, t_inference=t_inference, stats=st_full, **ev
    )
    settings = {
        **{k: getattr(cfg, k) for k in ("max_depth", "max_args", "min_length", "max_length")},
        "full": full,
        "n_train": n_train,
        "n_val": n_val,
        "n_test": n_test,
        "n_chip_test": len(Xch) if n_chip_test else None,
        "train_steps": len(losses),
        "hwa_steps": len(hwa_losses),
        "max_steps": train_steps,
        "max_hwa_steps": hwa_steps,
        "batch": recipe.batch,
        "recipe": {
            **recipe.__dict__,
            "warmup": warm,
            "hwa_lr": recipe.lr / 10,
            "hwa_warmup": hwa_warm,
        },
        "arch": model.arch,
        "seeds": seeds,
        "t_inference": t_inference,
        "majority": float(np.bincount(yte, minlength=10).max() / len(yte)),
        "val_accuracy": val,
        "device": str(dev),
        "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else None,
        "amp": amp,
        "final_loss": float(np.mean(losses[-50:])) if losses else None,
        "seconds": {
            "generate": gen_seconds,
            "fp_train": fp_train_seconds,
            "hwa_train": hwa_seconds,
            "total": time.perf_counter() - t_all,
        },
        "throughput": {
            "FP training (trees/s)": len(losses) * recipe.batch / max(fp_train_seconds, 1e-9),
            "HW-aware training (trees/s)": len(hwa_losses) * recipe.batch / max(hwa_seconds, 1e-9),
            "FP evaluation": fp_eval[1] / max(fp_eval[0], 1e-9),
            "evaluation, projection on chip": st_att["samples"] / max(st_att["seconds"], 1e-9),
            "evaluation, full model on chip": st_full["samples"] / max(st_full["seconds"], 1e-9),
        },
    }
    return ListOpsRun(fp, att, fullc, hwa_fp, hwa_att, hwa_full, train_seconds, settings, model)


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


@torch.no_grad()
def capture_qkv(model: Performer, tokens: np.ndarray) -> list[tuple[np.ndarray, ...]]:
    """Queries, keys and values (batch, heads, L, d) entering each layer's attention."""
    captured: list[tuple[np.ndarray, ...]] = []
    hooks = []
    for block in model.blocks:

        def hook(mod, args, kwargs, out=None):
            q, k, v = args[:3]
            captured.append(
                tuple(t.detach().float().cpu().numpy().astype(np.float64) for t in (q, k, v))
            )

        hooks.append(block.attn.register_forward_pre_hook(hook, with_kwargs=True))
    dev = _model_device(model)
    model.eval()(torch.as_tensor(np.asarray(tokens)).to(dev))
    for h in hooks:
        h.remove()
    return captured


def attention_error_study(
    qkv_sets: dict[str, list[tuple[np.ndarray, ...]]],
    *,
    d: int | None = None,
    ks: range = ATTENTION_KS,
    seeds: int = PAPER_SEEDS,
    config: CrossbarConfig | None = None,
) -> list[dict[str, Any]]:
    """Relative error of FAVOR+ attention against softmax attention.

    For ``s = k·d − 1`` projections (the paper's attention protocol), FP and chip,
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
            for backend in BACKENDS:
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
