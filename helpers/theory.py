"""The theory of paper section 4 / appendix C, checked numerically (DESIGN.md section 8).

* :func:`log_likelihood` and :func:`sgns_bound`: both sides of the Jensen step
  (appendix C, Eqs. 5-8): log sigmoid(+-<s_bar, s_bar'>) >= (1/(n n')) sum_ij log sigmoid(+-<w_i, w'_j>).
* :class:`TopicCorpus`: a synthetic corpus whose word distributions are known,
  so that KL(w) is exact (:func:`exact_kl`).
* :func:`train_bow`: a mean-pooled bag-of-words encoder trained with the
  contrastive objective of appendix C (or its SGNS lower bound, or with cosine
  similarity), recording how ||w||^2 and the G-norm of Oyama et al. (2023) track KL.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from .config import tqdm
from .regression import ols


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
    is_function: np.ndarray  # V, bool

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


def make_topic_corpus(n_topics: int = 8, spreads=(1, 2, 4, 8), words_per_spread: int = 40,
                      zipf: float = 1.0, function_boost: float = 4.0, length: int = 8,
                      seed: int = 0) -> TopicCorpus:
    """A topic model with words of graded informativeness.

    Each word belongs to a random set of topics of size m in ``spreads`` (m = 1: a topical
    word; m = ``n_topics``: a topic-free function word, its frequency multiplied by
    ``function_boost``). Within a spread level, word frequencies follow Zipf's law with
    exponent ``zipf``. Topic z emits word w with probability proportional to its frequency
    weight if z is in w's topic set. The fewer topics a word spans, the more observing it
    says about the rest of the sentence: KL(w) falls with m, and also varies with frequency.
    """
    rng = np.random.default_rng(seed)
    if max(spreads) > n_topics:
        raise ValueError("a spread cannot exceed n_topics")
    words, weights, member = [], [], []
    zipf_w = 1.0 / np.arange(1, words_per_spread + 1) ** zipf
    for m in spreads:
        boost = function_boost if m == n_topics else 1.0
        for i in range(words_per_spread):
            topics = rng.choice(n_topics, size=m, replace=False)
            row = np.zeros(n_topics, dtype=bool)
            row[topics] = True
            words.append(f"{'f' if m == n_topics else 'm%d_' % m}{i}")
            weights.append(boost * zipf_w[i])
            member.append(row)
    member = np.array(member).T  # K x V
    topic_word = member * np.array(weights)[None, :]
    topic_word /= topic_word.sum(axis=1, keepdims=True)
    is_function = member.all(axis=0)
    return TopicCorpus(words, topic_word, np.full(n_topics, 1.0 / n_topics), length, is_function)


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


def gnorm2(vectors: np.ndarray, p: np.ndarray) -> np.ndarray:
    """(u_w - u_bar)^T G (u_w - u_bar) with u_bar = sum_w p(w) u_w and G the p-weighted covariance
    of the (tied) context vectors: the quantity that approximates 2 KL(w) (Oyama et al. 2023; appendix C, Eq. 16)."""
    centred = vectors - p @ vectors
    G = (centred * p[:, None]).T @ centred
    return np.einsum("vi,ij,vj->v", centred, G, centred)


def _loss(emb: torch.nn.Embedding, anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor,
          objective: str, similarity: str, temperature: float) -> torch.Tensor:
    a, p, b = emb(anchor), emb(positive), emb(negative)  # B x n x d
    if objective == "contrastive":
        s_a, s_p, s_b = a.mean(1), p.mean(1), b.mean(1)
        if similarity == "dot":
            pos, neg = (s_a * s_p).sum(-1), (s_a * s_b).sum(-1)
        else:
            pos = F.cosine_similarity(s_a, s_p, dim=-1) / temperature
            neg = F.cosine_similarity(s_a, s_b, dim=-1) / temperature
        return -(F.logsigmoid(pos) + F.logsigmoid(-neg)).mean()
    # the SGNS lower bound (appendix C, Eq. 14): every word pair of (s, s') and of (s, s_neg)
    pos = torch.einsum("bid,bjd->bij", a, p)
    neg = torch.einsum("bid,bjd->bij", a, b)
    return -(F.logsigmoid(pos).mean((1, 2)) + F.logsigmoid(-neg).mean((1, 2))).mean()


def train_bow(corpus: TopicCorpus, objective: str = "contrastive", similarity: str = "dot",
              positive: str = "same", dim: int = 16, steps: int = 2000, batch_size: int = 256,
              lr: float = 0.05, temperature: float = 0.1, init_scale: float = 0.1,
              log_every: int = 100, seed: int = 0, progress: bool = True):
    """Train word vectors of a mean-pooled bag-of-words sentence encoder (appendix C's model).

    objective: ``contrastive`` -- p(y=1|s,s') = sigmoid(sim(s_bar, s_bar')) with one positive
        and one random negative sentence per anchor (appendix C, assumptions 1-3);
        ``sgns`` -- its Jensen lower bound, the SGNS objective with the sentence as window.
    similarity: ``dot`` (the theory's inner product) or ``cos`` (cosine / temperature,
        the paper's third limitation; only for ``contrastive``).
    positive: ``same`` (s' = s, assumption 2) or ``topic`` (another sentence of the anchor's
        topic); the exact KL is computed for the same choice (:func:`exact_kl`).
    Fresh sentences are drawn from ``corpus`` at every step (an infinite corpus). Returns
    ``(vectors, trajectory)``: the final V x dim word vectors and a DataFrame with, every
    ``log_every`` steps, the loss and R^2 / slope of ||w||^2 and of the G-norm on the exact KL.
    """
    if objective not in ("contrastive", "sgns"):
        raise ValueError(f"objective must be 'contrastive' or 'sgns', got {objective!r}.")
    if similarity not in ("dot", "cos") or (objective == "sgns" and similarity != "dot"):
        raise ValueError("similarity must be 'dot' or 'cos' (cos only with the contrastive objective).")
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    emb = torch.nn.Embedding(len(corpus.words), dim)
    with torch.no_grad():
        emb.weight.copy_(torch.randn(emb.weight.shape, generator=gen) * init_scale)
    opt = torch.optim.Adam(emb.parameters(), lr=lr)
    kl, p = exact_kl(corpus, positive), corpus.p
    rows, running = [], []
    for step in tqdm(range(1, steps + 1), desc=f"{objective}/{similarity}/{positive}", disable=not progress):
        topics = corpus.sample_topics(batch_size, rng)
        anchor = torch.from_numpy(corpus.sample(batch_size, rng, topics))
        pos = anchor if positive == "same" else torch.from_numpy(corpus.sample(batch_size, rng, topics))
        neg = torch.from_numpy(corpus.sample(batch_size, rng))
        loss = _loss(emb, anchor, pos, neg, objective, similarity, temperature)
        opt.zero_grad()
        loss.backward()
        opt.step()
        running.append(loss.item())
        if step % log_every == 0 or step == steps:
            vec = emb.weight.detach().numpy().astype(float)
            fit_n, fit_g = ols(kl, (vec ** 2).sum(1)), ols(kl, gnorm2(vec, p))
            rows.append({"step": step, "loss": float(np.mean(running)),
                         "r2_norm2_vs_kl": fit_n["r2"], "slope_norm2_vs_kl": fit_n["beta"],
                         "r2_gnorm_vs_kl": fit_g["r2"], "slope_gnorm_vs_kl": fit_g["beta"]})
            running = []
    return emb.weight.detach().numpy().astype(float), pd.DataFrame(rows)


#: The models the theory chapter trains: the theory's own setting and its variations.
THEORY_MODELS = {
    "contrastive": dict(objective="contrastive", similarity="dot", positive="topic"),
    "sgns_bound": dict(objective="sgns", similarity="dot", positive="topic"),
    "contrastive_cosine": dict(objective="contrastive", similarity="cos", positive="topic"),
    "contrastive_same": dict(objective="contrastive", similarity="dot", positive="same"),
}


def run_study(corpus: TopicCorpus, models: dict = THEORY_MODELS, **train_kwargs):
    """Train every model of ``models`` on ``corpus`` and collect what the chapter reports.

    Returns ``(fits, words, trajectories)``: per model the final R^2 and slope of ||w||^2 and
    of the G-norm on exact KL (plus its settings); one row per word with its spread, p(w),
    exact KL for both positive schemes, and ``norm2_<model>``, ``gnorm2_<model>``; and every
    model's training trajectory.
    """
    words = pd.DataFrame({
        "word": corpus.words,
        "spread": corpus.topic_word.astype(bool).sum(axis=0),
        "frequency": corpus.p,
        "kl": exact_kl(corpus, "topic"),
        "kl_same": exact_kl(corpus, "same"),
    })
    fits, trajectories = {}, []
    for name, settings in models.items():
        vectors, trajectory = train_bow(corpus, **settings, **train_kwargs)
        words[f"norm2_{name}"] = (vectors ** 2).sum(axis=1)
        words[f"gnorm2_{name}"] = gnorm2(vectors, corpus.p)
        last = trajectory.iloc[-1]
        fits[name] = {**settings, "steps": int(last["step"]),
                      **{k: float(last[k]) for k in ("r2_norm2_vs_kl", "slope_norm2_vs_kl",
                                                     "r2_gnorm_vs_kl", "slope_gnorm_vs_kl")}}
        trajectories.append(trajectory.assign(model=name))
    return fits, words, pd.concat(trajectories, ignore_index=True)
