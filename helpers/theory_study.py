"""Chapter 01's study (the book's Eqs. eq-jensen, eq-oyama): mean-pooled bag-of-words encoders trained on the
toy corpus of :mod:`helpers.theory` with the contrastive objective of appendix C, its SGNS lower bound or CBOW,
and how ||w||^2 and the G-norm of Oyama et al. (2023) track the exact KL; the trained SGNS model against its
closed-form optimum.

* :func:`train_bow`: one model, cached by its settings and the corpus (word vectors at every logged step).
* :func:`run_study`: every model of :data:`THEORY_MODELS` for every seed, the fits averaged.
* :func:`optimum_check` and :data:`OPTIMUM_RULE`: a trained SGNS model against :func:`helpers.theory.sgns_optimum`.
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from .config import cache_dir, settings_key, tqdm
from .regression import ols, partial_r2
from .theory import TopicCorpus, exact_kl, gnorm2, sgns_optimum

__all__ = ["OPTIMUM_RULE", "optimum_reached", "optimum_check", "THEORY_OBJECTIVES", "LAST_COLUMNS", "train_bow",
           "THEORY_MODELS", "norm_report", "run_study"]


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
