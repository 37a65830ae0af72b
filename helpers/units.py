"""Word units: what the book calls a word, one definition for every layer (the book's Eq. eq-normalise).

A word is a span of the sentence cut where a tokenizer's pre-tokeniser cuts (whitespace and
punctuation splits), lower-cased when the tokenizer is uncased, in Unicode normal form NFC,
punctuation kept, special tokens dropped. :func:`split_words` is the single definition: attribution
(:func:`helpers.attribution.tokenize`) maps subword tokens onto exactly these words and the
information counts (:mod:`helpers.information`) count them, so weight tables and information tables
share their units (:func:`units_key`, :func:`check_same_units`).

Sentences come in through :func:`sentence_table` (every layer's one reader of "sentences": a str, a
list of str or a DataFrame with ``text``).
"""
from __future__ import annotations

import hashlib
import json
import unicodedata
from functools import lru_cache

import numpy as np
import pandas as pd

__all__ = ["NORMAL_FORM", "lowercases", "pieces", "word_units", "word_spans", "surface_words", "split_words",
           "units_key", "check_same_units", "check_casing", "check_same_casing",
           "sentence_table", "sentence_texts"]


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


def _base(text: str, end: int) -> str:
    """The character that the combining marks before ``end`` sit on ("" when there is none)."""
    i = end - 1
    while i >= 0 and _is_mark(text[i]):
        i -= 1
    return text[i] if i >= 0 else ""


def _same_class(a: str, b: str) -> bool:
    """Letters go on with letters and digits with digits: what a pre-tokeniser keeps in one piece when no accent
    stands between them (NFC text), so an accent typed decomposed (NFD) never cuts or joins a word otherwise."""
    return bool(a) and unicodedata.category(a)[0] == unicodedata.category(b)[0] and unicodedata.category(b)[0] in "LN"


def word_units(text: str, tokenizer=None, lowercase: bool | None = None) -> list[dict]:
    """The word units of one sentence, each ``{"start", "end", "word", "pieces"}`` (the book's Eq. ``eq-kl`` counts
    and every weight table use these, so the two always join one to one).

    Units are the tokenizer's pieces (:func:`pieces`, numbered as ``word_ids()``), with three rules:

    * a special token written in the text (``[MASK]``, ``</s>``) and a piece that is only white space or
      invisible characters is a unit with ``word`` None: not a word, no weight, not counted;
    * a piece that is only combining marks (an accent typed decomposed, NFD, which a byte-level tokenizer cuts
      off) joins the unit before it, and so does the piece of letters that goes on right after such an accent;
      a unit's span takes in the combining marks that follow it (an uncased normaliser strips them): ``café``
      and ``naïve`` typed NFC or NFD are one unit each; units never overlap;
    * ``word`` is the span's own text in Unicode normal form NFC, with invisible characters removed,
      lower-cased when the tokenizer is uncased (``lowercase=None``; True or False forces it). It is never the
      byte-level or accent-stripped form the model sees.
    """
    lower = lowercases(tokenizer) if lowercase is None else lowercase
    units: list[dict] = []

    def marks_from(i: int) -> int:
        while i < len(text) and _is_mark(text[i]):
            i += 1
        return i

    def set_end(unit, end):
        if _surface(text[unit["start"]:end], lower) is not None:
            end = marks_from(end)  # combining marks the normaliser dropped belong to this word (not to a space)
        unit["end"], unit["word"] = end, _surface(text[unit["start"]:end], lower)

    for index, (start, end, special) in enumerate(pieces(text, tokenizer)):
        prev = units[-1] if units and units[-1]["word"] is not None else None
        if not special and prev is not None and start <= prev["end"]:
            k = max(start, prev["end"])  # what the word before already holds: the accents on its last letter
            while k < end and _is_mark(text[k]):
                k += 1
            if any(_is_mark(ch) for ch in text[start:end]) and all(_is_mark(ch) or _invisible(ch)
                                                                   for ch in text[k:end]):
                prev["pieces"].append(index)  # an accent typed on its own: it belongs to the letter before it
                set_end(prev, max(prev["end"], end))
                continue
            if k > start:
                set_end(prev, k)  # the piece's leading accents sit on the word before; the rest is its own
                start = k
            if start == prev["end"] and _is_mark(text[start - 1]) and _same_class(_base(text, start), text[start]):
                prev["pieces"].append(index)  # the word goes on after its accent (typed NFD): one word, as in NFC
                set_end(prev, end)
                continue
        unit = {"start": start, "end": end, "word": None, "pieces": [index]}
        if not special:
            set_end(unit, end)
        units.append(unit)
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



