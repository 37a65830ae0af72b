"""Several explanations together (study layer): :class:`Comparison` (two models on the same text or pair, their
words aligned and the change b - a) and :class:`ExplanationSet` (many texts, one tidy table, JSON lines that read
back checked); each :class:`helpers.explanation.Explanation` inside keeps its own views."""
from __future__ import annotations

import dataclasses
import html
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from .explanation import Explanation, show_view, top_pairs, top_words
from .attribution.words import CompletenessGap, warn_gaps

__all__ = ["Comparison", "ExplanationSet", "explain_each"]


@dataclasses.dataclass(repr=False)
class Comparison:
    """Two models explained on the same text or pair (``explain([model_a, model_b], ...)``).

    ``table``: for a text, ``word_index``, ``word``, ``weight_a``, ``weight_b`` and ``change`` (b - a; weights are
    normalised to mean 1 in each model, so a change is a shift of relative weight); for a pair, every word pair's
    ``contribution_a``, ``contribution_b`` and ``change``. ``explanations``: the two :class:`Explanation`."""

    kind: str
    models: list
    explanations: list
    table: pd.DataFrame

    @property
    def texts(self) -> list:
        return self.explanations[0].texts

    def __repr__(self) -> str:
        a, b = self.models
        if self.kind == "text":
            return (f"<Comparison of {a} and {b} on one text ({len(self.table)} words); largest changes of weight "
                    f"(b - a): {top_words(self.table, 'change', 5, signed=True)}>")
        sa, sb = (e.numbers["score"] for e in self.explanations)
        return f"<Comparison of {a} and {b} on a pair: similarity {sa:.4f} and {sb:.4f}>"

    def matrices(self) -> dict:
        """A pair's matrices: each model's and their change (b - a), rows the first text's words."""
        if self.kind != "pair":
            raise ValueError("matrices() are a pair's; this comparison is of one text.")
        ma, mb = (e.matrix() for e in self.explanations)
        return {self.models[0]: ma, self.models[1]: mb, "change": mb - ma}

    def to_text(self, width: int = 80, colour: bool = True, top: int = 8) -> str:
        from .views import ansi_words, fit_lines, wrap

        a, b = self.models
        lines = [f"{a} → {b} · {self.explanations[0].method.upper()}"]
        if self.kind == "text":
            for label, column, signed in ((a, "weight_a", False), (b, "weight_b", False), ("change", "change", True)):
                lines.append(f"{label}:")
                lines += wrap(ansi_words(self.table["word"], self.table[column], colour, signed), width)
            up, down = self.table[self.table["change"] > 0], self.table[self.table["change"] < 0]
            lines.append(f"raised most (b - a): {top_words(up, 'change', top, True) or 'none'}")
            lines.append(f"lowered most (b - a): {top_words(down, 'change', top, True) or 'none'}")
        else:
            for e in self.explanations:
                lines.append(f"{e.model}: {e.settings['similarity']} similarity {e.numbers['score']:.4f} (gap "
                             f"{e.numbers['completeness_gap']:.2%})")
            lines.append(f"pairs changed most: {top_pairs(self.table, 'change', top)}")
        return fit_lines(lines, width)

    def to_html(self, path=None, full: bool = True) -> str:
        """Both models' pictures and the change between them, self-contained (as :meth:`Explanation.to_html`); the
        two models share one colour scale, so a word as dark in both weighs as much in both."""
        from .views import page, pair_matrix_svg, spans

        a, b = self.models
        body = f"<p style='font-size:1.1em'><b>{html.escape(a)} → {html.escape(b)}</b></p>"
        if self.kind == "text":
            shared = float(self.table[["weight_a", "weight_b"]].abs().to_numpy().max()) or None  # one scale for both
            for label, column, signed in ((a, "weight_a", False), (b, "weight_b", False),
                                          ("change (b − a)", "change", True)):
                body += (f'<p class="t"><span class="lbl">{html.escape(label)}</span> '
                         f'{spans(self.table["word"], self.table[column], signed, None if signed else shared)}</p>')
            body += ("<details><summary>the table</summary>" + self.table.round(4).to_html(index=False, classes="table")
                     + "</details>")
        else:
            body += "<div class='mats'>"
            titles = [f"{label}: {e.numbers['score']:.3f}" for label, e in zip(self.models, self.explanations)]
            mats = list(self.matrices().values())
            shared = float(max(np.abs(mats[0].to_numpy()).max(), np.abs(mats[1].to_numpy()).max())) or None
            for title, m, top in zip(titles + ["change (b − a)"], mats, [shared, shared, None]):
                body += pair_matrix_svg(m, m.sum(axis=1).to_numpy(), m.sum(axis=0).to_numpy(), title=title, top=top)
            body += "</div>"
            body += ("<details><summary>every word pair (the table)</summary>"
                     + self.table.round(4).to_html(index=False, classes="table") + "</details>")
        for e in self.explanations:
            body += "".join(f"<p class='n'>{html.escape(e.model)}: {html.escape(n)}</p>" for n in e.notes)
        return page(body, full, path, title=f"{a} → {b}")

    def _repr_html_(self) -> str:
        return self.to_html(full=False)

    def show(self, width: int | None = None) -> None:
        show_view(self, width)

    def plot(self):
        """A matplotlib figure: a text's weights in both models and the change as bars; a pair's matrices side by
        side with the change."""
        from . import views

        if self.kind == "text":
            return views.compare_strips(self.table, self.models, title=self.texts[0])
        titles = [f"{label}: {e.numbers['score']:.3f}" for label, e in zip(self.models, self.explanations)]
        return views.pair_matrix(dict(zip(titles + ["change (b − a)"], self.matrices().values())),
                                 title=f"{self.texts[0]!r} ~ {self.texts[1]!r}")


