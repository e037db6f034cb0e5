"""PyTorch layers for kernelised attention on simulated analog hardware.

Optional: ``pip install 'analogkernels[torch]'``; importing :mod:`analogkernels`
never imports torch.

- :class:`FavorAttention` — Performer (FAVOR+) attention on tensors
  ``(batch, heads, seq, dim_head)``: positive (the paper's SMReg map,
  ``exp(±w·x′ − ‖x′‖²/2)``), trigonometric or ReLU features of ``x′ = x·d^(-1/4)``,
  orthogonal (``sampler="orf"``) or i.i.d. Gaussian (``"rff"``) projections,
  optional causal mode, key-padding mask
  (True = attend), redraws every ``redraw_interval`` training calls,
  :meth:`~FavorAttention.freeze` to stop them. Gradients flow to ``q`` and
  ``k`` through the projection (the Performer reference code stops them there;
  keeping them gives the exact gradient of the estimator).
  :meth:`~FavorAttention.use_analog` runs the projection on the simulated
  crossbar in evaluation, reading the chip rows that the numpy path
  (:func:`analogkernels.attention.favor_attention`) reads, hence the same chip
  outputs bit for bit. The features and the attention itself are computed again
  in torch (autograd and devices need torch operations), so they agree with the
  numpy path up to the rounding of the last bits.
- :class:`HWALinear` — hardware-aware training (Büchel et al., Nat. Mach.
  Intell. 2024; Rasch et al., Nat. Commun. 14, 5282, 2023): additive Gaussian
  weight noise ``0.12·max|W|`` per sample, weights clipped at 2σ, output noise
  0.1 (in units of input range × max|W|), 8-bit inputs with a learned input
  range (straight-through rounding).
- :func:`convert_to_analog` — maps every linear layer (and every FAVOR
  projection) of a model onto simulated crossbars (:class:`AnalogLinear`:
  analog forward, straight-through digital backward, so a model can also be
  fine-tuned with the simulated chip in the loop; :func:`sync_analog`
  reprograms changed layers) and reports the layers it left digital.

Devices: the layers run on CPU or CUDA tensors. The chip is simulated on the
host: an analog layer copies its input rows to the host once per forward pass
(the FAVOR projection: the queries and keys of every head in one read) and its
result back once.

Reads on the chip. Like a physical chip, every analog forward pass draws fresh
read noise (:class:`AnalogLinear` and the analog FAVOR projection each own an
:class:`~analogkernels.analog.AnalogMatrix` whose read position advances with
every row read): the same input twice gives two different outputs. A model is
reproducible as a sequence — the same conversion seeds followed by the same
sequence of forward passes give the same bits, for any thread count and however
the rows are split into batches. Each chip is programmed with its own seed
(:func:`convert_to_analog` numbers them ``seed``, ``seed + 1``, … in module
order), so no two layers share programming or read noise.

Names. The parameters mean what they mean in the numpy/scikit-learn API:
``n_components``, ``kind``, ``sampler`` and ``random_state`` of
:class:`FavorAttention` are those of
:class:`~analogkernels.kernel_approximation.FavorPlusFeatures`; a chip's seed is
``seed`` (:meth:`FavorAttention.use_analog`, :class:`AnalogLinear`,
:func:`convert_to_analog`). See :ref:`seed-vocabulary`. The former names
``nb_features``, ``feature_map``, ``orthogonal`` and ``seed`` (of the
projection) still work, with a :class:`FutureWarning`.
"""

from __future__ import annotations

import copy
import functools
import inspect
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ._validation import check_int
from .analog import CrossbarConfig
from .exceptions import ConfigError, DTypeError, ShapeError
from .kernel_approximation import (
    _FAVOR_KIND,
    _FAVOR_KINDS,
    _FAVOR_N_COMPONENTS,
    _FAVOR_SAMPLER,
    SAMPLERS,
    FavorPlusFeatures,
    _program_chip,
)

__all__ = ["AnalogLinear", "FavorAttention", "HWALinear", "convert_to_analog", "sync_analog"]

_F = TypeVar("_F", bound=Callable[..., Any])

