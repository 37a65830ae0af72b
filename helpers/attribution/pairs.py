"""Which words make two sentences similar? Word-pair contributions to a similarity score (chapter 10).

A sentence encoder is used through the similarity of two sentences. With the inner product,
``s(a, b) = f(A) . f(B)`` is bilinear, so integrated gradients over both inputs split it exactly
into word pairs (the "integrated Jacobians" of Moeller et al., 2023). Let ``J_a[t]`` be token t's IG
contribution to every output dimension (:func:`helpers.attribution.ig_token_outputs`; completeness:
``sum_t J_a[t] = f(A) - f(A')``). Then

    f(A) . f(B) = sum_{t,u} J_a[t] . J_b[u] + sum_t J_a[t] . f(B') + f(A') . sum_u J_b[u] + f(A') . f(B'),

the word-pair contributions ``J_a[t] . J_b[u]`` (summed over each word's tokens) plus three reference
terms that involve the baselines. Quadrature error leaves a completeness gap, reported like IG's.
With ``similarity="cosine"`` the embeddings are normalised inside the function (the encoder's output
is ``f / ||f||``), so the decomposition is of the cosine: the contributions then describe directions
only, and the reference vectors are unit vectors too.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json

import numpy as np
import pandas as pd
import torch

from ..config import tqdm
from ..units import units_key
from .cache import AttributionCache
from .ig import IG, ig_token_outputs
from .tokens import tokenize
from .words import ENGINE_VERSION, _method_for

__all__ = ["SIMILARITIES", "pair_weights", "pair_matrix", "pair_shares", "pair_word_share", "pairs_study"]

SIMILARITIES = ("dot", "cosine")
#: IG settings a pair's cache key names only when they differ from these (keys made before stay valid)
PAIR_KEY_DEFAULTS = {"precision": "fp32", "quadrature": "gausslegendre", "sketch": "orthogonal"}


def _word_outputs(encoder, text: str, ig: IG, seed: int):
    inputs = tokenize(encoder, text)
    keep = torch.tensor([[w is None for w in inputs["word_ids"]]])
    out = ig_token_outputs(encoder, inputs["input_ids"], n_steps=ig.n_steps, quadrature=ig.quadrature,
                           baseline=ig.baseline, projections=ig.projections, sketch=ig.sketch, chunk_size=ig.chunk_size,
                           seed=seed, keep=keep, precision=ig.precision)
    words = inputs["words"]
    W = np.zeros((len(words), out["J"].shape[1]))
    for t, w in enumerate(inputs["word_ids"]):  # a word's contribution: the sum over its tokens
        if w is not None:
            W[w] += out["J"][t]
    return words, W, out


def _check_pair(value: dict) -> str | None:
    """What is wrong with a cached pair row (None: nothing)."""
    c = np.asarray(value["contributions"], dtype=float)
    if c.shape != (len(value["words_a"]), len(value["words_b"])):
        return f"a {c.shape} contribution matrix for {len(value['words_a'])} x {len(value['words_b'])} words"
    if not (np.isfinite(c).all() and np.isfinite([value["score"], value["reference"], value["completeness_gap"]]).all()):
        return "it holds a non-finite number"
    return None


def pair_weights(encoder, a: str, b: str, method: IG | None = None, *, similarity: str = "dot", cache=True,
                 **misplaced) -> pd.DataFrame:
    """Contribution of every (word of ``a``, word of ``b``) pair to the similarity of ``a`` and ``b`` (the book's
    Eq. eq-pair).

    Returns a long DataFrame (``word_a``, ``index_a``, ``word_b``, ``index_b``, ``contribution``) whose
    ``attrs`` hold ``score`` (the similarity), ``reference`` (the three reference terms together),
    ``completeness_gap`` (|sum of contributions + reference - score|, relative to |score|),
    ``gap_of_contributions`` (the same residual relative to the sum of |contributions|: the reference terms
    can dominate the score, so this is the gap that says how well the word pairs are explained) and the settings.
    ``method``: the :class:`~helpers.attribution.IG` object whose settings the pair uses (None: ``IG()``, 50
    quadrature points, exact). Exact with ``projections=None`` (every output dimension); sketched with
    ``projections`` = k random directions (both sentences use the same directions, so the pair products are
    unbiased). Its ``precision``: ``fp32`` or ``bf16`` for the path's passes; the score and reference terms are
    fp32 either way, so the gap includes the rounding. IG's settings beside the object (``n_steps=20``) are refused,
    naming the object to pass.
    """
    ig = _method_for(IG() if method is None else method, misplaced, "pair_weights")
    if not isinstance(ig, IG):
        raise TypeError(f"pair_weights() decomposes a similarity with IG only (its word-pair form, Eq. eq-pair); got "
                        f"the method {ig.name!r}. Pass an IG(...) object.")
    if similarity not in SIMILARITIES:
        raise ValueError(f"similarity must be one of {SIMILARITIES}, got {similarity!r}.")
    for name, text in (("a", a), ("b", b)):
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"sentence {name} must be a non-empty string, got {text!r}.")
    enc = dataclasses.replace(encoder, normalize=True) if similarity == "cosine" else encoder
    settings = {"kind": "pair", "engine": ENGINE_VERSION, "model": encoder.name, "fingerprint": encoder.fingerprint(),
                "pooling": encoder.pooling, "normalize_output": enc.normalize, "n_steps": ig.n_steps,
                "projections": ig.projections, "similarity": similarity, "baseline": ig.baseline, "seed": ig.seed,
                # the keys pairs had before they took the IG object: its other settings only where not the default
                **{k: getattr(ig, k) for k, default in PAIR_KEY_DEFAULTS.items()
                   if getattr(ig, k) != default and (k != "sketch" or ig.projections)}}
    store = AttributionCache.open(cache)
    key = AttributionCache.key(settings, "pair", json.dumps([a, b]))
    units = (tokenize(enc, a)["words"], tokenize(enc, b)["words"]) if store is not None and store.has(key) else None

    def check(value):  # a row stored under other word units is recomputed, not served
        return _check_pair(value) or (None if (value["words_a"], value["words_b"]) == units
                                      else "its word units differ from the tokenizer's today")

    result = store.get(key, check) if store is not None else None
    if result is None:
        result = _pair_result(enc, a, b, ig)
        if store is not None:
            store.put(key, result)
    c = np.asarray(result["contributions"])
    rows = [{"word_a": wa, "index_a": i, "word_b": wb, "index_b": j, "contribution": float(c[i, j])}
            for i, wa in enumerate(result["words_a"]) for j, wb in enumerate(result["words_b"])
            if wa is not None and wb is not None]  # units that are not words (a special-token string) carry 0
    table = pd.DataFrame(rows, columns=["word_a", "index_a", "word_b", "index_b", "contribution"])
    # the gap relative to the pairs' own size: the reference terms can dominate the score, so a gap that is
    # small against the score can still be large against what the word pairs explain
    residual = result["completeness_gap"] * max(abs(result["score"]), 1e-12)
    table.attrs.update(units=units_key(encoder.tokenizer), score=result["score"], reference=result["reference"],
                       completeness_gap=result["completeness_gap"],
                       gap_of_contributions=residual / max(float(np.abs(c).sum()), 1e-12), settings=settings)
    return table


def _pair_result(enc, a: str, b: str, ig: IG) -> dict:
    """The pair's contributions, score, reference terms and gap, computed (what the cache keeps)."""
    sketch_seed = ig.seed * 1_000_003 + int(hashlib.sha1((a + "\0" + b).encode()).hexdigest()[:7], 16)
    # special tokens keep their embedding in the baseline, so their J is 0: the words carry everything
    words_a, Wa, out_a = _word_outputs(enc, a, ig, sketch_seed)
    words_b, Wb, out_b = _word_outputs(enc, b, ig, sketch_seed)
    k = out_a["rows"].shape[0]
    scale = 1.0 if ig.projections is None else 1.0 / k  # E[R^T R] = k I for k sketch rows
    contributions = (Wa @ Wb.T) * scale
    # the reference terms need no attribution: with completeness, sum_t J_a[t] = f(A) - f(A'), so
    # (f(A) - f(A')) . f(B') + f(A') . (f(B) - f(B')) + f(A') . f(B') = f(A).f(B') + f(A').f(B) - f(A').f(B')
    fa, fa0, fb, fb0 = out_a["f_x"], out_a["f_ref"], out_b["f_x"], out_b["f_ref"]
    reference = float(fa @ fb0 + fa0 @ fb - fa0 @ fb0)
    score = float(out_a["f_x"] @ out_b["f_x"])
    total = float(contributions.sum()) + reference
    return {"words_a": words_a, "words_b": words_b, "contributions": contributions.tolist(), "score": score,
            "reference": reference, "completeness_gap": abs(total - score) / max(abs(score), 1e-12)}


