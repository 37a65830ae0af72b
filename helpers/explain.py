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

__all__ = ["explain", "Explanation", "Comparison", "ExplanationSet", "similarity_of", "shap_text_html", "LONG",
           "TEXT_STEPS", "PAIR_STEPS", "main"]

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


def _check_method(method):
    """``method`` as given when it is a method object, else its registered name (checked)."""
    from .attribution import QUADRATURES, Method, methods

    if isinstance(method, Method):
        method.validate()
        return method
    if not isinstance(method, str):
        raise TypeError(f"method must be a method object (IG(...), SHAP(...)) or a name ('ig', 'shap', or another "
                        f"registered method), got {type(method).__name__}.")
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


def _text_weights(encoder, text, method, cache, long, progress):
    """Word weights of one text (``method``: the method object), in windows when it is long: (table, notes)."""
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
            table = word_weights(encoder, [text], method, cache=cache, progress=progress, gap_warning=float("inf"))
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
        t = word_weights(encoder, [window], method, cache=cache, progress=False, gap_warning=float("inf"))
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


#: explain()'s keywords that are a method's settings: with a method object they live in the object instead.
METHOD_KEYWORDS = {"exact": False, "n_steps": None, "projections": None, "baseline": "pad",
                   "quadrature": "gausslegendre", "max_evals": None, "batch_size": 64, "internal_batch_size": 4,
                   "seed": 0}


def _check_applies(method, other, **given) -> None:
    """Refuse an argument that does not apply to this call (it would be dropped silently), naming it."""
    from .attribution import Method

    pair = other is not None
    wrong = []
    if isinstance(method, Method) or method not in ("ig", "shap"):  # the keywords below are IG's and SHAP's
        set_too = [k for k, default in METHOD_KEYWORDS.items() if k in given and given[k] != default
                   and not (k == "projections" and given[k] == DEFAULT_PROJECTIONS)]
        if set_too:
            name = type(method).__name__ if isinstance(method, Method) else f"the method {method!r}"
            raise ValueError(f"{', '.join(set_too)}: {'this keyword is' if len(set_too) == 1 else 'these keywords are'}"
                             f" IG's or SHAP's and do{'es' if len(set_too) == 1 else ''} not reach {name}; set the "
                             "method's own settings in its object (method=IG(n_steps=20), or your method's class).")
        method = getattr(method, "name", method)
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


#: IG quadrature points of a single text's explanation when ``n_steps`` is not given.
TEXT_STEPS = 20
#: The quadrature points a pair's explanation tries in turn when ``n_steps`` is not given: it stops at the first
#: whose completeness gap is within :data:`helpers.views.GAP_THRESHOLD` of the score (chapter 13 measures them).
PAIR_STEPS = (20, 50, 150)


