"""Explain your own encoder in one call (study layer): which words drive an embedding, or a similarity score.

:func:`explain` takes a ``SentenceTransformer`` object, a sentence-transformers folder, a hub name or an
:class:`helpers.encoders.Encoder` and returns an :class:`Explanation`:

* one text: the weight of every word over *all* output dimensions (IG by default, sketched; SHAP on
  request; the book's Eqs. eq-ig-norm and eq-sketch), with each word's KL and self-information when a
  reference corpus is given, and the completeness gap;
* two texts: the signed contribution of every word pair to the score the model itself reports
  (``model.similarity``: cosine for most sentence-transformers models, dot where the model says so;
  Eq. eq-pair), each text's words marked by how much they raise or lower it, and the reference terms.

The defaults reproduce what ``model.encode()`` computes: the model's own pooling, Dense layers,
Normalize and ``max_seq_length`` (the book's own chapters keep their documented, unnormalised setting).
A text longer than the model reads is refused with its length and the limit, unless ``long="windows"``
(overlapping windows; the combining rule is in :func:`explain`) or ``long="truncate"`` (what
``model.encode()`` does: the words past the limit get no weight, and the explanation says how many).

``Explanation.faithfulness()`` measures how much the explanation can be trusted: the deletion AOPC of its
own ranking against random orderings, normalised between the worst and best orderings a greedy search
finds (normalised AOPC; raw AOPC is not comparable across models).
"""
from __future__ import annotations

import dataclasses
import html
import json
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["explain", "Explanation", "similarity_of", "LONG", "main"]

#: What to do with a text longer than the model reads.
LONG = ("refuse", "windows", "truncate")
#: Sketch size of the default (single-text) IG: k random output directions (Eq. eq-sketch).
DEFAULT_PROJECTIONS = 16
#: Names other libraries use for what the book calls ``method="ig"`` / ``"shap"``.
_OTHER_NAMES = {"integrated_gradients": "ig", "integratedgradients": "ig", "integrated-gradients": "ig",
                "partition": "shap", "partitionshap": "shap", "kernelshap": "shap", "shapley": "shap"}


def similarity_of(model, encoder=None) -> str:
    """The similarity function the model reports (``model.similarity()``): a ``SentenceTransformer``'s
    ``similarity_fn_name``, else the one its loaded :class:`~helpers.encoders.Encoder` read from the folder or
    hub repository (``config_sentence_transformers.json``), else cosine (the sentence-transformers default)."""
    from .encoders import Encoder, load_encoder, similarity_name

    if type(model).__name__ == "SentenceTransformer":
        return similarity_name(getattr(model, "similarity_fn_name", None))
    if encoder is None:
        encoder = model if isinstance(model, Encoder) else load_encoder(model)
    return similarity_name(encoder.similarity_fn_name)


def _load(model, device) -> tuple:
    """(the encoder as ``model.encode()`` computes, a note on the pooling it follows). A setting of the model that
    changes ``encode()`` and that the explanation cannot follow is refused, naming it."""
    from .encoders import Encoder, PoolingChoice, Truncate, UnsupportedPooling, load_encoder

    if isinstance(model, Encoder):
        encoder, note = model, (f"pooling {model.pooling}, normalised output: {bool(model.normalize)} (the Encoder "
                                "as given)")
    else:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", PoolingChoice)  # stated in the explanation's notes instead
                encoder = load_encoder(model, normalize="auto", device=device)
        except UnsupportedPooling as err:
            raise ValueError(f"{str(err).split(';')[0]}. explain() computes what model.encode() computes, so it never "
                             "changes the model's pooling. To explain a mean-pooled variant instead (another model "
                             "than yours), load it with helpers.encoders.load_encoder(model, pooling='mean', "
                             "normalize='auto') and pass that Encoder.") from None
        note = (f"as model.encode() computes: pooling {encoder.pooling}, normalised output {bool(encoder.normalize)}, "
                f"at most {encoder.max_length} tokens")
    if encoder.prompt:
        raise ValueError(f"the model writes its default prompt {encoder.prompt!r} before every text (its "
                         "default_prompt_name), so model.encode() reads the prompt's words too: set "
                         "model.default_prompt_name = None to explain the text alone, or write the prompt into the "
                         "text to explain it with the prompt.")
    truncate = [m.dim for m in encoder.post if isinstance(m, Truncate)]
    if truncate:
        note += f"; the sentence vector truncated to its first {truncate[-1]} dimensions (truncate_dim), as encode() does"
    return encoder, note


