"""Sphinx configuration of the analogkernels documentation.

Build: ``python -m sphinx -W --keep-going -b html docs docs/_build/html`` (the
gallery in ``examples/`` runs at build time; ``.ci/run`` does exactly this).
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

# The gallery's linear algebra is small (a few hundred rows): one BLAS thread is as
# fast, and several oversubscribe a small machine already busy with the Rust core's
# own thread pool (OpenBLAS threads spin while they wait; on a loaded 2-core machine
# the paper-figure example took 44 s instead of 8 s). Set before numpy is imported.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import analogkernels  # noqa: E402

project = "analogkernels"
author = "the analogkernels authors"
copyright = "the analogkernels authors; Apache-2.0"
release = analogkernels.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

root = Path(__file__).resolve().parent
sys.path.insert(0, str(root))  # gallery_order.py
templates_path = ["_templates"]
# docs/results/ holds result files of the paper runs (markdown, CSV, figures):
# they are shown through the pages that include them, not built as pages.
exclude_patterns = ["_build", "results/**", "auto_examples/*.ipynb", "**.py", "**.zip"]
default_role = "code"

# Docstrings write absolute values as |x| (it reads well in help()); in reST that is a
# substitution reference, so these definitions print such names literally.
rst_prolog = """
.. |W| unicode:: U+007C W U+007C
.. |x| unicode:: U+007C x U+007C
.. |ŵ| unicode:: U+007C U+0077 U+0302 U+007C
.. |x̂| unicode:: U+007C U+0078 U+0302 U+007C
.. |error| unicode:: U+007C error U+007C
"""

# API reference: autosummary writes one page per object from the docstrings.
autosummary_generate = True
autodoc_default_options = {"members": True, "member-order": "bysource"}
autodoc_typehints = "none"  # numpydoc's Parameters sections carry the types
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True

# The gallery: every examples/plot_*.py is executed at build time.
sphinx_gallery_conf = {
    "examples_dirs": str(root.parent / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    # examples/pcm_mvm_error.py is a command-line script (benches/README.md runs it).
    "ignore_pattern": r"pcm_mvm_error\.py",
    "within_subsection_order": "gallery_order.ExampleOrder",
    "abort_on_example_error": True,
    "only_warn_on_example_error": False,
    "download_all_examples": False,
    "remove_config_comments": True,
    "doc_module": ("analogkernels",),
    "backreferences_dir": "generated/backreferences",
    "min_reported_time": 1,
    "show_signature": False,
}

try:  # the torch example needs the [torch] extra; without it the gallery skips it
    import torch  # noqa: F401
except ImportError:
    sphinx_gallery_conf["ignore_pattern"] += r"|plot_favor_attention_torch\.py"

try:  # the out-of-core example needs the [dask] extra; without it the gallery skips it
    import distributed  # noqa: F401
except ImportError:
    sphinx_gallery_conf["ignore_pattern"] += r"|plot_dask_out_of_core\.py"

html_theme = "pydata_sphinx_theme"
html_title = f"analogkernels {release}"
html_static_path = ["_static"]
html_css_files = ["custom.css"]
html_show_sourcelink = False
html_theme_options = {
    "navbar_align": "left",
    "show_toc_level": 2,
    "navigation_with_keys": False,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version", "theme-version"],
}
html_sidebars = {"index": [], "install": []}
html_context = {"default_mode": "light"}

# Examples plot with matplotlib's Agg backend; torch prints no banners.
os.environ.setdefault("MPLBACKEND", "Agg")
warnings.filterwarnings("ignore", message="Matplotlib is currently using agg")


def _skip_member(app, what, name, obj, skip, options):
    # scikit-learn generates set_{fit,predict,score,...}_request methods for metadata
    # routing; their docstrings point into scikit-learn's own documentation.
    if name.startswith("set_") and name.endswith("_request"):
        return True
    return skip


def setup(app):
    app.connect("autodoc-skip-member", _skip_member)
