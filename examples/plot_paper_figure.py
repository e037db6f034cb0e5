"""
=====================================
The paper's figure from a quick run
=====================================

Büchel et al. (Nature Machine Intelligence 6, 1605–1615, 2024, Fig. 2) plot the kernel
approximation error and the ridge-classification accuracy against the number of random
projections :math:`s = 2^k d - k`, for RFF, ORF and SORF, with the projection digital
and on the HERMES chip. :mod:`analogkernels.paper.protocol` runs that protocol one
configuration at a time; ``analogkernels ridge`` runs it over the paper's datasets
(``--quick`` in about 20 s). Here it runs on scikit-learn's bundled breast-cancer data,
so that nothing is downloaded: RBF kernel (:math:`\\gamma = 0.05`), ridge
:math:`\\alpha = 0.5`, :math:`k = 1, \\dots, 5`, two seeds.
"""

# %%
# Run the sweep
# -------------
# Each :class:`~analogkernels.paper.protocol.RunConfig` is one run: one seed draws
# :math:`W` and, for the analog backend, programs its own simulated HERMES chip; the
# chip then reads the training rows, the evaluation rows and the kernel-error points.
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt

from analogkernels.paper.figures import plot_dataset
from analogkernels.paper.protocol import RunConfig, run_one, summarize

configs = [
    RunConfig(
        dataset="sklearn:breast_cancer", kernel="rbf", sampler=sampler, k=k, seed=seed,
        backend=backend,
    )
    for sampler in ("rff", "orf", "sorf")
    for k in range(1, 6)
    for seed in range(2)
    for backend in ("fp", "analog")
]  # fmt: skip
records = [run_one(cfg) for cfg in configs]
print(f"{len(records)} runs, {sum(r['wall_time_s'] for r in records):.1f} s in total")

# %%
# The paper's table form
# ----------------------
print(summarize(records))

# %%
# The paper's figure form
# -----------------------
# :func:`~analogkernels.paper.figures.plot_dataset` draws the figure that
# ``analogkernels ridge`` writes for each dataset.
with tempfile.TemporaryDirectory() as tmp:
    path = Path(tmp) / "figure.png"
    plot_dataset(records, "sklearn:breast_cancer", path)
    image = plt.imread(path)

dpi = 110  # the resolution plot_dataset saves at: show the image pixel for pixel
fig = plt.figure(figsize=(image.shape[1] / dpi, image.shape[0] / dpi), dpi=dpi)
fig.figimage(image)
plt.show()

# %%
# With 284 training rows the accuracy saturates early; the approximation error falls
# with :math:`s` as :math:`1/\sqrt{s}`, and the chip's noise raises it most where it is
# already small. The full sweep over the paper's four datasets and ten seeds is in
# :doc:`/user_guide/paper_protocol`.
