"""Ordinary least squares of word weight on an information quantity (paper section 5; the book's Eqs. eq-regression and eq-bootstrap).

Analysis layer: tables in, tables out (no model is loaded here; :mod:`helpers.roster` runs the models).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import statsmodels.api as sm

from .results import REGRESSION

__all__ = ["ols", "partial_r2", "join_information", "regress", "regress_with_covariates", "TABLE_COLUMNS",
           "CONTROLS", "split_quantity", "with_control", "regress_beyond", "BEYOND_STATS", "FREQUENCY_COLUMNS",
           "frequency_controls",
           "SKETCH_MIN_SPEARMAN", "paper_layout", "word_changes", "figure3_table", "contrast_under_choices",
           "BASELINE_COLUMNS", "figure2_data"]


def ols(x, y) -> dict:
    """OLS with intercept of ``y`` on ``x`` (statsmodels): ``r2``, ``beta`` (slope), ``intercept``, ``n``.

    This is the per-model regression of the paper's Table 1 (weight on KL or I) and
    of the theory chapter (squared norm on exact KL).
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"x and y must be 1-D and of equal length, got {x.shape} and {y.shape}.")
    if len(x) < 3:
        raise ValueError(f"OLS needs at least 3 points, got {len(x)}.")
    for name, values in (("x (the information quantity)", x), ("y (the weight)", y)):
        if not np.isfinite(values).all():
            raise ValueError(f"{name} has {int((~np.isfinite(values)).sum())} non-finite values: remove them first.")
        if np.ptp(values) == 0:
            raise ValueError(f"{name} is constant ({values[0]!r} everywhere): a slope and R^2 are undefined.")
    fit = sm.OLS(y, sm.add_constant(x, has_constant="add")).fit()
    return {"r2": float(fit.rsquared), "beta": float(fit.params[1]),
            "intercept": float(fit.params[0]), "n": int(len(x))}


def partial_r2(y, x, control) -> float:
    """Partial R^2 of ``x`` given ``control``: the share of the variance of ``y`` left unexplained by
    ``control`` that adding ``x`` explains, (R^2_full - R^2_control) / (1 - R^2_control) (statsmodels OLS)."""
    y, x, control = (np.asarray(v, dtype=float) for v in (y, x, control))
    for name, values in (("y", y), ("x", x), ("control", control)):
        if values.shape != y.shape or not np.isfinite(values).all():
            raise ValueError(f"{name} must be finite and as long as y.")
    reduced = sm.OLS(y, sm.add_constant(control, has_constant="add")).fit().rsquared
    full = sm.OLS(y, sm.add_constant(np.column_stack([x, control]), has_constant="add")).fit().rsquared
    return float((full - reduced) / (1 - reduced)) if reduced < 1 else 0.0


def join_information(weights, info, quantity: str = "kl", min_match: float = 0.9):
    """Attach each word occurrence's information quantity to its weight (one row per occurrence).

    A weight table and an information table must share word units (the book's word units and Eq. eq-normalise):
    if fewer than ``min_match`` of the occurrences find their word in ``info``, that is an
    error (different tokenizers, casing, or corpora), not a silent empty join. Occurrences of
    words missing from ``info`` (e.g. dropped by ``min_count``) are removed with a warning.
    """
    import warnings

    if quantity not in info.columns:
        raise ValueError(f"the information table has no column {quantity!r}; it has {', '.join(info.columns)}.")
    for column in ("sentence_id", "word", "weight"):
        if column not in weights.columns:
            raise ValueError(f"the weight table has no column {column!r} (word_weights' output has it).")
    from .units import check_same_casing, check_same_units

    check_same_units(weights, info)
    check_same_casing(weights["word"], info["word"])
    _check_occurrences(weights)
    bad = ~np.isfinite(pd.to_numeric(info[quantity], errors="coerce").to_numpy(float))
    if bad.any():
        raise ValueError(f"the information table's {quantity!r} has {int(bad.sum())} non-finite values (e.g. the word "
                         f"{info.loc[bad, 'word'].iloc[0]!r}): remove those words or recompute the table.")
    dup = info.loc[info["word"].duplicated(), "word"].unique().tolist()
    if len(dup):
        raise ValueError(f"the information table lists these words more than once: {list(dup[:5])}; each word "
                         "needs one row (word_information gives that), or every occurrence would be counted twice.")
    merged = weights.merge(info[["word", quantity]], on="word", how="left")
    matched = merged[quantity].notna()
    if len(merged) == 0 or matched.mean() < min_match:
        missing = merged.loc[~matched, "word"].drop_duplicates().head(8).tolist()
        raise ValueError(
            f"Only {matched.mean():.0%} of the word occurrences are in the information table "
            f"(e.g. missing: {missing}). The two tables do not share word units: compute the "
            "information quantities with the encoder's tokenizer and casing, on the same sentences.")
    if not matched.all():
        warnings.warn(f"{int((~matched).sum())} of {len(merged)} word occurrences are missing from the "
                      "information table (e.g. below its min_count) and are left out.", stacklevel=2)
    return merged[matched].reset_index(drop=True)