#: FavorAttention's feature maps: FavorPlusFeatures' and the digital-only ReLU map.
_KINDS = (*_FAVOR_KINDS, "relu")
#: FavorAttention's samplers: those of FavorPlusFeatures with a dense ``W`` (no SORF).
_SAMPLERS = tuple(s for s in SAMPLERS if s != "sorf")


def _one_of(names: tuple[str, ...]) -> str:
    """``'a', 'b' or 'c'``."""
    return ", ".join(map(repr, names[:-1])) + f" or {names[-1]!r}"


def _renamed_parameters(**renamed: str | tuple[str, Callable[[Any], Any]]) -> Callable[[_F], _F]:
    """Accept deprecated keyword names of a function, with a :class:`FutureWarning`.

    Parameters
    ----------
    **renamed : str or (str, callable)
        ``old=new``: keyword ``old`` is passed on as ``new``;
        ``old=(new, convert)``: as ``new=convert(value)``.

    Returns
    -------
    callable
        A decorator. The decorated function keeps its signature (the new
        names); passing an old name and its new name together raises
        :class:`TypeError`.
    """

    def decorate(func: _F) -> _F:
        signature = inspect.signature(func)
        name = func.__qualname__.removesuffix(".__init__")

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            for old, spec in renamed.items():
                if old not in kwargs:
                    continue
                new, convert = (spec, None) if isinstance(spec, str) else spec
                value = kwargs.pop(old)
                if new in kwargs or new in signature.bind_partial(*args).arguments:
                    raise TypeError(
                        f"{name}() got both {old!r} and {new!r}; "
                        f"pass only {new!r} ({old!r} is its deprecated name)"
                    )
                hint = f"{new}=..." if convert is None else f"{new}={convert(value)!r}"
                warnings.warn(
                    f"{name}(): {old!r} is deprecated and will be removed in a future "
                    f"release; use {hint} instead",
                    FutureWarning,
                    stacklevel=2,
                )
                kwargs[new] = value if convert is None else convert(value)
            return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


def _sampler_of(orthogonal: bool) -> str:
    return "orf" if orthogonal else "rff"


def _deprecated_attribute(
    old: str,
    new: str,
    get: Callable[[Any], Any] | None = None,
    set_: Callable[[Any], Any] | None = None,
) -> property:
    """A property ``old`` that reads and writes ``new``, with a :class:`FutureWarning`."""

    def warn(obj: Any) -> None:
        warnings.warn(
            f"{type(obj).__name__}.{old} is deprecated and will be removed in a future "
            f"release; use .{new}",
            FutureWarning,
            stacklevel=3,
        )

    def fget(obj: Any) -> Any:
        warn(obj)
        value = getattr(obj, new)
        return value if get is None else get(value)

    def fset(obj: Any, value: Any) -> None:
        warn(obj)
        setattr(obj, new, value if set_ is None else set_(value))

    return property(fget, fset, doc=f"Deprecated: use ``{new}``.")


