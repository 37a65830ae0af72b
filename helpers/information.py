"""Information quantities of words (paper section 3.2, appendix B; the book's Eqs. eq-kl and eq-self-info).

Word units follow the book's word units and Eq. eq-normalise: spans of the sentence cut where a tokenizer's
pre-tokeniser cuts (whitespace and punctuation splits), lower-cased when the tokenizer
is uncased, punctuation kept, special tokens dropped. :func:`split_words` is the single definition of a word:
the attribution module maps subword tokens onto exactly these words, so weight
tables and information tables share their units.
"""
from __future__ import annotations

import hashlib
import json
import unicodedata
from functools import lru_cache
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .config import check_count

SIF_A = 1e-3  # Arora et al. (2017): a / (a + p(w)) with a = 1e-3 (the book's Eq. eq-kl)


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


def lowercases(tokenizer=None) -> bool:
    """Whether the tokenizer's normaliser lower-cases (uncased models): then word units are lower-cased too."""
    normalizer, _ = _pipeline(tokenizer)
    return normalizer is not None and normalizer.normalize_str("A") == "a"


#: The special tokens of bert-base-uncased, whose pipeline gives the book's default word units.
BERT_SPECIALS = (("[PAD]", False, False), ("[UNK]", False, False), ("[CLS]", False, False), ("[SEP]", False, False),
                 ("[MASK]", False, False))
#: The one Unicode normal form of every word the book counts and weighs.
NORMAL_FORM = "NFC"


def _specials(tokenizer) -> tuple:
    """(content, lstrip, rstrip) of every special token the tokenizer isolates in raw text, longest first."""
    if tokenizer is None:
        found = BERT_SPECIALS
    else:
        decoder = getattr(tokenizer, "added_tokens_decoder", None) or {}
        found = tuple((t.content, bool(t.lstrip), bool(t.rstrip)) for t in decoder.values()
                      if getattr(t, "special", True) and t.content)
    return tuple(sorted(set(found), key=lambda s: -len(s[0])))


@lru_cache(maxsize=32)
def _special_regex(specials: tuple):
    import re

    if not specials:
        return None
    parts = [(r"\s*" if lstrip else "") + re.escape(content) + (r"\s*" if rstrip else "")
             for content, lstrip, rstrip in specials]
    return re.compile("|".join(parts))


def _pretokenize(segment: str, normalizer, pre_tokenizer) -> list[tuple[int, int]]:
    from tokenizers import PreTokenizedString

    pieces = PreTokenizedString(segment)
    if normalizer is not None:
        pieces.normalize(lambda normalized: normalizer.normalize(normalized))
    if pre_tokenizer is not None:
        pre_tokenizer.pre_tokenize(pieces)
    return [span for _, span, _ in pieces.get_splits(offset_referential="original", offset_type="char")]


def pieces(text: str, tokenizer=None) -> list[tuple[int, int, bool]]:
    """(start, end, is_special) of every piece the tokenizer cuts ``text`` into, numbered as its ``word_ids()``.

    A fast tokenizer first isolates the special tokens written in the text (``[MASK]``, ``</s>``, ``<pad>``...:
    each becomes one token, with its own word id), then normalises and pre-tokenises the stretches between
    them. This does the same: without the first step, ``[MASK]`` would be cut into three pieces and every later
    word would take its neighbour's number. Offsets are found on the normalised text and mapped back to the
    original by the ``tokenizers`` library's alignments (``PreTokenizedString.get_splits``).
    """
    if not isinstance(text, str):
        raise TypeError(f"a sentence must be a str, got {type(text).__name__}: {text!r}.")
    normalizer, pre_tokenizer = _pipeline(tokenizer)
    specials = _specials(tokenizer)
    regex = _special_regex(specials) if any(s[0] in text for s in specials) else None
    out, last = [], 0
    matches = list(regex.finditer(text)) if regex is not None else []
    for match in matches + [None]:
        stop = match.start() if match is not None else len(text)
        if stop > last:
            out += [(s + last, e + last, False) for s, e in _pretokenize(text[last:stop], normalizer, pre_tokenizer)]
        if match is not None:
            content = match.group(0).strip()
            begin = match.start() + match.group(0).index(content)
            out.append((begin, begin + len(content), True))
            last = match.end()
    return out


def _is_mark(ch: str) -> bool:
    return unicodedata.category(ch).startswith("M")


def _invisible(ch: str) -> bool:
    """Characters that render as nothing (zero-width space and joiners, soft hyphen, BOM: category Cf)."""
    return unicodedata.category(ch) == "Cf"


def _surface(raw: str, lower: bool) -> str | None:
    if all(_is_mark(ch) or _invisible(ch) or ch.isspace() for ch in raw):
        return None  # nothing a reader sees as a word: marks on no letter, invisible characters, white space
    word = unicodedata.normalize(NORMAL_FORM, "".join(ch for ch in raw if not _invisible(ch))).strip()
    return (word.lower() if lower else word) or None