def check_casing(tokenizer, words, what: str = "the information table") -> None:
    """Refuse a table of words whose casing cannot be the tokenizer's: an uncased model's words are all lower
    case, so a table with capitalised words was counted with another tokenizer; a cased model's words keep their
    capitals, so a table without a single one (a corpus has sentence-initial capitals) was counted uncased, and
    'Man' would be read as unseen. Looks at the words themselves, which no pandas operation drops (unlike
    ``attrs``)."""
    letters = [w for w in pd.Series(words).dropna().astype(str) if w.lower() != w.upper()]
    if len(letters) < 20:
        return  # too few words to tell
    capitalised = sum(w != w.lower() for w in letters)
    lower = lowercases(tokenizer)
    if lower and capitalised:
        example = next(w for w in letters if w != w.lower())
        raise ValueError(f"{what} has capitalised words (e.g. {example!r}) but the model is uncased: its words are "
                         "lower case, so they would not match. Compute the table with the model's tokenizer: "
                         "word_information(sentences, tokenizer=encoder.tokenizer).")
    if not lower and not capitalised:
        raise ValueError(f"{what} has no capitalised word among {len(letters)} but the model is cased: it was counted "
                         "lower-cased, so every capitalised word of a text would read as unseen (KL NaN). Compute it "
                         "with the model's tokenizer: word_information(sentences, tokenizer=encoder.tokenizer).")


def _capitalised(words) -> tuple[int, int, str | None]:
    """(words with letters, how many of them have a capital, the first such word)."""
    letters = [w for w in pd.unique(pd.Series(words).dropna().astype(str)) if w.lower() != w.upper()]
    capitals = [w for w in letters if w != w.lower()]
    return len(letters), len(capitals), capitals[0] if capitals else None


def check_same_casing(a_words, b_words, what_a: str = "the weight table", what_b: str = "the information table",
                      enough: int = 20) -> None:
    """Refuse to join two tables of words where one has capitalised words and the other, with at least ``enough``
    distinct words, has none: one was counted cased and the other uncased, whatever their ``attrs`` say (pandas
    drops ``attrs`` in some operations, and a CSV never has them; the words themselves always travel)."""
    (na, ca, ea), (nb, cb, eb) = _capitalised(a_words), _capitalised(b_words)
    for (n1, c1, e1, w1), (n2, c2, w2) in (((na, ca, ea, what_a), (nb, cb, what_b)),
                                           ((nb, cb, eb, what_b), (na, ca, what_a))):
        if c1 and n2 >= enough and not c2:
            raise ValueError(f"{w1} has capitalised words (e.g. {e1!r}) but {w2} has none among {n2} words: one was "
                             "counted with a cased tokenizer and the other lower-cased, so capitalised words would not "
                             "match. Compute both with the model's tokenizer (word_information(sentences, "
                             "tokenizer=encoder.tokenizer)).")


def sentence_table(sentences) -> pd.DataFrame:
    """``sentence_id, text`` from a str (one sentence), a list of str, or a DataFrame with ``text`` (and
    ideally ``sentence_id``); bad input is an error naming the culprit."""
    if isinstance(sentences, str):
        sentences = [sentences]
    if isinstance(sentences, pd.DataFrame):
        if "text" not in sentences:
            raise ValueError("a DataFrame of sentences needs a 'text' column (and ideally 'sentence_id').")
        df = sentences
        if "sentence_id" not in df:
            df = df.assign(sentence_id=np.arange(len(df)))
        df = df[["sentence_id", "text"]]
        dup = df.loc[df["sentence_id"].duplicated(), "sentence_id"].unique().tolist()
        if len(dup):
            raise ValueError(f"sentence_id must be unique: {list(dup[:5])} occur more than once (the weights of "
                             "two sentences would be merged under one id).")
    else:
        texts = list(sentences)
        df = pd.DataFrame({"sentence_id": np.arange(len(texts)), "text": texts})
    if df.empty:
        raise ValueError("no sentences: pass a non-empty list of strings or DataFrame.")
    for position, text in enumerate(df["text"]):
        if not isinstance(text, str):
            raise TypeError(f"sentence {position} (sentence_id {df['sentence_id'].iloc[position]!r}) is "
                            f"{type(text).__name__} {text!r}, not a str: every sentence must be text.")
    return df


def sentence_texts(sentences, corpus: bool = True) -> list[str]:
    """The texts of a list of str or a DataFrame with ``text`` (its ids are not needed here); a non-str
    sentence is an error naming its position. ``corpus``: the texts are a corpus to count words in, where
    a bare str is refused (it is one sentence, almost always a mistake for a list of them); otherwise a bare
    str is one sentence, as :func:`sentence_table` reads it."""
    if isinstance(sentences, pd.DataFrame):
        if "text" not in sentences:
            raise ValueError("a DataFrame of sentences needs a 'text' column.")
        texts = sentences["text"].tolist()
    elif isinstance(sentences, str):
        if corpus:
            raise TypeError("sentences must be a list of strings or a DataFrame with a 'text' column, not a str "
                            "(a corpus of one sentence has no word statistics; wrap it in a list if you mean it).")
        texts = [sentences]
    else:
        texts = list(sentences)
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"sentence {i} is {type(text).__name__} {text!r}, not a str: every sentence must be text.")
    return texts
