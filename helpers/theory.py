"""The theory of paper section 4 / appendix C, checked numerically (the book's Eq. eq-jensen).

* :func:`log_likelihood` and :func:`sgns_bound`: both sides of the Jensen step
  (appendix C, Eqs. 5-8): log sigmoid(+-<s_bar, s_bar'>) >= (1/(n n')) sum_ij log sigmoid(+-<w_i, w'_j>).
* :class:`TopicCorpus`: a synthetic corpus whose word distributions are known,
  so that KL(w) is exact (:func:`exact_kl`).
* :func:`sgns_optimum`: the G-norm of Oyama et al. (2023) of every word at SGNS's closed-form optimum on that
  corpus, regressed on the exact KL.

The models trained on the corpus (chapter 01's study) are :mod:`helpers.theory_study`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .config import tqdm
from .regression import ols

__all__ = ["log_likelihood", "sgns_bound", "check_bound", "TopicCorpus", "make_topic_corpus", "pair_distribution",
           "exact_kl", "gnorm2", "pmi_matrix", "sgns_optimum", "optimum_by_smoothing", "pmi_rows", "corpus_summary"]


def _log_sigmoid(x):
    return -np.logaddexp(0.0, -np.asarray(x, dtype=float))


def _sign(y: int) -> float:
    if y not in (0, 1):
        raise ValueError(f"y must be 1 (positive pair) or 0 (negative pair), got {y!r}.")
    return 1.0 if y == 1 else -1.0


def log_likelihood(words_a: np.ndarray, words_b: np.ndarray, y: int) -> float:
    """log p(y | s, s') with p(y=1|s,s') = sigmoid(<s_bar, s_bar'>), mean-pooled (appendix C, Eq. 5)."""
    s_a, s_b = np.mean(words_a, axis=0), np.mean(words_b, axis=0)
    return float(_log_sigmoid(_sign(y) * s_a @ s_b))


def sgns_bound(words_a: np.ndarray, words_b: np.ndarray, y: int) -> float:
    """The Jensen lower bound (appendix C, Eq. 8): mean over word pairs of log sigmoid(+-<w_i, w'_j>)."""
    return float(np.mean(_log_sigmoid(_sign(y) * (words_a @ words_b.T))))


def check_bound(n_pairs: int = 10_000, dim: int = 16, max_len: int = 12, scale: float = 1.0,
                seed: int = 0, tol: float = 1e-12) -> pd.DataFrame:
    """Check the inequality on random word vectors and random sentence pairs of both labels.

    Returns one row per pair: ``y, n_a, n_b, lhs, rhs, gap = lhs - rhs, violation``
    (``gap < -tol``; the bound says there are none beyond float rounding).
    """
    rng = np.random.default_rng(seed)
    rows = []
    for _ in tqdm(range(n_pairs), desc="bound check", leave=False):
        n_a, n_b = rng.integers(1, max_len + 1, size=2)
        a = rng.normal(scale=scale, size=(n_a, dim))
        b = rng.normal(scale=scale, size=(n_b, dim))
        y = int(rng.integers(0, 2))
        lhs, rhs = log_likelihood(a, b, y), sgns_bound(a, b, y)
        rows.append((y, n_a, n_b, lhs, rhs))
    df = pd.DataFrame(rows, columns=["y", "n_a", "n_b", "lhs", "rhs"])
    df["gap"] = df["lhs"] - df["rhs"]
    df["violation"] = df["gap"] < -tol
    return df


@dataclass
class TopicCorpus:
    """A topic model whose word distributions are known exactly.

    A sentence draws a topic z ~ ``topic_prior`` and then ``length`` words i.i.d. from
    ``topic_word[z]`` (a mixture of the topic's own words and topic-free function words).
    """

    words: list
    topic_word: np.ndarray   # K x V, rows sum to 1
    topic_prior: np.ndarray  # K
    length: int
    #: the number of topics each word was made for (before any smoothing spreads every word a little)
    spreads: np.ndarray | None = None
    smoothing: float = 0.0

    @property
    def spread(self) -> np.ndarray:
        """Per word: the number of topics it belongs to (its informativeness level)."""
        return self.topic_word.astype(bool).sum(axis=0) if self.spreads is None else self.spreads

    @property
    def is_function(self) -> np.ndarray:
        """Words of every topic (spread = all topics): topic-free function words."""
        return self.spread == len(self.topic_prior)

    @property
    def p(self) -> np.ndarray:
        """Unigram distribution p(w) of word tokens."""
        return self.topic_prior @ self.topic_word

    def sample_topics(self, n_sentences: int, rng: np.random.Generator) -> np.ndarray:
        return rng.choice(len(self.topic_prior), size=n_sentences, p=self.topic_prior)

    def sample(self, n_sentences: int, rng: np.random.Generator, topics=None) -> np.ndarray:
        """``n_sentences`` x ``length`` word ids (of the given ``topics``, else random ones)."""
        z = self.sample_topics(n_sentences, rng) if topics is None else np.asarray(topics)
        cdf = np.cumsum(self.topic_word, axis=1)[z]  # n x V
        u = rng.random((n_sentences, self.length, 1))
        ids = (u > cdf[:, None, :]).sum(axis=2)
        return np.minimum(ids, len(self.words) - 1)


def make_topic_corpus(n_topics: int = 8, spreads=(1, 2, 4, 8), n_ranks: int = 10, zipf: float = 1.0,
                      concentration: float = 1.0, length: int = 8, seed: int = 0, smoothing: float = 0.0) -> TopicCorpus:
    """A topic model in which a word's informativeness and its frequency vary independently.

    For every spread level m (the number of topics a word belongs to) and every frequency rank
    r = 1..``n_ranks``, the topics are split at random into n_topics/m disjoint sets of size m and
    one word is made for each set, with frequency weight 1/r^``zipf`` (the same Zipf ladder at
    every level). Within its m topics a word's mass is shared by Dirichlet(``concentration``)
    proportions, so words of one level differ in how concentrated they are. Topic z emits w with
    probability proportional to n_topics x weight x share_z; every topic receives one word per
    (level, rank) set, so the topics are balanced and p(w) stays close to the word's ladder
    weight whatever its level. KL(w) (paraphrase positives) is fixed by the word's topic shares
    alone: it falls with the spread and varies with the concentration, not with the rank.

    ``smoothing`` = epsilon mixes every topic with the background word distribution,
    q_z <- (1 - epsilon) q_z + epsilon p: every word then co-occurs with every word, so every PMI is finite
    and the SGNS optimum exists (:func:`sgns_optimum`); without it most word pairs never co-occur.
    """
    if not 0.0 <= smoothing < 1.0:
        raise ValueError(f"smoothing must be in [0, 1), got {smoothing!r}.")
    rng = np.random.default_rng(seed)
    if max(spreads) > n_topics or any(n_topics % m for m in spreads):
        raise ValueError(f"every spread must divide n_topics={n_topics}; got {spreads}.")
    words, columns = [], []
    for m in spreads:
        for r in range(n_ranks):
            order = rng.permutation(n_topics)
            for g in range(n_topics // m):
                shares = rng.dirichlet(np.full(m, concentration)) if m > 1 else np.ones(1)
                column = np.zeros(n_topics)
                column[order[g * m:(g + 1) * m]] = shares
                columns.append(n_topics * column / (r + 1) ** zipf)
                words.append(f"m{m}_r{r + 1}_{g}")
    topic_word = np.array(columns).T  # K x V
    topic_word /= topic_word.sum(axis=1, keepdims=True)
    prior = np.full(n_topics, 1.0 / n_topics)
    spread = topic_word.astype(bool).sum(axis=0)
    if smoothing:
        topic_word = (1.0 - smoothing) * topic_word + smoothing * (prior @ topic_word)[None, :]
    return TopicCorpus(words, topic_word, prior, length, spreads=spread, smoothing=float(smoothing))


def pair_distribution(corpus: TopicCorpus, positive: str = "same") -> np.ndarray:
    """Exact joint P(w, w') of positive word pairs (w_i in s, w'_j in s'), i and j uniform.

    This is the distribution the SGNS bound sees with the sentence as its window
    (appendix C, Eq. 14). ``positive="same"`` (the theory's assumption 2, s' = s):
    E[count_s(w) count_s(w')] / n^2 = sum_z pi_z [q_z(w) delta(w, w') / n + (n-1)/n q_z(w) q_z(w')].
    ``positive="topic"`` (s' another sentence of the same topic, a stand-in for a paraphrase):
    sum_z pi_z q_z(w) q_z(w').
    """
    n, q, pi = corpus.length, corpus.topic_word, corpus.topic_prior
    if positive == "topic":
        return np.einsum("z,zv,zw->vw", pi, q, q)
    if positive != "same":
        raise ValueError(f"positive must be 'same' or 'topic', got {positive!r}.")
    joint = (n - 1) / n * np.einsum("z,zv,zw->vw", pi, q, q)
    joint[np.diag_indices_from(joint)] += (pi @ q) / n
    return joint


def exact_kl(corpus: TopicCorpus, positive: str = "same") -> np.ndarray:
    """Exact KL(p(.|w) || p(.)) for every word of the synthetic corpus (paper section 3.2.1),
    with p(.|w) the positive-pair conditional of :func:`pair_distribution`."""
    joint = pair_distribution(corpus, positive)
    p = joint.sum(axis=1)
    cond = joint / p[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(cond > 0, cond * np.log(cond / p[None, :]), 0.0)
    return terms.sum(axis=1)


def gnorm2(vectors: np.ndarray, p: np.ndarray, context: np.ndarray | None = None) -> np.ndarray:
    """(u_w - u_bar)^T G (u_w - u_bar) with u_bar = sum_w p(w) u_w and G = sum_c p(c) (v_c - v_bar)(v_c - v_bar)^T
    the p-weighted covariance of the context vectors v (``context``; None: tied, v = u): the quantity
    that approximates 2 KL(w) at the SGNS optimum (Oyama et al. 2023; appendix C, Eq. 16)."""
    centred = vectors - p @ vectors
    ctx = centred if context is None else context - p @ context
    G = (ctx * p[:, None]).T @ ctx
    return np.einsum("vi,ij,vj->v", centred, G, centred)


def pmi_matrix(corpus: TopicCorpus, positive: str = "same") -> np.ndarray:
    """PMI(w, c) = log P(w, c) / (p(w) p(c)) of positive word pairs (:func:`pair_distribution`); -inf where a
    pair never co-occurs."""
    joint = pair_distribution(corpus, positive)
    p = joint.sum(axis=1)
    with np.errstate(divide="ignore"):
        return np.log(joint) - np.log(p)[:, None] - np.log(p)[None, :]


def sgns_optimum(corpus: TopicCorpus, positive: str = "same", k: int = 1) -> dict:
    """The G-norm of every word at the SGNS optimum, in closed form (the book's Eq. eq-gnorm-pmi).

    With k negatives per positive the optimum of SGNS has <u_w, v_c> = PMI(w, c) - log k for every pair
    (Levy and Goldberg). Then (u_w - u_bar) . (v_c - v_bar) is the PMI matrix centred over words and over
    contexts (weights p), and the G-norm of Eq. eq-oyama is

        ||u_w - u_bar||_G^2 = sum_c p(c) Mc[w, c]^2,   Mc = PMI centred twice,

    the variance over c ~ p of word w's centred PMI row: independent of k (a constant shift cancels) and of
    the dimension (for a factorisation that reaches the optimum). A pair that never co-occurs has PMI -inf,
    and then the optimum does not exist: the G-norm grows as long as training runs. Returns ``gnorm`` (NaN
    when unbounded), ``kl`` (:func:`exact_kl`), ``pmi`` (:func:`pmi_matrix`), ``slope`` and ``r2`` of the G-norm
    on KL, ``share_zero_pairs`` and ``bounded``.
    """
    k = int(k)
    if k < 1:
        raise ValueError(f"k (negatives per positive) must be at least 1, got {k!r}.")
    pmi = pmi_matrix(corpus, positive)
    p = pair_distribution(corpus, positive).sum(axis=1)
    kl = exact_kl(corpus, positive)
    zero = ~np.isfinite(pmi)
    out = {"kl": kl, "pmi": pmi, "share_zero_pairs": float(zero.mean()), "bounded": not zero.any()}
    if zero.any():
        return {**out, "gnorm": np.full(len(p), np.nan), "slope": float("nan"), "r2": float("nan")}
    scores = pmi - np.log(k)  # the optimal <u_w, v_c> (Eq. eq-sgns-optimum); the shift cancels in the centring
    centred = scores - p @ scores  # centre over words (each context column)
    centred = centred - (centred @ p)[:, None]  # and over contexts (each word row)
    gnorm = (centred ** 2) @ p
    fit = ols(kl, gnorm)
    return {**out, "gnorm": gnorm, "slope": fit["beta"], "r2": fit["r2"]}


def optimum_by_smoothing(smoothings, positives=("topic", "same"), **corpus_kwargs) -> pd.DataFrame:
    """The closed-form SGNS optimum (:func:`sgns_optimum`) of the topic corpus at each smoothing level: one row
    per (smoothing, positive) with ``bounded``, ``share_zero_pairs``, the slope and R^2 of the optimal G-norm on
    KL, and the largest |PMI| of a co-occurring pair (``max_abs_pmi``; the expansion of Eq. eq-oyama needs it
    small). ``corpus_kwargs`` go to :func:`make_topic_corpus`."""
    rows = []
    for eps in smoothings:
        corpus = make_topic_corpus(smoothing=float(eps), **corpus_kwargs)
        for positive in positives:
            opt = sgns_optimum(corpus, positive)
            pmi = opt["pmi"]
            rows.append({"smoothing": float(eps), "positive": positive, "bounded": opt["bounded"],
                         "share_zero_pairs": opt["share_zero_pairs"], "slope": opt["slope"], "r2": opt["r2"],
                         "max_abs_pmi": float(np.abs(pmi[np.isfinite(pmi)]).max())})
    return pd.DataFrame(rows)


def pmi_rows(corpus: TopicCorpus, words, positive: str = "same") -> pd.DataFrame:
    """PMI(w, c) of the given words against every context c (Eq. eq-sgns-optimum), long form: ``word, spread, kl,
    context, p_context, pmi``, with the contexts of each word in decreasing PMI order (``rank``)."""
    pmi = pmi_matrix(corpus, positive)
    kl = exact_kl(corpus, positive)
    index = {w: i for i, w in enumerate(corpus.words)}
    unknown = [w for w in words if w not in index]
    if unknown:
        raise ValueError(f"words {unknown} are not in the corpus's vocabulary (e.g. {corpus.words[:3]}).")
    frames = []
    for w in words:
        i = index[w]
        row = pd.DataFrame({"word": w, "spread": int(corpus.spread[i]), "kl": float(kl[i]),
                            "context": corpus.words, "p_context": corpus.p, "pmi": pmi[i]})
        row = row.sort_values("pmi", ascending=False, kind="stable").reset_index(drop=True)
        frames.append(row.assign(rank=np.arange(1, len(row) + 1)))
    return pd.concat(frames, ignore_index=True)


def corpus_summary(corpus: TopicCorpus) -> dict:
    """How independent the corpus makes KL and frequency: Spearman(KL, I) over the vocabulary, both KLs."""
    from scipy.stats import spearmanr

    info = -np.log(corpus.p)
    return {"spearman_kl_i": float(spearmanr(exact_kl(corpus, "topic"), info)[0]),
            "spearman_kl_same_i": float(spearmanr(exact_kl(corpus, "same"), info)[0]),
            "vocabulary": len(corpus.words)}
