"""The roster run (study layer): every model of a roster attributed on one sample and regressed (paper Table 1,
appendices E and F; the book's chapters 06-09).

This is where models are loaded in loops; the statistics are :mod:`helpers.regression`'s and the
verdicts :mod:`helpers.rules`'.
"""
from __future__ import annotations

import pandas as pd

from .regression import BASELINE_COLUMNS, TABLE_COLUMNS, regress
from .rules import roster_contrasts
from .units import units_key

__all__ = ["roster_results", "datasets_results", "sketch_check", "choice_sensitivity", "baseline_results", "rows_named"]


def rows_named(rows: list[dict], names, parameter: str = "baseline_rows") -> list[dict]:
    """The roster rows whose ``row`` is in ``names``, in the roster's order. A name that is not a row of this roster
    is an error naming ``parameter`` and the rows there are (before, a typo left the table silently without it)."""
    if isinstance(names, str) or not all(isinstance(n, str) for n in names):
        raise ValueError(f"{parameter} must be a list of row names, got {names!r}.")
    known = [r["row"] for r in rows]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"{parameter}: {', '.join(map(repr, unknown))} is not a row of this roster; its rows are "
                         f"{', '.join(map(repr, known))}.")
    return [r for r in rows if r["row"] in names]


def sketch_check(encoder, sentences, sketched: pd.DataFrame, n_sentences: int, method) -> dict:
    """How far a row's sketched IG weights are from exact IG (all D outputs) on its first ``n_sentences``.

    ``method``: the :class:`helpers.attribution.IG` that made ``sketched``; the exact run is the same settings
    with ``projections=None``. Returns ``sketch_spearman`` (over every word of those sentences) and
    ``sketch_median_rel_err`` (median of |sketch - exact| / exact); NaN for both when ``n_sentences`` is 0 or
    the weights are not sketched IG. Exact IG costs D/k times the sketch, so the check uses a fixed subset.
    """
    from .attribution import compare_weights, word_weights
    from .units import sentence_table

    if not n_sentences or getattr(method, "name", None) != "ig" or method.projections is None:
        return {"sketch_spearman": float("nan"), "sketch_median_rel_err": float("nan")}
    subset = sentence_table(sentences).head(int(n_sentences))
    exact = word_weights(encoder, subset, method.replace(projections=None), progress=False)
    mine = sketched[sketched["sentence_id"].isin(subset["sentence_id"])]
    cmp = compare_weights({"exact": exact, "sketch": mine}, reference="exact").iloc[0]
    return {"sketch_spearman": float(cmp["spearman"]), "sketch_median_rel_err": float(cmp["median_rel_diff"])}


def _methods(methods, seed: int) -> list:
    """The roster's methods as objects: an object as given, a registered name with its defaults and ``seed``."""
    from .attribution import make_method

    if isinstance(methods, (str, dict)) or not hasattr(methods, "__iter__"):
        raise TypeError(f"methods must be a list of Method objects or names (e.g. [IG(n_steps=20)]), got {methods!r}.")
    return [make_method(m, {"seed": seed}) for m in methods]


def _encoder_for(row: dict):
    """The row's encoder and the pooling it runs with (a CLS row whose model has no trained pooler falls back to the
    [CLS] vector, and says so)."""
    import warnings

    from .encoders import MissingPoolerError, load_encoder

    try:
        return load_encoder(row["name"], pooling=row["pooling"]), row["pooling"]
    except MissingPoolerError:  # never a random pooler: the [CLS] vector itself, and the table says so
        warnings.warn(f"{row['row']}: {row['name']} has no trained pooler weights; its CLS row uses the "
                      "[CLS] vector before the pooler (pooling column 'cls_before_pooler').", stacklevel=3)
        return load_encoder(row["name"], pooling="cls_before_pooler"), "cls_before_pooler"


def _given_weights(precomputed: dict, row: str, method: str, sentences) -> pd.DataFrame:
    """A row's precomputed weights on exactly ``sentences``; an error when some of them are missing."""
    from .units import sentence_table

    given = precomputed[(row, method)]
    wanted = set(sentence_table(sentences)["sentence_id"])
    missing = wanted - set(given["sentence_id"])
    if missing:
        raise ValueError(f"the precomputed {method} weights of {row!r} lack {len(missing)} of the "
                         f"sentences (e.g. {sorted(missing)[:3]}); run the sweep on these sentences.")
    return given[given["sentence_id"].isin(wanted)].reset_index(drop=True)


