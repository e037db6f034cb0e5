"""
=====================================
Out-of-core kernel ridge on Dask
=====================================

Ridge regression on random features needs only sums over rows: the augmented Gram
matrix of :math:`[\\varphi(x), 1, y]`. :class:`~analogkernels.linear_model.RidgeClassifier`
therefore fits a :mod:`dask.array` that never fits in memory: every chunk of rows is a
task that maps its rows through the feature map (digitally or on the simulated chip)
and sums its Gram matrix, the chunk sums are added in a fixed order, and the client
solves a :math:`(D+1+k)^2` system. The same code runs on the threads of one process, a
``LocalCluster`` or a cluster of machines (Dask, https://www.dask.org). Needs the
``[dask]`` extra.
"""

# %%
# A cluster and a problem that is never materialised
# --------------------------------------------------
# Two workers in this process (``LocalCluster(processes=False)``; a real deployment
# passes a scheduler address to :class:`distributed.Client` instead). The data are
# generated chunk by chunk from a seed when a task needs them:
# :func:`analogkernels.dask.make_classification` draws a 7-class Gaussian mixture,
# 200,000 rows × 16 inputs in chunks of 16,384 rows.
import matplotlib.pyplot as plt
import numpy as np
from distributed import Client, LocalCluster

from analogkernels.analog import CrossbarConfig
from analogkernels.dask import make_classification
from analogkernels.kernel_approximation import RandomFourierFeatures
from analogkernels.linear_model import BLOCK_ROWS, RidgeClassifier

cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0")
client = Client(cluster)
X, y = make_classification(200_000, 16, noise=1.0, chunks=4 * BLOCK_ROWS, seed=0)
X_test, y_test = make_classification(20_000, 16, noise=1.0, chunks=4 * BLOCK_ROWS, split=1)
print(X)

# %%
# Fit on the workers, solve on the client
# ---------------------------------------
# ``fit`` returns when the chunk sums have been added; the client held only the
# :math:`(D+1+k)^2` Gram matrix. Prediction and ``score`` on a dask array are lazy
# (``map_blocks``) and run on the workers too.
clf = RidgeClassifier(
    alpha=0.5, feature_map=RandomFourierFeatures(gamma=0.05, n_components=128, random_state=0)
).fit(X, y)
print("held-out accuracy:", round(clf.score(X_test, y_test), 4))
labels = clf.predict(X_test)  # a dask array: nothing computed yet
print(labels, labels[:10].compute())

# %%
# On the chip: reads keyed by the global row
# ------------------------------------------
# With an analog backend every read of the chip draws fresh noise. The chunk that
# starts at row :math:`r` reads rows ``read_position + r ...`` of the chip's read
# stream (a pinned read), so the features — and the fit — do not depend on how the
# rows are chunked or which worker reads them. With chunks of ``BLOCK_ROWS`` rows the
# coefficients equal the in-memory fit's bit for bit; other chunkings agree to the
# float64 rounding.
chip = RandomFourierFeatures(
    gamma=0.05, n_components=64, backend=CrossbarConfig.hermes(), backend_seed=7, random_state=0
)
X_small, y_small = X[:20_000].compute(), y[:20_000].compute()
in_memory = RidgeClassifier(alpha=0.5, feature_map=chip).fit(X_small, y_small)
dask_fit = RidgeClassifier(alpha=0.5, feature_map=chip).fit(
    X[:20_000].rechunk({0: BLOCK_ROWS}), y[:20_000]
)
other = RidgeClassifier(alpha=0.5, feature_map=chip).fit(X[:20_000].rechunk({0: 7000}), y_small)
print("bit for bit with BLOCK_ROWS chunks:", np.array_equal(dask_fit.coef_, in_memory.coef_))
rel = np.linalg.norm(other.coef_ - in_memory.coef_) / np.linalg.norm(in_memory.coef_)
print(f"chunks of 7000 rows: relative difference {rel:.1e}")
print("rows read from the chip:", dask_fit.feature_map_.analog_.read_position)

# %%
# Accuracy against the number of projections, digital and on the chip
# --------------------------------------------------------------------
# Each fit streams the 200,000 rows through the workers; a chip is programmed once per
# fit (on the client) and rebuilt from its seed once on each worker.
sizes = [8, 16, 32, 64, 128]
scores = {"digital": [], "chip (HERMES)": []}
for s in sizes:
    for name, backend in (("digital", None), ("chip (HERMES)", CrossbarConfig.hermes())):
        fm = RandomFourierFeatures(
            gamma=0.05, n_components=s, backend=backend, backend_seed=s, random_state=s
        )
        model = RidgeClassifier(alpha=0.5, feature_map=fm).fit(X[:100_000], y[:100_000])
        scores[name].append(model.score(X_test, y_test))
fig, ax = plt.subplots(figsize=(5.5, 3.4), constrained_layout=True)
for (name, acc), style in zip(scores.items(), ("-o", "--s"), strict=True):
    ax.plot(sizes, 100 * np.array(acc), style, label=name)
ax.set_xscale("log", base=2)
ax.set_xlabel("projections s (features 2s)")
ax.set_ylabel("held-out accuracy (%)")
ax.set_title("RBF ridge fitted out of core on 2 Dask workers")
ax.legend()
for name, acc in scores.items():
    print(
        f"{name:>14}: "
        + "  ".join(f"s={s} {100 * a:.1f} %" for s, a in zip(sizes, acc, strict=True))
    )
ax.grid(alpha=0.3)

client.close()
cluster.close()