def _check_occurrences(weights) -> None:
    """A weight table's rows must each name their sentence, appear once and carry a finite weight: the
    bootstrap resamples sentences (Eq. eq-bootstrap), so a row without its sentence would enter the point
    estimate but not the interval, and a row listed twice would count its word twice."""
    ids = weights["sentence_id"]
    if ids.isna().any():
        raise ValueError(f"the weight table has {int(ids.isna().sum())} rows whose sentence_id is missing (NaN): "
                         "every word occurrence needs the id of its sentence (the bootstrap resamples sentences). "
                         "Drop those rows or restore their ids.")
    if "word_index" in weights.columns:
        dup = weights.duplicated(["sentence_id", "word_index"])
        if dup.any():
            first = weights.loc[dup].iloc[0]
            raise ValueError(f"the weight table lists {int(dup.sum())} word occurrences twice (e.g. sentence_id "
                             f"{first['sentence_id']!r}, word_index {first['word_index']!r}): each occurrence needs "
                             "one row, or its word would count twice. Concatenated two tables of one sentence?")
    weight = pd.to_numeric(weights["weight"], errors="coerce").to_numpy(float)
    if not np.isfinite(weight).all():
        raise ValueError(f"the weight table has {int((~np.isfinite(weight)).sum())} non-finite weights (NaN or inf): "
                         "remove those rows or recompute them.")


#: Controls a regression or a contrast can hold fixed (``quantity="kl|log_freq"``): the column each adds to an information table.
CONTROLS = {"log_freq": lambda info: np.log(info["p"].to_numpy(float))}


def split_quantity(quantity: str) -> tuple[str, str | None]:
    """``"kl|log_freq"`` -> (``"kl"``, ``"log_freq"``): the quantity and the control held fixed (None: none)."""
    name, _, control = str(quantity).partition("|")
    if control and control not in CONTROLS:
        raise ValueError(f"{quantity!r}: the control {control!r} is not one of {sorted(CONTROLS)}.")
    return name, control or None


def with_control(info: pd.DataFrame, control: str | None) -> pd.DataFrame:
    """The information table with the control's column (``log_freq`` = log p(w) = -I(w)); as it is for None."""
    if control is None or control in info.columns:
        return info
    if "p" not in info.columns:
        raise ValueError(f"the information table has no column 'p', which the control {control!r} needs "
                         "(word_information's table has it).")
    out = info.assign(**{control: CONTROLS[control](info)})
    out.attrs.update(info.attrs)
    return out


def _ols_from_sums(s):
    """R^2 and slope of simple OLS from sums (n, Sx, Sy, Sxx, Syy, Sxy), vectorised over rows."""
    n, sx, sy, sxx, syy, sxy = s.T
    cxy, cxx, cyy = sxy - sx * sy / n, sxx - sx ** 2 / n, syy - sy ** 2 / n
    return cxy ** 2 / (cxx * cyy), cxy / cxx