def roster_results(rows: list[dict], sentences, info_sentences, dataset: str, methods=("ig",),
                   quantities=("kl", "self_info"), n_boot: int = 1000, seed: int = 0, progress: bool = True,
                   sketch_check_sentences: int = 0, precomputed: dict | None = None):
    """Word weights of every roster row and method on ``sentences``, regressed on KL and I (paper Table 1, appendices E, F).

    ``methods``: attribution methods as objects holding their settings (``[IG(n_steps=20, projections=16),
    SHAP(max_evals=500)]``, any registered :class:`helpers.attribution.Method`) or registered names (their
    defaults, with ``seed``). The information quantities are computed on ``info_sentences`` (the paper: all of
    the dataset's sentences) with each row's own word units (its tokenizer; rows that split words alike share
    one table). With sketched IG and ``sketch_check_sentences`` > 0, every row's sketch is compared with exact
    IG on that many of the sentences (:func:`sketch_check`). ``precomputed``: {(row, method name): weights}
    read from elsewhere (a sweep's output, :func:`helpers.sweep.weights_by_row`); those rows are not
    recomputed (and get no sketch check), and every sentence of ``sentences`` must be in them.
    Returns (table with :data:`TABLE_COLUMNS`, {(row, method name): weights}, {row: info}).
    """
    from .attribution import word_weights
    from .config import tqdm
    from .information import word_information

    specs = _methods(methods, seed)
    infos, by_key, weights, records = {}, {}, {}, []
    for row in tqdm(rows, desc=f"models on {dataset}", disable=not progress):
        encoder, pooling = _encoder_for(row)
        key = units_key(encoder.tokenizer)  # rows whose tokenizers cut words alike share one table
        if key not in by_key:
            by_key[key] = word_information(info_sentences, tokenizer=encoder.tokenizer)
        infos[row["row"]] = info = by_key[key]
        for spec in specs:
            if precomputed and (row["row"], spec.name) in precomputed:
                w = _given_weights(precomputed, row["row"], spec.name, sentences)
                check = sketch_check(encoder, sentences, w, 0, spec)
            else:
                w = word_weights(encoder, sentences, spec, progress=progress)
                check = sketch_check(encoder, sentences, w, sketch_check_sentences, spec)
            weights[(row["row"], spec.name)] = w
            for quantity in quantities:
                fit = regress(w, info, quantity, n_boot=n_boot, seed=seed)
                records.append({"dataset": dataset, "model": row["row"], "pooling": pooling,
                                "base": row.get("base"), "method": spec.name, "quantity": quantity,
                                **{k: fit[k] for k in TABLE_COLUMNS[6:14]}, **check})
    return pd.DataFrame(records, columns=TABLE_COLUMNS), weights, infos


def datasets_results(rows: list[dict], datasets, methods=("ig",), n_sentences: int = 60, info_sentences=None,
                     data_dir=None, n_boot: int = 1000, seed: int = 0, sweep_output=None, progress: bool = True):
    """Chapter 08's study: the roster run (:func:`roster_results`) on each of ``datasets`` (paper appendix F).

    Per dataset, KL and I come from ``info_sentences`` of its evaluation sentences (all when None,
    :func:`helpers.data.evaluation_sentences`), of which ``n_sentences`` (drawn with ``seed``) are attributed by
    ``methods`` (method objects or names); ``sweep_output``: a sweep's folder or URL whose weights are read
    instead of computed. Returns the chapter's tables as a :class:`helpers.results.Result` (``.save()`` writes
    them): ``table`` (Table 1 rows of every dataset), ``contrasts`` (their matched pairs' contrasts by the book's
    rule) and ``frequency`` (KL beyond log-frequency), each with a ``dataset`` column.
    """
    from . import results
    from .data import evaluation_sentences
    from .regression import frequency_controls

    union = None
    if sweep_output:
        from .sweep import load

        union = load(sweep_output)
    names = [getattr(m, "name", m) for m in methods]
    tables, contrasts, frequencies = [], [], []
    for dataset in datasets:
        info_sample = evaluation_sentences(dataset, data_dir, limit=info_sentences, seed=seed)
        attributed = info_sample.sample(n=min(n_sentences, len(info_sample)), random_state=seed).sort_values(
            "sentence_id")
        precomputed = None
        if union is not None:
            from .sweep import weights_by_row

            precomputed = weights_by_row(union, dataset)
        table, weights, infos = roster_results(rows, attributed, info_sample, dataset=dataset, methods=methods,
                                               n_boot=n_boot, seed=seed, progress=progress, precomputed=precomputed)
        tables.append(table)
        contrasts.append(roster_contrasts(rows, weights, infos, names, dataset=dataset, n_boot=n_boot, seed=seed))
        frequencies.append(frequency_controls(rows, weights, infos, dataset, n_boot=n_boot, seed=seed))
    return results.Result(results.DATASETS, table=pd.concat(tables, ignore_index=True),
                          contrasts=pd.concat(contrasts, ignore_index=True),
                          frequency=pd.concat(frequencies, ignore_index=True))


