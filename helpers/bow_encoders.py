"""Bag-of-words sentence encoders on real text (study layer; chapter 05's third design): mean-pooled word vectors,
one per word of the book's word units, trained from one initialisation with a masked-word objective (CBOW) or
contrastively with SimCSE's loss {eq}`eq-simcse` (word-dropout positives; NLI positives and hard negatives).

For a bag-of-words encoder $f(X) = \\frac1n\\sum_t x_t$ with the zero (PAD) baseline, IG is exact
and $\\mathrm{IG}_{t,i,j} = x_{t,i}\\,\\delta_{ij}/n$, so a word's IG weight {eq}`eq-ig-norm` is its
vector's norm over $n$ and, normalised per sentence, $\\lVert x_t\\rVert$ over the sentence's mean
norm: :func:`bow_weights` computes that directly.

Each run is cached in ``.cache/`` under its settings; in memory in seconds, so with no checkpoint (not the
checkpointed loop of :func:`helpers.runs.fit`).
"""
from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from .config import check_count, settings_differences, settings_location, tqdm

__all__ = ["BOW_OBJECTIVES", "bow_vocabulary", "bow_init", "train_sentence_bow", "bow_weights", "bow_sts"]

BOW_OBJECTIVES = ("cbow", "dropout", "nli")


def bow_vocabulary(sentences, min_count: int = 3) -> list[str]:
    """Word types of ``sentences`` (the book's word units) seen at least ``min_count`` times; index 0 is [UNK]."""
    from .information import count_matrix

    counts, vocab = count_matrix(sentences)[:2]
    totals = np.asarray(counts.sum(0)).ravel()
    return ["[UNK]"] + [w for w, c in zip(vocab, totals) if c >= min_count]


def _ids(texts, index) -> list[list[int]]:
    from .units import split_words

    return [[index.get(w, 0) for w in split_words(t)] or [0] for t in texts]


def _pool(emb, ids_list, drop: float = 0.0, gen=None):
    """Mean of word vectors per sentence (``drop``: each word left out with that probability; a sentence that
    would lose every word keeps its first)."""
    lengths = torch.tensor([len(x) for x in ids_list])
    flat = torch.tensor([i for x in ids_list for i in x])
    segment = torch.repeat_interleave(torch.arange(len(ids_list)), lengths)
    keep = torch.ones(len(flat))
    if drop:
        keep = (torch.rand(len(flat), generator=gen) >= drop).float()
        kept = torch.zeros(len(ids_list)).index_add_(0, segment, keep)
        starts = torch.cumsum(lengths, 0) - lengths
        keep[starts[kept == 0]] = 1.0
    sums = torch.zeros(len(ids_list), emb.shape[1]).index_add_(0, segment, emb[flat] * keep[:, None])
    return sums / torch.zeros(len(ids_list)).index_add_(0, segment, keep)[:, None]


def bow_init(n_words: int, dim: int, seed: int) -> torch.Tensor:
    """The word vectors every bag-of-words objective starts from (and the design's ``init`` row)."""
    torch.manual_seed(seed)
    return torch.randn(n_words, dim) * 0.1


def train_sentence_bow(sentences, objective: str, vocab: list[str], triplets: pd.DataFrame | None = None, dim: int = 64,
                       steps: int = 2000, batch_size: int = 256, lr: float = 0.01, temperature: float = 0.05,
                       drop: float = 0.2, seed: int = 0, progress: bool = True,
                       train: bool = True) -> tuple[np.ndarray, float] | None:
    """A bag-of-words encoder trained on real sentences; returns (word vectors, training minutes), cached.

    ``cbow``: predict a word of the sentence left out from the mean of the others (softmax over the
    vocabulary, a separate output layer: the non-contrastive control); ``dropout``: SimCSE's loss
    {eq}`eq-simcse` with the same sentence under word dropout as the positive; ``nli``: with the NLI
    entailment as the positive and the contradiction as a hard negative. All start from the same
    initialisation (``seed``). ``train=False`` returns None unless the result is cached.
    """
    from .training import hash_texts

    if objective not in BOW_OBJECTIVES:
        raise ValueError(f"objective must be one of {BOW_OBJECTIVES}, got {objective!r}.")
    check_count("steps", steps, 1)
    check_count("batch_size", batch_size, 2)
    if objective == "nli" and (triplets is None or triplets.empty):
        raise ValueError("the nli objective needs triplets (anchor, positive, negative).")
    settings = {"objective": objective, "dim": dim, "steps": steps, "batch_size": batch_size, "lr": lr,
                "temperature": temperature, "drop": drop, "seed": seed, "vocab": hash_texts(vocab),
                "data": hash_texts(sentences if objective != "nli" else
                                   triplets[["anchor", "positive", "negative"]].to_numpy().ravel())}
    path = settings_location(f"bow-{objective}", settings, ".npz")
    if path.is_file():
        saved = np.load(path)
        if "settings" in saved:  # files written before the settings were stored are named by their hash alone
            changes = settings_differences(json.loads(str(saved["settings"])), settings)
            if changes:
                raise ValueError(f"{path} holds a bag-of-words run with other settings ({changes}): delete it, "
                                 "or point SENTENCE_CACHE_DIR at another folder.")
        return saved["vectors"], float(saved["minutes"])
    if not train:
        return None
    emb = torch.nn.Parameter(bow_init(len(vocab), dim, seed))  # the same start for every objective
    step_loss, params = _bow_step_loss(objective, emb, sentences, triplets, vocab, batch_size, temperature, drop, seed)
    optimizer = torch.optim.Adam([emb, *params], lr=lr)
    started = time.perf_counter()
    for step in tqdm(range(steps), desc=f"bag of words ({objective})", disable=not progress):
        loss = step_loss(step)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    minutes = (time.perf_counter() - started) / 60
    vectors = emb.detach().numpy().copy()
    np.savez(path, vectors=vectors, minutes=minutes, settings=json.dumps(settings, sort_keys=True))
    return vectors, minutes


