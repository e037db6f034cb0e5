"""The reading order of the example gallery (sphinx-gallery ``within_subsection_order``)."""

from __future__ import annotations

from pathlib import Path

ORDER = [
    "plot_sklearn_pipeline.py",
    "plot_aihwkit_users.py",
    "plot_pcm_program_verify.py",
    "plot_favor_attention_torch.py",
    "plot_paper_figure.py",
]


class ExampleOrder:
    """Examples in :data:`ORDER` first, in that order, then any others by name."""

    def __init__(self, src_dir: str | Path) -> None:
        self.src_dir = src_dir

    def __call__(self, filename: str | Path) -> tuple[int, str]:
        name = Path(filename).name
        return (ORDER.index(name) if name in ORDER else len(ORDER), name)
