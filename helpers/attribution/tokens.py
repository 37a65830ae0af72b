"""Token inputs of an attribution: the book's word units on the model's tokens, and the IG baselines X' (paper
section 3.1; limitation 1 for the baseline).

:func:`tokenize` maps a text to token ids and the word each token belongs to (:mod:`helpers.units`, the one
definition of a word every layer uses); :func:`baseline_embeddings` builds the reference input of Eq. eq-ig.
"""
from __future__ import annotations

import warnings

import torch

from ..encoders import Encoder

__all__ = ["BASELINES", "tokenize", "added_special_ids", "check_baseline", "baseline_embeddings", "math_attention", "truncate_text"]

BASELINES = ("pad", "mask", "zero", "unk")


def tokenize(encoder: Encoder, text: str, truncate: bool = True) -> dict:
    """Token ids, the word each token belongs to, and the words (the book's word units).

    Words are :func:`helpers.units.word_units` with the encoder's tokenizer (spans of the
    original text in NFC, lower-cased for uncased tokenizers), so they share units with the
    information tables. Tokens that belong to no word -- the special tokens the tokenizer adds,
    special-token strings written in the text, and pieces that are only white space or invisible
    characters -- get word id None: they keep their embedding in the baseline and receive no weight.
    Too long: truncated with a warning (or an error with ``truncate=False``); a word that truncation
    cuts gets no weight (it is not the whole word). Empty: an error.
    """
    from ..units import word_units

    if not isinstance(text, str):
        raise TypeError(f"a sentence must be a str, got {type(text).__name__}: {text!r}.")
    if not text.strip():
        raise ValueError(f"Cannot attribute an empty sentence: {text!r}.")
    tok = encoder.tokenizer
    full = tok(text, add_special_tokens=True)
    truncated = len(full["input_ids"]) > encoder.max_length
    if truncated and not truncate:
        raise ValueError(f"The sentence has {len(full['input_ids'])} tokens, more than the model's "
                         f"{encoder.max_length}: shorten it or pass truncate=True.")
    enc = tok(text, add_special_tokens=True, truncation=True, max_length=encoder.max_length,
              return_special_tokens_mask=True, return_offsets_mapping=True)
    units = word_units(text, tok)
    unit_of = {p: i for i, u in enumerate(units) for p in u["pieces"]}
    piece_ids = enc.word_ids()
    cut = None
    if truncated:
        kept = [w for w in piece_ids if w is not None]
        if kept and kept[-1] in full.word_ids()[len(piece_ids) - 1:]:
            cut = unit_of.get(kept[-1])  # the last kept piece goes on past the limit: its word is cut
        warnings.warn(f"Sentence of {len(full['input_ids'])} tokens truncated to the model's {encoder.max_length}; "
                      "the words beyond it get no weight"
                      + (f", nor the word {units[cut]['word']!r} that the limit cuts." if cut is not None else "."),
                      stacklevel=3)
    word_ids = []
    for position, (piece, special) in enumerate(zip(piece_ids, enc["special_tokens_mask"])):
        if piece is None or (special and piece not in unit_of):
            word_ids.append(None)
            continue
        if piece not in unit_of:
            raise RuntimeError(f"the tokenizer cut {text!r} into more pieces than the book's word units "
                               f"({len(unit_of)}); please report this text.")
        unit = unit_of[piece]
        start, end = enc["offset_mapping"][position]
        if end > start and not (units[unit]["start"] <= start and end <= units[unit]["end"]) and \
                not text[start:end].isspace():
            raise RuntimeError(f"word units drift from the tokenizer in {text!r}: token {position} "
                               f"({text[start:end]!r}) lies outside its word {units[unit]['word']!r}; please report.")
        word_ids.append(None if units[unit]["word"] is None or unit == cut else unit)
    n_words = max((w for w in word_ids if w is not None), default=-1) + 1
    if n_words == 0:
        raise ValueError(f"The sentence {text!r} has no word the tokenizer keeps.")
    words = [u["word"] for u in units]
    return {"input_ids": torch.tensor([enc["input_ids"]]), "word_ids": word_ids, "words": words[:n_words]}