def explain(model, text, other: str | None = None, method: str = "ig", reference=None, exact: bool = False,
            n_steps: int | None = None, projections: int | None = DEFAULT_PROJECTIONS, baseline: str = "pad",
            quadrature: str = "gausslegendre", max_evals: int | None = None, similarity: str | None = None,
            long: str = "refuse", batch_size: int = 64, internal_batch_size: int = 4, show_progress_bar: bool = False,
            device=None, data_dir=None, seed: int = 0, cache=True, precision: str = "fp32"):
    """Explain ``text`` (its word weights), or the similarity of ``text`` and ``other`` (word-pair contributions).

    ``model``: a ``SentenceTransformer``, a sentence-transformers folder, a hub name, or an ``Encoder``; a list of
    two of them (or ``{label: model}``, naming them) compares the models on the same text or pair (a
    :class:`Comparison`: both models' weights on the same words and their change, b - a). ``text``: a string, or a list of strings (one text each, no ``other``): an
    :class:`ExplanationSet` with one tidy table, each text explained exactly as a call with that text alone.
    ``method``: ``"ig"`` (Integrated Gradients over every output, the default) or ``"shap"`` (PartitionSHAP).
    ``exact``: IG over every output dimension; by default a text's IG is sketched with ``projections`` random
    output directions (Eq. eq-sketch; chapter 03 measures the sketch's error) and a pair is always exact.
    ``n_steps``: IG's quadrature points; by default 20 for a text, and for a pair the first of
    :data:`PAIR_STEPS` whose completeness gap is within 1% of the score (a pair whose gap stays larger is said
    to not add up, in words and in a warning, never printed as an equation).
    ``reference``: a corpus for KL and I (a dataset name, a list of sentences, or a ``word_information`` table
    in the model's word units); ``None``: no KL and I. ``similarity``: the pair score, by default the model's
    own (``cosine`` or ``dot``). ``long``: ``"refuse"`` a text longer than the model reads, explain it in
    overlapping ``"windows"`` (each word's weight is its mean over the windows containing it, each window
    normalised to mean 1; pairs are refused), or ``"truncate"`` it as ``model.encode()`` does.

    Names as sentence-transformers and captum use them: ``batch_size`` (SHAP's model calls per batch),
    ``show_progress_bar`` (for a list of texts: one bar over the texts), ``device``, ``internal_batch_size`` (how
    many output directions IG pushes back at once: the memory knob, as captum's bounds memory).
    ``cache``: True (the book's attribution cache: explaining the same text again is instant), a path, or False.
    ``precision``: ``fp32``, ``bf16`` (the model's passes in bfloat16, :mod:`helpers.precision`; the stated gap
    is measured against fp32 outputs, so it includes the rounding) or ``auto`` (bf16 where the hardware
    computes it natively, else fp32); the explanation's notes say which was used.
    """
    from .attribution import BASELINES, QUADRATURES
    from .config import check_count

    options = {"method": method, "reference": reference, "exact": exact, "n_steps": n_steps,
               "projections": projections, "baseline": baseline, "quadrature": quadrature, "max_evals": max_evals,
               "similarity": similarity, "long": long, "batch_size": batch_size,
               "internal_batch_size": internal_batch_size, "show_progress_bar": show_progress_bar, "device": device,
               "data_dir": data_dir, "seed": seed, "cache": cache, "precision": precision}
    if isinstance(model, (list, tuple, dict)):
        return _compare(model, text, other, options)
    if isinstance(other, (list, tuple)):
        raise TypeError("other must be one text: pairs are explained one at a time (explain(model, a, b)); a list "
                        "of texts goes in `text`, for their word weights.")
    texts = list(text) if isinstance(text, (list, tuple)) else None
    if texts is not None:
        if other is not None:
            raise ValueError("a list of texts is explained text by text (word weights); `other` does not apply. For "
                             "pairs, call explain(model, a, b) for each pair.")
        if not texts:
            raise ValueError("text is an empty list: give at least one text.")
    method = _check_method(method)
    if long not in LONG:
        raise ValueError(f"long must be one of {LONG}, got {long!r}.")
    given = [(f"text[{i}]", t) for i, t in enumerate(texts)] if texts is not None else [("text", text)]
    for name, value in given + [("other", other)]:
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise ValueError(f"{name} must be a non-empty string, got {value!r}.")
    check_count("n_steps", n_steps, 1, allow_none=True)
    check_count("batch_size", batch_size, 1)
    check_count("internal_batch_size", internal_batch_size, 1)
    check_count("projections", projections, 1, allow_none=True)
    if baseline not in BASELINES:
        raise ValueError(f"baseline must be one of {BASELINES}, got {baseline!r}.")
    if quadrature not in QUADRATURES:
        raise ValueError(f"quadrature must be one of {QUADRATURES}, got {quadrature!r}.")
    _check_applies(method, other, reference=reference, similarity=similarity, max_evals=max_evals, exact=exact,
                   long=long, n_steps=n_steps, projections=projections, baseline=baseline, quadrature=quadrature,
                   batch_size=batch_size, internal_batch_size=internal_batch_size, seed=seed)
    from .precision import check_precision

    check_precision(precision, allow_auto=True)
    loaded = _loaded(model, device, precision)  # the model and the reference table once, however many texts
    info = _reference_table(reference, loaded["encoder"], data_dir)
    options["method"] = method
    if texts is None:
        return _explain_loaded(loaded, text, other, options, info)
    from .config import tqdm

    out = []
    for value in tqdm(texts, desc="explain", unit="text", disable=not show_progress_bar):
        out.append(_explain_loaded(loaded, value, None, options, info, progress=False))
    return ExplanationSet(out)


def _text_method(o: dict, used: str):
    """The method object one text is explained with: the one given, or one built from explain()'s keywords (IG's,
    SHAP's, or a registered method's defaults) in the precision resolved for this model."""
    from .attribution import IG, SHAP, make_method

    method = o["method"]
    if not isinstance(method, str):
        return method
    if method == "ig":
        return IG(n_steps=o["n_steps"] or TEXT_STEPS, quadrature=o["quadrature"], baseline=o["baseline"],
                  projections=None if o["exact"] else o["projections"], chunk_size=o["internal_batch_size"],
                  seed=o["seed"], precision=used)
    if method == "shap":
        return SHAP(max_evals=o["max_evals"], shap_batch_size=o["batch_size"], precision=used)
    return make_method(method, {"precision": used, "seed": o["seed"]})


