"""Word weights: a method's token attributions merged over each word's tokens and normalised for length, cached
per sentence (paper sections 3.1.1 and D.4; the book's Eqs. eq-ig-norm and eq-normalise).
"""
from __future__ import annotations

import time
import warnings

import numpy as np
import pandas as pd

from ..config import tqdm
from ..encoders import Encoder
from ..units import sentence_table, units_key
from .cache import AttributionCache
from .method import Method, make_method, methods
from .tokens import tokenize, truncate_text

__all__ = ["WORD_AGGS", "NORMALIZATIONS", "ENGINE_VERSION", "GAP_THRESHOLD", "CompletenessGap", "warn_gaps",
           "aggregate_words", "word_weights", "compare_weights",
           "sketch_error", "per_sentence_spearman", "mean_word_weights"]

WORD_AGGS = ("frobenius", "rms", "sum", "first")
NORMALIZATIONS = ("mean1", "none", "times_length")
#: Part of every cache key: results computed by an older engine (other word units, other baseline) are not reused.
ENGINE_VERSION = 2
#: The book's completeness-gap threshold (Eq. eq-ig-norm): a gap above 1% warns, and an explanation whose parts miss
#: its score by more is not printed as an equation (:mod:`helpers.views`).
GAP_THRESHOLD = 0.01


def aggregate_words(token_norms, word_ids, words, word_agg: str = "frobenius", normalize: str = "mean1") -> pd.DataFrame:
    """Token weights -> word weights -> length-normalised weights (the book's word units and Eq. eq-normalise).

    word_agg: ``frobenius`` sqrt(sum c_t^2) (the paper's Eq. 4 over a word's subwords), ``rms``
    sqrt(mean c_t^2), ``sum``, ``first``. normalize: ``mean1`` n c_w / sum c (weights average 1
    in the sentence), ``none``, ``times_length`` c_w n. Special tokens (word id None) are dropped.
    """
    if word_agg not in WORD_AGGS:
        raise ValueError(f"word_agg must be one of {WORD_AGGS}, got {word_agg!r}.")
    if normalize not in NORMALIZATIONS:
        raise ValueError(f"normalize must be one of {NORMALIZATIONS}, got {normalize!r}.")
    c = np.asarray(token_norms, dtype=float)
    if len(c) != len(word_ids):
        raise ValueError(f"{len(c)} token weights for {len(word_ids)} tokens: they must correspond one to one.")
    if not np.isfinite(c).all():
        bad = np.flatnonzero(~np.isfinite(c)).tolist()
        raise ValueError(f"non-finite token weights at tokens {bad} (values {c[bad].tolist()}): the model's output "
                         "overflowed or the cached row is damaged. Check the model (e.g. float32, not float16).")
    tokens = pd.DataFrame({"word_index": word_ids, "c": c})
    tokens = tokens[tokens["word_index"].notna()].astype({"word_index": int})
    grouped = tokens.groupby("word_index", sort=True)["c"]
    raw = {"frobenius": grouped.apply(lambda c: np.sqrt((c ** 2).sum())),
           "rms": grouped.apply(lambda c: np.sqrt((c ** 2).mean())),
           "sum": grouped.sum(), "first": grouped.first()}[word_agg]
    n = len(raw)
    weight = {"mean1": n * raw / raw.sum() if raw.sum() > 0 else raw * 0.0, "none": raw,
              "times_length": raw * n}[normalize]
    return pd.DataFrame({"word_index": raw.index.values, "word": [words[i] for i in raw.index],
                         "weight": weight.values, "raw_weight": raw.values,
                         "n_subwords": grouped.size().values})


