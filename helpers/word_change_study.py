"""Chapter 07's study (study layer): which words contrastive training raised and lowered, and the paper's Figure 3.

For every model: its IG word weights on the sample (from the attribution cache); Figure 3's three sentences as a
table of each model's weight beside KL and I (:func:`helpers.regression.figure3_table`); and each word's change of
mean weight from one model to another, paired by occurrence with its 95% interval
(:func:`helpers.regression.word_changes`). One call returns the chapter's two tables as a
:class:`helpers.results.Result`, with the word-weight tables its figures draw.
"""
from __future__ import annotations

import pandas as pd

from . import results
from .attribution import IG, word_weights
from .data import FIGURE3
from .encoders import load_encoder
from .regression import figure3_table, word_changes

__all__ = ["word_change_study"]


def word_change_study(models: dict, sample: pd.DataFrame, info: pd.DataFrame, ig: IG, *, pooling: str = "mean",
                      before: str = "self-trained MLM", after: str = "self-trained SimCSE", min_occurrences: int = 5,
                      top_k: int = 10) -> results.Result:
    """Chapter 07's tables for ``models`` ({label: name or folder}, each loaded with ``pooling``) on ``sample``
    (``sentence_id, text``, with the Figure 3 sentences among them), with ``info`` the word table of
    :func:`helpers.information.word_information`: ``figure3`` (every model's weight of each word of Figure 3's
    sentences, beside KL and I) and ``word_changes`` (every word's change from ``before`` to ``after``, however
    rarely seen). ``figures``: ``weights`` (each model's word-weight table) and ``changes`` (the ``top_k`` words
    raised and lowered most among those seen ``min_occurrences`` times or more)."""
    missing = [label for label in (before, after) if label not in models]
    if missing:
        raise ValueError(f"before/after name models that are not in models: {missing}; models has {list(models)}.")
    weights = {label: word_weights(load_encoder(str(name), pooling=pooling), sample, ig) for label, name in models.items()}
    figure3_ids = sample.loc[sample["text"].isin(FIGURE3), "sentence_id"]
    changes = word_changes(weights[before], weights[after], min_occurrences=min_occurrences, k=top_k)
    every = word_changes(weights[before], weights[after], min_occurrences=1, k=10**6)
    return results.Result(results.WORD_WEIGHTS, figure3=figure3_table(weights, info, figure3_ids), word_changes=every,
                          figures={"weights": weights, "changes": changes})