def _check_method(method: str) -> str:
    from .attribution import QUADRATURES, methods

    if not isinstance(method, str):
        raise TypeError(f"method must be a string ('ig' or 'shap'), got {type(method).__name__}.")
    key = method.lower()
    if key in QUADRATURES:
        raise ValueError(f"method={method!r} is a quadrature rule (captum's IntegratedGradients.attribute(method=...)); "
                         "here `method` picks the attribution method ('ig' or 'shap') and the rule is `quadrature=`.")
    if key in _OTHER_NAMES:
        raise ValueError(f"method={method!r}: the book calls this method {_OTHER_NAMES[key]!r}; pass "
                         f"method={_OTHER_NAMES[key]!r}.")
    if key not in methods():
        raise ValueError(f"method must be one of {methods()}, got {method!r}.")
    return key


def _n_tokens(encoder, text: str) -> int:
    return len(encoder.tokenizer(text, add_special_tokens=True, verbose=False)["input_ids"])


def _windows(encoder, text: str, overlap: float = 0.5) -> list[tuple[int, str]]:
    """Overlapping windows of whole words that each fit the model: [(index of the window's first word, text)]."""
    from .units import word_units

    units = [u for u in word_units(text, encoder.tokenizer)]
    spans = [(u["start"], u["end"]) for u in units]
    cost = [max(1, len(encoder.tokenizer(text[s:e], add_special_tokens=False, verbose=False)["input_ids"]))
            for s, e in spans]
    budget = encoder.max_length - 2 - 8  # the special tokens, and a margin for tokens a space may add
    windows, first = [], 0
    while first < len(units):
        last, used = first, 0
        while last < len(units) and used + cost[last] <= budget:
            used += cost[last]
            last += 1
        last = max(last, first + 1)
        while last > first + 1 and _n_tokens(encoder, text[spans[first][0]:spans[last - 1][1]]) > encoder.max_length:
            last -= 1  # the estimate was short: give back words until the window fits
        windows.append((first, text[spans[first][0]:spans[last - 1][1]]))
        if last >= len(units):
            break
        first = max(first + 1, last - int((last - first) * overlap))
    return windows


def _text_weights(encoder, text, method, options, long, progress):
    """Word weights of one text, in windows when it is long: (table, notes)."""
    from .attribution import word_weights

    notes = []
    too_long = _n_tokens(encoder, text) > encoder.max_length
    if too_long and long == "refuse":
        raise ValueError(f"the text has {_n_tokens(encoder, text)} tokens and the model reads at most "
                         f"{encoder.max_length} (its max_seq_length or position limit); pass long='windows' to explain it in overlapping "
                         "windows, or long='truncate' to explain what model.encode() computes (the first "
                         f"{encoder.max_length} tokens).")
    if not too_long or long == "truncate":
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            table = word_weights(encoder, [text], method=method, progress=progress, gap_warning=float("inf"),
                                 **options)
        if too_long:
            n_words = len([u for u in _units(encoder, text) if u["word"] is not None])
            notes.append(f"truncated as model.encode() does: the model reads the first {encoder.max_length} tokens, "
                         f"so {n_words - len(table)} of the {n_words} words get no weight")
        for w in caught:
            if "truncated" not in str(w.message):
                warnings.warn(w.message, w.category, stacklevel=3)
        return table, notes
    parts = []
    for n, (first, window) in enumerate(_windows(encoder, text)):
        t = word_weights(encoder, [window], method=method, progress=False, gap_warning=float("inf"), **options)
        parts.append(t.assign(word_index=t["word_index"] + first, window=n))
    every = pd.concat(parts, ignore_index=True)
    words = [u["word"] for u in _units(encoder, text)]
    if any(words[i] != w for i, w in zip(every["word_index"], every["word"])):
        raise RuntimeError("a window's words do not line up with the text's; please report this text.")
    table = (every.groupby("word_index", sort=True)
             .agg(word=("word", "first"), weight=("weight", "mean"), raw_weight=("raw_weight", "mean"),
                  n_subwords=("n_subwords", "first"), completeness_gap=("completeness_gap", "max"),
                  windows=("window", "nunique")).reset_index())
    table["weight"] = table["weight"] / table["weight"].mean()
    table.insert(0, "sentence_id", 0)
    table.attrs.update(parts[0].attrs)
    notes.append(f"explained in {len(parts)} overlapping windows of at most {encoder.max_length} tokens (half a "
                 "window's overlap); a word's weight is the mean of its weights (each window normalised to mean 1) "
                 "over the windows that contain it, renormalised to mean 1 over the text; the completeness gap is "
                 "the largest window's")
    return table, notes


