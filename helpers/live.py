"""Chapters read live as they read in the HTML book: glued numbers shown in a running kernel.

The built book fills a chapter's ``{glue:}`` roles from the executed notebook (myst-nb). In JupyterLab,
Binder or Colab a Markdown cell is rendered by the front end, which knows nothing of glue: the reader would
see ``{glue:}`kl_i_spearman``` where the number should be. So each chapter glues through :func:`glue`
(myst-nb's, which also remembers the value in this kernel), and a cell after its "What we found" calls
:func:`show_found`: it displays that section again as plain Markdown, with every glued value filled in and
the book's cross-references turned into ordinary links and words. The cell is removed from the HTML page
(``remove-cell``), where the section already shows its numbers; the text has one source, the chapter's
Markdown cell. Written here because myst-nb renders glue only at build time.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from .config import ROOT

__all__ = ["GLUED", "HEADING", "glue", "resolve", "found_section", "show_found", "SentenceContradicted", "CHECKS_ENV",
           "check_sentence", "direction"]

#: Every value glued in this kernel, by name.
GLUED: dict = {}
HEADING = re.compile(r"##\s+(\d+\.\s+)?What we found")


def glue(name: str, value, display: bool = True):
    """myst-nb's ``glue`` that also remembers the value for :func:`show_found`."""
    from myst_nb import glue as myst_glue

    GLUED[name] = value
    return myst_glue(name, value, display=display)


class SentenceContradicted(AssertionError):
    """A sentence of a chapter states a direction that this run's numbers contradict."""


#: How :func:`check_sentence` reacts to a contradicted sentence: ``error`` (the book build, ``helpers.book run`` at a
#: chapter's defaults: the build stops) or ``warn`` (anywhere else: a reader's own parameters or models may
#: legitimately reverse a direction, so the page says so next to the sentence instead).
CHECKS_ENV = "SENTENCE_CHECKS"


def check_sentence(holds, statement: str) -> bool:
    """Check a directional sentence of the chapter against this run's numbers.

    A glued number cannot go stale, but the words around it can ("KL is larger in the smaller corpus" while the
    figure shows the reverse). Each such sentence is followed by a hidden cell ``check_sentence(<condition>, "<the
    sentence's words>")``: in the book build a contradicted sentence stops the build with
    :class:`SentenceContradicted` naming it; in a reader's run it shows a note instead. Returns whether it holds.
    """
    import os

    holds = bool(holds)
    if holds:
        return True
    message = (f"The text states “{statement}”, but this run's numbers say otherwise. Reword the sentence, or glue "
               "its direction with helpers.live.direction.")
    if os.environ.get(CHECKS_ENV, "warn") == "error":
        raise SentenceContradicted(message)
    from IPython.display import Markdown, display

    display(Markdown(f"> **Note.** With this run's parameters, the sentence “{statement}” above does not hold."))
    return False


def direction(name: str, a, b, more: str = "larger", less: str = "smaller", same: str = "about the same",
              tolerance: float = 0.0) -> str:
    """Glue (as ``name``, Markdown for a ``{glue:md}`` role) the word for how ``a`` compares with ``b``: ``more`` when a exceeds b by more than
    ``tolerance``, ``less`` when it falls short by more, else ``same``; for a sentence whose direction a rerun
    could flip. Returns the word."""
    from IPython.display import Markdown

    a, b = float(a), float(b)
    word = more if a - b > tolerance else less if b - a > tolerance else same
    glue(name, Markdown(word), display=False)  # Markdown: shown with {glue:md}, in the sentence's own words
    return word


def _text(value) -> str:
    data = getattr(value, "data", None)  # IPython's Markdown / HTML objects
    if isinstance(data, str):
        return data
    if isinstance(value, float):
        return repr(value)
    return str(value)


def resolve(markdown: str, values: dict | None = None) -> str:
    """MyST text with glue roles filled in from ``values`` (default :data:`GLUED`) and the book's other roles as
    plain Markdown: ``{doc}`` as a link to the chapter's notebook, ``{term}`` as the word, ``{eq}``/``{numref}``/
    ``{ref}`` as "(the book's equation)"/"the figure"/"the section" (their numbers exist only in the built book) and
    ``{cite}`` as the keys. A glue key with no value is an error naming it (the chapter did not glue it)."""
    values = GLUED if values is None else values

    def glued(match):
        key = match.group(2)
        if key not in values:
            raise KeyError(f"{{glue}}`{key}` has no value in this kernel: run the chapter's cells above first "
                           f"(glued so far: {sorted(values)[:8]}).")
        return _text(values[key])

    def doc(match):
        inner = match.group(1)
        label, _, target = inner.rpartition(" <")
        target = (target.rstrip(">") if label else inner).strip()
        return f"[{(label or target).strip()}]({Path(target).name}.ipynb)"

    text = re.sub(r"\{glue(:\w*)?\}`([^`]+)`", glued, markdown)
    text = re.sub(r"\{doc\}`([^`]+)`", doc, text)
    text = re.sub(r"\{term\}`([^`<]+?)(?: <[^`]+>)?`", r"\1", text)
    text = re.sub(r"\{eq\}`[^`]+`", "(the book's equation)", text)
    text = re.sub(r"\{numref\}`[^`]+`", "the figure", text)
    text = re.sub(r"\{ref\}`[^`]+`", "the section", text)
    text = re.sub(r"\{cite(:\w+)?\}`([^`]+)`", r"(\2)", text)
    return text


def found_section(chapter: str, notebook_dir: Path | None = None) -> str:
    """The Markdown of a chapter's "What we found" section, read from its notebook in ``notebooks/``."""
    path = Path(notebook_dir or ROOT / "notebooks") / f"{chapter}.ipynb"
    cells = json.loads(path.read_text())["cells"]
    for cell in cells:
        source = "".join(cell["source"])
        if cell["cell_type"] == "markdown" and HEADING.match(source.lstrip()):
            section = source.split("\n## ", 1)[0] if "\n## " in source.lstrip()[3:] else source
            return section.strip()
    raise ValueError(f"{path} has no 'What we found' Markdown cell.")


def show_found(chapter: str, notebook_dir: Path | None = None):
    """Display the chapter's "What we found" with its numbers (for readers in a live kernel).

    Where the chapter's notebook is not on this machine (Colab opens it from the repository), the glued
    values are listed instead, by name, so the reader still sees every number the text refers to.
    """
    from IPython.display import Markdown, display

    try:
        text = resolve(found_section(chapter, notebook_dir))
    except (OSError, ValueError):
        text = "**The numbers of What we found**\n\n" + "\n".join(f"- `{k}`: {_text(v)}" for k, v in GLUED.items())
    display(Markdown(text))
    return text
