"""Sphinx configuration of the bayesltv documentation.

Build with ``sphinx-build -b html docs docs/_build/html`` after ``pip install -e ".[docs]"``.
The tutorials live in ``notebooks/`` at the repository root (where the tests execute them);
Sphinx only reads files under ``docs/``, so each build mirrors them into ``docs/notebooks/``
(git-ignored) and myst-nb executes them there.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import bayesltv

DOCS = Path(__file__).resolve().parent
NOTEBOOKS = DOCS.parent / "notebooks"
NOTEBOOK_MIRROR = DOCS / "notebooks"


def mirror_notebooks() -> None:
    """Copy ``notebooks/*.ipynb`` into ``docs/notebooks/``; drop copies whose source is gone.

    A copy is only rewritten when its content changed, so Sphinx and the execution cache
    see unchanged tutorials as unchanged.
    """
    NOTEBOOK_MIRROR.mkdir(exist_ok=True)
    sources = {path.name: path for path in NOTEBOOKS.glob("*.ipynb")}
    for copy in NOTEBOOK_MIRROR.glob("*.ipynb"):
        if copy.name not in sources:
            copy.unlink()
    for name, source in sources.items():
        copy = NOTEBOOK_MIRROR / name
        if not copy.exists() or copy.read_bytes() != source.read_bytes():
            shutil.copyfile(source, copy)


mirror_notebooks()

# -- project ---------------------------------------------------------------------------

project = "bayesltv"
author = "bayesltv developers"
copyright = "bayesltv developers"
release = bayesltv.__version__
version = release

# -- extensions ------------------------------------------------------------------------

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
]

exclude_patterns = ["_build", "jupyter_execute", "**/.ipynb_checkpoints"]

# MyST: $...$ and $$...$$ maths (as in Jupyter), amsmath environments, ::: fences and
# definition lists.
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3

# myst-nb: execute the tutorials on every build that changed them (cached by content under
# docs/_build), and fail the build when a cell raises.
nb_execution_mode = "cache"
nb_execution_timeout = 600
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_merge_streams = True

# autodoc + napoleon: numpy-style docstrings, which carry the types themselves.
autodoc_member_order = "bysource"
autodoc_typehints = "none"
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_ivar = True
napoleon_use_rtype = False

# -- HTML ------------------------------------------------------------------------------

try:
    import pydata_sphinx_theme  # noqa: F401
except ImportError:
    html_theme = "alabaster"
else:
    html_theme = "pydata_sphinx_theme"
    html_theme_options = {
        "navigation_with_keys": False,
        "show_toc_level": 2,
    }
html_title = f"bayesltv {release}"
html_static_path: list[str] = []
