"""Chapter 10's study (study layer): which word pairs make two sentences similar, per model?

For every model: each STS pair of the sample decomposed into word-pair contributions (:func:`helpers.attribution.
pairs.pairs_study`; the book's Eq. eq-pair), the shares of identical and top-KL word pairs, and on the first pairs
the sketch against the exact decomposition. One call returns the chapter's three tables as a
:class:`helpers.results.Result`.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from . import results
from .attribution import IG
from .attribution.pairs import pair_weights, pairs_study

__all__ = ["pair_texts", "similarity_study"]


def pair_texts(sample_pairs: pd.DataFrame) -> pd.Series:
    """{pair_id: [text of side 0, text of side 1]} of an STS sample (the loader's frame), in pair order."""
    return sample_pairs.sort_values(["pair_id", "side"]).groupby("pair_id")["text"].apply(list)


def similarity_study(encoders: dict, sample_pairs: pd.DataFrame, kl: pd.Series, ig: IG, *,
                     similarity: str = "dot", exact_pairs: int = 2, check_projections: int = 16) -> results.Result:
    """Chapter 10's tables for ``encoders`` ({label: loaded encoder}) on ``sample_pairs`` with ``kl`` (KL per word):
    ``pairs`` (every pair's gold score, similarity, gaps and shares, per model), ``summary`` (per model: the mean
    shares and the median gaps) and ``sketch_check`` (on the first ``exact_pairs`` pairs, the exact decomposition
    against a sketch of ``check_projections`` directions). ``ig``: the IG object of every pair's decomposition."""
    if not encoders:
        raise ValueError("encoders is empty: pass at least one {label: encoder}.")
    studies = {label: pairs_study(enc, sample_pairs, kl, ig, similarity=similarity) for label, enc in encoders.items()}
    summary = pd.DataFrame([{"model": label, "n_pairs": len(s), "share_top_kl": s["share_top_kl"].mean(),
                             "share_identical": s["share_identical"].mean(),
                             "median_completeness_gap": s["completeness_gap"].median(),
                             "median_gap_of_contributions": s["gap_of_contributions"].median()}
                            for label, s in studies.items()])
    texts, rows = pair_texts(sample_pairs), []
    for label, enc in encoders.items():
        for pid in list(texts.index)[:exact_pairs]:
            exact = pair_weights(enc, *texts[pid], ig.replace(projections=None), similarity=similarity)
            sketch = pair_weights(enc, *texts[pid], ig.replace(projections=check_projections), similarity=similarity)
            rows.append({"model": label, "pair_id": pid,
                         "pearson": np.corrcoef(exact["contribution"], sketch["contribution"])[0, 1],
                         "exact_gap": exact.attrs["completeness_gap"], "sketch_gap": sketch.attrs["completeness_gap"]})
    return results.Result(results.PAIRS, summary=summary, sketch_check=pd.DataFrame(rows),
                          pairs=pd.concat([s.assign(model=label) for label, s in studies.items()]))
