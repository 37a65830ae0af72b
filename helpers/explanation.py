"""What :func:`helpers.explain.explain` returns for one text or one pair, as data (study layer): :class:`Explanation`
with its tables, numbers and notes, JSON that reads back checked (sha256), and the views it hands to
:mod:`helpers.views` (terminal text, self-contained HTML, matplotlib), as ``shap.Explanation`` stays apart from
``shap.plots``. Several explanations together (two models, many texts) are :mod:`helpers.explanation_sets`.
"""
from __future__ import annotations

import dataclasses
import html
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["Explanation", "shap_text_html", "n_tokens", "top_pairs", "top_words", "show_view", "unwritable"]


def n_tokens(encoder, text: str) -> int:
    """The tokens the model reads for ``text``, its special tokens included."""
    return len(encoder.tokenizer(text, add_special_tokens=True, verbose=False)["input_ids"])


def top_pairs(table: pd.DataFrame, column: str, n: int) -> str:
    """The ``n`` word pairs of largest absolute ``column``, as ``a~b +0.123``."""
    ranked = table.loc[table[column].abs().sort_values(ascending=False).index].head(n)
    return ", ".join(f"{a}~{b} {c:+.3f}" for a, b, c in zip(ranked["word_a"], ranked["word_b"], ranked[column]))


def top_words(table: pd.DataFrame, column: str, n: int, signed: bool = False) -> str:
    """The ``n`` words of largest ``column`` (largest absolute value when ``signed``), as ``word 0.12``."""
    order = table[column].abs() if signed else table[column]
    ranked = table.loc[order.sort_values(ascending=False).index].head(n)
    return ", ".join(f"{w} {v:+.2f}" if signed else f"{w} {v:.2f}" for w, v in zip(ranked["word"], ranked[column]))