class FavorAttention(nn.Module):
    """FAVOR+ attention with a fixed random projection (a buffer, not trained).

    The parameters shared with
    :class:`~analogkernels.kernel_approximation.FavorPlusFeatures` have its
    names and meanings: the projection is exactly that estimator's ``W``.

    Parameters
    ----------
    dim_heads : int
        Head dimension d.
    n_components : int, default 128
        Number of random projections s (``kind="positive"`` and ``"trig"`` give
        2s features, ``"relu"`` s), as ``FavorPlusFeatures(n_components=...)``.
    causal : bool, default False
        Position i attends to positions ≤ i (prefix sums).
    kind : {"positive", "trig", "relu"}, default "positive"
        The feature map: ``"positive"`` and ``"trig"`` as in
        ``FavorPlusFeatures(kind=...)``; ``"relu"`` (``relu(Wx′)/sqrt(s)``, the
        Performer paper's generalised-attention variant) only here, digital only.
    redraw_interval : int or None, default None
        Redraw the projection every this many forward calls in training mode
        (None: never). Evaluation never redraws.
    sampler : {"orf", "rff"}, default "orf"
        Orthogonal blocks with χ-distributed row norms (``"orf"``) or i.i.d.
        Gaussian rows (``"rff"``), as ``FavorPlusFeatures(sampler=...)``.
    random_state : int, default 0
        Draws the projection (see :ref:`seed-vocabulary`): the first projection
        is ``FavorPlusFeatures(random_state=random_state)``'s, redraw r uses
        ``random_state + r``. Not a chip seed: the chip's is
        ``use_analog(seed=...)``.

    Warns
    -----
    FutureWarning
        When a deprecated name is passed: ``nb_features`` (use
        ``n_components``), ``feature_map`` (``kind``), ``orthogonal``
        (``sampler="orf"`` for True, ``"rff"`` for False), ``seed``
        (``random_state``). Passing a deprecated name together with its new
        name raises :class:`TypeError`.
    """

    @_renamed_parameters(
        nb_features="n_components",
        feature_map="kind",
        orthogonal=("sampler", _sampler_of),
        seed="random_state",
    )
    def __init__(
        self,
        dim_heads: int,
        n_components: int = _FAVOR_N_COMPONENTS,
        *,
        causal: bool = False,
        kind: str = _FAVOR_KIND,
        redraw_interval: int | None = None,
        sampler: str = _FAVOR_SAMPLER,
        random_state: int = 0,
    ) -> None:
        super().__init__()
        if kind not in _KINDS:
            raise ConfigError(f"kind must be {_one_of(_KINDS)}, got {kind!r}")
        if sampler not in _SAMPLERS:
            raise ConfigError(f"sampler must be {_one_of(_SAMPLERS)}, got {sampler!r}")
        dim_heads = check_int(dim_heads, "dim_heads", low=1)
        if redraw_interval is not None and redraw_interval < 1:
            raise ConfigError(f"redraw_interval must be None or >= 1, got {redraw_interval}")
        self.dim_heads = dim_heads
        self.n_components = n_components
        self.causal = causal
        self.kind = kind
        self.redraw_interval = redraw_interval
        self.sampler = sampler
        self.random_state = random_state
        self._draws = 0
        self._calls = 0
        self._analog: FavorPlusFeatures | None = None
        # Set by the first draw: FavorPlusFeatures checks n_components there (a
        # ConfigError naming it) before any tensor of that size is made.
        self.register_buffer("projection", None)
        self.redraw(random_state)

    nb_features = _deprecated_attribute("nb_features", "n_components")
    feature_map = _deprecated_attribute("feature_map", "kind")
    orthogonal = _deprecated_attribute("orthogonal", "sampler", lambda s: s == "orf", _sampler_of)
    seed = _deprecated_attribute("seed", "random_state")

    def _numpy_features(self, seed: int, backend: CrossbarConfig | None = None, **kw: Any):
        kind = "trig" if self.kind == "trig" else "positive"
        return FavorPlusFeatures(
            n_components=self.n_components,
            kind=kind,
            sampler=self.sampler,
            random_state=seed,
            backend=backend,
            **kw,
        ).fit(np.zeros((2, self.dim_heads)))

    def redraw(self, seed: int | None = None) -> None:
        """Draw a new projection.

        Parameters
        ----------
        seed : int or None
            Its ``random_state`` (None: the next in the sequence
            ``random_state``, ``random_state + 1``, …).
        """
        seed = self.random_state + self._draws if seed is None else seed
        self._current_seed = seed
        w = torch.from_numpy(np.ascontiguousarray(self._numpy_features(seed).projection_matrix()))
        if self.projection is None:  # the first draw, in __init__
            self.projection = w
        else:  # in place: keeps the buffer's device and dtype
            self.projection.copy_(w)
        self._draws += 1
        self._analog = None

    def freeze(self) -> FavorAttention:
        """Never redraw again (deterministic outputs)."""
        self.redraw_interval = None
        return self

    def use_analog(
        self, config: CrossbarConfig | None, *, t_inference: float = 0.0, seed: int = 0
    ) -> FavorAttention:
        """Run the projection on the simulated crossbar in evaluation mode.

        ``config=None`` goes back to digital.

        Parameters
        ----------
        config : CrossbarConfig or None
            The hardware; the chip holds the current projection (programmed now).
        t_inference : float
            Seconds after programming at which the chip is read.
        seed : int
            The chip's seed, ``0 .. 2**64 - 1`` (programming, drift, read stream;
            see :ref:`seed-vocabulary`), not the projection's ``random_state``.
            Every evaluation forward pass is a fresh read (new read noise; queries
            then keys, consecutive rows of the chip's read stream); the chip is
            :attr:`analog_features` ``.analog_``.
        """
        if config is None:
            self._analog = None
        elif self.kind == "relu":
            raise ConfigError("the analog path supports kind='positive' and kind='trig'")
        else:
            self._analog = self._numpy_features(
                self._current_seed, backend=config, t_inference=t_inference, backend_seed=seed
            )
        return self

    @property
    def analog_features(self) -> FavorPlusFeatures | None:
        """The fitted feature map on the chip (None when digital).

        Its ``analog_.read_position`` counts the rows read so far.
        """
        return self._analog

    def _features(
        self, x: torch.Tensor, *, query: bool, u: torch.Tensor | None = None
    ) -> torch.Tensor:
        # The maps of FavorPlusFeatures and the stabiliser of
        # attention.favor_features (per-row shift for queries, one shift for the
        # keys), written again in torch: autograd and devices need torch
        # operations. tests/test_torch.py checks that the two agree.
        d = x.shape[-1]
        xs = x * d**-0.25
        if u is None:
            w = self.projection.to(dtype=x.dtype, device=x.device)
            u = xs @ w.T
        m = self.n_components
        if self.kind == "relu":
            return F.relu(u) / m**0.5
        half_sq = 0.5 * (xs * xs).sum(dim=-1, keepdim=True)
        if self.kind == "trig":
            return torch.cat([torch.cos(u), torch.sin(u)], dim=-1) * torch.exp(half_sq) / m**0.5
        logits = torch.cat([u - half_sq, -u - half_sq], dim=-1)
        # Stabiliser: constants that cancel in the normaliser (detached).
        if query:
            shift = logits.amax(dim=-1, keepdim=True)
        else:
            shift = logits.amax(dim=(-2, -1), keepdim=True)
        return torch.exp(logits - shift.detach()) / (2 * m) ** 0.5

    def forward(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        key_padding_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Attention output ``(batch, heads, seq, dim_v)``.

        On the chip (in evaluation mode after :meth:`use_analog`): a fresh read per
        call.
        """
        if q.shape[-1] != self.dim_heads or k.shape[-1] != self.dim_heads:
            raise ShapeError(
                f"expected head dimension {self.dim_heads}, "
                f"got q {tuple(q.shape)}, k {tuple(k.shape)}"
            )
        for name, t in (("q", q), ("k", k), ("v", v)):
            if t.is_complex():
                raise DTypeError(f"{name} has complex dtype {t.dtype}; attention takes real inputs")
        if key_padding_mask is not None and key_padding_mask.dtype != torch.bool:
            # A float mask would weight the keys (digital) or be rounded to
            # bool (analog): refuse it rather than guess.
            raise DTypeError(
                "key_padding_mask must be a torch.bool tensor (True = attend), got dtype "
                f"{key_padding_mask.dtype}; convert it explicitly, e.g. mask != 0"
            )
        # The feature maps run in float32 at least, also under autocast: exp of
        # bfloat16 logits would lose the features' precision (xformers' FAVOR
        # runs in float32 for the same reason).
        dtype = torch.promote_types(q.dtype, torch.float32)
        with torch.autocast(q.device.type, enabled=False):
            return self._attend(q.to(dtype), k.to(dtype), v.to(dtype), key_padding_mask)

    def _attend(self, q, k, v, key_padding_mask):
        uq = uk = None
        if self._analog is not None and not self.training:
            # One chip read for the queries and keys of every head and sample
            # (queries first, as the numpy path reads them), one copy to the
            # host and one back; the features are computed where q lives.
            d = self.dim_heads
            rows = torch.cat([q.detach().reshape(-1, d), k.detach().reshape(-1, d)]) * d**-0.25
            u = self._analog.analog_.matmul(rows.cpu().numpy())
            u = torch.from_numpy(u).to(device=q.device, dtype=q.dtype)
            uq = u[: q[..., 0].numel()].reshape(*q.shape[:-1], -1)
            uk = u[q[..., 0].numel() :].reshape(*k.shape[:-1], -1)
        if self.training and self.redraw_interval is not None and uq is None:
            self._calls += 1
            if self._calls % self.redraw_interval == 0:
                self.redraw()
        # attention.favor_attention's bidirectional and prefix-sum forms, in
        # torch for autograd (tests/test_torch.py checks that they agree).
        qf = self._features(q, query=True, u=uq)
        kf = self._features(k, query=False, u=uk)
        if key_padding_mask is not None:
            kf = kf * key_padding_mask[..., None].to(kf.dtype)
        if not self.causal:
            kv = kf.transpose(-2, -1) @ v
            num = qf @ kv
            den = qf @ kf.sum(dim=-2).unsqueeze(-1)
        else:
            kv = torch.cumsum(kf.unsqueeze(-1) * v.unsqueeze(-2), dim=-3)
            num = torch.einsum("...lm,...lmv->...lv", qf, kv)
            den = torch.einsum("...lm,...lm->...l", qf, torch.cumsum(kf, dim=-2)).unsqueeze(-1)
        return num / den.clamp_min(torch.finfo(den.dtype).tiny)


class HWALinear(nn.Linear):
    """``nn.Linear`` that trains hardware-aware.

    As the paper's LRA fine-tuning with IBM aihwkit's ``TorchInferenceRPUConfig``
    (Rasch et al. 2023).

    In training mode: weights clipped at ``clip_sigma`` standard deviations;
    inputs quantised to ``input_bits`` signed levels of a learned input range
    (straight-through rounding; the range starts at the 99.5th percentile of
    |x| of the first batch); additive Gaussian weight noise of std
    ``weight_noise·max|W|`` drawn per sample (its effect on the output,
    ``σ·‖x‖·ξ`` per output, is drawn directly); output noise of std
    ``out_noise·range·max|W|``. Evaluation is the plain digital layer (use
    :func:`convert_to_analog` for the chip). Noise comes from torch's generator
    (seed it with ``torch.manual_seed``).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        *,
        weight_noise: float = 0.12,
        out_noise: float = 0.1,
        clip_sigma: float = 2.0,
        input_bits: int = 8,
    ) -> None:
        super().__init__(in_features, out_features, bias=bias)
        self.weight_noise = weight_noise
        self.out_noise = out_noise
        self.clip_sigma = clip_sigma
        self.levels = 2 ** (input_bits - 1) - 1
        self.input_range = nn.Parameter(torch.ones(()))
        self.register_buffer("range_initialised", torch.zeros((), dtype=torch.bool))

    @torch.no_grad()
    def clip_weights_(self) -> None:
        """Clip the stored weights at ``clip_sigma·std(W)`` (call after each step)."""
        bound = self.clip_sigma * self.weight.std()
        self.weight.clamp_(-bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The layer's output, with hardware-aware noise in training mode.

        In training mode the weights are clipped, the inputs quantised to the
        learned input range, and weight and output noise are added (see the
        class documentation); the first training batch sets the input range. In
        evaluation mode this is the plain digital layer.

        Parameters
        ----------
        x : torch.Tensor, shape (..., in_features)
            The input.

        Returns
        -------
        torch.Tensor, shape (..., out_features)
            The output.
        """
        if not self.training:
            return F.linear(x, self.weight, self.bias)
        # A Python flag mirrors the buffer, so that CUDA is not synchronised on
        # every forward pass to read it.
        if not getattr(self, "_range_ready", False):
            self._range_ready = bool(self.range_initialised)
        if not self._range_ready:
            with torch.no_grad():
                q = torch.quantile(x.detach().abs().flatten().float()[:1_000_000], 0.995)
                self.input_range.fill_(max(float(q), 1e-6))
                self.range_initialised.fill_(True)
                self._range_ready = True
        bound = self.clip_sigma * self.weight.std().detach()
        w = self.weight.clamp(-bound, bound)
        ir = self.input_range.abs() + 1e-8
        xs = torch.clamp(x / ir, -1.0, 1.0)
        xq = xs + (torch.round(xs * self.levels) / self.levels - xs).detach()
        xin = xq * ir
        y = F.linear(xin, w)
        wmax = w.abs().max().detach()
        if self.weight_noise > 0:
            y = y + self.weight_noise * wmax * xin.norm(dim=-1, keepdim=True) * torch.randn_like(y)
        if self.out_noise > 0:
            y = y + self.out_noise * ir * wmax * torch.randn_like(y)
        return y if self.bias is None else y + self.bias


class AnalogLinear(nn.Module):
    """A linear layer whose forward pass runs on a simulated crossbar.

    The gradient is straight-through (analog forward, digital backward).

    The weights are programmed at construction (and by :meth:`program`) and
    drifted to ``t_inference``; the bias stays digital. Every :meth:`forward`
    is a fresh read: the rows of the input (flattened to ``(-1, in_features)``,
    one copy to the host and one back per call) take the next rows of the
    chip's read stream, so two forward passes on the same input differ by the
    read noise, while the same ``seed`` and the same sequence of forward passes
    reproduce the same bits. To repeat a read, set ``layer.analog.read_position``
    back.

    Gradients (chip in the loop): the output is the chip's, but the backward
    pass is that of the digital layer ``x·Wᵀ + b`` with the layer's float
    ``weight`` (a trainable copy of the mapped layer's weights) — the
    straight-through estimator used for hardware-in-the-loop training (e.g.
    Wright et al., Nature 601, 549–555, 2022). After an optimiser step the chip
    still holds the programmed weights; :meth:`sync` programs the new ones
    (with the next seed of the layer's sequence ``seed``, ``seed + 1``, …).

    Parameters
    ----------
    linear : nn.Linear
        The layer to map (its weights are copied).
    config : CrossbarConfig
        The hardware.
    seed : int
        The chip's seed, ``0 .. 2**64 - 1``: programming noise, drift and read
        stream (see :ref:`seed-vocabulary`).
    t_inference : float
        Seconds after programming at which the chip is read.
    """

    def __init__(
        self, linear: nn.Linear, config: CrossbarConfig, *, seed: int = 0, t_inference: float = 0.0
    ):
        super().__init__()
        if not isinstance(linear, nn.Linear):
            raise ConfigError(f"AnalogLinear maps an nn.Linear, got {type(linear).__name__}")
        self.config = config
        self.t_inference = t_inference
        self.seed = seed
        self.programmings = 0
        self.weight = nn.Parameter(linear.weight.detach().clone())
        self.bias = None if linear.bias is None else nn.Parameter(linear.bias.detach().clone())
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.program()

    @torch.no_grad()
    def program(self) -> None:
        """Program the chip with the current ``weight`` and drift it to ``t_inference``.

        The seed is ``seed +`` the number of earlier programmings.
        """
        w = self.weight.detach().cpu().double().numpy()
        seed = self.seed + self.programmings
        self.analog = _program_chip(w, self.config, seed, self.t_inference)
        self.programmings += 1
        self._programmed_version = self.weight._version

    def sync(self) -> bool:
        """Program the chip again if ``weight`` changed since the last programming.

        Call it after each optimiser step; returns True if it programmed.
        """
        if self.weight._version == self._programmed_version:
            return False
        self.program()
        return True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The layer's output read from the chip (a fresh read).

        The bias is added digitally. With gradients enabled, the backward pass is
        that of the digital layer (straight-through); the value is the chip's, bit
        for bit.

        Parameters
        ----------
        x : torch.Tensor, shape (..., in_features)
            The input; its rows take the next rows of the chip's read stream.

        Returns
        -------
        torch.Tensor, shape (..., out_features)
            The output, on the device of ``x``: float64 for float64 input, else
            float32.

        Raises
        ------
        ShapeError
            If the last dimension of ``x`` is not ``in_features``.
        """
        if x.shape[-1] != self.in_features:
            raise ShapeError(f"expected {self.in_features} input features, got {tuple(x.shape)}")
        flat = x.detach().reshape(-1, self.in_features)
        if flat.dtype not in (torch.float32, torch.float64):
            flat = flat.float()  # bfloat16/float16 (autocast) have no numpy dtype
        y = self.analog.matmul(flat.cpu().numpy())  # a fresh read: new noise
        out = torch.from_numpy(np.ascontiguousarray(y)).to(device=x.device)
        out = out.reshape(*x.shape[:-1], self.out_features)
        if self.bias is not None:
            out = out + self.bias.to(out.dtype)
        if torch.is_grad_enabled() and (x.requires_grad or self.weight.requires_grad):
            # Straight through: the chip's values, the digital layer's gradient.
            digital = F.linear(x.to(out.dtype), self.weight.to(out.dtype), self.bias)
            # digital − digital.detach() is exactly 0: the value stays the
            # chip's bit for bit, the gradient is the digital layer's.
            out = out.detach() + (digital - digital.detach())
        return out


#: Layer types with weight matrices that convert_to_analog cannot map and so
#: leaves digital (reported); embeddings and normalisation are digital by
#: design (as in Büchel et al. 2024) and only listed.
_UNMAPPED = (
    # The public convolutions; their lazy, QAT and fused (ConvBn…) variants
    # subclass them (the same classes as torch's private base _ConvNd).
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
    nn.Bilinear,
    nn.MultiheadAttention,
    nn.RNNBase,
)


def convert_to_analog(
    model: nn.Module,
    config: CrossbarConfig,
    *,
    seed: int = 0,
    t_inference: float = 0.0,
    linear: bool = True,
    attention: bool = True,
    strict: bool = False,
) -> nn.Module:
    """A copy of ``model`` in evaluation mode with layers on simulated crossbars.

    Its linear layers (``linear``) and FAVOR projections (``attention``) run on
    simulated crossbars.

    Each chip is programmed with its own chip seed (see :ref:`seed-vocabulary`):
    ``seed``, ``seed + 1``, … in the order of ``model.named_children`` (depth
    first; a :class:`FavorAttention`'s projection keeps its ``random_state``),
    so layers share neither
    programming nor read noise. Every forward pass of the copy reads its chips
    afresh (see the module documentation). ``model`` itself is not changed.

    Layers with parameters that stay digital are listed in the copy's
    ``digital_layers_`` (qualified name → class name). Those that hold weight
    matrices this function cannot map (convolutions, ``nn.Bilinear``,
    ``nn.MultiheadAttention``, recurrent layers) are also reported with a
    :class:`UserWarning` naming them — or, with ``strict=True``, refused with a
    :class:`~analogkernels.exceptions.ConfigError`. Embeddings and
    normalisation layers are digital by design and only listed.
    """
    model = copy.deepcopy(model).eval()
    counter = [seed]
    digital: dict[str, str] = {}
    unmapped: list[str] = []

    def next_seed() -> int:
        counter[0] += 1
        return counter[0] - 1

    def convert(module: nn.Module, prefix: str) -> None:
        for name, child in list(module.named_children()):
            full = f"{prefix}{name}"
            if linear and isinstance(child, nn.Linear):
                setattr(
                    module,
                    name,
                    AnalogLinear(child, config, seed=next_seed(), t_inference=t_inference),
                )
            elif attention and isinstance(child, FavorAttention):
                child.use_analog(config, t_inference=t_inference, seed=next_seed())
            elif isinstance(child, _UNMAPPED):
                digital[full] = type(child).__name__
                unmapped.append(f"{full} ({type(child).__name__})")
            else:
                if any(True for _ in child.parameters(recurse=False)):
                    digital[full] = type(child).__name__
                convert(child, full + ".")

    if isinstance(model, _UNMAPPED):
        raise ConfigError(f"cannot map a {type(model).__name__} onto crossbars")
    convert(model, "")
    if unmapped:
        msg = (
            f"convert_to_analog left {len(unmapped)} layer(s) with weight matrices digital "
            f"(only nn.Linear and FavorAttention are mapped): {', '.join(unmapped)}"
        )
        if strict:
            raise ConfigError(msg)
        warnings.warn(msg, UserWarning, stacklevel=2)
    model.digital_layers_ = digital
    return model


def sync_analog(model: nn.Module) -> int:
    """Program again every :class:`AnalogLinear` of ``model`` whose weights changed.

    Use after an optimiser step of chip-in-the-loop training; returns how many were
    programmed.
    """
    return sum(m.sync() for m in model.modules() if isinstance(m, AnalogLinear))