def regress(weights, info, quantity: str = "kl", n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> dict:
    """OLS of the normalised word weight on KL(w) or I(w), one point per word occurrence (paper section 5).

    Returns ``r2``, ``beta`` (statsmodels OLS with intercept), their percentile bootstrap
    confidence intervals at ``level`` from resampling *sentences* with replacement
    (``r2_low, r2_high, beta_low, beta_high``; beyond the paper), ``n_points`` and
    ``n_sentences``. ``weights``: a word-weight table (``sentence_id, word, weight``);
    ``info``: :func:`helpers.information.word_information`'s table.
    """
    from .config import check_count

    check_count("n_boot", n_boot, 1)
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1 (e.g. 0.95), got {level!r}.")
    data = join_information(weights, info, quantity)
    fit = ols(data[quantity], data["weight"])
    if data["sentence_id"].nunique() < 2:
        raise ValueError("the bootstrap resamples sentences, so it needs at least 2 sentences; got 1.")
    x, y = data[quantity].to_numpy(float), data["weight"].to_numpy(float)
    sums = pd.DataFrame({"sentence_id": data["sentence_id"], "n": 1.0, "sx": x, "sy": y, "sxx": x * x,
                         "syy": y * y, "sxy": x * y}).groupby("sentence_id").sum().to_numpy()
    rng = np.random.default_rng(seed)
    n_sent = len(sums)
    # a bootstrap sample = multinomial counts of sentences; its sums are counts @ per-sentence sums
    counts = rng.multinomial(n_sent, np.full(n_sent, 1.0 / n_sent), size=n_boot)
    r2_b, beta_b = _ols_from_sums(counts @ sums)
    alpha = (1 - level) / 2
    r2_low, r2_high = np.nanquantile(r2_b, [alpha, 1 - alpha])
    beta_low, beta_high = np.nanquantile(beta_b, [alpha, 1 - alpha])
    return {"r2": fit["r2"], "beta": fit["beta"], "intercept": fit["intercept"],
            "r2_low": float(r2_low), "r2_high": float(r2_high), "beta_low": float(beta_low),
            "beta_high": float(beta_high), "n_points": int(len(data)), "n_sentences": int(n_sent)}


def _beyond_from_sums(s):
    """From sums (n, Sx, Sy, Sxx, Syy, Sxy, Sz, Szz, Sxz, Syz), vectorised over rows: R² of y on x, on z and on
    both, the partial R² of x given z and of z given x, and x's slope in the regression on both."""
    n, sx, sy, sxx, syy, sxy, sz, szz, sxz, syz = s.T
    cxx, cyy, czz = sxx - sx ** 2 / n, syy - sy ** 2 / n, szz - sz ** 2 / n
    cxy, cxz, cyz = sxy - sx * sy / n, sxz - sx * sz / n, syz - sy * sz / n
    with np.errstate(invalid="ignore", divide="ignore"):
        det = cxx * czz - cxz ** 2
        bx, bz = (cxy * czz - cxz * cyz) / det, (cyz * cxx - cxz * cxy) / det
        r2_x, r2_z, r2_both = cxy ** 2 / (cxx * cyy), cyz ** 2 / (czz * cyy), (bx * cxy + bz * cyz) / cyy
        return {"r2_alone": r2_x, "r2_control": r2_z, "r2_both": r2_both,
                "partial_r2": (r2_both - r2_z) / (1 - r2_z), "partial_r2_control": (r2_both - r2_x) / (1 - r2_x),
                "beta_beyond": bx}


#: The statistics of :func:`regress_beyond`, each with its ``_low`` and ``_high`` bootstrap bounds.
BEYOND_STATS = ("r2_alone", "r2_control", "r2_both", "partial_r2", "partial_r2_control", "beta_beyond")


def regress_beyond(weights, info, quantity: str = "kl", control: str = "log_freq", n_boot: int = 1000, seed: int = 0,
                   level: float = 0.95) -> dict:
    """Is it information, or just rarity? The OLS of word weight on ``quantity`` alone (the paper's regression,
    Eq. eq-regression), on the ``control`` alone (log-frequency, log p(w)), and on both, one point per word
    occurrence (chapter 06's frequency control; chapter 01 asks the same of the toy corpus's norms).

    Returns ``r2_alone`` (R² of the quantity alone), ``r2_control``, ``r2_both``, ``partial_r2`` (what the
    quantity explains of the weight's variance that the control leaves: (R²_both - R²_control) /
    (1 - R²_control)), ``partial_r2_control`` (the converse) and ``beta_beyond`` (the quantity's slope with the
    control held fixed), each with its sentence-bootstrap interval at ``level`` (``_low``, ``_high``; the same
    resampling as :func:`regress`), and ``n_points``, ``n_sentences``.
    """
    from .config import check_count

    check_count("n_boot", n_boot, 1)
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1 (e.g. 0.95), got {level!r}.")
    table = with_control(info, control)
    data = join_information(weights, table, quantity).merge(table[["word", control]], on="word", how="left")
    if data["sentence_id"].nunique() < 2:
        raise ValueError("the bootstrap resamples sentences, so it needs at least 2 sentences; got 1.")
    for name in (quantity, control):
        ols(data[name], data["weight"])  # the checks: finite, not constant, at least 3 points
    x, y, z = (data[c].to_numpy(float) for c in (quantity, "weight", control))
    sums = pd.DataFrame({"sentence_id": data["sentence_id"], "n": 1.0, "sx": x, "sy": y, "sxx": x * x, "syy": y * y,
                         "sxy": x * y, "sz": z, "szz": z * z, "sxz": x * z, "syz": y * z}).groupby("sentence_id").sum()
    sums = sums.to_numpy()
    point = _beyond_from_sums(sums.sum(0, keepdims=True))
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(len(sums), np.full(len(sums), 1.0 / len(sums)), size=n_boot)
    boot = _beyond_from_sums(counts @ sums)
    alpha = (1 - level) / 2
    out = {}
    for stat in BEYOND_STATS:
        out[stat] = float(point[stat][0])
        out[f"{stat}_low"], out[f"{stat}_high"] = map(float, np.nanquantile(boot[stat], [alpha, 1 - alpha]))
    return {**out, "n_points": int(len(data)), "n_sentences": int(len(sums))}


FREQUENCY_COLUMNS = (["dataset", "model", "pooling", "base", "method", "quantity", "control"]
                     + [f"{s}{end}" for s in BEYOND_STATS for end in ("", "_low", "_high")]
                     + ["n_points", "n_sentences"])


def frequency_controls(rows: list[dict], weights: dict, infos: dict, dataset: str, quantity: str = "kl",
                       control: str = "log_freq", n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """:func:`regress_beyond` for every (roster row, method) of ``weights`` ({(row, method): word weights}, the
    roster run's second value) with the row's information table (``infos``): one row per (model, method) with
    :data:`FREQUENCY_COLUMNS`."""
    by_row = {r["row"]: r for r in rows}
    records = []
    for (model, method), w in weights.items():
        row = by_row.get(model, {})
        fit = regress_beyond(w, infos[model], quantity, control, n_boot=n_boot, seed=seed)
        records.append({"dataset": dataset, "model": model, "pooling": row.get("pooling"), "base": row.get("base"),
                        "method": method, "quantity": quantity, "control": control, **fit})
    return pd.DataFrame(records, columns=FREQUENCY_COLUMNS)


def regress_with_covariates(weights, info, quantity: str = "kl", covariates=("log_n_subwords",)) -> dict:
    """OLS of weight on the quantity plus covariates (chapter 06's subword-count control).

    ``log_n_subwords`` = log of the word's number of subword tokens (rare words split into more
    pieces, and Frobenius aggregation grows with that number). Returns the quantity's slope
    ``beta`` and the model's ``r2``, and ``r2_covariates_only`` for the same covariates without
    the quantity: R^2 that the quantity adds beyond the word merge is ``r2 - r2_covariates_only``.
    """
    data = join_information(weights, info, quantity)
    data = data.assign(log_n_subwords=np.log(data["n_subwords"]))
    cov = data[list(covariates)].to_numpy(float)
    full = sm.OLS(data["weight"].to_numpy(float), sm.add_constant(np.column_stack([data[quantity], cov]))).fit()
    only = sm.OLS(data["weight"].to_numpy(float), sm.add_constant(cov, has_constant="add")).fit()
    return {"beta": float(full.params[1]), "r2": float(full.rsquared), "r2_covariates_only": float(only.rsquared),
            "n_points": int(len(data))}


TABLE_COLUMNS = list(REGRESSION.table.columns)  # declared once, with the table (helpers.results)
#: A sketched row is marked when its weights rank the words of the check sentences this far from exact IG.
SKETCH_MIN_SPEARMAN = 0.95


def paper_layout(table: pd.DataFrame, method: str = "ig", quantity: str = "kl", digits: int = 2) -> pd.DataFrame:
    """Table 1's layout: rows grouped under their base model; contrastive rows show (difference from base)
    and every cell its bootstrap interval: ``0.52 (+0.30) [0.47, 0.57]``. With a sketch check, a column
    ``sketch ρ`` (Spearman against exact IG), and a row whose ρ is below :data:`SKETCH_MIN_SPEARMAN` is
    marked with a dagger."""
    t = table[(table["method"] == method) & (table["quantity"] == quantity)].set_index("model")
    order = []
    for model, row in t.iterrows():
        if not row["base"] or row["base"] not in t.index:
            order.append(model)
            order += [m for m, r in t.iterrows() if r["base"] == model]
    order += [m for m in t.index if m not in order]

    def cell(model, stat):
        r = t.loc[model]
        text = f"{r[stat]:.{digits}f}"
        if r["base"] and r["base"] in t.index:
            text += f" ({r[stat] - t.loc[r['base'], stat]:+.{digits}f})"
        return text + f" [{r[stat + '_low']:.{digits}f}, {r[stat + '_high']:.{digits}f}]"

    def label(model):
        rho = t.loc[model].get("sketch_spearman", float("nan"))
        return f"{model} †" if pd.notna(rho) and rho < SKETCH_MIN_SPEARMAN else model

    layout = pd.DataFrame({"model": [label(m) for m in order], "pooling": [t.loc[m, "pooling"] for m in order],
                           "R²": [cell(m, "r2") for m in order], "β": [cell(m, "beta") for m in order]})
    if "sketch_spearman" in t and t["sketch_spearman"].notna().any():
        layout["sketch ρ"] = [f"{t.loc[m, 'sketch_spearman']:.3f}" if pd.notna(t.loc[m, "sketch_spearman"]) else ""
                              for m in order]
    return layout.set_index("model")


def word_changes(before: pd.DataFrame, after: pd.DataFrame, min_occurrences: int = 5, k: int = 10) -> pd.DataFrame:
    """Words whose mean weight a model change raised or lowered most (paired by occurrence).

    ``change`` is the mean over the word's occurrences of (weight after - weight before), with a 95% interval
    ``change_low``/``change_high`` (normal approximation of the paired mean; NaN for a word seen fewer than 3
    times, whose change cannot be told from noise)."""
    merged = before.merge(after, on=["sentence_id", "word_index", "word"], suffixes=("_before", "_after"))
    merged["diff"] = merged["weight_after"] - merged["weight_before"]
    per_word = merged.groupby("word").agg(before=("weight_before", "mean"), after=("weight_after", "mean"),
                                          occurrences=("weight_after", "size"), sd=("diff", "std"))
    per_word = per_word[per_word["occurrences"] >= min_occurrences]
    per_word["change"] = per_word["after"] - per_word["before"]
    half = 1.96 * per_word["sd"] / np.sqrt(per_word["occurrences"])
    enough = per_word["occurrences"] >= 3
    per_word["change_low"] = (per_word["change"] - half).where(enough)
    per_word["change_high"] = (per_word["change"] + half).where(enough)
    per_word = per_word.drop(columns="sd")
    per_word = per_word.sort_values("change")
    if len(per_word) <= 2 * k:
        return per_word.assign(direction=np.where(per_word["change"] >= 0, "raised", "lowered"))
    return pd.concat([per_word.tail(k).iloc[::-1].assign(direction="raised"), per_word.head(k).assign(direction="lowered")])


def figure3_table(weights: dict, info: pd.DataFrame, sentence_ids) -> pd.DataFrame:
    """Figure 3 as a table: per word of each sentence, every model's weight beside KL and I."""
    rows = []
    for sid in sentence_ids:
        first = next(iter(weights.values()))
        table = first[first["sentence_id"] == sid][["word_index", "word"]].copy()
        for name, w in weights.items():
            table[name] = w[w["sentence_id"] == sid]["weight"].to_numpy()
        table = table.merge(info[["word", "kl", "self_info"]], on="word", how="left")
        rows.append(table.assign(sentence_id=sid))
    return pd.concat(rows, ignore_index=True)


def contrast_under_choices(choices: pd.DataFrame, model: str, base: str, quantity: str = "kl") -> dict:
    """In how many of the aggregation x normalisation choices ``model`` has a higher R^2 and a higher beta than ``base``.

    Returns ``n_choices``, ``r2_higher``, ``beta_higher`` (counts) for the sentence the chapter states.
    """
    t = choices[choices["quantity"] == quantity].set_index(["word_agg", "normalize", "model"])
    a, b = t.xs(model, level="model"), t.xs(base, level="model")
    return {"n_choices": int(len(a)), "r2_higher": int((a["r2"] > b["r2"]).sum()),
            "beta_higher": int((a["beta"] > b["beta"]).sum())}


BASELINE_COLUMNS = list(REGRESSION.baselines.columns)  # declared once, with the table (helpers.results)


def figure2_data(weights: dict, info, quantity: str = "kl") -> dict:
    """{model: (joined occurrences, OLS fit)} for :func:`helpers.plots.figure2` (``info``: one table or {model: table})."""
    out = {}
    for name, w in weights.items():
        data = join_information(w, info[name] if isinstance(info, dict) else info, quantity)
        out[name] = (data, ols(data[quantity], data["weight"]))
    return out
