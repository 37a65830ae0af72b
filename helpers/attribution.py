"""Word weights from Integrated Gradients and SHAP (paper section 3.1, appendix D; DESIGN.md sections 2-4).

The IG engine here computes the paper's Eq. 4, the Frobenius norm over every
input-embedding element and every output dimension of the IG attributions:

    c_t = || IG[t, :, :] ||_F,  IG[t,i,j] = (x - x')[t,i] * int_0^1 d f_j(X' + a (X - X')) / d x[t,i] da.

No library computes this for all D outputs at once (captum attributes one target at a
time; see its issue 1102), so the engine is written here: all interpolation points go
through one forward pass and all D output cotangents are pushed back in chunks with
``torch.autograd.grad(..., is_grads_batched=True)``. captum provides the quadrature
(:func:`captum.attr._utils.approximation_methods.approximation_parameters`) and, in
:func:`ig_captum_token_norms`, the reference the tests compare against.

The sketched mode (``projections=k``) uses linearity of IG in the output:
E ||IG[t](v^T f)||^2 = ||IG[t]||_F^2 for E[v v^T] = I, at k/D of the backward cost.
"""
from __future__ import annotations

import hashlib
import json
import sqlite3
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from .config import cache_dir
from .encoders import Encoder
from .information import split_words

BASELINES = ("pad", "mask", "zero", "unk")
WORD_AGGS = ("frobenius", "rms", "sum", "first")
NORMALIZATIONS = ("mean1", "none", "times_length")
QUADRATURES = ("gausslegendre", "riemann_trapezoid", "riemann_middle", "riemann_left", "riemann_right")
SKETCHES = ("orthogonal", "gaussian")