def _units(encoder, text):
    from .units import word_units

    return word_units(text, encoder.tokenizer)


def _reference_table(reference, encoder, data_dir):
    from .information import word_information
    from .units import check_casing, check_same_units

    if reference is None:
        return None
    if isinstance(reference, pd.DataFrame) and {"word", "kl", "self_info"} <= set(reference.columns):
        check_same_units(attrs_units(encoder), reference, "the model's words", "the reference table")
        check_casing(encoder.tokenizer, reference["word"], "the reference table")
        return reference
    if isinstance(reference, str):
        from .explorer import reference_information

        return reference_information(reference, data_dir, encoder.tokenizer)
    return word_information(reference, tokenizer=encoder.tokenizer)


def _check_applies(method, other, **given) -> None:
    """Refuse an argument that does not apply to this call (it would be dropped silently), naming it."""
    pair = other is not None
    wrong = []
    if pair and given["reference"] is not None:
        wrong.append("reference (a pair's explanation has no KL and I: explain one text for them)")
    if not pair and given["similarity"] is not None:
        wrong.append("similarity (it picks the score of a pair: pass a second text)")
    if method != "shap" and given["max_evals"] is not None:
        wrong.append("max_evals (SHAP's budget: pass method='shap')")
    if method == "shap" and given["exact"]:
        wrong.append("exact (IG's sketch or every output; SHAP has no sketch)")
    if wrong:
        raise ValueError(f"{'; '.join(wrong)}: {'this option does' if len(wrong) == 1 else 'these options do'} not "
                         "apply to this call, and would change nothing. Leave it out.")


def attrs_units(encoder) -> pd.DataFrame:
    """An empty table that carries the encoder's word units (for :func:`helpers.units.check_same_units`)."""
    from .units import units_key

    t = pd.DataFrame()
    t.attrs["units"] = units_key(encoder.tokenizer)
    return t


