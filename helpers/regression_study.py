"""Chapter 06's study (study layer): Table 1 and everything the chapter asks of it, in one call.

Every model of a roster attributed on one sample and regressed on KL and I (paper Table 1, the book's Eq.
eq-regression, :func:`helpers.roster.roster_results`); its matched pairs judged by the book's one rule
(:func:`helpers.rules.roster_contrasts`), also with log-frequency held fixed (Eq. eq-beyond-frequency); the chosen
rows under every IG baseline with the displacement mechanism (:func:`helpers.roster.baseline_results`); the slope on
KL with the subword count as a covariate; and every word merge and normalisation (:func:`helpers.roster.
choice_sensitivity`). One call returns the chapter's tables as a :class:`helpers.results.Result`, with what its
figures draw (each model's word weights and information table, the baseline runs' weights) in ``figures``.
"""
from __future__ import annotations

import pandas as pd

from . import results
from .attribution import IG
from .regression import frequency_controls, regress_with_covariates
from .roster import baseline_results, choice_sensitivity, roster_results, rows_named
from .rules import roster_contrasts

__all__ = ["baseline_rows_of", "regression_study"]


def baseline_rows_of(rows: list[dict], names=None) -> list[dict]:
    """The rows measured under every IG baseline: ``names`` (a list of row names), or every MEAN row but
    all-mpnet-base-v2 (the largest, ~5 min more) when None."""
    if names is None:
        return [r for r in rows if r["pooling"] == "mean" and r["row"] != "all-mpnet-base-v2"]
    return rows_named(rows, names, "baseline_rows")


def regression_study(rows: list[dict], sample: pd.DataFrame, stsb: pd.DataFrame, methods, ig: IG, *,
                     baselines=("pad", "zero", "mask"), baseline_rows=None, n_boot: int = 1000, choice_boot: int = 200,
                     sketch_check_sentences: int = 0, seed: int = 0, precomputed=None) -> results.Result:
    """Chapter 06's tables for the roster ``rows`` on ``sample`` (``sentence_id, text``), KL and I from ``stsb``.

    ``methods``: the attribution methods (objects or registered names) of Table 1; ``ig``: the IG settings of the
    baseline and choice tables (those vary the baseline and the word merge of IG itself). ``precomputed``: a sweep's
    weights by row (:func:`helpers.sweep.weights_by_row`), read instead of computed. Returns ``table``,
    ``contrasts`` (Table 1's, the frequency control's and every baseline's but PAD's, which is Table 1's own),
    ``frequency``, ``baselines``, ``subword_control``, ``choices``, ``word_weights`` and ``information``;
    ``figures``: ``weights`` ({(row, method): word weights}), ``infos`` ({row: information table}),
    ``baseline_weights`` and ``baseline_rows`` (the rows measured under every baseline)."""
    names = [getattr(m, "name", m) for m in methods]
    table, weights, infos = roster_results(rows, sample, stsb, dataset="stsb", methods=methods, n_boot=n_boot, seed=seed,
                                           sketch_check_sentences=sketch_check_sentences, precomputed=precomputed)
    contrasts = roster_contrasts(rows, weights, infos, names, n_boot=n_boot, seed=seed)  # KL, I, beyond frequency
    frequency = frequency_controls(rows, weights, infos, "stsb", n_boot=n_boot, seed=seed)
    chosen = baseline_rows_of(rows, baseline_rows)
    by_baseline, baseline_contrasts, baseline_weights = baseline_results(chosen, sample, infos, baselines, ig,
                                                                         n_boot=n_boot, seed=seed)
    contrasts = pd.concat([contrasts, baseline_contrasts[baseline_contrasts["baseline"] != "pad"]], ignore_index=True)
    controls = pd.DataFrame([{"model": r["row"], **regress_with_covariates(weights[(r["row"], names[0])], infos[r["row"]])}
                             for r in rows]).set_index("model")
    choices = choice_sensitivity([r for r in rows if r["pooling"] == "mean"], sample, infos, ig, n_boot=choice_boot,
                                 seed=seed)
    attributed = pd.concat([w.assign(model=m, method=meth) for (m, meth), w in weights.items()])
    information = pd.concat([i.assign(model=m) for m, i in infos.items()]).merge(
        attributed[["model", "word"]].drop_duplicates())  # KL and I of the attributed words
    return results.Result(results.REGRESSION, table=table, contrasts=contrasts, frequency=frequency,
                          baselines=by_baseline, subword_control=controls, choices=choices, word_weights=attributed,
                          information=information,
                          figures={"weights": weights, "infos": infos, "baseline_weights": baseline_weights,
                                   "baseline_rows": chosen})