def _loaded(model, device, precision) -> dict:
    """The encoder, its name for readers, the precision used and the note on what was loaded (once per model)."""
    from .encoders import display_name
    from .precision import hardware, resolve

    encoder, note = _load(model, device)
    used = resolve(precision, encoder.device)
    if used != "fp32":
        units = hardware(encoder.device.type)["units"]
        note += (f"; computed in {used} ({'on ' + ', '.join(units) if units else 'emulated: slower, not faster'}; "
                 "precision='fp32' for full precision)")
    return {"encoder": encoder, "note": note, "precision": used, "label": display_name(encoder), "model": model}


def _explain_loaded(loaded: dict, text: str, other, o: dict, info, progress: bool | None = None) -> "Explanation":
    """One text or one pair through a loaded model (the checks are done)."""
    encoder, used, label, method = loaded["encoder"], loaded["precision"], loaded["label"], o["method"]
    progress = o["show_progress_bar"] if progress is None else progress
    if other is None:
        spec = _text_method(o, used)
        n_steps, projections = getattr(spec, "n_steps", None), getattr(spec, "projections", None)
        table, notes = _text_weights(encoder, text, spec, o["cache"], o["long"], progress)
        notes.insert(0, loaded["note"])
        table = table.drop(columns=["sentence_id"])
        if info is not None:
            table = table.merge(info[["word", "kl", "self_info"]], on="word", how="left")
            table["seen"] = table["kl"].notna()
        if spec.name == "ig" and projections:
            notes.append(f"IG sketched with {projections} random output directions of {encoder.dim} (Eq. eq-sketch): "
                         "each weight is an unbiased estimate; chapter 03 measures its error on real sentences "
                         "(pass exact=True, or --exact, for every direction)")
        return Explanation(kind="text", model=label, texts=[text], method=spec.name,
                           table=table.reset_index(drop=True), marks=[],
                           numbers={"completeness_gap": float(table["completeness_gap"].max()), "dim": int(encoder.dim)},
                           notes=notes, settings={"method": spec.name, "exact": spec.name == "ig" and projections is None,
                                                  "n_steps": n_steps, "projections": projections,
                                                  "baseline": getattr(spec, "baseline", o["baseline"]),
                                                  "long": o["long"], "normalize": bool(encoder.normalize),
                                                  "precision": getattr(spec, "precision", used)},
                           _encoder=encoder)
    if getattr(method, "name", method) != "ig":
        raise ValueError("pairs are explained by IG only (its word-pair decomposition, Eq. eq-pair); use method='ig'.")
    if not isinstance(method, str):  # an IG object: its settings, not the keywords'
        o = {**o, "n_steps": method.n_steps, "baseline": method.baseline, "seed": method.seed}
        used = method.precision
    own = similarity_of(loaded["model"], encoder)
    similarity = (o["similarity"] or own).lower()
    if similarity not in ("cosine", "dot"):
        raise ValueError(f"the model reports its similarity as {similarity!r}; a pair decomposes only for 'cosine' "
                         "or 'dot' (pass similarity='cosine' or 'dot' to explain one of those).")
    for name, value in (("text", text), ("other", other)):
        if _n_tokens(encoder, value) > encoder.max_length and o["long"] != "truncate":
            raise ValueError(f"{name} has {_n_tokens(encoder, value)} tokens and the model reads at most "
                             f"{encoder.max_length}: shorten it, or pass long='truncate' to explain what the model "
                             "computes (windows do not apply to a pair's single score).")
    from .attribution.pairs import pair_weights
    from .views import GAP_THRESHOLD

    ladder = [o["n_steps"]] if o["n_steps"] else list(PAIR_STEPS)
    tried = []
    for n_steps in ladder:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the truncation, when long='truncate', is stated below instead
            table = pair_weights(encoder, text, other, n_steps=n_steps, similarity=similarity, baseline=o["baseline"],
                                 seed=o["seed"], cache=o["cache"], precision=used)
        tried.append((n_steps, float(table.attrs["completeness_gap"])))
        if tried[-1][1] <= GAP_THRESHOLD:
            break
    marks = [table.groupby(["index_a", "word_a"], sort=True)["contribution"].sum().reset_index()
             .rename(columns={"index_a": "word_index", "word_a": "word"}),
             table.groupby(["index_b", "word_b"], sort=True)["contribution"].sum().reset_index()
             .rename(columns={"index_b": "word_index", "word_b": "word"})]
    numbers = {"score": float(table.attrs["score"]), "reference": float(table.attrs["reference"]),
               "sum_of_contributions": float(table["contribution"].sum()),
               "completeness_gap": float(table.attrs["completeness_gap"]),
               "gap_of_contributions": float(table.attrs["gap_of_contributions"]), "n_steps": int(n_steps),
               "closes": bool(tried[-1][1] <= GAP_THRESHOLD)}
    said = ("as model.similarity() computes it" if similarity == own else
            f"as you asked; model.similarity() computes the {own} similarity")
    notes = [loaded["note"], f"score = {similarity} similarity, {said} = sum of the word-pair contributions + the "
             "reference terms (what any two texts share through the baseline) + the completeness gap"]
    if len(tried) > 1:
        notes.append("quadrature raised until the gap closed: " + ", ".join(
            f"{gap:.2%} of the score at {steps} points" for steps, gap in tried))
    if not numbers["closes"]:
        advice = ("pass a larger n_steps" if o["n_steps"] else
                  f"it stayed above {GAP_THRESHOLD:.0%} up to {PAIR_STEPS[-1]} points, where more points cost much "
                  "and gain little")
        warnings.warn(f"{label}: the word pairs and reference terms miss the score by {numbers['completeness_gap']:.1%} "
                      f"of it at {n_steps} quadrature points ({advice}); the explanation says so instead of an "
                      "equation.", UserWarning, stacklevel=3)
    return Explanation(kind="pair", model=label, texts=[text, other], method="ig", table=table.reset_index(drop=True),
                       marks=marks, numbers=numbers, notes=notes,
                       settings={"method": "ig", "exact": True, "n_steps": int(n_steps), "baseline": o["baseline"],
                                 "similarity": similarity, "precision": used}, _encoder=encoder)