@dataclasses.dataclass(repr=False)
class Explanation:
    """What :func:`explain` returns: ``table`` (a DataFrame), ``marks`` (pairs: each text's words with the sum of
    their contributions), ``numbers`` (the gap; for pairs the score and reference terms), ``notes``. Views:
    ``show()`` (HTML in a notebook, coloured text in a terminal), ``to_text()``, ``to_html()``, ``plot()`` (a
    matplotlib figure); ``matrix()`` is a pair's word-by-word table."""

    kind: str
    model: str
    texts: list
    method: str
    table: pd.DataFrame
    marks: list
    numbers: dict
    notes: list
    settings: dict
    _encoder: object = dataclasses.field(default=None, repr=False, compare=False)

    def __repr__(self) -> str:
        """A summary, as pandas and shap print one: the model, the kind, the score and gap, the top words."""
        if self.kind == "text":
            how = "sketched" if self.settings.get("projections") else "exact"
            return (f"<Explanation of one text by {self.model}: {self.method.upper()} ({how}) word weights of "
                    f"{len(self.table)} words, completeness gap {self.numbers['completeness_gap']:.2%}; top words: "
                    f"{top_words(self.table, 'weight', 5)}>")
        n = self.numbers
        pairs = top_pairs(self.table, "contribution", 3)
        closes = "" if n.get("closes", True) else " (the parts do not add up: see the notes)"
        return (f"<Explanation of a pair by {self.model}: {self.settings['similarity']} similarity {n['score']:.4f}, "
                f"word pairs {n['sum_of_contributions']:.4f}, reference {n['reference']:+.4f}, gap "
                f"{n['completeness_gap']:.2%}{closes}; top pairs: {pairs}>")

    # ------------------------------------------------------------------ tables
    def matrix(self) -> pd.DataFrame:
        """A pair's contributions word by word: rows the first text's words, columns the second's (in order;
        a word that occurs twice keeps both rows). Row sums are ``marks[0]``, column sums ``marks[1]``."""
        if self.kind != "pair":
            raise ValueError("matrix() is a pair's word-by-word table; this explanation is of one text.")
        from .attribution.pairs import pair_matrix

        m = pair_matrix(self.table)
        m.index.name, m.columns.name = self.texts
        return m

    # ------------------------------------------------------------------ rendering
    def _title(self) -> str:
        return f"{self.model}: {self.method.upper()} " + (
            "word weights" if self.kind == "text" else f"{self.settings['similarity']} similarity")

    def to_text(self, width: int = 80, colour: bool = True, top: int = 10) -> str:
        """The explanation as terminal text, wrapped at ``width`` (``colour=False``: plain, values in brackets)."""
        from .views import ansi_words, fit_lines, reference_sentence, score_line, wrap

        lines = [self._title()]
        if self.kind == "text":
            lines += wrap(ansi_words(self.table["word"], self.table["weight"], colour, signed=False), width)
            lines.append(f"top words: {top_words(self.table, 'weight', top)}")
            lines.append(f"completeness gap {self.numbers['completeness_gap']:.2%}")
        else:
            for name, marks in zip(("a", "b"), self.marks):
                lines.append(f"{name}:")
                lines += wrap(ansi_words(marks["word"], marks["contribution"], colour, signed=True), width)
            lines.append(score_line(self.numbers, self.settings["similarity"]))
            lines.append(reference_sentence(self.numbers))
            lines.append(f"top pairs: {top_pairs(self.table, 'contribution', top)}")
        lines += ["note: " + note for note in self.notes]
        return fit_lines(lines, width)

    def _body(self) -> str:
        from .publishing import page_url
        from .views import pair_matrix_svg, reference_sentence, score_line, spans

        head = f"<p style='font-size:1.1em'><b>{html.escape(self._title())}</b></p>"
        if self.kind == "text":
            body = f'<p class="t">{spans(self.table["word"], self.table["weight"], False)}</p>'
            body += f"<p>completeness gap {self.numbers['completeness_gap']:.2%}</p>"
            body += ("<details><summary>the table</summary>" + self.table.round(4).to_html(index=False, classes="table")
                     + "</details>")
        else:
            body = "".join(f'<p class="t"><span class="lbl">{"first" if name == "a" else "second"} text</span> '
                           f'{spans(m["word"], m["contribution"], True)}</p>' for name, m in zip("ab", self.marks))
            body += pair_matrix_svg(self.matrix(), self.marks[0]["contribution"], self.marks[1]["contribution"])
            body += f"<p class='score'>{html.escape(score_line(self.numbers, self.settings['similarity']))}</p>"
            body += (f"<p>{html.escape(reference_sentence(self.numbers))} <a href="
                     f"'{page_url('10_pair_similarity', 'equation-eq-pair')}'>Chapter 10</a> derives the "
                     "decomposition.</p>")
            body += ("<details><summary>every word pair (the table)</summary>"
                     + self.table.round(4).to_html(index=False, classes="table") + "</details>")
        body += "".join(f"<p class='n'>{html.escape(n)}</p>" for n in self.notes)
        return head + body

    def to_html(self, path=None, full: bool = True) -> str:
        """A self-contained HTML page (inline styles and SVG, no script, nothing loaded from a network); written to
        ``path`` when given. Every word is a span whose title holds its value; a pair's matrix cells carry their
        contribution in ``data-value``. ``full=False``: a fragment to embed in a notebook or a page."""
        from .views import page

        return page(self._body(), full, path, title=f"{self.model}: explanation")

    def _repr_html_(self) -> str:
        return self.to_html(full=False)

    def show(self, width: int | None = None) -> None:
        """HTML in a notebook; coloured text in a terminal (plain text when the output is not a terminal)."""
        show_view(self, width)

    def plot(self):
        """A matplotlib figure (for papers and the book): a text's word weights as bars in sentence order; a pair's
        matrix with each word's total in the margins. Returns the figure."""
        from . import views

        if self.kind == "text":
            return views.word_strip({self.model: self.table}, title=self.texts[0])
        return views.pair_matrix({self.model: self.matrix()}, title=_pair_title(self))

    # ------------------------------------------------------------------ storage and other libraries
    #: The format of :meth:`save`'s files (2: every column with its dtype, and a sha256 of the content).
    FORMAT = 2

    def to_dict(self) -> dict:
        """The explanation as the JSON object :meth:`save` writes (with its sha256)."""
        content = {"format": self.FORMAT, "kind": self.kind, "model": self.model, "texts": list(self.texts),
                   "method": self.method, "table": _frame_to_json(self.table),
                   "marks": [_frame_to_json(m) for m in self.marks], "numbers": _plain(self.numbers),
                   "notes": list(self.notes), "settings": _plain(self.settings)}
        return {**content, "sha256": _digest(content)}

    def save(self, path) -> Path:
        """Write the explanation as JSON (the table, marks, numbers, notes and settings), every column with its
        dtype so that any text reads back exactly ("007" stays a word, never the number 7), and a sha256 of the
        content that :meth:`load` checks. Written to a temporary file, then renamed: never half a file."""
        from .config import write_text_atomic

        return write_text_atomic(path, json.dumps(self.to_dict(), indent=1), "explanation file")

    @classmethod
    def load(cls, path) -> "Explanation":
        """Read an explanation :meth:`save` wrote; a file cut short, edited or of another format is an error
        naming the file and what is wrong."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise FileNotFoundError(f"{path}: no such explanation file.") from None
        except (ValueError, UnicodeDecodeError) as exc:
            raise ValueError(f"{path} is not a complete explanation file ({exc}): it was cut short or damaged. "
                             "Save the explanation again (Explanation.save, or explain --json).") from None
        return cls.from_dict(data, str(path))

    @classmethod
    def from_dict(cls, data, where: str = "the explanation") -> "Explanation":
        """An explanation from :meth:`to_dict`'s object, its format and sha256 checked (``where`` names the file
        and line in errors)."""
        if not isinstance(data, dict) or data.get("format") != cls.FORMAT:
            found = data.get("format", "none") if isinstance(data, dict) else type(data).__name__
            raise ValueError(f"{where} is not an explanation file of format {cls.FORMAT} (found format {found}): "
                             "files of earlier versions stored words as JSON values that read back as numbers "
                             "('007' as 7). Explain the text again and save it.")
        required = {"kind", "model", "texts", "method", "table", "marks", "numbers", "notes", "settings", "sha256"}
        missing = sorted(required - set(data))
        if missing:
            raise ValueError(f"{where} lacks {', '.join(missing)}: it is not a whole explanation file. Save it again.")
        data = dict(data)
        stored = data.pop("sha256")
        if stored != _digest(data):
            raise ValueError(f"{where}: its content does not match the sha256 stored with it (edited or damaged "
                             "after it was saved), so its numbers are not served. Explain the text again and save it.")
        try:
            table, marks = _frame_from_json(data["table"]), [_frame_from_json(m) for m in data["marks"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{where}: a table in it cannot be read ({exc}). Save the explanation again.") from None
        return cls(kind=data["kind"], model=data["model"], texts=data["texts"], method=data["method"], table=table,
                   marks=marks, numbers=data["numbers"], notes=data["notes"], settings=data["settings"])

    def to_shap(self):
        """A ``shap.Explanation`` whose values add up as shap's do (``base_values + values.sum()`` = f(x)), so that
        ``shap.plots.text(e.to_shap())`` draws it. One text: each word's share of the text's total weight (IG
        weights are norms, not additive parts of one number, so f(x) = 1 is "the whole attribution"). A pair: both
        texts' words (the second after a ``[SEP]`` marker of value 0), each word carrying half of its total over
        the other text's words (every pair counted once), and ``base_values`` = score - pairs (the reference terms
        and the gap), so f(x) is the model's score.

        shap 0.51.0 (the newest release) writes its colours as ``rgba(np.float64(...))`` under numpy 2, which
        browsers ignore; the fix (shap#4332) is merged but not released: :func:`shap_text_html` repairs the page."""
        import shap

        if self.kind == "text":
            weights = self.table["weight"].to_numpy(float)
            values, words, base = weights / weights.sum(), self.table["word"].astype(str).tolist(), 0.0
        else:
            a, b = self.marks
            values = np.concatenate([0.5 * a["contribution"].to_numpy(float), [0.0],
                                     0.5 * b["contribution"].to_numpy(float)])
            words = a["word"].astype(str).tolist() + ["[SEP]"] + b["word"].astype(str).tolist()
            base = self.numbers["score"] - float(values.sum())
        return shap.Explanation(values=values, base_values=base, data=np.array([w + " " for w in words], dtype=object),
                                feature_names=words)

    # ------------------------------------------------------------------ how far to trust it
    def faithfulness(self, k_max: int = 10, n_random: int = 20, removal: str = "mask", seed: int = 0) -> dict:
        """Deletion AOPC of this explanation's ranking (words removed highest weight first, up to ``k_max``), of
        ``n_random`` random orderings, and of the best and worst orderings a greedy search finds; ``normalised``
        = (AOPC - worst) / (best - worst): 1 as good as the best ordering found, 0 as bad as the worst, and
        ``random_normalised`` the same for the random orderings' mean (Edin et al., normalised AOPC). Where there
        is no ordering to judge (a one-word text, or every ordering equal) the numbers are NaN and ``reason`` says
        why; otherwise ``reason`` is empty."""
        from .faithfulness import aopc, deletion_curve, greedy_bounds

        if self.kind != "text":
            raise ValueError("faithfulness() measures a single text's word ranking; explain one text for it.")
        if self._encoder is None:
            raise ValueError("this explanation was loaded from a file and has no model; explain the text again.")
        if len(self.texts[0]) and n_tokens(self._encoder, self.texts[0]) > self._encoder.max_length:
            raise ValueError("faithfulness() needs a text the model reads whole; this one is longer than its limit.")
        sentences = pd.DataFrame({"sentence_id": [0], "text": self.texts[0]})
        words = self.table[["word_index", "word"]].assign(sentence_id=0)
        if len(words) < 2:
            return self._unjudged(k_max, removal, f"a text of {len(words)} word has no ordering of its words to judge")
        own = words.assign(score=self.table["weight"].to_numpy())
        k = min(k_max, len(words))
        curve = deletion_curve(self._encoder, sentences, own, k_max=k, removal=removal)
        value = aopc(curve, n_boot=1)["aopc"]
        rng = np.random.default_rng(seed)
        randoms = [aopc(deletion_curve(self._encoder, sentences, words.assign(score=rng.permutation(len(words))),
                                       k_max=k, removal=removal), n_boot=1)["aopc"] for _ in range(n_random)]
        worst, best = greedy_bounds(self._encoder, self.texts[0], k, removal)
        if not best - worst > 1e-12 * max(1.0, abs(best)):
            return {**self._unjudged(k, removal, "every ordering deletes the words with the same effect (best = "
                                     "worst), so no ordering is better than another"), "aopc": value,
                    "best": best, "worst": worst}
        span = best - worst
        return {"aopc": value, "random_mean": float(np.mean(randoms)), "random_low": float(np.quantile(randoms, 0.025)),
                "random_high": float(np.quantile(randoms, 0.975)), "best": best, "worst": worst,
                "normalised": (value - worst) / span, "random_normalised": (float(np.mean(randoms)) - worst) / span,
                "k_max": k, "removal": removal, "reason": ""}

    @staticmethod
    def _unjudged(k_max: int, removal: str, reason: str) -> dict:
        """faithfulness() where there is nothing to judge: NaN with the reason (never 0, "as bad as the worst")."""
        nan = float("nan")
        return {"aopc": nan, "random_mean": nan, "random_low": nan, "random_high": nan, "best": nan, "worst": nan,
                "normalised": nan, "random_normalised": nan, "k_max": int(k_max), "removal": removal, "reason": reason}


def _pair_title(e: "Explanation") -> str:
    return f"{e.settings['similarity']} similarity {e.numbers['score']:.3f}: {e.texts[0]!r} ~ {e.texts[1]!r}"


def show_view(view, width):
    """Show an explanation (or a set of them) where it is asked for: its HTML in a notebook, its text elsewhere."""
    try:
        from IPython import get_ipython

        in_kernel = get_ipython() is not None and "IPKernelApp" in get_ipython().config
    except ImportError:
        in_kernel = False
    if in_kernel:
        from IPython.display import HTML, display

        display(HTML(view.to_html(full=False)))
    else:
        import shutil

        print(view.to_text(width or shutil.get_terminal_size().columns, colour=sys.stdout.isatty()))


def shap_text_html(explanation) -> str:
    """``shap.plots.text(explanation.to_shap(), display=False)`` with its colours repaired: shap 0.51.0 writes
    ``rgba(np.float64(255.0), ...)`` under numpy 2, which browsers ignore (shap#4146; fixed in shap#4332, not yet
    released). Written here only until a shap release carries the fix; with one, the page is returned unchanged."""
    import re

    import shap

    page = shap.plots.text(explanation.to_shap(), display=False)
    return re.sub(r"np\.float(?:64|32)\(([^()]*)\)", r"\1", page)


def _plain(value):
    """Numbers, strings, lists and dicts as JSON holds them (numpy scalars become Python's)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _digest(content: dict) -> str:
    """sha256 of an explanation file's content (canonical JSON: sorted keys, ASCII escapes, so any string has one
    digest; floats as Python writes them, which read back exactly)."""
    import hashlib

    return hashlib.sha256(json.dumps(content, sort_keys=True).encode("ascii")).hexdigest()


def _frame_to_json(frame: pd.DataFrame) -> dict:
    """A table as columns of plain values with their dtypes: no JSON type inference on the way back. pandas'
    ``to_json``/``read_json`` would read the word "007" as 7 and "nan" as NaN; this keeps every value."""
    return {"columns": [str(c) for c in frame.columns], "dtypes": [str(t) for t in frame.dtypes],
            "data": [_plain(frame[c].tolist()) for c in frame.columns]}


def _frame_from_json(spec: dict) -> pd.DataFrame:
    columns, dtypes, data = spec["columns"], spec["dtypes"], spec["data"]
    if not len(columns) == len(dtypes) == len(data) or len({len(v) for v in data}) > 1:
        raise ValueError("its columns, dtypes and values do not line up")
    out = {}
    for name, dtype, values in zip(columns, dtypes, data):
        if dtype in ("object", "str", "string"):  # text stays text, whatever it looks like
            out[name] = pd.Series(values, dtype=object if dtype == "object" else dtype)
        else:
            out[name] = pd.Series([np.nan if v is None else v for v in values], dtype=dtype)
    return pd.DataFrame(out, columns=columns)


# --------------------------------------------------------------------------- the command line
def unwritable(target) -> str | None:
    """Why a file cannot be written at ``target`` (None: it can), checked before any work is done."""
    import os

    if target is None:
        return None
    path = Path(target)
    if path.is_dir():
        return "is a folder; name a file in it"
    parent = path.parent
    if not parent.is_dir():
        return f"its folder {parent} does not exist; create it first (mkdir -p {parent})"
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        return "cannot be written here (permissions)"
    return None
