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

import warnings

import pandas as pd

from .explain_pair import PAIR_STEPS, explain_pair, similarity_of
from .explanation import Explanation, n_tokens, shap_text_html
from .explanation_sets import Comparison, ExplanationSet, explain_each
from .views import CompletenessGap, weights_gap_note

__all__ = ["explain", "Explanation", "Comparison", "ExplanationSet", "similarity_of", "shap_text_html", "LONG",
           "TEXT_STEPS", "PAIR_STEPS"]

#: What to do with a text longer than the model reads.
LONG = ("refuse", "windows", "truncate")
#: Sketch size of the default (single-text) IG: k random output directions (Eq. eq-sketch).
DEFAULT_PROJECTIONS = 16
#: Names other libraries use for what the book calls ``method="ig"`` / ``"shap"``.
_OTHER_NAMES = {"integrated_gradients": "ig", "integratedgradients": "ig", "integrated-gradients": "ig",
                "partition": "shap", "partitionshap": "shap", "kernelshap": "shap", "shapley": "shap"}


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
        while last > first + 1 and n_tokens(encoder, text[spans[first][0]:spans[last - 1][1]]) > encoder.max_length:
            last -= 1  # the estimate was short: give back words until the window fits
        windows.append((first, text[spans[first][0]:spans[last - 1][1]]))
        if last >= len(units):
            break
        first = max(first + 1, last - int((last - first) * overlap))
    return windows