class ExplanationSet:
    """Many texts explained one by one (``explain(model, [t1, t2, ...])``): ``table`` is one tidy table
    (``text_id``, the word columns of each :class:`Explanation`), ``explanations[i]`` (or ``s[i]``) each text's
    explanation with its pictures. :meth:`to_jsonl`/:meth:`read_jsonl` keep them as JSON lines, one per text."""

    def __init__(self, explanations: list):
        self.explanations = list(explanations)

    def __len__(self) -> int:
        return len(self.explanations)

    def __getitem__(self, i) -> Explanation:
        return self.explanations[i]

    def __iter__(self):
        return iter(self.explanations)

    @property
    def model(self) -> str:
        return self.explanations[0].model

    @property
    def texts(self) -> list:
        return [e.texts[0] for e in self.explanations]

    @property
    def table(self) -> pd.DataFrame:
        return pd.concat([e.table.assign(text_id=i) for i, e in enumerate(self.explanations)], ignore_index=True)[
            ["text_id", *self.explanations[0].table.columns]]

    def __repr__(self) -> str:
        gaps = [e.numbers["completeness_gap"] for e in self.explanations]
        return (f"<ExplanationSet of {len(self)} texts by {self.model}: {self.explanations[0].method.upper()} word "
                f"weights, {sum(len(e.table) for e in self.explanations)} words, largest completeness gap {max(gaps):.2%}>")

    def to_text(self, width: int = 80, colour: bool = True, top: int = 5) -> str:
        return "\n\n".join(f"[{i}] " + e.to_text(width, colour, top) for i, e in enumerate(self.explanations))

    def to_html(self, path=None, full: bool = True) -> str:
        from .views import page, spans

        body = (f"<p style='font-size:1.1em'><b>{html.escape(self.model)}: {self.explanations[0].method.upper()} word "
                f"weights of {len(self)} texts</b></p>")
        body += "".join(f'<p class="t"><span class="lbl">{i}</span> {spans(e.table["word"], e.table["weight"], False)}'
                        f"</p>" for i, e in enumerate(self.explanations))
        body += ("<details><summary>the table</summary>" + self.table.round(4).to_html(index=False, classes="table")
                 + "</details>")
        return page(body, full, path, title=f"{self.model}: explanations")

    def _repr_html_(self) -> str:
        return self.to_html(full=False)

    def show(self, width: int | None = None) -> None:
        show_view(self, width)

    def to_jsonl(self, path) -> Path:
        """One JSON line per text (the object :meth:`Explanation.save` writes, with its sha256); written to a
        temporary file, then renamed."""
        from .config import write_text_atomic

        return write_text_atomic(path, "".join(json.dumps(e.to_dict()) + "\n" for e in self.explanations),
                                 "JSON lines file")

    @classmethod
    def read_jsonl(cls, path) -> "ExplanationSet":
        """Read :meth:`to_jsonl`'s file (or the CLI's ``--jsonl``); an error names the file and line."""
        path = Path(path)
        out = []
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except ValueError as exc:
                raise ValueError(f"{path}, line {number}: not a JSON object ({exc}); the file was cut short or "
                                 "edited. Explain the texts again.") from None
            out.append(Explanation.from_dict(data, f"{path}, line {number}"))
        if not out:
            raise ValueError(f"{path} holds no explanation.")
        return cls(out)


def explain_each(texts, explain_one, show_progress_bar: bool = False) -> ExplanationSet:
    """Each text explained by ``explain_one(text)`` (``explain(model, [t1, t2, ...])``): an :class:`ExplanationSet`,
    with one warning for the texts whose completeness gap is above the book's threshold (each text's notes say so)
    instead of one per text; every other warning passes through."""
    from .config import tqdm

    out = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", CompletenessGap)
        for value in tqdm(texts, desc="explain", unit="text", disable=not show_progress_bar):
            out.append(explain_one(value))
    for w in caught:
        if not issubclass(w.category, CompletenessGap):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    warn_gaps([e.numbers["completeness_gap"] for e in out], noun="texts (each one's notes say so)", stacklevel=3)
    return ExplanationSet(out)
