"""The chapters' files: the notebooks in order, each notebook's MyST Markdown text twin, its solutions folded for
JupyterLab, and an executed copy stripped of widget state (base layer; the runner, :mod:`helpers.book`, and the
generated pages, :mod:`helpers.pages`, read the chapters through here)."""
from __future__ import annotations

from pathlib import Path

from .config import ROOT

__all__ = ["NOTEBOOK_DIR", "notebooks", "TEXT_FORMAT", "text_twin", "solution_cells", "hide_solutions", "sync_text",
           "text_differences", "WIDGET_MIME", "strip_widgets"]

NOTEBOOK_DIR = ROOT / "notebooks"


def notebooks() -> list[Path]:
    """The chapter notebooks, in order."""
    return sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))


WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


#: The format of each chapter's text twin (``notebooks/NN_name.md``): MyST Markdown through jupytext, as QuantEcon
#: keeps its lectures, so a change to a chapter reads as prose in review.
TEXT_FORMAT = "md:myst"


def text_twin(path: Path) -> Path:
    """The MyST Markdown twin of a chapter notebook."""
    return Path(path).with_suffix(".md")


#: What JupyterLab reads to show a code cell collapsed (its input and output behind a "..." bar).
HIDDEN = {"source_hidden": True, "outputs_hidden": True}


def solution_cells(nb) -> list[int]:
    """Indices of the code cells inside an exercise's ``solution-start`` ... ``solution-end`` gate."""
    inside, found = False, []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown" and "{solution-start}" in cell.source:
            inside = True
        elif cell.cell_type == "markdown" and "{solution-end}" in cell.source:
            inside = False
        elif cell.cell_type == "code" and inside:
            found.append(i)
    return found


def hide_solutions(path: Path) -> bool:
    """Mark every solution's code cells collapsed for JupyterLab (``metadata.jupyter``), as the built book
    folds them into the dropdown: jupyterlab-myst renders a gated solution's Markdown but cannot fold the code
    cells between its gates, so a live reader would see each answer's code below its closed dropdown. True when
    the notebook changed (it is rewritten)."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    changed = False
    for i in solution_cells(nb):
        if nb.cells[i].metadata.get("jupyter") != HIDDEN:
            nb.cells[i].metadata["jupyter"] = dict(HIDDEN)
            changed = True
    if changed:
        nbformat.write(nb, path)
    return changed


def sync_text(paths=None) -> list[Path]:
    """Write every chapter's text twin from its notebook (jupytext; outputs are not part of the text), after
    folding its solutions for JupyterLab (:func:`hide_solutions`). The notebook stays the file readers open;
    run this after editing one (``make text``)."""
    import jupytext

    written = []
    for path in paths or notebooks():
        hide_solutions(path)
        nb = jupytext.read(path)
        nb.metadata.setdefault("jupytext", {})["formats"] = f"ipynb,{TEXT_FORMAT}"
        jupytext.write(nb, text_twin(path), fmt=TEXT_FORMAT)
        written.append(text_twin(path))
    return written


def text_differences(path: Path) -> list[str]:
    """Where a chapter and its text twin disagree (cell by cell: kind, tags and source); empty when they agree."""
    import jupytext

    twin = text_twin(path)
    if not twin.is_file():
        return [f"{twin.name} is missing"]

    def cells(nb):
        return [(c.cell_type, tuple(c.metadata.get("tags", [])), c.source.strip()) for c in nb.cells]

    a, b = cells(jupytext.read(path)), cells(jupytext.read(twin, fmt=TEXT_FORMAT))
    out = [f"cell {i}: the notebook's {x[0]} cell {x[2][:60]!r} is not the twin's {y[0]} cell {y[2][:60]!r}"
           for i, (x, y) in enumerate(zip(a, b)) if x != y]
    if len(a) != len(b):
        out.append(f"the notebook has {len(a)} cells and {twin.name} {len(b)}")
    return out


def strip_widgets(path: Path) -> int:
    """Remove ipywidget views and widget state from an executed notebook; return how many views went.

    A widget needs a live kernel, so in the HTML book it is dead; its state would make the page load
    require.js and the widget manager from public CDNs. Each view keeps its plain-text fallback, and
    readers with a kernel run the widgets from ``notebooks/``.
    """
    import nbformat

    nb = nbformat.read(path, as_version=4)
    removed = 0
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if WIDGET_MIME in output.get("data", {}):
                del output["data"][WIDGET_MIME]
                removed += 1
    had_state = nb.metadata.pop("widgets", None) is not None
    if removed or had_state:
        nbformat.write(nb, path)
    return removed