def word_weights(encoder: Encoder, sentences, method: Method | str = "ig", *, word_agg: str = "frobenius",
                 normalize: str = "mean1", truncate: bool = True, cache=True, progress: bool = True,
                 gap_warning: float = GAP_THRESHOLD, **misplaced) -> pd.DataFrame:
    """Word weights of every sentence (paper sections 3.1.1 and D.4; the book's Eqs. eq-ig-norm, eq-sketch and eq-normalise).

    Returns one row per word: ``sentence_id, word_index, word, weight, raw_weight``, plus
    ``n_subwords`` and the sentence's ``completeness_gap`` (IG: the completeness residual;
    SHAP: the additivity residual). ``method``: the attribution method as an object holding its settings
    (``IG(n_steps=20, projections=16, seed=0)``, ``SHAP(max_evals=500)``, any registered :class:`Method`),
    or a registered name for its defaults. The keywords here are what happens after the method: how a word's
    tokens merge (``word_agg``), the length normalisation (``normalize``), whether a long text is truncated
    to the model's length, the cache (True: ``.cache/attribution``, a path, or False), the progress bar,
    and the completeness gap above which a warning is given.
    Per-token results are cached, so ``word_agg`` and ``normalize`` can change without recomputation;
    an interrupted run resumes where it stopped.
    """
    spec = _method_for(method, misplaced)
    if word_agg not in WORD_AGGS:
        raise ValueError(f"word_agg must be one of {WORD_AGGS}, got {word_agg!r}.")
    if normalize not in NORMALIZATIONS:
        raise ValueError(f"normalize must be one of {NORMALIZATIONS}, got {normalize!r}.")
    df = sentence_table(sentences)
    settings = spec.settings()
    settings.update(engine=ENGINE_VERSION, model=encoder.name, fingerprint=encoder.fingerprint(), pooling=encoder.pooling,
                    normalize_output=encoder.normalize)
    store = AttributionCache.open(cache)
    frames, results = [], []
    for sentence_id, text in tqdm(list(df.itertuples(index=False, name=None)), desc=f"{spec.name} word weights",
                                  disable=not progress):
        result = _sentence_result(encoder, spec, store, AttributionCache.key(settings, sentence_id, text), sentence_id,
                                  text, truncate)
        words = aggregate_words(result["token_norms"], result["word_ids"], result["words"], word_agg, normalize)
        words.insert(0, "sentence_id", sentence_id)
        words["completeness_gap"] = result["completeness_gap"]
        frames.append(words)
        results.append(result)
    table = pd.concat(frames, ignore_index=True)
    blocked = _warn_about(results, spec, gap_warning)
    seconds = [r.get("seconds", np.nan) for r in results]
    table.attrs.update(units=units_key(encoder.tokenizer), settings=settings, word_agg=word_agg, normalize=normalize,
                       unresolved_sentences=blocked,
                       seconds_per_sentence=float(np.nanmean(seconds)) if seconds else float("nan"))
    return table


def _method_for(method, misplaced: dict, caller: str = "word_weights") -> Method:
    """``method`` as a validated :class:`Method`. A method setting given to ``caller`` itself (``n_steps=20``)
    is an error that shows the object to pass instead: settings live in the method, never beside it."""
    if isinstance(method, str) and method not in Method.registry:
        raise ValueError(f"method must be one of {methods()} (or a Method object), got {method!r}.")
    if not isinstance(method, (str, Method)):
        raise TypeError(f"method must be a Method object (IG(...), SHAP(...)) or one of {methods()}, got {method!r}.")
    spec = make_method(method)
    if misplaced:
        given = ", ".join(f"{k}={v!r}" for k, v in sorted(misplaced.items()))
        if set(misplaced) <= set(spec.option_names()):
            raise TypeError(f"{caller}() got {given}: these are settings of the method, so they go into its "
                            f"object: method={type(spec).__name__}({given}).")
        raise TypeError(f"{caller}() got {given}, which neither it nor the method {spec.name!r} takes (its "
                        f"settings: {list(spec.option_names())}).")
    spec.validate()
    return spec


def _sentence_result(encoder, spec: Method, store, key: str, sentence_id, text: str, truncate: bool) -> dict:
    """One sentence's token attributions: from the cache when a row computed under the same word units is there,
    else computed (and cached)."""
    text_used = truncate_text(encoder, text) if spec.shortens_text and truncate else text  # shap sees the text
    with warnings.catch_warnings():
        if store is not None and store.has(key):
            warnings.simplefilter("ignore")  # the truncation warning was given when the row was computed
        inputs = tokenize(encoder, text_used, truncate=truncate)

    def same_units(value):  # a row stored under other word units is recomputed, not served
        return AttributionCache.check_weights(value) or (
            None if (value["word_ids"], value["words"]) == (inputs["word_ids"], inputs["words"])
            else "its word units differ from the tokenizer's today")

    result = store.get(key, same_units) if store is not None else None
    if result is not None:
        return result
    started = time.perf_counter()
    out = spec.token_norms(encoder, text_used, inputs)
    if not np.isfinite(out["token_norms"]).all():
        raise ValueError(f"sentence {sentence_id!r} ({text[:60]!r}): the model gave non-finite attributions "
                         "(overflow or NaN in its output); nothing was cached. Check the model's weights "
                         "and dtype.")
    result = {"token_norms": [float(c) for c in out["token_norms"]], "word_ids": inputs["word_ids"],
              "words": inputs["words"], "completeness_gap": out["completeness_gap"],
              "unresolved_tokens": int(out.get("unresolved_tokens", 0)), "seconds": time.perf_counter() - started}
    if store is not None:
        store.put(key, result)
    return result


class CompletenessGap(UserWarning):
    """Attributions whose completeness gap is above the threshold (:data:`GAP_THRESHOLD`): their parts do not add
    up to the change of the embedding."""