def choice_sensitivity(rows: list[dict], sentences, infos: dict, method=None, quantities=("kl",), word_aggs=None,
                       normalizations=None, n_boot: int = 200, seed: int = 0, progress: bool = True) -> pd.DataFrame:
    """R^2 and beta of every row under each word aggregation and length normalisation (paper Eq. 4, section 5).

    The paper's normalisation formula was lost from its text, and its subword merge is one of
    several reasonable choices; this table shows what each choice does to the regression. The
    per-token attributions come from the attribution cache, so only the aggregation is redone.
    ``method``: the attribution method object (default ``IG(seed=seed)``).
    One row per (model, word_agg, normalize, quantity) with ``r2, beta`` and their intervals.
    """
    from .config import tqdm

    from .attribution import NORMALIZATIONS, WORD_AGGS, make_method, word_weights
    from .encoders import load_encoder

    method = make_method("ig" if method is None else method, {"seed": seed})
    word_aggs = WORD_AGGS if word_aggs is None else word_aggs
    normalizations = NORMALIZATIONS if normalizations is None else normalizations
    records = []
    for row in tqdm(rows, desc="aggregation x normalisation", disable=not progress):
        encoder = load_encoder(row["name"], pooling=row["pooling"])
        for word_agg in word_aggs:
            for normalize in normalizations:
                w = word_weights(encoder, sentences, method, word_agg=word_agg, normalize=normalize,
                                 progress=False, gap_warning=float("inf"))  # reported once, by the main table
                for quantity in quantities:
                    fit = regress(w, infos[row["row"]], quantity, n_boot=n_boot, seed=seed)
                    records.append({"model": row["row"], "word_agg": word_agg, "normalize": normalize,
                                    "quantity": quantity, **{k: fit[k] for k in ("r2", "beta", "r2_low", "r2_high",
                                                                                  "beta_low", "beta_high")}})
    return pd.DataFrame(records)


def baseline_results(rows: list[dict], sentences, infos: dict, baselines=("pad", "zero", "mask"), method=None,
                     n_boot: int = 1000, seed: int = 0, progress: bool = True):
    """R² and β of IG weight on KL for every row under each IG baseline ``x'`` of {eq}`eq-ig` (the paper uses
    ``pad``; its limitation 1 asks whether the choice matters), and the matched pairs' contrasts per baseline.

    The mechanism beside each row: the words' displacement from the baseline, ||x - x'|| merged and
    normalised like the weights (:class:`helpers.attribution.Displacement`), regressed on KL
    (``displacement_beta``, ``displacement_r2``), and the median within-sentence Spearman correlation of
    IG weight and displacement (``spearman_ig_displacement``).

    ``method``: the :class:`helpers.attribution.IG` settings (its ``baseline`` is set to each of ``baselines``;
    default ``IG(seed=seed)``). ``infos``: {row: information table} (``roster_results``' third value). Returns (table with
    :data:`BASELINE_COLUMNS`, contrasts with :data:`helpers.rules.CONTRAST_COLUMNS`, {(row, baseline, method):
    weights} with method ``ig`` or ``displacement``).
    """
    from .attribution import Displacement, make_method, per_sentence_spearman, word_weights
    from .config import tqdm
    from .encoders import load_encoder

    method = make_method("ig" if method is None else method, {"seed": seed})
    if method.name != "ig":
        raise ValueError(f"method must be IG settings (the baselines are IG's), got {method.name!r}.")
    records, weights, contrasts = [], {}, []
    for row in tqdm(rows, desc="models x baselines", disable=not progress):
        encoder = load_encoder(row["name"], pooling=row["pooling"])
        for baseline in baselines:
            w = word_weights(encoder, sentences, method.replace(baseline=baseline), progress=progress)
            weights[(row["row"], baseline, "ig")] = w
            fit = regress(w, infos[row["row"]], "kl", n_boot=n_boot, seed=seed)
            shift = word_weights(encoder, sentences, Displacement(baseline=baseline), progress=False)
            weights[(row["row"], baseline, "displacement")] = shift
            moved = regress(shift, infos[row["row"]], "kl", n_boot=n_boot, seed=seed)
            records.append({"model": row["row"], "kind": row.get("kind"), "base": row.get("base"),
                            "baseline": baseline, **{k: fit[k] for k in BASELINE_COLUMNS[4:11]},
                            "displacement_beta": moved["beta"], "displacement_r2": moved["r2"],
                            "spearman_ig_displacement": float(per_sentence_spearman(w, shift)["spearman"].median())})
    for baseline in baselines:
        by_row = {(r, "ig"): w for (r, b, m), w in weights.items() if b == baseline and m == "ig"}
        contrasts.append(roster_contrasts(rows, by_row, infos, ("ig",), ("kl",), baseline=baseline, n_boot=n_boot,
                                          seed=seed))
    return (pd.DataFrame(records, columns=BASELINE_COLUMNS), pd.concat(contrasts, ignore_index=True), weights)