def added_special_ids(tokenizer) -> set[int]:
    """The ids the tokenizer *adds* around a sentence ([CLS]/[SEP], <s>/</s>): not [UNK], which stands for text."""
    return set(tokenizer.build_inputs_with_special_tokens([]))


def check_baseline(baseline) -> str:
    """``baseline`` when it is one of :data:`BASELINES` (the IG baselines x' of Eq. eq-ig); else an error naming it
    and the choices (the one check every entry point uses)."""
    if baseline not in BASELINES:
        raise ValueError(f"baseline must be one of {BASELINES}, got {baseline!r}.")
    return baseline


def baseline_embeddings(encoder: Encoder, input_ids: torch.Tensor, baseline: str = "pad",
                        keep: torch.Tensor | None = None) -> torch.Tensor:
    """X' for the paper's baseline "[CLS] [PAD] ... [PAD] [SEP]" (``pad``) or ``mask``, ``unk``, ``zero``.

    ``keep``: a boolean mask of the positions that keep their own embedding (and so receive no
    attribution); by default the special tokens the tokenizer adds (:func:`added_special_ids`).
    An [UNK] token stands for a word of the text and is replaced like any other word.
    """
    check_baseline(baseline)
    tok = encoder.tokenizer
    if keep is None:
        added = added_special_ids(tok)
        keep = torch.tensor([[t in added for t in input_ids[0].tolist()]], dtype=torch.bool)
    special = torch.as_tensor(keep, dtype=torch.bool).reshape(input_ids.shape).to(input_ids.device)
    if baseline == "zero":
        x = encoder.embed_tokens(input_ids)
        return torch.where(special[..., None].to(x.device), x, torch.zeros_like(x))
    token_id = {"pad": tok.pad_token_id, "mask": tok.mask_token_id, "unk": tok.unk_token_id}[baseline]
    if token_id is None:
        raise ValueError(f"{encoder.name}'s tokenizer has no {baseline} token; choose another baseline "
                         f"({', '.join(b for b in BASELINES if b != baseline)}).")
    ids = torch.where(special, input_ids, torch.full_like(input_ids, token_id))
    return encoder.embed_tokens(ids)


def math_attention():
    """A context in which scaled-dot-product attention runs PyTorch's composite (math) kernel.

    A model loaded by the book uses eager attention; a ``SentenceTransformer`` the user passes in may use the
    fused SDPA kernels, which have no forward-mode derivative (and no batched backward on every device). The
    math kernel computes the same attention with every derivative the engines need.
    """
    from torch.nn.attention import SDPBackend, sdpa_kernel

    return sdpa_kernel([SDPBackend.MATH])


def truncate_text(encoder: Encoder, text: str) -> str:
    """The text cut after the last word that fits in the model (with a warning), as IG's tokenisation truncates.

    shap's masker tokenizes the whole text, so SHAP needs the text itself shortened.
    """
    enc = encoder.tokenizer(text, add_special_tokens=True, return_offsets_mapping=True)
    if len(enc["input_ids"]) <= encoder.max_length:
        return text
    n_special = len(enc["input_ids"]) - len(encoder.tokenizer(text, add_special_tokens=False)["input_ids"])
    keep = encoder.max_length - n_special
    words = [w for w in enc.word_ids() if w is not None]
    last_word = words[keep - 1]
    if keep < len(words) and words[keep] == last_word:  # the last kept token splits a word: drop that word
        last_word -= 1
    end = max(e for (s, e), w in zip(enc["offset_mapping"], enc.word_ids()) if w is not None and w <= last_word)
    warnings.warn(f"Sentence of {len(enc['input_ids'])} tokens truncated to the model's {encoder.max_length}; "
                  "the words beyond it get no weight.", stacklevel=4)
    return text[:end]
