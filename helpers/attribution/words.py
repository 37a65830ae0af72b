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
from .tokens import BASELINES, tokenize, truncate_text

__all__ = ["WORD_AGGS", "NORMALIZATIONS", "ENGINE_VERSION", "GAP_THRESHOLD", "aggregate_words", "word_weights", "compare_weights",
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


def word_weights(encoder: Encoder, sentences, method="ig", n_steps: int = 50,
                 quadrature: str = "gausslegendre", baseline: str = "pad", projections: int | None = None,
                 sketch: str = "orthogonal", word_agg: str = "frobenius", normalize: str = "mean1",
                 chunk_size: int = 4, max_evals: int | None = None, shap_mask: str = "per_token",
                 shap_batch_size: int = 64, truncate: bool = True, cache=True, seed: int = 0,
                 progress: bool = True, gap_warning: float = GAP_THRESHOLD, **options) -> pd.DataFrame:
    """Word weights of every sentence (paper sections 3.1.1 and D.4; the book's Eqs. eq-ig-norm, eq-sketch and eq-normalise).

    Returns one row per word: ``sentence_id, word_index, word, weight, raw_weight``, plus
    ``n_subwords`` and the sentence's ``completeness_gap`` (IG: the completeness residual;
    SHAP: the additivity residual). ``method="ig"`` (exact, or sketched with ``projections``)
    or ``"shap"`` (see :func:`helpers.attribution.shap_token_norms`), or any other registered
    :class:`Method` by name (its own settings as further keyword ``options``) or as an instance
    (``method=IG(n_steps=20)``; the IG and SHAP keywords here are then ignored).
    ``cache``: True (``.cache/attribution``), a path, or False. Per-token results are cached,
    so ``word_agg`` and ``normalize`` can change without recomputation; an interrupted run
    resumes where it stopped.
    """
    if isinstance(method, str) and method not in Method.registry:
        raise ValueError(f"method must be one of {methods()} (or a Method instance), got {method!r}.")
    if word_agg not in WORD_AGGS:
        raise ValueError(f"word_agg must be one of {WORD_AGGS}, got {word_agg!r}.")
    if normalize not in NORMALIZATIONS:
        raise ValueError(f"normalize must be one of {NORMALIZATIONS}, got {normalize!r}.")
    df = sentence_table(sentences)
    if isinstance(method, Method):
        if options:
            raise TypeError(f"options {sorted(options)} go into the Method instance, not word_weights.")
        spec = method
    else:
        known = {"n_steps": n_steps, "quadrature": quadrature, "baseline": baseline, "projections": projections,
                 "sketch": sketch, "chunk_size": chunk_size, "max_evals": max_evals, "shap_mask": shap_mask,
                 "shap_batch_size": shap_batch_size}
        if options:  # a registered method's own settings: each must be one it takes
            make_method(method, options, strict=True)
        spec = make_method(method, {**known, **options})
    spec.validate()
    if baseline not in BASELINES:
        raise ValueError(f"baseline must be one of {BASELINES}, got {baseline!r}.")
    settings = spec.settings(seed)
    settings.update(engine=ENGINE_VERSION, model=encoder.name, fingerprint=encoder.fingerprint(), pooling=encoder.pooling,
                    normalize_output=encoder.normalize)
    store = AttributionCache.open(cache)
    frames, gaps, seconds, unresolved = [], [], [], []
    for sentence_id, text in tqdm(list(df.itertuples(index=False, name=None)), desc=f"{spec.name} word weights",
                                  disable=not progress):
        key = AttributionCache.key(settings, sentence_id, text)
        if spec.shortens_text and truncate:
            text_used = truncate_text(encoder, text)  # shap's masker sees the text itself: shorten it
        else:
            text_used = text
        with warnings.catch_warnings():
            if store is not None and store.has(key):
                warnings.simplefilter("ignore")  # the truncation warning was given when the row was computed
            inputs = tokenize(encoder, text_used, truncate=truncate)

        def same_units(value, inputs=inputs):  # a row stored under other word units is recomputed, not served
            return AttributionCache.check_weights(value) or (
                None if (value["word_ids"], value["words"]) == (inputs["word_ids"], inputs["words"])
                else "its word units differ from the tokenizer's today")

        result = store.get(key, same_units) if store is not None else None
        if result is None:
            started = time.perf_counter()
            out = spec.token_norms(encoder, text_used, inputs, seed)
            if not np.isfinite(out["token_norms"]).all():
                raise ValueError(f"sentence {sentence_id!r} ({text[:60]!r}): the model gave non-finite attributions "
                                 "(overflow or NaN in its output); nothing was cached. Check the model's weights "
                                 "and dtype.")
            result = {"token_norms": [float(c) for c in out["token_norms"]], "word_ids": inputs["word_ids"],
                      "words": inputs["words"], "completeness_gap": out["completeness_gap"],
                      "unresolved_tokens": int(out.get("unresolved_tokens", 0)),
                      "seconds": time.perf_counter() - started}
            if store is not None:
                store.put(key, result)
        words = aggregate_words(result["token_norms"], result["word_ids"], result["words"], word_agg, normalize)
        words.insert(0, "sentence_id", sentence_id)
        words["completeness_gap"] = result["completeness_gap"]
        gaps.append(result["completeness_gap"])
        unresolved.append(result.get("unresolved_tokens", 0))
        seconds.append(result.get("seconds", np.nan))
        frames.append(words)
    table = pd.concat(frames, ignore_index=True)
    bad = int(np.sum(np.asarray(gaps) > gap_warning))
    if bad:
        warnings.warn(f"{bad} of {len(gaps)} sentences have a completeness gap above {gap_warning:.0%} "
                      f"(worst {max(gaps):.2%}); raise n_steps (IG) or max_evals (SHAP).", stacklevel=2)
    blocked = int(np.sum(np.asarray(unresolved) > 0))
    if blocked:
        warnings.warn(f"{blocked} of {len(unresolved)} sentences have word tokens that share one SHAP value (blocks "
                      f"PartitionSHAP did not split within max_evals={getattr(spec, 'max_evals', None) or 500}; {int(np.sum(unresolved))} "
                      "tokens in all): their weights are block averages. Raise max_evals (the longest sentences "
                      "need about 20 x their tokens).", stacklevel=2)
    table.attrs.update(units=units_key(encoder.tokenizer), settings=settings, word_agg=word_agg, normalize=normalize, unresolved_sentences=blocked,
                       seconds_per_sentence=float(np.nanmean(seconds)) if seconds else float("nan"))
    return table


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


def sketch_error(encoder: Encoder, sentences, exact: pd.DataFrame, ks, seeds=(0, 1, 2), progress: bool = True,
                 **options) -> pd.DataFrame:
    """Error of the sketched weights against the exact ones, for each k and seed (the book's Eq. eq-sketch)."""
    rows = []
    for k in ks:
        for seed in seeds:
            sketch = word_weights(encoder, sentences, projections=k, seed=seed, progress=False, **options)
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