def _compare(models, text, other, options: dict) -> "Comparison":
    """Two models on the same text (or pair), their words aligned; ``models``: a list, or {label: model} to name
    them in the pictures and tables."""
    labels = list(models) if isinstance(models, dict) else None
    models = list(models.values()) if isinstance(models, dict) else list(models)
    if labels and not all(isinstance(x, str) and x.strip() for x in labels):
        raise ValueError(f"model: a dict names each model by a non-empty string; got the keys {labels!r}.")
    if len(models) != 2:
        raise ValueError(f"model: a list compares two models side by side; got {len(models)}. Explain each model "
                         "alone, or compare them two at a time.")
    if isinstance(text, (list, tuple)):
        raise TypeError("compare two models on one text (or one pair) at a time; `text` is a list.")
    a, b = (explain(m, text, other, **options) for m in models)
    if labels:
        a.model, b.model = labels
    key = ["word_index", "word"]
    if a.kind == "text":
        words_a, words_b = a.table[key], b.table[key]
    else:
        words_a = pd.concat([m[key] for m in a.marks], keys=[0, 1])
        words_b = pd.concat([m[key] for m in b.marks], keys=[0, 1])
    if len(words_a) != len(words_b) or not (words_a.to_numpy() == words_b.to_numpy()).all():
        diff = [(x, y) for x, y in zip(words_a["word"], words_b["word"]) if x != y][:3]
        raise ValueError(f"the two models split the text into different words ({a.model}: {len(words_a)} words, "
                         f"{b.model}: {len(words_b)}; first differences {diff}), so their weights cannot be set "
                         "word against word. Compare models whose tokenizers give the same word units (chapter 02).")
    if a.kind == "text":
        table = a.table[key].assign(weight_a=a.table["weight"].to_numpy(), weight_b=b.table["weight"].to_numpy())
        table["change"] = table["weight_b"] - table["weight_a"]
    else:
        cols = ["index_a", "word_a", "index_b", "word_b"]
        table = a.table[cols].assign(contribution_a=a.table["contribution"].to_numpy(),
                                     contribution_b=b.table["contribution"].to_numpy())
        table["change"] = table["contribution_b"] - table["contribution_a"]
    return Comparison(kind=a.kind, models=[a.model, b.model], explanations=[a, b], table=table)


