"""Shared test setup: hypothesis profiles and the data directory."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# quick: development; thorough: CI (CI=true) or on request.
settings.register_profile("quick", max_examples=30, deadline=None)
settings.register_profile(
    "thorough",
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
_default = "thorough" if os.environ.get("CI", "").lower() == "true" else "quick"
settings.load_profile(os.environ.get("ANALOGKERNELS_HYPOTHESIS_PROFILE", _default))


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The shared datasets folder (``ANALOGKERNELS_DATA``); skips when absent."""
    root = os.environ.get("ANALOGKERNELS_DATA")
    if not root or not Path(root).is_dir():
        pytest.skip("ANALOGKERNELS_DATA is not set to the datasets folder")
    return Path(root)


def write_tiny_magic04(root, rows: int):
    """A small magic04-format file under ``root/data`` (two Gaussian classes, 10
    features, seed 0) for end-to-end sweeps; returns the data folder."""
    import numpy as np

    rng = np.random.default_rng(0)
    lines = []
    for i in range(rows):
        cls = "g" if i % 3 else "h"
        x = rng.standard_normal(10) + (0.8 if cls == "g" else -0.8)
        lines.append(",".join(f"{v:.4f}" for v in x) + f",{cls}")
    folder = root / "data" / "magic04"
    folder.mkdir(parents=True)
    (folder / "magic04.data").write_text("\n".join(lines) + "\n")
    return root / "data"
