"""Information quantities of words (paper section 3.2, appendix B; DESIGN.md sections 4 and 5).

Word units follow DESIGN.md section 4: a tokenizer's normaliser and pre-tokeniser
(whitespace and punctuation splits), lower-cased by default, punctuation kept,
special tokens dropped. :func:`split_words` is the single definition of a word:
the attribution module maps subword tokens onto exactly these words, so weight
tables and information tables share their units.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

SIF_A = 1e-3  # Arora et al. (2017): a / (a + p(w)) with a = 1e-3 (DESIGN.md section 5)
_MARKERS = ("\u0120", "\u2581", "##")  # byte-level BPE space, sentencepiece space, WordPiece


@lru_cache(maxsize=1)
def _bert_pipeline():
    from tokenizers import normalizers, pre_tokenizers

    # bert-base-uncased's own pipeline: the default word units of the book
    return normalizers.BertNormalizer(lowercase=True), pre_tokenizers.BertPreTokenizer()


def _pipeline(tokenizer):
    if tokenizer is None:
        return _bert_pipeline()
    backend = getattr(tokenizer, "backend_tokenizer", tokenizer)
    if not hasattr(backend, "pre_tokenizer"):
        raise TypeError("tokenizer must be a Hugging Face *fast* tokenizer (or a tokenizers.Tokenizer).")
    return backend.normalizer, backend.pre_tokenizer


def _clean(piece: str, lowercase: bool) -> str:
    for marker in _MARKERS:
        if piece.startswith(marker):
            piece = piece[len(marker):]
    return piece.lower() if lowercase else piece


def split_words(text: str, tokenizer=None, lowercase: bool = True) -> list[str]:
    """The word units of one sentence (DESIGN.md section 4).

    ``tokenizer=None`` uses bert-base-uncased's normaliser and pre-tokeniser. With
    a fast tokenizer, the i-th word returned here is the word that the tokenizer's
    ``word_ids()`` calls i, which is how attribution maps subwords to words.
    """
    normalizer, pre_tokenizer = _pipeline(tokenizer)
    normed = normalizer.normalize_str(text) if normalizer is not None else text
    pieces = pre_tokenizer.pre_tokenize_str(normed) if pre_tokenizer is not None else [(normed, None)]
    return [_clean(p, lowercase) for p, _ in pieces]


def _texts(sentences) -> list[str]:
    if isinstance(sentences, pd.DataFrame):
        return sentences["text"].tolist()
    if isinstance(sentences, str):
        raise TypeError("sentences must be a list of strings or a DataFrame with a 'text' column, not a str.")
    return list(sentences)


def count_matrix(sentences, tokenizer=None, lowercase: bool = True):
    """Sparse sentence-by-word count matrix C[s, w] and the vocabulary (list of words)."""
    texts = _texts(sentences)
    vocab: dict[str, int] = {}
    rows, cols = [], []
    for i, text in enumerate(texts):
        for word in split_words(text, tokenizer, lowercase):
            rows.append(i)
            cols.append(vocab.setdefault(word, len(vocab)))
    data = np.ones(len(rows), dtype=np.float64)
    counts = sp.csr_matrix((data, (rows, cols)), shape=(len(texts), len(vocab)))
    counts.sum_duplicates()
    return counts, list(vocab)


def kl_from_counts(counts: sp.csr_matrix) -> np.ndarray:
    """Information gain KL(p(.|w) || p(.)) for every column word (paper section 3.2.1).

    n(w, w') = sum over sentences s containing w of count_s(w') (DESIGN.md section 5),
    computed as (C > 0)^T C with sparse matrices; p(w'|w) = n(w, w') / sum_w'' n(w, w'').
    """
    counts = sp.csr_matrix(counts, dtype=np.float64)
    p = np.asarray(counts.sum(axis=0)).ravel() / counts.sum()
    present = counts.copy()
    present.data[:] = 1.0
    cooc = (present.T @ counts).tocsr()  # V x V, sparse
    row_tot = np.asarray(cooc.sum(axis=1)).ravel()
    row_of = np.repeat(np.arange(cooc.shape[0]), np.diff(cooc.indptr))
    cond = cooc.data / row_tot[row_of]
    terms = cond * (np.log(cond) - np.log(p[cooc.indices]))
    return np.bincount(row_of, weights=terms, minlength=cooc.shape[0])


def word_information(sentences, tokenizer=None, lowercase: bool = True, min_count: int = 1) -> pd.DataFrame:
    """One row per word type: ``word, count, p, kl, self_info, idf, sif`` (paper section 3.2).

    * p(w) = count(w) / N over all word tokens of ``sentences``;
    * kl = KL(p(.|w) || p(.)), the information gain (section 3.2.1);
    * self_info = I(w) = -log p(w) (section 3.2.2);
    * idf = log(N_sentences / df(w)) and sif = a / (a + p(w)), a = 1e-3 (appendix B).

    ``sentences``: a list of strings or :func:`helpers.data.load_sentences`' DataFrame.
    Distributions use every word; ``min_count`` only drops rare words from the table.
    Rows are sorted by count (descending), then word.
    """
    texts = _texts(sentences)
    if not texts:
        raise ValueError("word_information needs at least one sentence.")
    counts, vocab = count_matrix(texts, tokenizer, lowercase)
    if counts.nnz == 0:
        raise ValueError("The sentences contain no words.")
    count = np.asarray(counts.sum(axis=0)).ravel()
    p = count / count.sum()
    doc_freq = np.diff(counts.tocsc().indptr)
    table = pd.DataFrame({
        "word": vocab,
        "count": count.astype(int),
        "p": p,
        "kl": kl_from_counts(counts),
        "self_info": -np.log(p),
        "idf": np.log(len(texts) / doc_freq),
        "sif": SIF_A / (SIF_A + p),
    })
    table = table[table["count"] >= min_count]
    table = table.sort_values(["count", "word"], ascending=[False, True], kind="stable")
    table = table.reset_index(drop=True)
    table.attrs.update(n_sentences=len(texts), n_tokens=int(count.sum()), lowercase=lowercase,
                       tokenizer=getattr(tokenizer, "name_or_path", None) or "bert-base-uncased pre-tokenizer")
    return table


def context_distribution(sentences, word: str, tokenizer=None, lowercase: bool = True, top: int = 10) -> pd.DataFrame:
    """The words that p(.|word) favours most over p(.): ``context, p_given_word, p, ratio`` (section 3.2.1).

    Shows what makes KL(word) large or small: the log of ``ratio`` is what KL averages.
    """
    counts, vocab = count_matrix(sentences, tokenizer, lowercase)
    if word not in vocab:
        raise KeyError(f"{word!r} does not occur in these sentences.")
    col = vocab.index(word)
    present = (counts[:, col].toarray().ravel() > 0)
    row = np.asarray(counts[present].sum(axis=0)).ravel()
    p = np.asarray(counts.sum(axis=0)).ravel() / counts.sum()
    cond = row / row.sum()
    table = pd.DataFrame({"context": vocab, "p_given_word": cond, "p": p, "ratio": cond / p})
    return table[table["p_given_word"] > 0].nlargest(top, "p_given_word").reset_index(drop=True)


def kl_by_sample_size(sentences: pd.DataFrame, sizes, seed: int = 0, **kwargs) -> pd.DataFrame:
    """KL and I of every word estimated on random samples of ``sizes`` sentences (DESIGN.md section 5).

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