def _top_pairs(table: pd.DataFrame, column: str, n: int) -> str:
    """The ``n`` word pairs of largest absolute ``column``, as ``a~b +0.123``."""
    ranked = table.loc[table[column].abs().sort_values(ascending=False).index].head(n)
    return ", ".join(f"{a}~{b} {c:+.3f}" for a, b, c in zip(ranked["word_a"], ranked["word_b"], ranked[column]))


def _top_words(table: pd.DataFrame, column: str, n: int, signed: bool = False) -> str:
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
                    f"{_top_words(self.table, 'weight', 5)}>")
        n = self.numbers
        pairs = _top_pairs(self.table, "contribution", 3)
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
            lines.append(f"top words: {_top_words(self.table, 'weight', top)}")
            lines.append(f"completeness gap {self.numbers['completeness_gap']:.2%}")
        else:
            for name, marks in zip(("a", "b"), self.marks):
                lines.append(f"{name}:")
                lines += wrap(ansi_words(marks["word"], marks["contribution"], colour, signed=True), width)
            lines.append(score_line(self.numbers, self.settings["similarity"]))
            lines.append(reference_sentence(self.numbers))
            lines.append(f"top pairs: {_top_pairs(self.table, 'contribution', top)}")
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
        _show(self, width)

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
        import os

        path = Path(path)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=1), encoding="utf-8")
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


def _pair_title(e: "Explanation") -> str:
    return f"{e.settings['similarity']} similarity {e.numbers['score']:.3f}: {e.texts[0]!r} ~ {e.texts[1]!r}"


def _show(view, width):
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
                    f"(b - a): {_top_words(self.table, 'change', 5, signed=True)}>")
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
            lines.append(f"raised most (b - a): {_top_words(up, 'change', top, True) or 'none'}")
            lines.append(f"lowered most (b - a): {_top_words(down, 'change', top, True) or 'none'}")
        else:
            for e in self.explanations:
                lines.append(f"{e.model}: {e.settings['similarity']} similarity {e.numbers['score']:.4f} (gap "
                             f"{e.numbers['completeness_gap']:.2%})")
            lines.append(f"pairs changed most: {_top_pairs(self.table, 'change', top)}")
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
        _show(self, width)

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
        _show(self, width)

    def to_jsonl(self, path) -> Path:
        """One JSON line per text (the object :meth:`Explanation.save` writes, with its sha256); written to a
        temporary file, then renamed."""
        import os

        path = Path(path)
        tmp = path.with_name(f".{path.name}.tmp")
        with open(tmp, "w", encoding="utf-8") as out:
            for e in self.explanations:
                out.write(json.dumps(e.to_dict()) + "\n")
        os.replace(tmp, path)
        return path

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


def _read_texts(source: str) -> list:
    """The texts of ``--texts-file``: one per line of a file, or of standard input for ``-``; blank lines skipped.
    An error names the file."""
    if source == "-":
        lines = sys.stdin.read().splitlines()
        where = "standard input"
    else:
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"--texts-file {source}: no such file (give a file with one text per line, or - "
                                    "for standard input).")
        try:
            lines = path.read_text(encoding="utf-8-sig").splitlines()
        except UnicodeDecodeError as exc:
            raise ValueError(f"--texts-file {source}: not UTF-8 text ({exc}).") from None
        where = str(path)
    texts = [line.strip() for line in lines if line.strip()]
    if not texts:
        raise ValueError(f"--texts-file: {where} holds no text (one text per line).")
    return texts