def pair_matrix(table: pd.DataFrame) -> pd.DataFrame:
    """The pair table as a matrix: rows the words of a, columns the words of b (in sentence order)."""
    m = table.pivot_table(index=["index_a", "word_a"], columns=["index_b", "word_b"], values="contribution",
                          sort=True)
    m.index = [w for _, w in m.index]
    m.columns = [w for _, w in m.columns]
    return m


def _kl_by_word(kl) -> pd.Series:
    """KL indexed by word, from a Series indexed by word or a ``word_information`` table (``word`` and ``kl``)."""
    if isinstance(kl, pd.DataFrame):
        if not {"word", "kl"} <= set(kl.columns):
            raise ValueError("kl: a table needs the columns 'word' and 'kl' (word_information's table).")
        return kl.set_index("word")["kl"]
    if not isinstance(kl, pd.Series):
        raise TypeError(f"kl must be a Series of KL indexed by word, or word_information's table; got "
                        f"{type(kl).__name__}.")
    if not len(kl) or not all(isinstance(w, str) for w in kl.index):
        raise ValueError("kl must be indexed by word (its index holds row numbers, not words): pass "
                         "word_information(...).set_index('word')['kl'], or the table word_information(...) itself.")
    return kl


def pair_shares(table: pd.DataFrame, kl, top_quantile: float = 0.75) -> dict:
    """How much of a pair's total absolute contribution comes from identical words, and from pairs whose two
    words are both in the top KL quartile. ``kl``: KL by word, ``word_information(...).set_index("word")["kl"]``,
    or the table ``word_information(...)`` itself; a Series indexed by row numbers is refused."""
    kl = _kl_by_word(kl)
    weight = table["contribution"].abs()
    total = float(weight.sum()) or float("nan")
    threshold = kl.quantile(top_quantile)
    top = kl[kl >= threshold].index
    both_top = table["word_a"].isin(top) & table["word_b"].isin(top)
    return {"share_identical": float(weight[table["word_a"] == table["word_b"]].sum()) / total,
            "share_top_kl": float(weight[both_top].sum()) / total}