def warn_gaps(gaps, threshold: float = GAP_THRESHOLD, noun: str = "sentences", stacklevel: int = 3) -> int:
    """One :class:`CompletenessGap` warning for the gaps above ``threshold`` ("k of n {noun} ..."); returns k.
    ``stacklevel`` counts from the caller, as ``warnings.warn`` would there."""
    gaps = np.asarray(gaps, dtype=float)
    bad = int(np.sum(gaps > threshold))
    if bad:
        warnings.warn(f"{bad} of {len(gaps)} {noun} have a completeness gap above {threshold:.0%} "
                      f"(worst {gaps.max():.2%}); raise n_steps (IG) or max_evals (SHAP).", CompletenessGap,
                      stacklevel=stacklevel + 1)
    return bad


def _warn_about(results: list[dict], spec: Method, gap_warning: float) -> int:
    """Warn about sentences whose completeness gap is above ``gap_warning`` and sentences with unresolved SHAP
    blocks; returns the number of the latter."""
    unresolved = np.asarray([r.get("unresolved_tokens", 0) for r in results])
    warn_gaps([r["completeness_gap"] for r in results], gap_warning)  # pointing at word_weights' caller
    blocked = int(np.sum(unresolved > 0))
    if blocked:
        warnings.warn(f"{blocked} of {len(unresolved)} sentences have word tokens that share one SHAP value (blocks "
                      f"PartitionSHAP did not split within max_evals={getattr(spec, 'max_evals', None) or 500}; "
                      f"{int(unresolved.sum())} tokens in all): their weights are block averages. Raise max_evals "
                      "(the longest sentences need about 20 x their tokens).", stacklevel=3)
    return blocked


def compare_weights(tables: dict, reference: str | None = None) -> pd.DataFrame:
    """Spearman correlation and median relative difference of word weights between settings.

    ``tables``: name -> :func:`word_weights` table on the same sentences. With ``reference``,
    each table is compared with that one; otherwise every pair is.
    """
    from scipy.stats import spearmanr

    names = list(tables)
    pairs = [(reference, n) for n in names if n != reference] if reference else \
        [(a, b) for i, a in enumerate(names) for b in names[i + 1:]]
    rows = []
    for a, b in pairs:
        merged = tables[a].merge(tables[b], on=["sentence_id", "word_index"], suffixes=("_a", "_b"))
        rows.append({"a": a, "b": b, "n_words": len(merged),
                     "spearman": spearmanr(merged["weight_a"], merged["weight_b"])[0],
                     "median_rel_diff": float(np.median(np.abs(merged["weight_b"] - merged["weight_a"]) / merged["weight_a"]))})
    return pd.DataFrame(rows)


def sketch_error(encoder: Encoder, sentences, exact: pd.DataFrame, ks, seeds=(0, 1, 2), method=None) -> pd.DataFrame:
    """Error of the sketched weights against the exact ones, for each k and seed (the book's Eq. eq-sketch).

    ``method``: the IG settings the sketches share (an :class:`IG`; its ``projections`` and ``seed`` are set
    to each k and seed)."""
    from .ig import IG

    method = IG() if method is None else method
    rows = []
    for k in ks:
        for seed in seeds:
            sketch = word_weights(encoder, sentences, method.replace(projections=k, seed=seed), progress=False)
            cmp = compare_weights({"exact": exact, "sketch": sketch}, reference="exact").iloc[0]
            rows.append({"projections": k, "seed": seed, "spearman": cmp["spearman"],
                         "median_rel_error": cmp["median_rel_diff"]})
    return pd.DataFrame(rows)


def per_sentence_spearman(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """Spearman correlation of two settings' word weights within each sentence (sentences of >= 3 words)."""
    from scipy.stats import spearmanr

    merged = a.merge(b, on=["sentence_id", "word_index"], suffixes=("_a", "_b"))
    rows = [{"sentence_id": sid, "n_words": len(g), "spearman": spearmanr(g["weight_a"], g["weight_b"])[0]}
            for sid, g in merged.groupby("sentence_id") if len(g) >= 3]
    return pd.DataFrame(rows)


def mean_word_weights(weights: pd.DataFrame, min_occurrences: int = 3, k: int = 5) -> pd.DataFrame:
    """The k lowest- and k highest-weighted words (mean weight over occurrences, words seen >= min_occurrences)."""
    per_word = weights.groupby("word")["weight"].agg(mean_weight="mean", occurrences="count")
    per_word = per_word[per_word["occurrences"] >= min_occurrences].sort_values("mean_weight")
    if len(per_word) <= 2 * k:
        return per_word.assign(end="all")
    return pd.concat([per_word.head(k).assign(end="lowest"), per_word.tail(k).assign(end="highest")])