def main(argv=None) -> int:
    """``python -m helpers explain --model NAME_OR_PATH "text" ["other text"] [--html out.html] ...``; many texts:
    ``--texts-file FILE`` (or ``-`` for standard input, one text per line) with ``--jsonl out.jsonl``; two models
    side by side: ``--compare OTHER_MODEL``."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m helpers explain",
                                     description="Which words drive a sentence embedding, or a similarity score.")
    parser.add_argument("texts", nargs="*", metavar="TEXT", help="one text (word weights) or two (a pair)")
    parser.add_argument("--model", required=True, help="a hub name, a sentence-transformers folder")
    parser.add_argument("--compare", metavar="MODEL", help="a second model: both side by side, and the change")
    parser.add_argument("--texts-file", metavar="FILE", help="many texts, one per line (- reads standard input)")
    parser.add_argument("--method", default="ig", help="ig (default) or shap")
    parser.add_argument("--exact", action="store_true", help="IG over every output dimension (no sketch)")
    parser.add_argument("--n-steps", type=int, default=None,
                        help=f"IG quadrature points (default {TEXT_STEPS} for a text; for a pair the first of "
                             f"{', '.join(map(str, PAIR_STEPS))} whose gap is within 1%% of the score)")
    parser.add_argument("--reference", help="a dataset name (stsb, wiki, nli, sts12) for KL and I")
    parser.add_argument("--long", choices=LONG, default="refuse", help="a text longer than the model reads")
    parser.add_argument("--html", help="write a self-contained HTML page here")
    parser.add_argument("--json", help="write the explanation here (Explanation.load reads it)")
    parser.add_argument("--jsonl", help="with --texts-file: one JSON line per text here (ExplanationSet.read_jsonl)")
    parser.add_argument("--width", type=int, default=100, help="terminal width of the coloured text")
    parser.add_argument("--no-colour", action="store_true", help="plain text")
    parser.add_argument("--faithfulness", action="store_true", help="also measure the normalised AOPC (one text)")
    parser.add_argument("--show-progress-bar", action="store_true")
    parser.add_argument("--precision", choices=("fp32", "bf16", "auto"), default="fp32",
                        help="fp32 (default), bf16, or auto: bf16 where the CPU or GPU computes it natively")
    args = parser.parse_args(argv)
    many = args.texts_file is not None
    if many and args.texts:
        parser.error("give the texts either as arguments or in --texts-file, not both")
    if not many and not args.texts:
        parser.error("give one text or two (quote each), or --texts-file FILE")
    if len(args.texts) > 2:
        parser.error(f"give one text or two, not {len(args.texts)} (quote each text; many texts: --texts-file)")
    pair, ig = len(args.texts) == 2, args.method.lower() not in ("shap", "partition", "partitionshap")
    not_applying = [option for option, given, applies in (
        ("--faithfulness", args.faithfulness, not pair and not many and not args.compare),
        ("--reference", args.reference, not pair), ("--exact", args.exact, ig and not pair),
        ("--n-steps", args.n_steps is not None, ig), ("--long windows", args.long == "windows", not pair),
        ("--jsonl", args.jsonl, many), ("--json", args.json, not many and not args.compare),
        ("--compare", args.compare, not many)) if given and not applies]
    if not_applying:
        parser.error(f"{', '.join(not_applying)} {'does' if len(not_applying) == 1 else 'do'} not apply to "
                     f"{'many texts' if many else 'a pair of texts' if pair else 'one text'}"
                     f"{' compared across two models' if args.compare else ''} explained with {args.method} (a pair "
                     "is always exact IG and has no KL, I or faithfulness; SHAP has no sketch or quadrature; --jsonl "
                     "goes with --texts-file, --json with one explanation); leave it out.")
    for option, target in (("--html", args.html), ("--json", args.json), ("--jsonl", args.jsonl)):
        problem = _unwritable(target)
        if problem:  # checked before anything is computed: never minutes of work, then a traceback
            parser.error(f"{option} {target}: {problem}")
    try:
        texts = _read_texts(args.texts_file) if many else args.texts
        model = [args.model, args.compare] if args.compare else args.model
        e = explain(model, texts if many else texts[0], texts[1] if pair else None, method=args.method,
                    exact=args.exact, n_steps=args.n_steps, reference=args.reference, long=args.long,
                    show_progress_bar=args.show_progress_bar or many, precision=args.precision)
    except (ValueError, TypeError, FileNotFoundError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    colour = not args.no_colour and sys.stdout.isatty()
    print(e.to_text(args.width, colour=colour))
    if not many:
        print()
        print(e.table.to_string(index=False, float_format=lambda x: f"{x:.6f}"))
    if args.faithfulness and isinstance(e, Explanation) and e.kind == "text":
        f = e.faithfulness()
        print(f"\nnormalised AOPC {f['normalised']:.2f} (random orderings {f['random_normalised']:.2f}; raw "
              f"{f['aopc']:.4f}, best {f['best']:.4f}, worst {f['worst']:.4f}, k ≤ {f['k_max']})")
    if args.html:
        e.to_html(args.html)
        print(f"wrote {args.html}", file=sys.stderr)
    if args.json:
        e.save(args.json)
        print(f"wrote {args.json}", file=sys.stderr)
    if args.jsonl:
        e.to_jsonl(args.jsonl)
        print(f"wrote {args.jsonl} ({len(e)} lines)", file=sys.stderr)
    return 0
