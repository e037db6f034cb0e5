"""
=====================================
FAVOR+ attention in PyTorch, on chip
=====================================

Performer attention (Choromanski et al., "Rethinking attention with Performers", ICLR
2021) replaces :math:`\\mathrm{softmax}(QK^\\top/\\sqrt d)\\,V` with random features of
the softmax kernel, linear in the sequence length. Büchel et al. (Nature Machine
Intelligence 6, 2024) ran the random projection inside those features on the HERMES
chip. :class:`analogkernels.torch.FavorAttention` is that attention as a torch module;
:meth:`~analogkernels.torch.FavorAttention.use_analog` moves its projection onto the
simulated chip for evaluation. Needs the ``[torch]`` extra.
"""

# %%
# Attention error against the number of projections
# -------------------------------------------------
# Queries, keys and values of one head (dimension 64, 256 positions, batch of 4),
# drawn at random, queries correlated with the keys. The relative error of FAVOR+
# against exact softmax attention, with the projection digital and on the simulated
# chip, for :math:`m = k\cdot d - 1` projections as in the paper's attention
# experiment.
import matplotlib.pyplot as plt
import torch

from analogkernels.analog import CrossbarConfig
from analogkernels.torch import FavorAttention

torch.manual_seed(0)
d, length = 64, 256
k = 0.35 * torch.randn(4, 1, length, d, dtype=torch.float64)
q = 0.5 * k + 0.3 * torch.randn(4, 1, length, d, dtype=torch.float64)  # correlated with k
v = torch.randn(4, 1, length, d, dtype=torch.float64)
exact = torch.softmax(q @ k.transpose(-2, -1) / d**0.5, dim=-1) @ v


def error(approx: torch.Tensor) -> float:
    return float(torch.linalg.norm(approx - exact) / torch.linalg.norm(exact))


ks = [1, 2, 3, 5, 7]
fp_err, chip_err = [], []
for kk in ks:
    attn = FavorAttention(d, n_components=kk * d - 1, random_state=kk).eval()
    with torch.no_grad():
        fp_err.append(error(attn(q, k, v)))
        attn.use_analog(CrossbarConfig.hermes(), seed=kk)  # program the projection
        chip_err.append(error(attn(q, k, v)))  # a fresh read of the chip
    print(f"m = {kk * d - 1:3d}: FP {fp_err[-1]:.4f}   chip {chip_err[-1]:.4f}")

fig, ax = plt.subplots(figsize=(5.6, 3.4), layout="constrained")
ax.plot([kk * d - 1 for kk in ks], fp_err, "o-", label="projection digital (FP)")
ax.plot([kk * d - 1 for kk in ks], chip_err, "s--", label="projection on the simulated chip")
ax.set_xlabel("random projections m")
ax.set_ylabel("relative error vs softmax attention")
ax.set_yscale("log")
ax.legend()
ax.grid(alpha=0.3)
plt.show()

# %%
# The error falls as :math:`1/\sqrt m`; the chip's noise adds little on top, which is
# the paper's point: the projection tolerates analog noise.

# %%
# A drop-in module, trained digitally
# -----------------------------------
# In training mode the module is ordinary differentiable torch (gradients flow to the
# queries and keys through the fixed projection). After training, the same module reads
# the chip in evaluation; every forward pass is a fresh read with new read noise,
# reproducible as a sequence from the chip's seed.
attn = FavorAttention(d, n_components=127, random_state=0)
q_train = q.clone().requires_grad_(True)
loss = (attn.train()(q_train, k, v) - exact).pow(2).mean()
loss.backward()
print(f"gradient norm on the queries: {q_train.grad.norm():.3e}")

attn.eval().use_analog(CrossbarConfig.hermes(), t_inference=3600.0, seed=7)
with torch.no_grad():
    first, second = attn(q, k, v), attn(q, k, v)
print(f"two reads differ by {float((first - second).abs().max()):.2e}")
print("rows read from the chip so far:", attn.analog_features.analog_.read_position)

# %%
# :func:`analogkernels.torch.convert_to_analog` maps every linear layer of a model (and
# every FAVOR projection) onto simulated crossbars, each with its own programming seed;
# :class:`analogkernels.torch.HWALinear` trains hardware-aware, with weight and output
# noise and quantised inputs, as the paper's fine-tuning with aihwkit.