def word_units(text: str, tokenizer=None, lowercase: bool | None = None) -> list[dict]:
    """The word units of one sentence, each ``{"start", "end", "word", "pieces"}`` (the book's Eq. ``eq-kl`` counts
    and every weight table use these, so the two always join one to one).

    Units are the tokenizer's pieces (:func:`pieces`, numbered as ``word_ids()``), with three rules:

    * a special token written in the text (``[MASK]``, ``</s>``) and a piece that is only white space or
      invisible characters is a unit with ``word`` None: not a word, no weight, not counted;
    * a piece that is only combining marks (an accent typed decomposed, NFD, which a byte-level tokenizer cuts
      off) joins the unit before it, and a unit's span takes in the combining marks that follow it (an uncased
      normaliser strips them): ``café`` typed NFC or NFD is one unit;
    * ``word`` is the span's own text in Unicode normal form NFC, with invisible characters removed,
      lower-cased when the tokenizer is uncased (``lowercase=None``; True or False forces it). It is never the
      byte-level or accent-stripped form the model sees.
    """
    lower = lowercases(tokenizer) if lowercase is None else lowercase
    units: list[dict] = []
    for index, (start, end, special) in enumerate(pieces(text, tokenizer)):
        raw = text[start:end]
        if not special and raw and _is_mark(raw[0]) and all(_is_mark(ch) or _invisible(ch) for ch in raw) \
                and units and units[-1]["word"] is not None and units[-1]["end"] == start:
            prev = units[-1]  # an accent typed on its own: it belongs to the letter before it
            prev["end"] = max(prev["end"], end)
            prev["pieces"].append(index)
            prev["word"] = _surface(text[prev["start"]:prev["end"]], lower)
            continue
        while not special and end < len(text) and _is_mark(text[end]):
            end += 1  # combining marks the normaliser dropped belong to this word
        units.append({"start": start, "end": end, "word": None if special else _surface(text[start:end], lower),
                      "pieces": [index]})
    return units


def word_spans(text: str, tokenizer=None) -> list[tuple[int, int]]:
    """(start, end) character offsets in ``text`` of every unit of :func:`word_units` (the i-th is word i)."""
    return [(u["start"], u["end"]) for u in word_units(text, tokenizer, lowercase=False)]


def surface_words(text: str, tokenizer=None, lowercase: bool | None = None) -> list[str | None]:
    """The word of every unit of :func:`word_units` (None for a unit that is not a word)."""
    return [u["word"] for u in word_units(text, tokenizer, lowercase)]


def split_words(text: str, tokenizer=None, lowercase: bool | None = None) -> list[str]:
    """The words of one sentence: the units of :func:`word_units` that are words.

    ``tokenizer=None`` uses bert-base-uncased's normaliser and pre-tokeniser (whitespace and
    punctuation splits). Attribution (:func:`helpers.attribution.tokenize`) maps subwords onto these same units.
    """
    return [w for w in surface_words(text, tokenizer, lowercase) if w is not None]


def units_key(tokenizer=None, lowercase: bool | None = None) -> str:
    """What decides a table's word units: the normaliser, pre-tokeniser and special tokens, the casing and the
    normal form (not the tokenizer's name: MiniLM's tokenizer cuts words as bert-base-uncased's does). Two
    tables join only when their keys are equal (:func:`check_same_units`)."""
    normalizer, pre_tokenizer = _pipeline(tokenizer)
    spec = [json.loads(part.__getstate__()) if part is not None else None for part in (normalizer, pre_tokenizer)]
    lower = lowercases(tokenizer) if lowercase is None else lowercase
    digest = hashlib.sha1(json.dumps([spec, _specials(tokenizer), lower, NORMAL_FORM], sort_keys=True,
                                     default=str).encode()).hexdigest()[:12]
    return f"{'uncased' if lower else 'cased'}|{NORMAL_FORM}|{digest}"


def check_same_units(a, b, what_a: str = "the weight table", what_b: str = "the information table") -> None:
    """Refuse to join two tables whose word units differ (``attrs["units"]``, set by ``word_weights`` and
    ``word_information``): a cased model's words against an uncased table would drop every capitalised word.
    Tables without the mark (read from a CSV) are not checked."""
    ua, ub = getattr(a, "attrs", {}).get("units"), getattr(b, "attrs", {}).get("units")
    if ua and ub and ua != ub:
        raise ValueError(
            f"{what_a} and {what_b} do not share word units ({ua!r} vs {ub!r}: casing | normal form | key of "
            "the tokenizer's normaliser, pre-tokeniser and special tokens). Compute the information table with the same tokenizer as the weights: "
            "word_information(sentences, tokenizer=encoder.tokenizer).")


CONTEXTS = ("presence", "count")


def _texts(sentences) -> list[str]:
    if isinstance(sentences, pd.DataFrame):
        if "text" not in sentences:
            raise ValueError("a DataFrame of sentences needs a 'text' column.")
        texts = sentences["text"].tolist()
    elif isinstance(sentences, str):
        raise TypeError("sentences must be a list of strings or a DataFrame with a 'text' column, not a str.")
    else:
        texts = list(sentences)
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"sentence {i} is {type(text).__name__} {text!r}, not a str: every sentence must be text.")
    return texts


def count_matrix(sentences, tokenizer=None, lowercase: bool | None = None):
    """Sparse sentence-by-word count matrix C[s, w] and the vocabulary (list of words)."""
    texts = _texts(sentences)
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
    * idf = log(N_sentences / df(w)) and sif = a / (a + p(w)), a = 1e-3 (appendix B).

    ``sentences``: a list of strings or :func:`helpers.data.load_sentences`' DataFrame.
    Word units are :func:`split_words` with ``tokenizer`` (lower-cased when it is uncased).
    Distributions use every word; ``min_count`` only drops rare words from the table.
    Rows are sorted by count (descending), then word.
    """
    texts = _texts(sentences)
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
    table = pd.DataFrame({
        "word": vocab,
        "count": count.astype(int),
        "p": p,
        "kl": kl_from_counts(counts, contexts),
        "self_info": -np.log(p),
        "idf": np.log(len(texts) / doc_freq),
        "sif": SIF_A / (SIF_A + p),
    })
    table = table[table["count"] >= min_count]
    table = table.sort_values(["count", "word"], ascending=[False, True], kind="stable")
    table = table.reset_index(drop=True)
    table.attrs.update(n_sentences=len(texts), n_tokens=int(count.sum()), contexts=contexts,
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
