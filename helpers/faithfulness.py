"""Do the weights matter? Deletion and insertion curves of word rankings (chapter 11).

If an encoder weights a word, removing that word should move the sentence vector. For a ranking of
the words of each sentence (by IG or SHAP weight, by KL, I or IDF with no model access at all, at
random, or the reverse of IG as a lower bound), :func:`deletion_curve` removes the top-k words and
measures how far the sentence vector moves, ``1 - cos(f(x), f(x without them))``; the insertion
curve starts from the sentence with every word removed and puts back the top-k, measuring
``cos(f(x), f(top-k only))``. The area over the deletion curve (AOPC, the mean over k of the
deletion curve) summarises a ranking: the higher, the more the ranking finds the words the vector
depends on. Words are removed as text: replaced by the tokenizer's mask token, one per subword
(``removal="mask"``: the sentence keeps its length), or deleted (``"delete"``).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .config import check_count, tqdm

__all__ = ["REMOVALS", "edit_sentence", "rank_words", "check_ranking", "deletion_curve", "aopc", "greedy_bounds",
           "recovery", "rankings", "faithfulness_table"]

REMOVALS = ("mask", "delete")


def edit_sentence(text: str, tokenizer, remove: set[int], removal: str = "mask") -> str:
    """``text`` with the words whose word index (the pre-tokeniser's piece number, as in the weight tables)
    is in ``remove`` masked or deleted."""
    from .units import word_spans

    if removal not in REMOVALS:
        raise ValueError(f"removal must be one of {REMOVALS}, got {removal!r}.")
    pieces, last = [], 0
    for index, (start, end) in enumerate(word_spans(text, tokenizer)):
        if index not in remove:
            continue
        pieces.append(text[last:start])
        if removal == "mask":
            n = max(1, len(tokenizer(text[start:end], add_special_tokens=False)["input_ids"]))
            pieces.append(" ".join([tokenizer.mask_token] * n))
        last = end
    pieces.append(text[last:])
    return " ".join("".join(pieces).split())


def rank_words(scores: pd.DataFrame) -> dict:
    """{sentence_id: word indices, highest score first} from a table ``sentence_id, word_index, score``
    (ties: the earlier word first)."""
    ordered = scores.sort_values(["sentence_id", "score", "word_index"], ascending=[True, False, True])
    return {sid: d["word_index"].tolist() for sid, d in ordered.groupby("sentence_id", sort=False)}


def check_ranking(ranking: pd.DataFrame, sentences: pd.DataFrame, tokenizer) -> dict:
    """{sentence_id: word indices, highest score first}, after checking the ranking against each sentence.

    A ranking must list every word of its sentence once (the word units of
    :func:`helpers.units.word_units` with ``tokenizer``), no other index, and finite scores; when it has
    a ``word`` column, its words must be the sentence's. Otherwise the curve would reach "every word removed"
    with words still in the text, or score another sentence. Errors name the sentence and what is wrong.
    """
    from .units import word_units

    missing_cols = {"sentence_id", "word_index", "score"} - set(ranking.columns)
    if missing_cols:
        raise ValueError(f"the ranking needs the columns sentence_id, word_index, score; missing {sorted(missing_cols)}.")
    scores = pd.to_numeric(ranking["score"], errors="coerce").to_numpy(float)
    if np.isnan(scores).any():
        bad = ranking.loc[np.isnan(scores), "sentence_id"].unique().tolist()
        raise ValueError(f"the ranking has NaN (or non-numeric) scores in sentences {bad[:5]}: a NaN cannot be "
                         "ordered; fill or drop those words' scores first.")
    dup = ranking[ranking.duplicated(["sentence_id", "word_index"], keep=False)]
    if len(dup):
        first = dup.iloc[0]
        raise ValueError(f"the ranking lists word {int(first['word_index'])} of sentence {first['sentence_id']!r} "
                         "more than once: each word needs one score.")
    order = rank_words(ranking)
    lost = sorted(set(sentences["sentence_id"]) - set(order))
    if lost:
        raise ValueError(f"the ranking has no words for sentences {lost[:5]}: rank every sentence you pass.")
    by_sentence = {sid: d for sid, d in ranking.groupby("sentence_id", sort=False)}
    for sid, text in sentences[["sentence_id", "text"]].itertuples(index=False):
        words = {i: u["word"] for i, u in enumerate(word_units(text, tokenizer)) if u["word"] is not None}
        given = set(order[sid])
        if given != set(words):
            extra, absent = sorted(given - set(words)), sorted(set(words) - given)
            raise ValueError(
                f"the ranking of sentence {sid!r} ({text[:50]!r}) does not match its words: "
                + (f"unknown word indices {extra[:5]}" if extra else "")
                + ("; " if extra and absent else "")
                + (f"words {[words[i] for i in absent[:5]]} (indices {absent[:5]}) are not ranked" if absent else "")
                + ". Rank every word of the sentence, as the word-weight tables list them.")
        if "word" in ranking.columns:
            d = by_sentence[sid]
            wrong = [(int(i), w) for i, w in zip(d["word_index"], d["word"]) if words.get(int(i)) != w]
            if wrong:
                i, w = wrong[0]
                raise ValueError(f"the ranking of sentence {sid!r} says word {i} is {w!r}, but the sentence's word {i} "
                                 f"is {words.get(i)!r}: is it another sentence's ranking?")
    return order


def deletion_curve(encoder, sentences, ranking: pd.DataFrame, k_max: int = 5, removal: str = "mask",
                   batch_size: int = 64, cache: bool = True) -> pd.DataFrame:
    """Deletion and insertion curves of one ranking over ``sentences`` (``sentence_id, text``).

    ``ranking``: ``sentence_id, word_index, score`` (higher: removed first), optionally ``word``; it is checked
    against every sentence (:func:`check_ranking`). ``encoder``: anything with ``encode(list_of_texts) -> array``
    and a ``tokenizer`` (an :class:`helpers.encoders.Encoder`). Returns one row per (sentence, k, curve) with
    ``k`` (1..min(k_max, words)), ``fraction`` (k over the sentence's words) and ``value``: ``1 - cos`` for
    ``deletion``, ``cos`` for ``insertion``. ``cache``: for an encoder with a ``fingerprint()`` the curves are kept
    in ``.cache/deletion/`` under it, the sentences, the ranking and every setting
    (:func:`helpers.config.cached_table`), so a rebuild does not encode the edited sentences again.
    """
    from .config import cached_table, frame_digest
    from .units import sentence_table

    check_count("k_max", k_max, 1)
    if removal not in REMOVALS:
        raise ValueError(f"removal must be one of {REMOVALS}, got {removal!r}.")
    df = sentence_table(sentences)
    order = check_ranking(ranking, df, encoder.tokenizer)
    cache = cache and callable(getattr(encoder, "fingerprint", None))
    from .precision import DEFAULT  # what encode() runs in ($SENTENCE_PRECISION): part of the key

    settings = {"fingerprint": encoder.fingerprint() if cache else None, "k_max": k_max, "removal": removal,
                "batch_size": batch_size, "precision": DEFAULT, "sentences": frame_digest(df, ["sentence_id", "text"]),
                "order": {str(sid): [int(w) for w in words] for sid, words in order.items()}}
    return cached_table("deletion", settings, lambda: _curves(encoder, df, order, k_max, removal, batch_size), cache,
                        code=(_curves, edit_sentence))


def _curves(encoder, df: pd.DataFrame, order: dict, k_max: int, removal: str, batch_size: int) -> pd.DataFrame:
    """The curves of :func:`deletion_curve` for the checked removal ``order`` of each sentence."""
    jobs, texts = [], []
    for sid, text in df[["sentence_id", "text"]].itertuples(index=False):
        words = order[sid]
        texts.append(text)
        jobs.append((sid, None, None, len(words)))
        for k in range(1, min(k_max, len(words)) + 1):
            top = set(words[:k])
            texts.append(edit_sentence(text, encoder.tokenizer, top, removal))
            jobs.append((sid, k, "deletion", len(words)))
            texts.append(edit_sentence(text, encoder.tokenizer, set(words) - top, removal))
            jobs.append((sid, k, "insertion", len(words)))
    vectors = np.asarray(encoder.encode(texts, batch_size=batch_size), dtype=float)
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    rows, full = [], None
    for (sid, k, curve, n), v in zip(jobs, vectors):
        if curve is None:
            full = v
            continue
        cos = float(full @ v)
        rows.append({"sentence_id": sid, "k": k, "fraction": k / n, "curve": curve,
                     "value": 1.0 - cos if curve == "deletion" else cos})
    return pd.DataFrame(rows, columns=["sentence_id", "k", "fraction", "curve", "value"])


def aopc(curves: pd.DataFrame, curve: str = "deletion", n_boot: int = 1000, seed: int = 0,
         level: float = 0.95) -> dict:
    """The area over the perturbation curve: the mean over k of the curve, averaged over sentences, with a
    percentile bootstrap interval that resamples sentences."""
    check_count("n_boot", n_boot, 1)
    missing = {"sentence_id", "curve", "value"} - set(getattr(curves, "columns", []))
    if missing:
        raise ValueError(f"aopc: the curves table has no column(s) {sorted(missing)}; pass deletion_curve's output "
                         "(sentence_id, curve, k, fraction, value).")
    per_sentence = curves[curves["curve"] == curve].groupby("sentence_id")["value"].mean().to_numpy()
    if len(per_sentence) == 0:
        raise ValueError(f"no {curve} rows in the curves.")
    rng = np.random.default_rng(seed)
    boots = rng.choice(per_sentence, size=(n_boot, len(per_sentence)), replace=True).mean(1)
    alpha = (1 - level) / 2
    low, high = np.quantile(boots, [alpha, 1 - alpha])
    return {"aopc": float(per_sentence.mean()), "aopc_low": float(low), "aopc_high": float(high),
            "n_sentences": int(len(per_sentence))}


def greedy_bounds(encoder, text: str, k_max: int, removal: str = "mask") -> tuple[float, float]:
    """(worst, best) deletion AOPC over orderings of ``text``'s words, up to ``k_max`` removed, found greedily:
    at each step remove the word that moves the sentence vector least (worst) or most (best). The exact
    bounds need every ordering; the greedy ones are what a budget of about 2 x words x k_max encodings buys
    (the normalised AOPC of Edin et al. divides by their span)."""
    from .units import word_units

    check_count("k_max", k_max, 1)
    words = [i for i, u in enumerate(word_units(text, encoder.tokenizer)) if u["word"] is not None]
    full = np.asarray(encoder.encode([text]), dtype=float)[0]
    full /= max(np.linalg.norm(full), 1e-12)
    out = []
    for pick in (np.argmin, np.argmax):
        removed, values = set(), []
        for _ in range(min(k_max, len(words))):
            left = [w for w in words if w not in removed]
            vectors = np.asarray(encoder.encode([edit_sentence(text, encoder.tokenizer, removed | {w}, removal)
                                                 for w in left]), dtype=float)
            moved = 1.0 - vectors @ full / np.maximum(np.linalg.norm(vectors, axis=1), 1e-12)
            choice = int(pick(moved))
            removed.add(left[choice])
            values.append(float(moved[choice]))
        out.append(float(np.mean(values)))
    return out[0], out[1]


def recovery(curves: pd.DataFrame, by: str = "KL", reference: str = "IG", n_boot: int = 1000, seed: int = 0,
             level: float = 0.95) -> dict:
    """How much of ``reference``'s advantage over random the ``by`` ranking recovers, with an interval:
    (AOPC_by - AOPC_random) / (AOPC_reference - AOPC_random), the random AOPC averaged over the ``random ...``
    rankings, from one model's and one removal's deletion curves (``ranking`` column). Sentences are
    resampled once for every ranking (a paired bootstrap), so the interval shows how unstable the ratio is
    when its denominator is small. Returns ``recovery``, ``recovery_low``, ``recovery_high``, ``n_sentences``."""
    check_count("n_boot", n_boot, 1)
    d = curves[curves["curve"] == "deletion"]
    per = d.groupby(["ranking", "sentence_id"])["value"].mean().unstack("ranking")
    randoms = [c for c in per.columns if str(c).startswith("random")]
    missing = [r for r in (by, reference) if r not in per.columns] + ([] if randoms else ["random ..."])
    if missing:
        raise ValueError(f"the curves have no ranking {missing}; they have {sorted(map(str, per.columns))}.")
    per = per.dropna()
    if len(per) < 2:
        raise ValueError(f"the ratio's interval needs at least 2 sentences with every ranking; got {len(per)}.")
    x = np.c_[per[by].to_numpy(), per[reference].to_numpy(), per[randoms].mean(axis=1).to_numpy()]

    def ratio(m):
        with np.errstate(divide="ignore", invalid="ignore"):
            return (m[..., 0] - m[..., 2]) / (m[..., 1] - m[..., 2])

    rng = np.random.default_rng(seed)
    boots = ratio(x[rng.integers(0, len(x), size=(n_boot, len(x)))].mean(axis=1))
    boots = boots[np.isfinite(boots)]
    alpha = (1 - level) / 2
    low, high = np.quantile(boots, [alpha, 1 - alpha]) if len(boots) else (np.nan, np.nan)
    return {"recovery": float(ratio(x.mean(axis=0))), "recovery_low": float(low), "recovery_high": float(high),
            "n_sentences": int(len(x))}


def rankings(weights: dict, info: pd.DataFrame, base: pd.DataFrame, seeds=(0, 1, 2)) -> dict:
    """The rankings compared in chapter 11, each a ``sentence_id, word_index, score`` table.

    ``weights``: {"IG": table, "SHAP": table, ...} (word-weight tables); ``info``: the word table of
    :func:`helpers.information.word_information` (KL, I, IDF); ``base``: a word-weight table that lists
    every word of every sentence (e.g. the IG one) for the rankings that need no model. Adds ``random
    (seed s)`` for each seed and ``reverse IG`` when IG is given. A word missing from ``info`` ranks last.
    """
    import warnings

    from .units import check_same_units

    check_same_units(base, info, "the base weight table", "the information table")
    words = base[["sentence_id", "word_index", "word"]]
    unseen = ~words["word"].isin(set(info["word"]))
    if unseen.mean() > 0.5:
        raise ValueError(f"{unseen.mean():.0%} of the words are not in the information table (e.g. "
                         f"{words.loc[unseen, 'word'].drop_duplicates().head(5).tolist()}): the KL, I and IDF "
                         "rankings would be mostly ties. Compute it with the encoder's tokenizer, on a corpus that "
                         "holds these sentences.")
    if unseen.any():
        warnings.warn(f"{int(unseen.sum())} of {len(words)} words are not in the information table; they rank last in "
                      "the KL, I and IDF rankings (unseen is not zero information).", stacklevel=2)
    out = {name: t[["sentence_id", "word_index"]].assign(score=t["weight"].to_numpy()) for name, t in weights.items()}
    if "IG" in weights:
        out["reverse IG"] = out["IG"].assign(score=-out["IG"]["score"])
    by_word = info.set_index("word")
    for column, name in (("kl", "KL"), ("self_info", "I"), ("idf", "IDF")):
        score = words["word"].map(by_word[column]).fillna(-np.inf).to_numpy()
        out[name] = words[["sentence_id", "word_index"]].assign(score=score)
    for s in seeds:
        rng = np.random.default_rng(s)
        out[f"random (seed {s})"] = words[["sentence_id", "word_index"]].assign(score=rng.random(len(words)))
    return out


def faithfulness_table(encoder, sentences, ranks: dict, k_max: int = 5, removals=REMOVALS, n_boot: int = 1000,
                       seed: int = 0, progress: bool = True, cache: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """AOPC of every ranking and removal for one encoder: (table ``ranking, removal, aopc, aopc_low, aopc_high,
    insertion``, all curves). ``cache``: each curve is kept as :func:`deletion_curve` says."""
    rows, curves = [], []
    for (name, ranking), removal in tqdm([(r, m) for r in ranks.items() for m in removals], desc="rankings",
                                         disable=not progress):
        c = deletion_curve(encoder, sentences, ranking, k_max=k_max, removal=removal, cache=cache)
        curves.append(c.assign(ranking=name, removal=removal))
        rows.append({"ranking": name, "removal": removal, **aopc(c, "deletion", n_boot, seed),
                     "insertion": aopc(c, "insertion", n_boot, seed)["aopc"]})
    return pd.DataFrame(rows), pd.concat(curves, ignore_index=True)
