"""The theory of paper section 4 / appendix C, checked numerically (the book's Eq. eq-jensen).

* :func:`log_likelihood` and :func:`sgns_bound`: both sides of the Jensen step
  (appendix C, Eqs. 5-8): log sigmoid(+-<s_bar, s_bar'>) >= (1/(n n')) sum_ij log sigmoid(+-<w_i, w'_j>).
* :class:`TopicCorpus`: a synthetic corpus whose word distributions are known,
  so that KL(w) is exact (:func:`exact_kl`).
* :func:`train_bow`: a mean-pooled bag-of-words encoder trained with the
  contrastive objective of appendix C (or its SGNS lower bound, or with cosine
  similarity), recording how ||w||^2 and the G-norm of Oyama et al. (2023) track KL.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from .config import cache_dir, settings_key, tqdm
from .regression import ols, partial_r2

__all__ = ["log_likelihood", "sgns_bound", "check_bound", "TopicCorpus", "make_topic_corpus", "pair_distribution",
           "exact_kl", "gnorm2", "pmi_matrix", "sgns_optimum", "optimum_by_smoothing", "pmi_rows", "optimum_check",
           "OPTIMUM_RULE", "optimum_reached",
           "THEORY_OBJECTIVES", "LAST_COLUMNS", "train_bow", "THEORY_MODELS",
           "norm_report", "run_study", "corpus_summary"]


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


#: When a trained model counts as having reached its closed-form optimum (fixed before any run): its G-norm
#: correlates with the optimal one at least ``min_correlation`` word by word, and its slope on KL is within
#: ``max_slope_error`` (relative) of the optimum's.
OPTIMUM_RULE = {"min_correlation": 0.9, "max_slope_error": 0.2}


def optimum_reached(check: dict) -> bool:
    """:data:`OPTIMUM_RULE` applied to a summary of :func:`optimum_check`."""
    return bool(check["correlation"] >= OPTIMUM_RULE["min_correlation"]
                and abs(check["slope_ratio"] - 1.0) <= OPTIMUM_RULE["max_slope_error"])


def optimum_check(corpus: TopicCorpus, model: str = "sgns_untied", seeds=(0,), last: int = 1,
                  **train_kwargs) -> tuple[dict, pd.DataFrame]:
    """A trained SGNS model against its closed-form optimum on the same (smoothed) corpus.

    Returns ``(summary, words)``: the optimum's slope and R^2 of the G-norm on KL, the trained model's (mean
    over ``seeds``; ``gnorm_slope_last`` also over the last ``last`` checkpoints), the ratio of the two slopes
    and the Pearson correlation, word by word, of the trained G-norm with the optimal one; ``words`` has both
    G-norms of the first seed (``gnorm`` and ``gnorm_optimum``)."""
    settings = THEORY_MODELS[model]
    if settings["objective"] != "sgns":
        raise ValueError(f"model={model!r} is not an SGNS model; the closed form is SGNS's optimum.")
    opt = sgns_optimum(corpus, settings["positive"])
    if not opt["bounded"]:
        raise ValueError(f"the corpus has {opt['share_zero_pairs']:.0%} word pairs that never co-occur, so the SGNS "
                         "optimum does not exist: build it with smoothing > 0 (make_topic_corpus(smoothing=...)).")
    fits, words, trajectories = run_study(corpus, {model: settings}, seeds=seeds, last=last, **train_kwargs)
    fit = fits[model]
    words = words.assign(gnorm_optimum=opt["gnorm"])
    summary = {"optimum_slope": opt["slope"], "optimum_r2": opt["r2"], "trained_slope": fit["gnorm_slope"],
               "trained_slope_last": fit["gnorm_slope_last"], "trained_r2": fit["gnorm_r2"],
               "slope_ratio": fit["gnorm_slope_last"] / opt["slope"],
               "correlation": float(np.corrcoef(words["gnorm"], words["gnorm_optimum"])[0, 1]),
               "seeds": len(list(seeds)), "dim": train_kwargs.get("dim"), "smoothing": corpus.smoothing}
    return summary, words


THEORY_OBJECTIVES = ("contrastive", "sgns", "cbow")


def _loss(emb: torch.nn.Embedding, ctx: torch.nn.Embedding | None, anchor: torch.Tensor, positive: torch.Tensor,
          negative: torch.Tensor, objective: str, similarity: str, temperature: float,
          generator: torch.Generator | None = None) -> torch.Tensor:
    a = emb(anchor)  # B x n x d
    out = emb if ctx is None else ctx
    if objective == "contrastive":
        s_a, s_p, s_b = a.mean(1), emb(positive).mean(1), emb(negative).mean(1)
        if similarity == "dot":
            pos, neg = (s_a * s_p).sum(-1), (s_a * s_b).sum(-1)
        else:
            pos = F.cosine_similarity(s_a, s_p, dim=-1) / temperature
            neg = F.cosine_similarity(s_a, s_b, dim=-1) / temperature
        return -(F.logsigmoid(pos) + F.logsigmoid(-neg)).mean()
    if objective == "sgns":
        # the SGNS lower bound (appendix C, Eq. 14): every word pair of (s, s'), self-pairs included when s' = s,
        # against every pair of (s, s_neg); scores <u_w, v_c> with context vectors v (tied: v = u)
        pos = torch.einsum("bid,bjd->bij", a, out(positive))
        neg = torch.einsum("bid,bjd->bij", a, out(negative))
        return -(F.logsigmoid(pos).mean((1, 2)) + F.logsigmoid(-neg).mean((1, 2))).mean()
    # cbow: the masked-word control -- predict one held-out word from the mean of the others (softmax over V)
    n = anchor.shape[1]
    held = torch.randint(n, (anchor.shape[0],), generator=generator)
    keep = torch.ones(anchor.shape, dtype=torch.bool)
    keep[torch.arange(anchor.shape[0]), held] = False
    context = (a * keep[..., None]).sum(1) / (n - 1)
    logits = context @ out.weight.T
    return F.cross_entropy(logits, anchor[torch.arange(anchor.shape[0]), held])


#: Version of :func:`train_bow`'s numbers: part of its cache key (raise it when a change moves them).
BOW_VERSION = 1


def _corpus_key(corpus: TopicCorpus) -> str:
    """A hash of everything that defines the corpus's distribution (its arrays' bytes, its length)."""
    import hashlib

    h = hashlib.blake2b(digest_size=16)
    for array in (corpus.topic_word, corpus.topic_prior, corpus.spread):
        h.update(np.ascontiguousarray(array).tobytes())
    h.update(repr((corpus.length, len(corpus.words), corpus.smoothing)).encode())
    return h.hexdigest()


def train_bow(corpus: TopicCorpus, objective: str = "contrastive", similarity: str = "dot",
              positive: str = "same", tied: bool = True, dim: int = 16, steps: int = 2000, batch_size: int = 256,
              lr: float = 0.05, temperature: float = 0.1, init_scale: float = 0.1,
              log_every: int = 100, seed: int = 0, progress: bool = True, cache: bool = True):
    """Train word vectors of a mean-pooled bag-of-words sentence encoder (appendix C's model), or a control.

    objective: ``contrastive`` -- p(y=1|s,s') = sigmoid(sim(s_bar, s_bar')) with one positive
        and one random negative sentence per anchor (appendix C, assumptions 1-3);
        ``sgns`` -- its Jensen lower bound, the SGNS objective with the sentence as window;
        ``cbow`` -- a non-contrastive control: predict a held-out word of the sentence from the
        mean of the other words' vectors (a masked-word objective, the analogue of MLM training).
    similarity: ``dot`` (the theory's inner product) or ``cos`` (cosine / temperature; only for
        ``contrastive``).
    positive: ``same`` (s' = s, assumption 2: self-pairs included) or ``topic`` (another sentence of
        the anchor's topic, a paraphrase); the exact KL is computed for the same choice
        (:func:`exact_kl`). ``cbow`` predicts from the rest of the sentence: ``topic``.
    tied: ``sgns`` with context vectors shared with the word vectors (as the encoder has them) or
        separate (Oyama et al.'s SGNS); ``cbow`` always has its own output vectors.
    Fresh sentences are drawn from ``corpus`` at every step (an infinite corpus). Returns
    ``(vectors, context, trajectory)``: the V x dim word vectors, the context vectors (None when
    tied) and, every ``log_every`` steps, the loss and R^2 / slope of ||w||^2 and of the G-norm on KL.

    ``cache``: a run is kept in ``.cache/theory/`` under the hash of the corpus and every setting (training is
    deterministic), so a rebuild serves it instead of training again; a damaged entry is trained again.
    """
    settings = {"corpus": _corpus_key(corpus), "objective": objective, "similarity": similarity,
                "positive": positive, "tied": tied, "dim": dim, "steps": steps, "batch_size": batch_size, "lr": lr,
                "temperature": temperature, "init_scale": init_scale, "log_every": log_every, "seed": seed,
                "version": BOW_VERSION, "torch": torch.__version__.split("+")[0]}
    path = cache_dir("theory") / f"bow-{settings_key(settings, 16)}.npz" if cache else None
    if path is not None and path.is_file():
        try:
            with np.load(path, allow_pickle=False) as stored:
                if json.loads(str(stored["settings"])) == settings:
                    context = stored["context"] if stored["context"].size else None
                    return stored["vectors"], context, pd.DataFrame(json.loads(str(stored["trajectory"])))
        except (OSError, ValueError, KeyError):
            pass  # a damaged or foreign entry: trained again and replaced below
    vectors, context, trajectory = _train_bow(corpus, objective, similarity, positive, tied, dim, steps, batch_size,
                                              lr, temperature, init_scale, log_every, seed, progress)
    if path is not None:
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, vectors=vectors, context=context if context is not None else np.zeros(0),
                 trajectory=json.dumps(trajectory.to_dict(orient="list")), settings=json.dumps(settings))
        tmp.replace(path)  # a reader sees the whole entry or none
    return vectors, context, trajectory


def _train_bow(corpus, objective, similarity, positive, tied, dim, steps, batch_size, lr, temperature, init_scale,
               log_every, seed, progress):
    """The training loop of :func:`train_bow` (no cache)."""
    if objective not in THEORY_OBJECTIVES:
        raise ValueError(f"objective must be one of {THEORY_OBJECTIVES}, got {objective!r}.")
    if similarity not in ("dot", "cos") or (objective != "contrastive" and similarity != "dot"):
        raise ValueError("similarity must be 'dot' or 'cos' (cos only with the contrastive objective).")
    if positive not in ("same", "topic") or (objective == "cbow" and positive != "topic"):
        raise ValueError("positive must be 'same' or 'topic' ('topic' for cbow, which predicts from the others).")
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    emb = torch.nn.Embedding(len(corpus.words), dim)
    ctx = None if (tied and objective != "cbow") else torch.nn.Embedding(len(corpus.words), dim)
    with torch.no_grad():
        emb.weight.copy_(torch.randn(emb.weight.shape, generator=gen) * init_scale)
        if ctx is not None:
            ctx.weight.copy_(torch.randn(ctx.weight.shape, generator=gen) * init_scale)
    params = list(emb.parameters()) + (list(ctx.parameters()) if ctx is not None else [])
    opt = torch.optim.Adam(params, lr=lr)
    kl, p = exact_kl(corpus, positive), corpus.p
    info = -np.log(p)
    rows, running = [], []
    name = f"{objective}/{similarity}/{positive}" + ("" if ctx is None or objective == "cbow" else "/untied")
    for step in tqdm(range(1, steps + 1), desc=name, disable=not progress):
        topics = corpus.sample_topics(batch_size, rng)
        anchor = torch.from_numpy(corpus.sample(batch_size, rng, topics))
        pos = anchor if positive == "same" else torch.from_numpy(corpus.sample(batch_size, rng, topics))
        neg = torch.from_numpy(corpus.sample(batch_size, rng))
        loss = _loss(emb, ctx, anchor, pos, neg, objective, similarity, temperature, gen)
        opt.zero_grad()
        loss.backward()
        opt.step()
        running.append(loss.item())
        if step % log_every == 0 or step == steps:
            vec = emb.weight.detach().numpy().astype(float)
            cvec = None if ctx is None else ctx.weight.detach().numpy().astype(float)
            norm2 = (vec ** 2).sum(1)
            fit_n, fit_g = ols(kl, norm2), ols(kl, gnorm2(vec, p, cvec))
            rows.append({"step": step, "loss": float(np.mean(running)),
                         "r2_norm2_vs_kl": fit_n["r2"], "slope_norm2_vs_kl": fit_n["beta"],
                         "r2_gnorm_vs_kl": fit_g["r2"], "slope_gnorm_vs_kl": fit_g["beta"],
                         "partial_r2_kl_given_i": partial_r2(norm2, kl, info),
                         "partial_r2_i_given_kl": partial_r2(norm2, info, kl)})
            running = []
    context = None if ctx is None else ctx.weight.detach().numpy().astype(float)
    return emb.weight.detach().numpy().astype(float), context, pd.DataFrame(rows)


#: The models the theory chapter trains: Oyama et al.'s setting, the encoder's variations, a control.
THEORY_MODELS = {
    "sgns_untied": dict(objective="sgns", positive="same", tied=False),     # Oyama et al.'s setting (two tables)
    "sgns_tied": dict(objective="sgns", positive="same", tied=True),         # the bound's own: the encoder's one table
    "contrastive": dict(objective="contrastive", similarity="dot", positive="topic"),  # paraphrase positives
    "contrastive_same": dict(objective="contrastive", similarity="dot", positive="same"),  # s' = s
    "contrastive_cosine": dict(objective="contrastive", similarity="cos", positive="topic"),  # limitation 3
    "cbow": dict(objective="cbow", positive="topic"),                       # non-contrastive control
}


def norm_report(words: pd.DataFrame, y: str, kl: str = "kl") -> dict:
    """What the chapter reports for one model: does ||w||^2 (or the G-norm) encode KL beyond frequency?

    ``words`` needs ``spread``, ``frequency`` and the columns ``y`` and ``kl``. Returns R^2 and slope
    of y on KL, the partial R^2 of KL given I = -log p(w) and of I given KL (how much each adds to
    a regression that already has the other), and the Spearman correlation of y with KL and with
    I within each spread level (NaN where KL is constant within the level).
    """
    from scipy.stats import spearmanr

    info = -np.log(words["frequency"].to_numpy(float))
    fit = ols(words[kl], words[y])
    out = {"r2_kl": fit["r2"], "slope_kl": fit["beta"],
           "partial_r2_kl_given_i": partial_r2(words[y], words[kl], info),
           "partial_r2_i_given_kl": partial_r2(words[y], info, words[kl])}
    for level, group in words.assign(i=info).groupby("spread"):
        for q, col in (("kl", kl), ("i", "i")):
            constant = group[col].nunique() < 3 or np.ptp(group[col]) < 1e-9
            out[f"within_spearman_{q}_spread{level}"] = (float("nan") if constant
                                                       else float(spearmanr(group[y], group[col])[0]))
    return out


#: The numbers :func:`run_study` also averages over the last logged checkpoints (``<key>_last``): key -> the
#: trajectory's column.
LAST_COLUMNS = {"r2_kl": "r2_norm2_vs_kl", "slope_kl": "slope_norm2_vs_kl", "gnorm_r2": "r2_gnorm_vs_kl",
                "gnorm_slope": "slope_gnorm_vs_kl", "partial_r2_kl_given_i": "partial_r2_kl_given_i",
                "partial_r2_i_given_kl": "partial_r2_i_given_kl"}


def run_study(corpus: TopicCorpus, models: dict = THEORY_MODELS, seeds=None, last: int = 1, **train_kwargs):
    """Train every model of ``models`` on ``corpus`` and collect what the chapter reports.

    Returns ``(fits, words, trajectories)``: per model its settings, :func:`norm_report` for
    ||w||^2 on its own KL (paraphrase KL ``kl`` for ``topic`` positives and the control, the
    self-inclusive ``kl_same`` for s' = s), the G-norm's R^2 and slope on that KL; the word table in
    long form (one row per word per model: ``model, word, spread, frequency, kl, kl_same, norm2,
    gnorm``); and every model's training trajectory.

    ``seeds``: train every model once per seed and report the mean of every number over the seeds (and
    its standard deviation as ``<key>_sd``); the word table is the first seed's. ``last``: every number of
    :data:`LAST_COLUMNS` is also reported as ``<key>_last``, its mean over the last ``last`` logged
    checkpoints (a single checkpoint's value moves from step to step); the keys without ``_last`` are the
    final checkpoint's. A model with cosine similarity is scale-free, so
    its norms drift without bound and its slopes are not identified: they are NaN (``slopes_identified``
    False); its R^2 and partial R^2 do not depend on the scale.
    """
    seeds = [train_kwargs.pop("seed", 0)] if seeds is None else list(seeds)
    train_kwargs.pop("seed", None)
    base = pd.DataFrame({
        "word": corpus.words,
        "spread": corpus.spread,
        "frequency": corpus.p,
        "kl": exact_kl(corpus, "topic"),
        "kl_same": exact_kl(corpus, "same"),
    })
    fits, frames, trajectories = {}, [], []
    for name, settings in models.items():
        per_seed = []
        for n, seed in enumerate(seeds):
            vectors, context, trajectory = train_bow(corpus, **settings, seed=seed, **train_kwargs)
            words = base.assign(model=name, norm2=(vectors ** 2).sum(axis=1),
                                gnorm=gnorm2(vectors, corpus.p, context))
            kl = "kl_same" if settings.get("positive") == "same" else "kl"
            g = ols(words[kl], words["gnorm"])
            tail = trajectory.tail(max(1, int(last)))
            fit = {**norm_report(words, "norm2", kl), "gnorm_r2": g["r2"], "gnorm_slope": g["beta"],
                   **{f"{key}_last": float(tail[column].mean()) for key, column in LAST_COLUMNS.items()},
                   "norm2_mean": float(words["norm2"].mean())}
            per_seed.append(fit)
            if n == 0:
                frames.append(words)
            trajectories.append(trajectory.assign(model=name, seed=seed))
        table = pd.DataFrame(per_seed)
        fit = {k: float(v) for k, v in table.mean().items()}
        if len(seeds) > 1:
            fit.update({f"{k}_sd": float(v) for k, v in table.std(ddof=1).items()})
        identified = settings.get("similarity", "dot") != "cos"
        if not identified:
            for key in ("slope_kl", "gnorm_slope", "slope_kl_last", "gnorm_slope_last", "slope_kl_sd",
                        "gnorm_slope_sd", "slope_kl_last_sd", "gnorm_slope_last_sd"):
                if key in fit:
                    fit[key] = float("nan")
        fits[name] = {**settings, "kl_column": kl, "steps": int(trajectory.iloc[-1]["step"]), "seeds": len(seeds),
                      "slopes_identified": identified, **fit}
    words = pd.concat(frames, ignore_index=True)[["model", "word", "spread", "frequency", "kl", "kl_same", "norm2",
                                                   "gnorm"]]
    return fits, words, pd.concat(trajectories, ignore_index=True)


def corpus_summary(corpus: TopicCorpus) -> dict:
    """How independent the corpus makes KL and frequency: Spearman(KL, I) over the vocabulary, both KLs."""
    from scipy.stats import spearmanr

    info = -np.log(corpus.p)
    return {"spearman_kl_i": float(spearmanr(exact_kl(corpus, "topic"), info)[0]),
            "spearman_kl_same_i": float(spearmanr(exact_kl(corpus, "same"), info)[0]),
            "vocabulary": len(corpus.words)}