def pair_word_share(table: pd.DataFrame, words) -> float:
    """The share of a pair's total absolute contribution that goes through any of ``words`` (on either side):
    how much of the score a word such as *not* carries (chapter 13). NaN when the pairs contribute nothing."""
    if isinstance(words, str):
        raise TypeError("words must be a list of words (a bare string would be read letter by letter).")
    chosen = set(words)
    weight = table["contribution"].abs()
    total = float(weight.sum())
    hit = table["word_a"].isin(chosen) | table["word_b"].isin(chosen)
    return float(weight[hit].sum()) / total if total > 0 else float("nan")


def pairs_study(encoder, pairs: pd.DataFrame, kl: pd.Series, method: IG | None = None, similarity: str = "dot",
                progress: bool = True) -> pd.DataFrame:
    """Every STS pair of ``pairs`` (the loader's frame: consecutive ``side`` 0/1 rows with a ``score``) through
    :func:`pair_weights` with the IG object ``method`` (None: ``IG(n_steps=20, projections=16)``): one row per pair
    with the gold score, the similarity, the shares and the gap."""
    method = IG(n_steps=20, projections=16) if method is None else method
    rows = []
    ordered = pairs.sort_values(["pair_id", "side"])
    for pair_id, d in tqdm(list(ordered.groupby("pair_id", sort=False)), desc="sentence pairs", disable=not progress):
        if len(d) != 2:
            continue
        a, b = d["text"].tolist()
        t = pair_weights(encoder, a, b, method, similarity=similarity)
        rows.append({"pair_id": pair_id, "gold": float(d["score"].iloc[0]), "similarity": t.attrs["score"],
                     "completeness_gap": t.attrs["completeness_gap"],
                     "gap_of_contributions": t.attrs["gap_of_contributions"], **pair_shares(t, kl)})
    return pd.DataFrame(rows)