def _text_weights(encoder, text, method, cache, long, progress, tokens: int):
    """Word weights of one text of ``tokens`` tokens (``method``: the method object), windowed if long."""
    from .attribution import word_weights

    notes = []
    too_long = tokens > encoder.max_length
    if too_long and long == "refuse":
        raise ValueError(f"the text has {tokens} tokens and the model reads at most "
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
                   "quadrature": "gausslegendre", "max_evals": None, "batch_size": 64, "internal_batch_size": None,
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
#: An exact text explanation's defaults (``precision`` and ``internal_batch_size`` not given): bf16 where the
#: hardware computes it natively, 16 output directions pushed back at once. An exact explanation is 384 backward
#: passes for all-MiniLM-L6-v2; these settings cut a 21-word sentence from 30 s to 16 s on 2 cores with AVX-512
#: BF16, at the same completeness gap and word order (benchmarks/explain_speed.py --exact-defaults).
EXACT_PRECISION, EXACT_CHUNK = "auto", 16
#: A longer text pushes fewer directions back at once (16 x 20 points x 32 tokens at most): for a 127-token text
#: 16 directions took 1.3 GB and 136 s, 4 took 0.75 GB and 114 s (a 384-token text through a larger model would
#: otherwise need gigabytes).
EXACT_ROWS = EXACT_CHUNK * TEXT_STEPS * 32
#: The sketch's cotangent chunk when ``internal_batch_size`` is not given (its 16 directions in 4 passes: the
#: fastest in fp32, benchmarks/explain_speed.py).
SKETCH_CHUNK = 4


def explain(model, text, other: str | None = None, method: str = "ig", reference=None, exact: bool = False,
            n_steps: int | None = None, projections: int | None = DEFAULT_PROJECTIONS, baseline: str = "pad",
            quadrature: str = "gausslegendre", max_evals: int | None = None, similarity: str | None = None,
            long: str = "refuse", batch_size: int = 64, internal_batch_size: int | None = None,
            show_progress_bar: bool = False, device=None, data_dir=None, seed: int = 0, cache=True,
            precision: str | None = None):
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
    many output directions IG pushes back at once: the memory knob, as captum's bounds memory; by default 4 for the
    sketch; for ``exact=True`` 16, fewer for a text over 32 tokens).
    ``cache``: True (the book's attribution cache: explaining the same text again is instant), a path, or False.
    ``precision``: ``fp32``, ``bf16`` (the model's passes in bfloat16, :mod:`helpers.precision`; the stated gap
    is measured against fp32 outputs, so it includes the rounding) or ``auto`` (bf16 where the hardware
    computes it natively, else fp32); by default fp32, and ``auto`` for ``exact=True`` on a text
    (:data:`EXACT_PRECISION`: the exact case is the slow one); the explanation's notes say which was used.
    """
    exact_text = bool(exact) and other is None and isinstance(method, str) and method.lower() == "ig"
    if precision is None:
        precision = EXACT_PRECISION if exact_text else "fp32"
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
    options["method"] = _check_arguments(texts, text, other, options)
    loaded = _loaded(model, device, precision)  # the model and the reference table once, however many texts
    info = _reference_table(reference, loaded["encoder"], data_dir)
    if texts is None:
        return _explain_loaded(loaded, text, other, options, info)
    return explain_each(texts, lambda value: _explain_loaded(loaded, value, None, options, info, progress=False),
                        show_progress_bar)


def _check_arguments(texts, text, other, o: dict):
    """Every check of :func:`explain`'s arguments before a model is loaded, each error naming the argument; returns
    the method (a checked name, or the method object as given)."""
    from .attribution import QUADRATURES, check_baseline
    from .config import check_count, check_flag
    from .precision import check_precision

    if texts is not None:
        if other is not None:
            raise ValueError("a list of texts is explained text by text (word weights); `other` does not apply. For "
                             "pairs, call explain(model, a, b) for each pair.")
        if not texts:
            raise ValueError("text is an empty list: give at least one text.")
    method = _check_method(o["method"])
    if o["long"] not in LONG:
        raise ValueError(f"long must be one of {LONG}, got {o['long']!r}.")
    given = [(f"text[{i}]", t) for i, t in enumerate(texts)] if texts is not None else [("text", text)]
    for name, value in given + [("other", other)]:
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise ValueError(f"{name} must be a non-empty string, got {value!r}.")
    check_flag("exact", o["exact"])
    check_flag("show_progress_bar", o["show_progress_bar"])
    check_count("n_steps", o["n_steps"], 1, allow_none=True)
    check_count("batch_size", o["batch_size"], 1)
    check_count("internal_batch_size", o["internal_batch_size"], 1, allow_none=True)
    check_count("projections", o["projections"], 1, allow_none=True)
    check_baseline(o["baseline"])
    if o["quadrature"] not in QUADRATURES:
        raise ValueError(f"quadrature must be one of {QUADRATURES}, got {o['quadrature']!r}.")
    _check_applies(method, other, **{k: o[k] for k in ("reference", "similarity", "max_evals", "exact", "long",
                                                       "n_steps", "projections", "baseline", "quadrature",
                                                       "batch_size", "internal_batch_size", "seed")})
    check_precision(o["precision"], allow_auto=True)
    return method


def _text_method(o: dict, used: str, tokens: int = 0):
    """The method object one text is explained with: the one given, or one built from explain()'s keywords (IG's,
    SHAP's, or a registered method's defaults) in the precision resolved for this model; ``tokens``: the longest
    input the model will read (an exact explanation's chunk shrinks with it, :data:`EXACT_ROWS`)."""
    from .attribution import IG, SHAP, make_method

    method = o["method"]
    if not isinstance(method, str):
        return method
    if method == "ig":
        steps = o["n_steps"] or TEXT_STEPS
        chunk = o["internal_batch_size"] or (max(1, min(EXACT_CHUNK, EXACT_ROWS // (steps * max(1, tokens))))
                                             if o["exact"] else SKETCH_CHUNK)
        return IG(n_steps=steps, quadrature=o["quadrature"], baseline=o["baseline"],
                  projections=None if o["exact"] else o["projections"], chunk_size=chunk,
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
    progress = o["show_progress_bar"] if progress is None else progress
    return _explain_text(loaded, text, o, info, progress) if other is None else explain_pair(loaded, text, other, o)


def _explain_text(loaded: dict, text: str, o: dict, info, progress: bool) -> "Explanation":
    """One text's word weights (and KL and I with a reference table)."""
    encoder, used, label = loaded["encoder"], loaded["precision"], loaded["label"]
    spec = _text_method(o, used, min(tokens := n_tokens(encoder, text), encoder.max_length))
    n_steps, projections = getattr(spec, "n_steps", None), getattr(spec, "projections", None)
    table, notes = _text_weights(encoder, text, spec, o["cache"], o["long"], progress, tokens)
    notes.insert(0, loaded["note"])
    table = table.drop(columns=["sentence_id"])
    if info is not None:
        table = table.merge(info[["word", "kl", "self_info"]], on="word", how="left")
        table["seen"] = table["kl"].notna()
    if spec.name == "ig" and projections:
        notes.append(f"IG sketched with {projections} random output directions of {encoder.dim} (Eq. eq-sketch): "
                     "each weight is an unbiased estimate; chapter 03 measures its error on real sentences "
                     "(pass exact=True, or --exact, for every direction)")
    gap_note = weights_gap_note(float(table["completeness_gap"].max()), spec.name, n_steps)
    if gap_note:
        notes.append(gap_note)
        warnings.warn(f"{label}: {gap_note}", CompletenessGap, stacklevel=4)
    return Explanation(kind="text", model=label, texts=[text], method=spec.name,
                       table=table.reset_index(drop=True), marks=[],
                       numbers={"completeness_gap": float(table["completeness_gap"].max()), "dim": int(encoder.dim)},
                       notes=notes, settings={"method": spec.name, "exact": spec.name == "ig" and projections is None,
                                              "n_steps": n_steps, "projections": projections,
                                              "baseline": getattr(spec, "baseline", o["baseline"]),
                                              "long": o["long"], "normalize": bool(encoder.normalize),
                                              "precision": getattr(spec, "precision", used)},
                       _encoder=encoder)


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