def explain(model, text: str, other: str | None = None, method: str = "ig", reference=None, exact: bool = False,
            n_steps: int = 20, projections: int | None = DEFAULT_PROJECTIONS, baseline: str = "pad",
            quadrature: str = "gausslegendre", max_evals: int | None = None, similarity: str | None = None,
            long: str = "refuse", batch_size: int = 64, internal_batch_size: int = 4, show_progress_bar: bool = False,
            device=None, data_dir=None, seed: int = 0, cache=True, precision: str = "fp32") -> "Explanation":
    """Explain ``text`` (its word weights), or the similarity of ``text`` and ``other`` (word-pair contributions).

    ``model``: a ``SentenceTransformer``, a sentence-transformers folder, a hub name, or an ``Encoder``.
    ``method``: ``"ig"`` (Integrated Gradients over every output, the default) or ``"shap"`` (PartitionSHAP).
    ``exact``: IG over every output dimension; by default a text's IG is sketched with ``projections`` random
    output directions (Eq. eq-sketch; chapter 03 measures the sketch's error) and a pair is always exact.
    ``reference``: a corpus for KL and I (a dataset name, a list of sentences, or a ``word_information`` table
    in the model's word units); ``None``: no KL and I. ``similarity``: the pair score, by default the model's
    own (``cosine`` or ``dot``). ``long``: ``"refuse"`` a text longer than the model reads, explain it in
    overlapping ``"windows"`` (each word's weight is its mean over the windows containing it, each window
    normalised to mean 1; pairs are refused), or ``"truncate"`` it as ``model.encode()`` does.

    Names as sentence-transformers and captum use them: ``batch_size`` (SHAP's model calls per batch),
    ``show_progress_bar``, ``device``, ``n_steps`` (IG's quadrature points), ``internal_batch_size`` (how
    many output directions IG pushes back at once: the memory knob, as captum's bounds memory).
    ``cache``: True (the book's attribution cache: explaining the same text again is instant), a path, or False.
    ``precision``: ``fp32``, ``bf16`` (the model's passes in bfloat16, :mod:`helpers.precision`; the stated gap
    is measured against fp32 outputs, so it includes the rounding) or ``auto`` (bf16 where the hardware
    computes it natively, else fp32); the explanation's notes say which was used.
    """
    from .attribution import BASELINES, QUADRATURES
    from .config import check_count

    method = _check_method(method)
    if long not in LONG:
        raise ValueError(f"long must be one of {LONG}, got {long!r}.")
    for name, value in (("text", text), ("other", other)):
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise ValueError(f"{name} must be a non-empty string, got {value!r}.")
    check_count("n_steps", n_steps, 1)
    check_count("batch_size", batch_size, 1)
    check_count("internal_batch_size", internal_batch_size, 1)
    check_count("projections", projections, 1, allow_none=True)
    if baseline not in BASELINES:
        raise ValueError(f"baseline must be one of {BASELINES}, got {baseline!r}.")
    if quadrature not in QUADRATURES:
        raise ValueError(f"quadrature must be one of {QUADRATURES}, got {quadrature!r}.")
    _check_applies(method, other, reference=reference, similarity=similarity, max_evals=max_evals, exact=exact,
                   long=long)
    from .precision import check_precision, hardware, resolve

    check_precision(precision, allow_auto=True)
    encoder, loaded = _load(model, device)
    used = resolve(precision, encoder.device)
    if used != "fp32":
        units = hardware(encoder.device.type)["units"]
        loaded += (f"; computed in {used} ({'on ' + ', '.join(units) if units else 'emulated: slower, not faster'}; "
                   "precision='fp32' for full precision)")
    info = _reference_table(reference, encoder, data_dir)
    label = getattr(encoder, "name", str(model))
    if other is None:
        options = ({"n_steps": n_steps, "quadrature": quadrature, "baseline": baseline,
                    "projections": None if exact else projections, "chunk_size": internal_batch_size, "seed": seed,
                    "precision": used}
                   if method == "ig" else {"max_evals": max_evals, "shap_batch_size": batch_size, "precision": used})
        options["cache"] = cache
        table, notes = _text_weights(encoder, text, method, options, long, show_progress_bar)
        notes.insert(0, loaded)
        table = table.drop(columns=["sentence_id"])
        if info is not None:
            table = table.merge(info[["word", "kl", "self_info"]], on="word", how="left")
            table["seen"] = table["kl"].notna()
        if method == "ig" and not exact and projections:
            notes.append(f"IG sketched with {projections} random output directions of {encoder.dim} (Eq. eq-sketch): "
                         "each weight is an unbiased estimate; chapter 03 measures its error on real sentences "
                         "(pass exact=True, or --exact, for every direction)")
        return Explanation(kind="text", model=label, texts=[text], method=method, table=table.reset_index(drop=True),
                           marks=[], numbers={"completeness_gap": float(table["completeness_gap"].max()),
                                              "dim": int(encoder.dim)},
                           notes=notes, settings={"method": method, "exact": exact, "n_steps": n_steps,
                                                  "projections": None if exact else projections, "baseline": baseline,
                                                  "long": long, "normalize": bool(encoder.normalize),
                                                  "precision": used},
                           _encoder=encoder)
    if method != "ig":
        raise ValueError("pairs are explained by IG only (its word-pair decomposition, Eq. eq-pair); use method='ig'.")
    own = similarity_of(model, encoder)
    similarity = (similarity or own).lower()
    if similarity not in ("cosine", "dot"):
        raise ValueError(f"the model reports its similarity as {similarity!r}; a pair decomposes only for 'cosine' "
                         "or 'dot' (pass similarity='cosine' or 'dot' to explain one of those).")
    for name, value in (("text", text), ("other", other)):
        if _n_tokens(encoder, value) > encoder.max_length and long != "truncate":
            raise ValueError(f"{name} has {_n_tokens(encoder, value)} tokens and the model reads at most "
                             f"{encoder.max_length}: shorten it, or pass long='truncate' to explain what the model "
                             "computes (windows do not apply to a pair's single score).")
    from .attribution.pairs import pair_weights

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the truncation, when long='truncate', is stated below instead
        table = pair_weights(encoder, text, other, n_steps=n_steps, similarity=similarity, baseline=baseline,
                             seed=seed, cache=cache, precision=used)
    marks = [table.groupby(["index_a", "word_a"], sort=True)["contribution"].sum().reset_index()
             .rename(columns={"index_a": "word_index", "word_a": "word"}),
             table.groupby(["index_b", "word_b"], sort=True)["contribution"].sum().reset_index()
             .rename(columns={"index_b": "word_index", "word_b": "word"})]
    numbers = {"score": float(table.attrs["score"]), "reference": float(table.attrs["reference"]),
               "sum_of_contributions": float(table["contribution"].sum()),
               "completeness_gap": float(table.attrs["completeness_gap"]),
               "gap_of_contributions": float(table.attrs["gap_of_contributions"])}
    said = ("as model.similarity() computes it" if similarity == own else
            f"as you asked; model.similarity() computes the {own} similarity")
    notes = [loaded, f"score = {similarity} similarity, {said} = sum of the word-pair contributions + the reference "
             "terms (what any two texts share through the baseline) + the completeness gap"]
    return Explanation(kind="pair", model=label, texts=[text, other], method="ig", table=table.reset_index(drop=True),
                       marks=marks, numbers=numbers, notes=notes,
                       settings={"method": "ig", "exact": True, "n_steps": n_steps, "baseline": baseline,
                                 "similarity": similarity, "precision": used}, _encoder=encoder)


