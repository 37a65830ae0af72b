"""Chapter 11's study (study layer): are the word weights faithful, and how much of IG's ranking does KL recover?

For every model: its IG and SHAP word weights on the sample (from the attribution cache), the rankings they and the
information quantities give (:func:`helpers.faithfulness.rankings`), the deletion and insertion curves of each
ranking under each removal with their AOPC (the book's Eq. eq-aopc), and the share of IG's advantage over random
that KL, I and IDF recover. One call returns the chapter's three tables as a :class:`helpers.results.Result`.
"""
from __future__ import annotations

import pandas as pd

from . import results
from .attribution import IG, SHAP, word_weights
from .encoders import load_encoder
from .faithfulness import REMOVALS, faithfulness_table, rankings, recovery

__all__ = ["RECOVERED_BY", "faithfulness_study"]

#: The rankings without model access whose recovery of IG's advantage the chapter reports.
RECOVERED_BY = ("KL", "I", "IDF")


def faithfulness_study(models: dict, sample: pd.DataFrame, info: pd.DataFrame, ig: IG, shap: SHAP, *,
                       pooling: str = "mean", k_max: int = 5, removals=REMOVALS, random_seeds=(0, 1, 2),
                       n_boot: int = 1000, seed: int = 0) -> results.Result:
    """Chapter 11's tables for ``models`` ({label: name or folder}, each loaded with ``pooling``) on ``sample``
    (``sentence_id, text``), with ``info`` the word table of :func:`helpers.information.word_information`:
    ``aopc`` (every ranking and removal per model, with its bootstrap interval), ``recovery`` (KL, I and IDF
    against IG and random, a paired bootstrap) and ``curves`` (every deletion and insertion curve). ``ig`` and
    ``shap``: the method objects whose weights are ranked."""
    if not models:
        raise ValueError("models is empty: name at least one model ({label: name or folder}).")
    aopc, curves = [], []
    for label, name in models.items():
        encoder = load_encoder(name, pooling=pooling)
        weights = {"IG": word_weights(encoder, sample, ig, progress=False),
                   "SHAP": word_weights(encoder, sample, shap, progress=False)}
        ranks = rankings(weights, info, weights["IG"], seeds=random_seeds)
        table, curve = faithfulness_table(encoder, sample, ranks, k_max=k_max, removals=removals, n_boot=n_boot,
                                          seed=seed, progress=False)
        aopc.append(table.assign(model=label))
        curves.append(curve.assign(model=label))
    aopc = pd.concat(aopc, ignore_index=True)
    curves = pd.concat(curves, ignore_index=True)
    recovered = pd.DataFrame([{"model": m, "removal": r, "ranking": by,
                               **recovery(c, by, n_boot=n_boot, seed=seed)}
                              for (m, r), c in curves.groupby(["model", "removal"], sort=False) for by in RECOVERED_BY])
    return results.Result(results.FAITHFULNESS, aopc=aopc[list(results.FAITHFULNESS.aopc.columns)],
                          recovery=recovered, curves=curves)