def _bow_step_loss(objective, emb, sentences, triplets, vocab, batch_size, temperature, drop, seed):
    """:func:`train_sentence_bow`'s loss at a step (its examples a function of (seed, step)), and the parameters
    the objective adds to the word vectors (CBOW's output layer). In memory in seconds, with no checkpoint: not
    the checkpointed loop of :func:`helpers.runs.fit`."""
    from .training import simcse_loss

    index = {w: i for i, w in enumerate(vocab)}
    out = torch.nn.Linear(emb.shape[1], len(vocab)) if objective == "cbow" else None
    gen = torch.Generator().manual_seed(seed)
    if objective == "nli":  # word ids once, not per step
        columns = {c: _ids(triplets[c], index) for c in ("anchor", "positive", "negative")}
    else:
        all_ids = _ids(list(sentences), index)

    def step_loss(step):
        rng = np.random.default_rng([seed, step])
        if objective == "nli":
            pick = rng.choice(len(triplets), batch_size, replace=False)
            anchor, positive, negative = ([columns[c][i] for i in pick] for c in ("anchor", "positive", "negative"))
            return simcse_loss(_pool(emb, anchor), _pool(emb, positive), _pool(emb, negative), temperature)
        ids = [all_ids[i] for i in rng.choice(len(all_ids), batch_size, replace=False)]
        if objective == "dropout":
            return simcse_loss(_pool(emb, ids, drop, gen), _pool(emb, ids, drop, gen), temperature=temperature)
        ids = [x for x in ids if len(x) > 1]
        targets = [x[int(rng.integers(len(x)))] for x in ids]
        context = [[w for k, w in enumerate(x) if k != x.index(t)] for x, t in zip(ids, targets)]
        return F.cross_entropy(out(_pool(emb, context)), torch.tensor(targets))

    return step_loss, ([] if out is None else list(out.parameters()))


def bow_weights(vectors: np.ndarray, vocab: list[str], sentences) -> pd.DataFrame:
    """IG word weights of a bag-of-words encoder with the zero baseline: ``||x_t||`` normalised to mean 1 per
    sentence (exact: IG of a linear map; completeness gap 0). Same columns as ``word_weights``."""
    from .units import sentence_table
    from .units import split_words

    index = {w: i for i, w in enumerate(vocab)}
    norms = np.linalg.norm(vectors, axis=1)
    rows = []
    for r in sentence_table(sentences).itertuples():
        words = split_words(r.text)
        raw = np.array([norms[index.get(w, 0)] for w in words])
        weight = raw / raw.mean() if raw.mean() > 0 else np.ones_like(raw)
        rows += [{"sentence_id": r.sentence_id, "word_index": k, "word": w, "weight": float(x), "raw_weight": float(y),
                  "n_subwords": 1, "completeness_gap": 0.0} for k, (w, x, y) in enumerate(zip(words, weight, raw))]
    return pd.DataFrame(rows)


def bow_sts(vectors: np.ndarray, vocab: list[str], pairs: pd.DataFrame) -> float:
    """STS Spearman of the cosine of mean word vectors (:func:`helpers.sts.sts_spearman_of`)."""
    from .sts import sts_spearman_of

    index = {w: i for i, w in enumerate(vocab)}
    pairs = pairs.sort_values(["pair_id", "side"])
    return sts_spearman_of(_pool(torch.tensor(vectors), _ids(pairs["text"], index)).numpy(), pairs)