@dataclasses.dataclass
class Explanation:
    """What :func:`explain` returns: ``table`` (a DataFrame), ``marks`` (pairs: each text's words with the sum of
    their contributions), ``numbers`` (the gap; for pairs the score and reference terms), ``notes``."""

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

    # ------------------------------------------------------------------ rendering
    def _coloured(self, words, values, colour: bool, signed: bool) -> str:
        """Words on a background by value (ANSI 256 colours): red up, blue down for signed values."""
        top = max(float(np.max(np.abs(values))) if len(values) else 0.0, 1e-12)
        out = []
        for w, v in zip(words, values):
            if not colour:
                out.append(f"{w}[{v:+.2f}]" if signed else f"{w}[{v:.2f}]")
                continue
            level = int(min(5, round(5 * abs(v) / top)))
            red = [231, 224, 217, 210, 203, 196][level]
            blue = [231, 195, 153, 111, 69, 27][level]
            code = blue if signed and v < 0 else red
            fg = "97" if level >= 4 else "30"
            out.append(f"\x1b[48;5;{code}m\x1b[{fg}m{w}\x1b[0m")
        return " ".join(out)

    def to_text(self, width: int = 80, colour: bool = True, top: int = 10) -> str:
        """The explanation as terminal text, wrapped at ``width`` (``colour=False``: plain, values in brackets)."""
        lines = [f"{self.model} · {self.method.upper()} · " + (
            "word weights" if self.kind == "text" else f"{self.settings['similarity']} similarity")]
        if self.kind == "text":
            body = self._coloured(self.table["word"], self.table["weight"].to_numpy(), colour, signed=False)
            lines += _wrap(body, width, colour)
            ranked = self.table.sort_values("weight", ascending=False).head(top)
            lines.append("top words: " + ", ".join(f"{w} {v:.2f}" for w, v in zip(ranked["word"], ranked["weight"])))
            lines.append(f"completeness gap {self.numbers['completeness_gap']:.2%}")
        else:
            for name, marks in zip(("a", "b"), self.marks):
                lines.append(f"{name}:")
                lines += _wrap(self._coloured(marks["word"], marks["contribution"].to_numpy(), colour, signed=True),
                               width, colour)
            n = self.numbers
            lines.append(f"score {n['score']:.4f} = pairs {n['sum_of_contributions']:.4f} + reference "
                         f"{n['reference']:.4f} (gap {n['completeness_gap']:.2%} of the score, "
                         f"{n['gap_of_contributions']:.2%} of the pairs' absolute sum)")
            ranked = self.table.reindex(self.table["contribution"].abs().sort_values(ascending=False).index).head(top)
            lines.append("top pairs: " + ", ".join(f"{a}~{b} {c:+.3f}" for a, b, c in
                                                   zip(ranked["word_a"], ranked["word_b"], ranked["contribution"])))
        lines += ["note: " + note for note in self.notes]
        out = []
        for line in lines:  # every line fits the width (coloured lines were wrapped already)
            out += [line] if "\x1b[" in line or len(line) <= width else textwrap.wrap(line, width,
                                                                                     break_long_words=True)
        return "\n".join(out)

    def to_html(self, path=None, full: bool = True) -> str:
        """A self-contained HTML page (inline styles, no script, nothing loaded from a network); written to
        ``path`` when given. Every word is a span whose title holds its value. ``full=False``: a fragment to
        embed in a notebook or a page (its styles scoped to it)."""
        from .explorer import palette

        colours = palette()

        def spans(words, values, signed):
            top = max(float(np.max(np.abs(values))) if len(values) else 0.0, 1e-12)
            out = []
            for w, v in zip(words, values):
                level = min(255, int(abs(v) / top * 0.85 * 256))
                if signed and v < 0:
                    r, g, b = (int(255 - (255 - c) * level / 255) for c in (33, 102, 172))
                    bg = f"rgb({r},{g},{b})"
                else:
                    bg = colours[level]
                fg = "white" if level > 150 else "black"
                out.append(f'<span class="w" style="background:{bg};color:{fg}" title="{v:+.4f}">'
                           f'{html.escape(str(w))}</span>')
            return " ".join(out)

        head = (f"<p style='font-size:1.1em'><b>{html.escape(self.model)}: {self.method.upper()} "
                f"{'word weights' if self.kind == 'text' else html.escape(self.settings['similarity']) + ' similarity'}"
                "</b></p>")
        if self.kind == "text":
            body = f'<p class="t">{spans(self.table["word"], self.table["weight"].to_numpy(), False)}</p>'
            body += self.table.round(4).to_html(index=False, classes="table")
            body += f"<p>completeness gap {self.numbers['completeness_gap']:.2%}</p>"
        else:
            body = "".join(f'<p class="t"><b>{name}</b> {spans(m["word"], m["contribution"].to_numpy(), True)}</p>'
                           for name, m in zip("ab", self.marks))
            n = self.numbers
            body += (f"<p>score {n['score']:.4f} = word pairs {n['sum_of_contributions']:.4f} + reference "
                     f"{n['reference']:.4f}; gap {n['completeness_gap']:.2%} of the score, "
                     f"{n['gap_of_contributions']:.2%} of the pairs' absolute sum</p>")
            body += self.table.round(4).to_html(index=False, classes="table")
        notes = "".join(f"<p class='n'>{html.escape(n)}</p>" for n in self.notes)
        scope = ".sww-explanation "
        style = (f"{scope}.t{{font-size:1.2em;line-height:2}}{scope}.w{{padding:2px 4px;border-radius:3px}}"
                 f"{scope}.n{{color:#555;font-size:.9em}}{scope}table{{border-collapse:collapse;font-size:.85em}}"
                 f"{scope}td,{scope}th{{padding:2px 6px;border-bottom:1px solid #ddd}}")
        fragment = f'<div class="sww-explanation"><style>{style}</style>{head}{body}{notes}</div>'
        if not full:
            return fragment
        page = ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>Explanation</title>"
                "<style>body{font-family:sans-serif;max-width:60em;margin:1em auto}</style></head>"
                f"<body>{fragment}</body></html>")
        if path is not None:
            Path(path).write_text(page, encoding="utf-8")
        return page

    def _repr_html_(self) -> str:
        return self.to_html(full=False)

    def show(self, width: int | None = None) -> None:
        """HTML in a notebook; coloured text in a terminal (plain text when the output is not a terminal)."""
        try:
            from IPython import get_ipython

            in_kernel = get_ipython() is not None and "IPKernelApp" in get_ipython().config
        except ImportError:
            in_kernel = False
        if in_kernel:
            from IPython.display import HTML, display

            display(HTML(self.to_html(full=False)))
        else:
            import shutil

            print(self.to_text(width or shutil.get_terminal_size().columns, colour=sys.stdout.isatty()))

    # ------------------------------------------------------------------ storage and other libraries
    #: The format of :meth:`save`'s files (2: every column with its dtype, and a sha256 of the content).
    FORMAT = 2

    def save(self, path) -> Path:
        """Write the explanation as JSON (the table, marks, numbers, notes and settings), every column with its
        dtype so that any text reads back exactly ("007" stays a word, never the number 7), and a sha256 of the
        content that :meth:`load` checks. Written to a temporary file, then renamed: never half a file."""
        import os

        content = {"format": self.FORMAT, "kind": self.kind, "model": self.model, "texts": list(self.texts),
                   "method": self.method, "table": _frame_to_json(self.table),
                   "marks": [_frame_to_json(m) for m in self.marks], "numbers": _plain(self.numbers),
                   "notes": list(self.notes), "settings": _plain(self.settings)}
        data = {**content, "sha256": _digest(content)}
        path = Path(path)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
        os.replace(tmp, path)
        return path

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
        if not isinstance(data, dict) or data.get("format") != cls.FORMAT:
            found = data.get("format", "none") if isinstance(data, dict) else type(data).__name__
            raise ValueError(f"{path} is not an explanation file of format {cls.FORMAT} (found format {found}): "
                             "files of earlier versions stored words as JSON values that read back as numbers "
                             "('007' as 7). Explain the text again and save it.")
        required = {"kind", "model", "texts", "method", "table", "marks", "numbers", "notes", "settings", "sha256"}
        missing = sorted(required - set(data))
        if missing:
            raise ValueError(f"{path} lacks {', '.join(missing)}: it is not a whole explanation file. Save it again.")
        stored = data.pop("sha256")
        if stored != _digest(data):
            raise ValueError(f"{path}: its content does not match the sha256 stored with it (edited or damaged "
                             "after it was saved), so its numbers are not served. Explain the text again and save it.")
        try:
            table, marks = _frame_from_json(data["table"]), [_frame_from_json(m) for m in data["marks"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{path}: a table in it cannot be read ({exc}). Save the explanation again.") from None
        return cls(kind=data["kind"], model=data["model"], texts=data["texts"], method=data["method"], table=table,
                   marks=marks, numbers=data["numbers"], notes=data["notes"], settings=data["settings"])

    def to_shap(self):
        """A ``shap.Explanation`` (values: the word weights, or for a pair the first text's word marks; data: the
        words), so that ``shap.plots.text(e.to_shap())`` draws it."""
        import shap

        if self.kind == "text":
            values, words = self.table["weight"].to_numpy(float), self.table["word"].astype(str).to_numpy()
        else:
            values, words = self.marks[0]["contribution"].to_numpy(float), self.marks[0]["word"].astype(str).to_numpy()
        return shap.Explanation(values=values, base_values=0.0, data=np.array([w + " " for w in words], dtype=object),
                                feature_names=list(words))

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
        if len(self.texts[0]) and _n_tokens(self._encoder, self.texts[0]) > self._encoder.max_length:
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


def _wrap(body: str, width: int, colour: bool) -> list[str]:
    """Wrap words at ``width`` visible characters (ANSI codes take no width)."""
    import re

    lines, line, visible = [], [], 0
    for token in body.split(" "):
        size = len(re.sub(r"\x1b\[[0-9;]*m", "", token))
        if line and visible + 1 + size > width:
            lines.append(" ".join(line))
            line, visible = [], 0
        visible += size + (1 if line else 0)
        line.append(token)
    if line:
        lines.append(" ".join(line))
    return lines


# --------------------------------------------------------------------------- the command line
def _unwritable(target) -> str | None:
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


def main(argv=None) -> int:
    """``python -m helpers explain --model NAME_OR_PATH "text" ["other text"] [--html out.html] ...``"""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m helpers explain",
                                     description="Which words drive a sentence embedding, or a similarity score.")
    parser.add_argument("texts", nargs="+", metavar="TEXT", help="one text (word weights) or two (a pair)")
    parser.add_argument("--model", required=True, help="a hub name, a sentence-transformers folder")
    parser.add_argument("--method", default="ig", help="ig (default) or shap")
    parser.add_argument("--exact", action="store_true", help="IG over every output dimension (no sketch)")
    parser.add_argument("--n-steps", type=int, default=None, help="IG quadrature points (default 20)")
    parser.add_argument("--reference", help="a dataset name (stsb, wiki, nli, sts12) for KL and I")
    parser.add_argument("--long", choices=LONG, default="refuse", help="a text longer than the model reads")
    parser.add_argument("--html", help="write a self-contained HTML page here")
    parser.add_argument("--json", help="write the explanation here (Explanation.load reads it)")
    parser.add_argument("--width", type=int, default=100, help="terminal width of the coloured text")
    parser.add_argument("--no-colour", action="store_true", help="plain text")
    parser.add_argument("--faithfulness", action="store_true", help="also measure the normalised AOPC (one text)")
    parser.add_argument("--show-progress-bar", action="store_true")
    parser.add_argument("--precision", choices=("fp32", "bf16", "auto"), default="fp32",
                        help="fp32 (default), bf16, or auto: bf16 where the CPU or GPU computes it natively")
    args = parser.parse_args(argv)
    if len(args.texts) > 2:
        parser.error(f"give one text or two, not {len(args.texts)} (quote each text)")
    pair, ig = len(args.texts) == 2, args.method.lower() not in ("shap", "partition", "partitionshap")
    not_applying = [option for option, given, applies in (
        ("--faithfulness", args.faithfulness, not pair), ("--reference", args.reference, not pair),
        ("--exact", args.exact, ig and not pair), ("--n-steps", args.n_steps is not None, ig),
        ("--long windows", args.long == "windows", not pair)) if given and not applies]
    if not_applying:
        parser.error(f"{', '.join(not_applying)} {'does' if len(not_applying) == 1 else 'do'} not apply to "
                     f"{'a pair of texts' if pair else 'one text'} explained with {args.method} (a pair is always "
                     "exact IG and has no KL, I or faithfulness; SHAP has no sketch or quadrature); leave it out.")
    for option, target in (("--html", args.html), ("--json", args.json)):
        problem = _unwritable(target)
        if problem:  # checked before anything is computed: never minutes of work, then a traceback
            parser.error(f"{option} {target}: {problem}")
    try:
        e = explain(args.model, args.texts[0], args.texts[1] if pair else None, method=args.method,
                    exact=args.exact, n_steps=args.n_steps or 20, reference=args.reference, long=args.long,
                    show_progress_bar=args.show_progress_bar, precision=args.precision)
    except (ValueError, TypeError, FileNotFoundError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(e.to_text(args.width, colour=not args.no_colour and sys.stdout.isatty()))
    print()
    print(e.table.to_string(index=False, float_format=lambda x: f"{x:.6f}"))
    if args.faithfulness and e.kind == "text":
        f = e.faithfulness()
        print(f"\nnormalised AOPC {f['normalised']:.2f} (random orderings {f['random_normalised']:.2f}; raw "
              f"{f['aopc']:.4f}, best {f['best']:.4f}, worst {f['worst']:.4f}, k ≤ {f['k_max']})")
    if args.html:
        e.to_html(args.html)
        print(f"wrote {args.html}", file=sys.stderr)
    if args.json:
        e.save(args.json)
        print(f"wrote {args.json}", file=sys.stderr)
    return 0