# --------------------------------------------------------------------------- inputs
def tokenize(encoder: Encoder, text: str, truncate: bool = True) -> dict:
    """Token ids, the word each token belongs to, and the words (DESIGN.md section 4).

    Words are :func:`helpers.information.split_words` with the encoder's tokenizer, so they
    share units with the information tables. Too long: truncated with a warning (or an error
    with ``truncate=False``). Empty: an error.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"Cannot attribute an empty sentence: {text!r}.")
    tok = encoder.tokenizer
    full = tok(text, add_special_tokens=True)
    if len(full["input_ids"]) > encoder.max_length:
        if not truncate:
            raise ValueError(f"The sentence has {len(full['input_ids'])} tokens, more than the model's "
                             f"{encoder.max_length}: shorten it or pass truncate=True.")
        warnings.warn(f"Sentence of {len(full['input_ids'])} tokens truncated to the model's {encoder.max_length}; "
                      "the words beyond it get no weight.", stacklevel=3)
    enc = tok(text, add_special_tokens=True, truncation=True, max_length=encoder.max_length,
              return_special_tokens_mask=True)
    words = split_words(text, tok)
    word_ids = [None if special else w for w, special in zip(enc.word_ids(), enc["special_tokens_mask"])]
    n_words = max((w for w in word_ids if w is not None), default=-1) + 1
    if n_words == 0:
        raise ValueError(f"The sentence {text!r} has no word the tokenizer keeps.")
    return {"input_ids": torch.tensor([enc["input_ids"]]), "word_ids": word_ids, "words": words[:n_words]}


def baseline_embeddings(encoder: Encoder, input_ids: torch.Tensor, baseline: str = "pad") -> torch.Tensor:
    """X' for the paper's baseline "[CLS] [PAD] ... [PAD] [SEP]" (``pad``) or ``mask``, ``unk``, ``zero``.

    Special tokens keep their embeddings, so they receive no attribution.
    """
    if baseline not in BASELINES:
        raise ValueError(f"baseline must be one of {BASELINES}, got {baseline!r}.")
    tok = encoder.tokenizer
    special = torch.tensor(tok.get_special_tokens_mask(input_ids[0].tolist(), already_has_special_tokens=True),
                           dtype=torch.bool)[None]
    if baseline == "zero":
        x = encoder.embed_tokens(input_ids)
        return torch.where(special[..., None].to(x.device), x, torch.zeros_like(x))
    token_id = {"pad": tok.pad_token_id, "mask": tok.mask_token_id, "unk": tok.unk_token_id}[baseline]
    if token_id is None:
        raise ValueError(f"{encoder.name}'s tokenizer has no {baseline} token; choose another baseline "
                         f"({', '.join(b for b in BASELINES if b != baseline)}).")
    ids = torch.where(special, input_ids, torch.full_like(input_ids, token_id))
    return encoder.embed_tokens(ids)


def _quadrature(method: str, n_steps: int):
    from captum.attr._utils.approximation_methods import approximation_parameters

    if method not in QUADRATURES:
        raise ValueError(f"quadrature must be one of {QUADRATURES}, got {method!r}.")
    if int(n_steps) < 2:
        raise ValueError(f"n_steps must be at least 2, got {n_steps}.")
    step_sizes, alphas = approximation_parameters(method)
    return torch.tensor(alphas(n_steps)), torch.tensor(step_sizes(n_steps))


def projection_matrix(dim: int, k: int, kind: str = "orthogonal", seed: int = 0) -> torch.Tensor:
    """k x dim random projections with E[v v^T] = I (DESIGN.md section 2).

    ``orthogonal``: rows of Haar-random orthogonal blocks scaled by sqrt(dim) (k = dim gives the
    exact norm); ``gaussian``: i.i.d. standard normal rows.
    """
    if kind not in SKETCHES:
        raise ValueError(f"sketch must be one of {SKETCHES}, got {kind!r}.")
    gen = torch.Generator().manual_seed(seed)
    if kind == "gaussian":
        return torch.randn(k, dim, generator=gen)
    blocks = []
    for _ in range(-(-k // dim)):
        q, r = torch.linalg.qr(torch.randn(dim, dim, generator=gen, dtype=torch.float64))
        blocks.append((q * torch.sign(torch.diagonal(r))).T.float() * dim ** 0.5)
    return torch.cat(blocks)[:k]


# --------------------------------------------------------------------------- IG engine
def ig_token_norms(encoder: Encoder, input_ids: torch.Tensor, n_steps: int = 50, quadrature: str = "gausslegendre",
                   baseline: str = "pad", projections: int | None = None, sketch: str = "orthogonal",
                   chunk_size: int = 4, seed: int = 0) -> dict:
    """Per-token ||IG[t,:,:]||_F over all D outputs (paper Eq. 4), and the completeness gap.

    Exact (``projections=None``): all D cotangents, ``chunk_size`` at a time (memory grows
    with chunk_size x n_steps x tokens x hidden). Sketched: ``projections`` rows of
    :func:`projection_matrix`. The completeness gap is
    max_j |sum_{t,i} IG[t,i,j] - (f_j(X) - f_j(X'))| / (||v_j|| ||f(X) - f(X')||) over the
    cotangents used (the unit vectors e_j when exact; DESIGN.md section 2).
    """
    x = encoder.embed_tokens(input_ids)[0].detach()
    x0 = baseline_embeddings(encoder, input_ids, baseline)[0].detach()
    alphas, weights = _quadrature(quadrature, n_steps)
    alphas, weights = alphas.to(x), weights.to(x)
    mask = torch.ones(len(alphas), x.shape[0], dtype=torch.long, device=x.device)
    with torch.no_grad():
        ends = encoder.pool(torch.stack([x, x0]), mask[:2])
    delta_f = ends[0] - ends[1]
    dim = delta_f.shape[0]
    rows = (torch.eye(dim) if projections is None
            else projection_matrix(dim, int(projections), sketch, seed)).to(x)
    path = (x0 + alphas[:, None, None] * (x - x0)).requires_grad_(True)
    out = encoder.pool(path, mask)  # n_steps x D: one forward pass for every interpolation point
    sq = torch.zeros(x.shape[0], dtype=torch.float64, device=x.device)
    gap = 0.0
    for start in range(0, rows.shape[0], chunk_size):
        v = rows[start:start + chunk_size]
        cot = v[:, None, :] * weights[None, :, None]  # quadrature weights folded into the cotangent
        (grads,) = torch.autograd.grad(out, path, grad_outputs=cot, is_grads_batched=True, retain_graph=True)
        ig = grads.sum(1) * (x - x0)  # c x T x H
        sq += (ig.double() ** 2).sum(-1).sum(0)
        residual = (ig.sum((1, 2)) - v @ delta_f).abs() / (v.norm(dim=1) * delta_f.norm()).clamp(min=1e-12)
        gap = max(gap, residual.max().item())
    if projections is not None:
        sq /= rows.shape[0]
    return {"token_norms": sq.sqrt().cpu().numpy(), "completeness_gap": gap,
            "delta_norm": delta_f.norm().item()}


def ig_captum_token_norms(encoder: Encoder, input_ids: torch.Tensor, n_steps: int = 50,
                          quadrature: str = "gausslegendre", baseline: str = "pad", targets=None) -> np.ndarray:
    """The slow reference: captum's IntegratedGradients looped over output dimensions (targets).

    Returns per-token sqrt(sum over targets and hidden units of IG^2): equal to
    :func:`ig_token_norms` when ``targets`` is every dimension.
    """
    from captum.attr import IntegratedGradients

    x = encoder.embed_tokens(input_ids).detach()
    x0 = baseline_embeddings(encoder, input_ids, baseline).detach()

    def forward(embeds):
        return encoder.pool(embeds, torch.ones(embeds.shape[:2], dtype=torch.long, device=embeds.device))

    ig = IntegratedGradients(forward)
    sq = torch.zeros(x.shape[1], dtype=torch.float64)
    for j in targets if targets is not None else range(encoder.dim):
        attr = ig.attribute(x, baselines=x0, target=int(j), n_steps=n_steps, method=quadrature,
                            internal_batch_size=n_steps)
        sq += (attr[0].double() ** 2).sum(-1).cpu()
    return sq.sqrt().numpy()


# --------------------------------------------------------------------------- words
def aggregate_words(token_norms, word_ids, words, word_agg: str = "frobenius", normalize: str = "mean1") -> pd.DataFrame:
    """Token weights -> word weights -> length-normalised weights (DESIGN.md section 4).

    word_agg: ``frobenius`` sqrt(sum c_t^2) (the paper's Eq. 4 over a word's subwords), ``rms``
    sqrt(mean c_t^2), ``sum``, ``first``. normalize: ``mean1`` n c_w / sum c (weights average 1
    in the sentence), ``none``, ``times_length`` c_w n. Special tokens (word id None) are dropped.
    """
    if word_agg not in WORD_AGGS:
        raise ValueError(f"word_agg must be one of {WORD_AGGS}, got {word_agg!r}.")
    if normalize not in NORMALIZATIONS:
        raise ValueError(f"normalize must be one of {NORMALIZATIONS}, got {normalize!r}.")
    tokens = pd.DataFrame({"word_index": word_ids, "c": np.asarray(token_norms, dtype=float)}).dropna()
    tokens["word_index"] = tokens["word_index"].astype(int)
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


# --------------------------------------------------------------------------- cache
class AttributionCache:
    """A resumable on-disk cache (SQLite): one row per (settings, sentence), committed as it is computed."""

    def __init__(self, path: Path | str | None = None):
        self.path = Path(path) if path else cache_dir("attribution") / "weights.sqlite"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path)
        self.db.execute("CREATE TABLE IF NOT EXISTS weights (key TEXT PRIMARY KEY, value TEXT)")

    @staticmethod
    def key(settings: dict, sentence_id, text: str) -> str:
        blob = json.dumps([settings, str(sentence_id), text], sort_keys=True, default=str)
        return hashlib.sha1(blob.encode()).hexdigest()

    def get(self, key: str):
        row = self.db.execute("SELECT value FROM weights WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def put(self, key: str, value: dict) -> None:
        self.db.execute("INSERT OR REPLACE INTO weights VALUES (?, ?)", (key, json.dumps(value)))
        self.db.commit()

    def __len__(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM weights").fetchone()[0]


def _sentences(sentences) -> pd.DataFrame:
    if isinstance(sentences, str):
        sentences = [sentences]
    if isinstance(sentences, pd.DataFrame):
        if "text" not in sentences:
            raise ValueError("a DataFrame of sentences needs a 'text' column (and ideally 'sentence_id').")
        df = sentences
        if "sentence_id" not in df:
            df = df.assign(sentence_id=np.arange(len(df)))
        return df[["sentence_id", "text"]]
    texts = list(sentences)
    return pd.DataFrame({"sentence_id": np.arange(len(texts)), "text": texts})


def word_weights(encoder: Encoder, sentences, method: str = "ig", n_steps: int = 50,
                 quadrature: str = "gausslegendre", baseline: str = "pad", projections: int | None = None,
                 sketch: str = "orthogonal", word_agg: str = "frobenius", normalize: str = "mean1",
                 chunk_size: int = 4, max_evals: int | None = None, shap_mask: str = "per_token",
                 shap_batch_size: int = 64, truncate: bool = True, cache=True, seed: int = 0,
                 progress: bool = True, gap_warning: float = 0.01) -> pd.DataFrame:
    """Word weights of every sentence (paper sections 3.1.1 and D.4; DESIGN.md sections 2-4).

    Returns one row per word: ``sentence_id, word_index, word, weight, raw_weight``, plus
    ``n_subwords`` and the sentence's ``completeness_gap`` (IG: the completeness residual;
    SHAP: the additivity residual). ``method="ig"`` (exact, or sketched with ``projections``)
    or ``"shap"`` (see :func:`helpers.attribution.shap_token_norms`).
    ``cache``: True (``.cache/attribution``), a path, or False. Per-token results are cached,
    so ``word_agg`` and ``normalize`` can change without recomputation; an interrupted run
    resumes where it stopped.
    """
    if method not in ("ig", "shap"):
        raise ValueError(f"method must be 'ig' or 'shap', got {method!r}.")
    df = _sentences(sentences)
    if method == "ig":
        settings = {"method": "ig", "n_steps": n_steps, "quadrature": quadrature, "baseline": baseline,
                    "projections": projections, "sketch": sketch if projections else None,
                    "seed": seed if projections else None}
        _quadrature(quadrature, n_steps)  # validate before the loop
    else:
        settings = {"method": "shap", "max_evals": max_evals, "shap_mask": shap_mask}
        if shap_mask not in SHAP_MASKS:
            raise ValueError(f"shap_mask must be one of {SHAP_MASKS}, got {shap_mask!r}.")
    if baseline not in BASELINES:
        raise ValueError(f"baseline must be one of {BASELINES}, got {baseline!r}.")
    settings.update(model=encoder.name, fingerprint=encoder.fingerprint(), pooling=encoder.pooling,
                    normalize_output=encoder.normalize)
    store = AttributionCache(None if cache is True else cache) if cache else None
    frames, gaps, seconds = [], [], []
    for sentence_id, text in tqdm(list(df.itertuples(index=False, name=None)), desc=f"{method} word weights",
                                  disable=not progress):
        key = AttributionCache.key(settings, sentence_id, text)
        result = store.get(key) if store is not None else None
        if result is None:
            started = time.perf_counter()
            inputs = tokenize(encoder, text, truncate=truncate)
            if method == "ig":
                sentence_seed = seed * 1_000_003 + int(hashlib.sha1(text.encode()).hexdigest()[:7], 16)
                out = ig_token_norms(encoder, inputs["input_ids"], n_steps, quadrature, baseline, projections,
                                     sketch, chunk_size, sentence_seed)
            else:
                out = shap_token_norms(encoder, text, inputs, max_evals=max_evals, mask=shap_mask,
                                       batch_size=shap_batch_size)
            result = {"token_norms": [float(c) for c in out["token_norms"]], "word_ids": inputs["word_ids"],
                      "words": inputs["words"], "completeness_gap": out["completeness_gap"],
                      "seconds": time.perf_counter() - started}
            if store is not None:
                store.put(key, result)
        words = aggregate_words(result["token_norms"], result["word_ids"], result["words"], word_agg, normalize)
        words.insert(0, "sentence_id", sentence_id)
        words["completeness_gap"] = result["completeness_gap"]
        gaps.append(result["completeness_gap"])
        seconds.append(result.get("seconds", np.nan))
        frames.append(words)
    table = pd.concat(frames, ignore_index=True)
    bad = int(np.sum(np.asarray(gaps) > gap_warning))
    if bad:
        warnings.warn(f"{bad} of {len(gaps)} sentences have a completeness gap above {gap_warning:.0%} "
                      f"(worst {max(gaps):.2%}); raise n_steps (IG) or max_evals (SHAP).", stacklevel=2)
    table.attrs.update(settings=settings, word_agg=word_agg, normalize=normalize,
                       seconds_per_sentence=float(np.nanmean(seconds)) if seconds else float("nan"))
    return table


SHAP_MASKS = ("per_token", "collapsed")


def shap_masker(encoder: Encoder, mask: str = "per_token"):
    """shap's Text masker replacing removed tokens by the model's mask token (paper appendix D.4).

    ``per_token``: one mask token per removed token (``mask_token=None`` lets shap take the
    tokenizer's mask token and keeps ``collapse_mask_token`` off); ``collapsed``: a fully
    masked span becomes a single mask token (what passing ``mask_token="[MASK]"`` turns on).
    """
    import shap

    if mask not in SHAP_MASKS:
        raise ValueError(f"shap_mask must be one of {SHAP_MASKS}, got {mask!r}.")
    if encoder.tokenizer.mask_token is None:
        raise ValueError(f"{encoder.name}'s tokenizer has no mask token, which SHAP's masking needs.")
    if mask == "per_token":
        return shap.maskers.Text(encoder.tokenizer, mask_token=None, collapse_mask_token=False)
    return shap.maskers.Text(encoder.tokenizer, mask_token=encoder.tokenizer.mask_token, collapse_mask_token=True)


def shap_model(encoder: Encoder, batch_size: int = 64):
    """The model function shap calls: masked texts -> whole sentence vectors (N x D).

    shap hands over a numpy array of strings; the tokenizer needs a list of ``str``.
    """
    def f(texts):
        texts = [str(t) for t in np.atleast_1d(texts)]
        return encoder.encode(texts, batch_size=batch_size)
    return f


def shapley_by_enumeration(value, n_players: int):
    """Exact Shapley values of a vector-valued game by enumerating all 2^n coalitions (paper Eq. 17).

    ``value(masks)`` maps a (m x n) boolean array of coalitions to (m x D) payoffs. Written
    here because shap's ExactExplainer cannot take the Text masker (its clustering is a
    function, which ExactExplainer indexes as an array); used as the tests' reference.
    Returns (phi: n x D, base: the empty coalition's payoff).
    """
    from math import factorial

    if n_players > 14:
        raise ValueError(f"enumeration of 2^{n_players} coalitions is too large.")
    masks = ((np.arange(2 ** n_players)[:, None] >> np.arange(n_players)) & 1).astype(bool)
    payoff = np.asarray(value(masks), dtype=float)
    index = {tuple(m): i for i, m in enumerate(masks)}
    size = masks.sum(1)
    weight = np.array([factorial(k) * factorial(n_players - k - 1) / factorial(n_players) if k < n_players else 0.0
                       for k in size])
    phi = np.zeros((n_players, payoff.shape[1]))
    for i in range(n_players):
        without = ~masks[:, i]
        with_i = masks[without].copy()
        with_i[:, i] = True
        rows = [index[tuple(m)] for m in with_i]
        phi[i] = (weight[without][:, None] * (payoff[rows] - payoff[without])).sum(0)
    return phi, payoff[0]


def shap_token_norms(encoder: Encoder, text: str, inputs: dict | None = None, max_evals: int | None = None,
                     mask: str = "per_token", batch_size: int = 64, algorithm: str = "partition") -> dict:
    """Per-token ||phi[t, :]||_2 over the D outputs from PartitionSHAP (paper appendix D, Eq. 20).

    Uses shap's Partition explainer with its Text masker (:func:`shap_masker`). The text is
    passed as a one-element list (a bare string would be explained character by character).
    ``max_evals=None`` is shap's default (500). The additivity gap is
    max_j |base_j + sum_t phi[t, j] - f_j(x)| / ||f(x) - base||. ``algorithm="exact"``
    enumerates every coalition (:func:`shapley_by_enumeration`), for short sentences and tests.
    """
    import shap

    inputs = inputs or tokenize(encoder, text)
    masker = shap_masker(encoder, mask)
    model = shap_model(encoder, batch_size)
    if algorithm == "partition":
        explainer = shap.PartitionExplainer(model, masker)
        kwargs = {"max_evals": max_evals if max_evals is not None else 500}
    elif algorithm == "exact":
        def coalition_value(masks):  # masker(mask, text) returns ((masked text,),)
            return model([masker(m, text)[0][0] for m in masks])

        phi, base = shapley_by_enumeration(coalition_value, masker.shape(text)[1])
    else:
        raise ValueError(f"algorithm must be 'partition' or 'exact', got {algorithm!r}.")
    if algorithm == "partition":
        explanation = explainer([text], batch_size=batch_size, silent=True, **kwargs)
        phi = np.asarray(explanation.values[0], dtype=float)  # tokens x D (special tokens included)
        base = np.asarray(explanation.base_values[0], dtype=float)
    if phi.shape[0] != len(inputs["word_ids"]):
        raise RuntimeError(f"shap split {text!r} into {phi.shape[0]} tokens, the tokenizer into "
                           f"{len(inputs['word_ids'])}; cannot map SHAP values to words.")
    output = model([text])[0]
    gap = float(np.max(np.abs(base + phi.sum(0) - output)) / max(np.linalg.norm(output - base), 1e-12))
    return {"token_norms": np.linalg.norm(phi, axis=1), "completeness_gap": gap, "phi": phi, "base": base}


# --------------------------------------------------------------------------- studies of the method
def completeness_by_steps(encoder: Encoder, texts, n_steps_grid, quadratures=("gausslegendre", "riemann_trapezoid"),
                          baseline: str = "pad", projections: int | None = 32, progress: bool = True) -> pd.DataFrame:
    """Worst completeness gap over ``texts`` for every (quadrature, n_steps): choose the cheapest n_steps under 1%.

    With ``projections`` the gap is checked on that many random output directions (IG is
    linear in the output, so each direction obeys completeness on its own).
    """
    rows = []
    grid = [(q, n) for q in quadratures for n in n_steps_grid]
    for quadrature, n in tqdm(grid, desc="completeness", disable=not progress):
        gaps = [ig_token_norms(encoder, tokenize(encoder, t)["input_ids"], n, quadrature, baseline, projections)["completeness_gap"]
                for t in texts]
        rows.append({"quadrature": quadrature, "n_steps": n, "max_gap": max(gaps), "mean_gap": float(np.mean(gaps))})
    return pd.DataFrame(rows)


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
    """Error of the sketched weights against the exact ones, for each k and seed (DESIGN.md section 2)."""
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
