"""PartitionSHAP over every output dimension (paper appendix D, Eq. 20; the book's Eqs. eq-shapley, eq-efficiency).

shap's Partition explainer with its Text masker (the model's mask token replaces removed tokens); the
per-token norm over the D outputs is the token's weight. :func:`shapley_by_enumeration` is the exact
reference for short sentences.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from ..precision import DEFAULT as DEFAULT_PRECISION
from ..config import check_count
from ..encoders import Encoder
from ..precision import check_precision
from .method import Method
from .tokens import tokenize, truncate_text

__all__ = ["SHAP_MASKS", "SHAP", "shap_masker", "shap_model", "shapley_by_enumeration", "shap_token_norms",
           "unresolved_tokens"]

SHAP_MASKS = ("per_token", "collapsed")


@dataclass
class SHAP(Method):
    """PartitionSHAP over every output dimension (the book's Eqs. eq-shapley, eq-efficiency)."""

    name = "shap"
    shortens_text = True
    max_evals: int | None = None
    shap_mask: str = "per_token"
    shap_batch_size: int = 64
    #: the arithmetic of the model calls, ``fp32`` or ``bf16`` (:mod:`helpers.precision`)
    precision: str = DEFAULT_PRECISION

    def validate(self) -> None:
        check_precision(self.precision)
        check_count("max_evals", self.max_evals, 1, allow_none=True)
        check_count("shap_batch_size", self.shap_batch_size, 1)
        if self.shap_mask not in SHAP_MASKS:
            raise ValueError(f"shap_mask must be one of {SHAP_MASKS}, got {self.shap_mask!r}.")

    def settings(self) -> dict:
        out = {"method": "shap", "max_evals": self.max_evals, "shap_mask": self.shap_mask}
        return out if self.precision == "fp32" else {**out, "precision": self.precision}  # fp32 keys as before

    def token_norms(self, encoder, text, inputs):
        return shap_token_norms(encoder, text, inputs, max_evals=self.max_evals, mask=self.shap_mask,
                                batch_size=self.shap_batch_size, precision=self.precision)


def shap_masker(encoder: Encoder, mask: str = "per_token"):
    """shap's Text masker replacing removed tokens by the model's mask token (paper appendix D.4).

    ``per_token``: one mask token per removed token (``mask_token=None`` lets shap take the
    tokenizer's mask token and keeps ``collapse_mask_token`` off); ``collapsed``: a fully
    masked span becomes a single mask token (what passing ``mask_token="[MASK]"`` turns on).
    """
    import shap

    if mask not in SHAP_MASKS:
        raise ValueError(f"shap_mask must be one of {SHAP_MASKS}, got {mask!r}.")
    if encoder.tokenizer.mask_token is None:
        raise ValueError(f"{encoder.name}'s tokenizer has no mask token, which SHAP's masking needs.")
    if mask == "per_token":
        return shap.maskers.Text(encoder.tokenizer, mask_token=None, collapse_mask_token=False)
    return shap.maskers.Text(encoder.tokenizer, mask_token=encoder.tokenizer.mask_token, collapse_mask_token=True)


def shap_model(encoder: Encoder, batch_size: int = 64, precision: str = DEFAULT_PRECISION):
    """The model function shap calls: masked texts -> whole sentence vectors (N x D), computed in ``precision``.

    shap hands over a numpy array of strings; the tokenizer needs a list of ``str``.
    """
    def f(texts):
        texts = [str(t) for t in np.atleast_1d(texts)]
        return encoder.encode(texts, batch_size=batch_size, precision=precision)
    return f


def shapley_by_enumeration(value, n_players: int):
    """Exact Shapley values of a vector-valued game by enumerating all 2^n coalitions (paper Eq. 17).

    ``value(masks)`` maps a (m x n) boolean array of coalitions to (m x D) payoffs. Written
    here because shap's ExactExplainer cannot take the Text masker (its clustering is a
    function, which ExactExplainer indexes as an array); used as the tests' reference.
    Returns (phi: n x D, base: the empty coalition's payoff).
    """
    from math import factorial

    if n_players > 14:
        raise ValueError(f"enumeration of 2^{n_players} coalitions is too large.")
    masks = ((np.arange(2 ** n_players)[:, None] >> np.arange(n_players)) & 1).astype(bool)
    payoff = np.asarray(value(masks), dtype=float)
    index = {tuple(m): i for i, m in enumerate(masks)}
    size = masks.sum(1)
    weight = np.array([factorial(k) * factorial(n_players - k - 1) / factorial(n_players) if k < n_players else 0.0
                       for k in size])
    phi = np.zeros((n_players, payoff.shape[1]))
    for i in range(n_players):
        without = ~masks[:, i]
        with_i = masks[without].copy()
        with_i[:, i] = True
        rows = [index[tuple(m)] for m in with_i]
        phi[i] = (weight[without][:, None] * (payoff[rows] - payoff[without])).sum(0)
    return phi, payoff[0]


def shap_token_norms(encoder: Encoder, text: str, inputs: dict | None = None, max_evals: int | None = None,
                     mask: str = "per_token", batch_size: int = 64, algorithm: str = "partition",
                     precision: str = DEFAULT_PRECISION) -> dict:
    """Per-token ||phi[t, :]||_2 over the D outputs from PartitionSHAP (paper appendix D, Eq. 20).

    Uses shap's Partition explainer with its Text masker (:func:`shap_masker`). The text is
    passed as a one-element list (a bare string would be explained character by character).
    ``max_evals=None`` is shap's default (500). The additivity gap is
    max_j |base_j + sum_t phi[t, j] - f_j(x)| / ||f(x) - base||, with f(x) always in fp32 (so a bf16 run's
    gap includes its rounding). ``algorithm="exact"`` enumerates every coalition
    (:func:`shapley_by_enumeration`), for short sentences and tests.
    """
    import shap

    shortened = truncate_text(encoder, text)
    if inputs is None or shortened != text:
        text, inputs = shortened, tokenize(encoder, shortened)
    masker = shap_masker(encoder, mask)
    model = shap_model(encoder, batch_size, precision)
    if algorithm == "partition":
        explainer = shap.PartitionExplainer(model, masker)
        budget = check_count("max_evals", max_evals, 1, allow_none=True) or 500
        needed = 2 * masker.shape(text)[1] + 1
        if budget < needed:  # below this, PartitionSHAP cannot even split the sentence once per token
            warnings.warn(f"max_evals={budget} is too small for {masker.shape(text)[1]} tokens; raised to {needed} "
                          "(2 x tokens + 1, the least that reaches every token).", stacklevel=3)
            budget = needed
        kwargs = {"max_evals": budget}
    elif algorithm == "exact":
        def coalition_value(masks):  # masker(mask, text) returns ((masked text,),)
            return model([masker(m, text)[0][0] for m in masks])

        phi, base = shapley_by_enumeration(coalition_value, masker.shape(text)[1])
    else:
        raise ValueError(f"algorithm must be 'partition' or 'exact', got {algorithm!r}.")
    if algorithm == "partition":
        explanation = explainer([text], batch_size=batch_size, silent=True, **kwargs)
        phi = np.asarray(explanation.values[0], dtype=float)  # tokens x D (special tokens included)
        base = np.asarray(explanation.base_values[0], dtype=float)
    if phi.shape[0] != len(inputs["word_ids"]):
        raise RuntimeError(f"shap split {text!r} into {phi.shape[0]} tokens, the tokenizer into "
                           f"{len(inputs['word_ids'])}; cannot map SHAP values to words.")
    output = shap_model(encoder, batch_size)([text])[0]  # fp32: the gap is measured against the exact output
    gap = float(np.max(np.abs(base + phi.sum(0) - output)) / max(np.linalg.norm(output - base), 1e-12))
    return {"token_norms": np.linalg.norm(phi, axis=1), "completeness_gap": gap, "phi": phi, "base": base,
            "unresolved_tokens": unresolved_tokens(phi, inputs["word_ids"])}


def unresolved_tokens(phi: np.ndarray, word_ids) -> int:
    """How many word tokens share their SHAP value vector exactly with a neighbour.

    PartitionSHAP splits the sentence top-down and stops when ``max_evals`` is spent; a block it
    did not split gives all its tokens the same value, which no trained model does by chance.
    The budget that splits every token grows faster than the length (measured with a tiny BERT:
    27 evaluations for 6 tokens, 107 for 12, 331 for 19), so no fixed rule is enough: check.
    """
    rows = [i for i, w in enumerate(word_ids) if w is not None]
    tied = set()
    for a, b in zip(rows, rows[1:]):
        if np.array_equal(phi[a], phi[b]) and np.abs(phi[a]).max() > 0:
            tied |= {a, b}
    return len(tied)
