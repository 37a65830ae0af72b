"""Information quantities of words (paper section 3.2, appendix B; the book's Eqs. eq-kl and eq-self-info).

Words are the book's word units (:mod:`helpers.units`, Eq. eq-normalise), the same units the attribution
maps subword tokens onto, so weight tables and information tables share them.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .config import check_count
from .units import lowercases, sentence_texts, split_words, units_key

__all__ = ["SIF_A", "CONTEXTS", "count_matrix", "kl_from_counts", "word_information", "context_distribution",
           "compare_contexts", "kl_by_sample_size", "min_count_summary"]

SIF_A = 1e-3  # Arora et al. (2017): a / (a + p(w)) with a = 1e-3 (the book's Eq. eq-kl)


CONTEXTS = ("presence", "count")


def count_matrix(sentences, tokenizer=None, lowercase: bool | None = None):
    """Sparse sentence-by-word count matrix C[s, w] and the vocabulary (list of words)."""
    texts = sentence_texts(sentences)
    lower = lowercases(tokenizer) if lowercase is None else lowercase  # once, not per sentence
    vocab: dict[str, int] = {}
    rows, cols = [], []
    for i, text in enumerate(texts):
        for word in split_words(text, tokenizer, lower):
            rows.append(i)
            cols.append(vocab.setdefault(word, len(vocab)))
    data = np.ones(len(rows), dtype=np.float64)
    counts = sp.csr_matrix((data, (rows, cols)), shape=(len(texts), len(vocab)))
    counts.sum_duplicates()
    return counts, list(vocab)


def _check_contexts(contexts: str) -> None:
    if contexts not in CONTEXTS:
        raise ValueError(f"contexts must be one of {CONTEXTS}, got {contexts!r}.")


def kl_from_counts(counts: sp.csr_matrix, contexts: str = "presence") -> np.ndarray:
    """Information gain KL(p(.|w) || p(.)) for every column word (paper section 3.2.1).

    ``contexts="presence"`` (the paper's wording, "the words of the sentences in which w
    appears"): n(w, w') = sum over sentences s containing w of count_s(w'), i.e. (C > 0)^T C.
    ``contexts="count"`` (the pair sum of the paper's appendix): every occurrence of w counts
    its sentence once more, n(w, w') = sum_s count_s(w) count_s(w'), i.e. C^T C. Both count
    the word's own occurrence(s) as context. p(w'|w) = n(w, w') / sum_w'' n(w, w'').
    """
    _check_contexts(contexts)
    counts = sp.csr_matrix(counts, dtype=np.float64)
    p = np.asarray(counts.sum(axis=0)).ravel() / counts.sum()
    weight = counts.copy()
    if contexts == "presence":
        weight.data[:] = 1.0
    cooc = (weight.T @ counts).tocsr()  # V x V, sparse
    row_tot = np.asarray(cooc.sum(axis=1)).ravel()
    row_of = np.repeat(np.arange(cooc.shape[0]), np.diff(cooc.indptr))
    cond = cooc.data / row_tot[row_of]
    terms = cond * (np.log(cond) - np.log(p[cooc.indices]))
    return np.bincount(row_of, weights=terms, minlength=cooc.shape[0])


def word_information(sentences, tokenizer=None, lowercase: bool | None = None, min_count: int = 1,
                     contexts: str = "presence") -> pd.DataFrame:
    """One row per word type: ``word, count, p, kl, self_info, idf, sif`` (paper section 3.2).

    * p(w) = count(w) / N over all word tokens of ``sentences``;
    * kl = KL(p(.|w) || p(.)), the information gain (section 3.2.1), with ``contexts`` as in
      :func:`kl_from_counts`;
    * self_info = I(w) = -log p(w) (section 3.2.2);
    * idf = log(N_documents / df(w)), N_documents the sentences with at least one word (a blank sentence is
      no document), and sif = a / (a + p(w)), a = 1e-3 (appendix B).

    ``sentences``: a list of strings or :func:`helpers.data.load_sentences`' DataFrame.
    Word units are :func:`split_words` with ``tokenizer`` (lower-cased when it is uncased).
    Distributions use every word; ``min_count`` only drops rare words from the table.
    Rows are sorted by count (descending), then word.
    """
    texts = sentence_texts(sentences)
    if not texts:
        raise ValueError("word_information needs at least one sentence.")
    _check_contexts(contexts)
    check_count("min_count", min_count, 1)
    counts, vocab = count_matrix(texts, tokenizer, lowercase)
    if counts.nnz == 0:
        raise ValueError("The sentences contain no words.")
    count = np.asarray(counts.sum(axis=0)).ravel()
    p = count / count.sum()
    doc_freq = np.diff(counts.tocsc().indptr)
    # a sentence with no word (blank, or only white space) is not a document: counting it would give a word
    # in every real sentence an idf above 0
    n_documents = int((np.diff(counts.indptr) > 0).sum())
    table = pd.DataFrame({
        "word": vocab,
        "count": count.astype(int),
        "p": p,
        "kl": kl_from_counts(counts, contexts),
        "self_info": -np.log(p),
        "idf": np.log(n_documents / doc_freq),
        "sif": SIF_A / (SIF_A + p),
    })
    table = table[table["count"] >= min_count]
    table = table.sort_values(["count", "word"], ascending=[False, True], kind="stable")
    table = table.reset_index(drop=True)
    table.attrs.update(n_sentences=len(texts), n_documents=n_documents, n_tokens=int(count.sum()),
                       contexts=contexts,
                       lowercase=lowercases(tokenizer) if lowercase is None else lowercase,
                       tokenizer=getattr(tokenizer, "name_or_path", None) or "bert-base-uncased pre-tokenizer",
                       units=units_key(tokenizer, lowercase))
    return table


def context_distribution(sentences, word: str, tokenizer=None, lowercase: bool | None = None, top: int = 10,
                         contexts: str = "presence") -> pd.DataFrame:
    """The words that p(.|word) favours most over p(.): ``context, p_given_word, p, ratio`` (section 3.2.1).

    Shows what makes KL(word) large or small: the log of ``ratio`` is what KL averages.
    """
    _check_contexts(contexts)
    counts, vocab = count_matrix(sentences, tokenizer, lowercase)
    if word not in vocab:
        raise KeyError(f"{word!r} does not occur in these sentences.")
    col = vocab.index(word)
    weight = counts[:, col].toarray().ravel()
    if contexts == "presence":
        weight = (weight > 0).astype(float)
    row = np.asarray(counts.T @ weight).ravel()
    p = np.asarray(counts.sum(axis=0)).ravel() / counts.sum()
    cond = row / row.sum()
    table = pd.DataFrame({"context": vocab, "p_given_word": cond, "p": p, "ratio": cond / p})
    return table[table["p_given_word"] > 0].nlargest(top, "p_given_word").reset_index(drop=True)


def compare_contexts(sentences, tokenizer=None, min_count: int = 1, k: int = 10) -> tuple[dict, pd.DataFrame]:
    """How much KL changes between presence-based and count-weighted contexts (chapter 02).

    Returns ({"spearman", "pearson", "n_words", "n_changed"}, the ``k`` words whose KL moves most)
    over the words with at least ``min_count`` occurrences. Only words repeated inside a
    sentence, and the words that share sentences with them, can move.
    """
    from scipy.stats import pearsonr, spearmanr

    presence = word_information(sentences, tokenizer, min_count=min_count, contexts="presence")
    count = word_information(sentences, tokenizer, min_count=min_count, contexts="count")
    both = presence[["word", "count", "kl"]].merge(count[["word", "kl"]], on="word", suffixes=("_presence", "_count"))
    both["change"] = both["kl_count"] - both["kl_presence"]
    stats = {"spearman": float(spearmanr(both["kl_presence"], both["kl_count"])[0]),
             "pearson": float(pearsonr(both["kl_presence"], both["kl_count"])[0]),
             "n_words": int(len(both)), "n_changed": int((both["change"].abs() > 1e-9).sum())}
    movers = both.reindex(both["change"].abs().sort_values(ascending=False).index).head(k).reset_index(drop=True)
    return stats, movers


def kl_by_sample_size(sentences: pd.DataFrame, sizes, seed: int = 0, **kwargs) -> pd.DataFrame:
    """KL and I of every word estimated on random samples of ``sizes`` sentences (the book's Eq. eq-kl).

    One row per (size, word); the rare-word bias of KL on small corpora shows as the
    gap between sizes. ``sizes`` larger than the corpus use the whole corpus.
    """
    rng = np.random.default_rng(seed)
    frames = []
    for size in sizes:
        size = min(int(size), len(sentences))
        sample = sentences.iloc[np.sort(rng.choice(len(sentences), size=size, replace=False))]
        frames.append(word_information(sample, **kwargs).assign(n_sentences=size))
    return pd.concat(frames, ignore_index=True)


def min_count_summary(info: pd.DataFrame, min_counts) -> pd.DataFrame:
    """How ``min_count`` changes the table: words kept, their share of tokens, and the KL-I correlation."""
    from scipy.stats import spearmanr

    rows = []
    for m in min_counts:
        kept = info[info["count"] >= m]
        rows.append({"min_count": m, "words": len(kept), "token_share": kept["count"].sum() / info["count"].sum(),
                     "mean_kl": kept["kl"].mean(), "spearman_kl_self_info": spearmanr(kept["kl"], kept["self_info"])[0]})
    return pd.DataFrame(rows)
