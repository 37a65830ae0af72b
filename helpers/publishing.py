"""Publishing the book: one repository setting drives the launch buttons and the notebooks' Colab setup.

The repository URL lives in ``_config.yml`` (``repository.url``). From it:

* Jupyter Book's launch buttons (Binder, Colab) and repository button are built. They would
  point at ``book/<chapter>.ipynb``, the executed copies, which are not in the repository;
  :func:`setup` is a small Sphinx extension that rewrites them to ``notebooks/<chapter>.ipynb``,
  the committed copies. (sphinx-book-theme has no option for a notebook folder other than the
  page's own source, so this is written here.)
* every chapter's first code cell installs the book's helpers from that repository when the
  notebook runs on Colab (:func:`sync_repository` writes it; elsewhere the cell does nothing).
  Binder builds from ``requirements.txt``, ``runtime.txt`` and ``postBuild``.

``python -m helpers.publishing https://github.com/<you>/<fork>`` sets the URL everywhere.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

from .config import ROOT

CONFIG = ROOT / "_config.yml"
SETUP_TAG = "colab-setup"
#: The libraries Colab lacks (it has torch, transformers, pandas, seaborn and statsmodels).
COLAB_PACKAGES = ["captum>=0.7", "shap>=0.45", "papermill", "myst-nb"]


def repository_url(config: Path = CONFIG) -> str:
    """``repository.url`` of ``_config.yml``."""
    import yaml

    url = (yaml.safe_load(config.read_text()).get("repository") or {}).get("url")
    if not url:
        raise ValueError(f"{config} has no repository.url; set it (e.g. python -m helpers.publishing "
                         "https://github.com/<you>/<repository>).")
    return url


def colab_cell_source(url: str) -> str:
    """The setup cell: on Colab, install the libraries it lacks and the book's helpers from ``url``."""
    packages = ", ".join(f'"{p}"' for p in COLAB_PACKAGES)
    return ("# On Colab: install what it lacks and the book's helpers from the repository (elsewhere: nothing)\n"
            "import subprocess, sys\n"
            'if "google.colab" in sys.modules:\n'
            f'    subprocess.run([sys.executable, "-m", "pip", "install", "-q", {packages},\n'
            f'                    "sentence-word-weights-book @ git+{url}"], check=True)')


def sync_repository(url: str | None = None, notebook_dir: Path = ROOT / "notebooks", config: Path = CONFIG) -> str:
    """Set ``repository.url`` (when ``url`` is given) and write the Colab setup cell of every chapter from it."""
    import nbformat

    if url is not None:
        if not re.fullmatch(r"https://(github\.com|gitlab\.com)/[\w.-]+/[\w.-]+", url):
            raise ValueError(f"url must look like https://github.com/<owner>/<repository>, got {url!r}.")
        text = config.read_text()
        text, n = re.subn(r"(?m)^(\s+url:\s*).*$", lambda m: m.group(1) + url, text, count=1)
        if not n:
            raise ValueError(f"{config} has no repository: url: line to update.")
        owner, name = url.rstrip("/").split("/")[-2:]
        if "github.com" in url:  # the GitHub Pages address the workflow deploys to (link previews need it)
            text = re.sub(r"(?m)^(\s+ogp_site_url:\s*).*$", lambda m: m.group(1) + f"https://{owner}.github.io/{name}/",
                          text)
        config.write_text(text)
    url = repository_url(config)
    for path in sorted(notebook_dir.glob("[0-9][0-9]_*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        source = colab_cell_source(url)
        cells = [c for c in nb.cells if SETUP_TAG in c.metadata.get("tags", [])]
        if cells:
            if cells[0].source == source:
                continue
            cells[0].source = source
        else:
            cell = nbformat.v4.new_code_cell(source, metadata={"tags": [SETUP_TAG, "remove-cell"]})
            cell["id"] = SETUP_TAG  # stable: rewriting the cell does not churn the notebook's diff
            first_code = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code")
            nb.cells.insert(first_code, cell)
        nbformat.write(nb, path)
    return url


def notebook_links(url: str) -> str:
    """A launch URL with the executed copy's path (``book/NN_x.ipynb``) replaced by the committed one."""
    return re.sub(r"(?<![\w-])book/(\d\d_[\w-]+\.ipynb)", r"notebooks/\1", url).replace(
        "book%2F", "notebooks%2F")


def _rewrite(buttons):
    """Launch buttons only (absolute URLs to Binder, Colab, ...): the download button's ``_sources/`` link to the
    executed copy is right as it is."""
    for button in buttons:
        if isinstance(button, dict):
            url = button.get("url")
            if isinstance(url, str) and url.startswith(("http://", "https://")):
                button["url"] = notebook_links(url)
            if isinstance(button.get("buttons"), list):
                _rewrite(button["buttons"])


def _page_context(app, pagename, templatename, context, doctree):
    _rewrite(context.get("header_buttons", []))


def setup(app):
    """Sphinx extension: launch buttons open ``notebooks/``, the committed chapters (see the module docstring)."""
    app.connect("html-page-context", _page_context, priority=900)  # after sphinx-book-theme adds the buttons
    return {"parallel_read_safe": True, "parallel_write_safe": True}


if __name__ == "__main__":
    print("repository:", sync_repository(sys.argv[1] if len(sys.argv) > 1 else None))
