"""The book's one rule for a contrast: is the paper's claim reproduced, partly reproduced or not? (analysis layer)

The paper's headline compares two models measured on *the same sentences*: a contrastive encoder
and its base MLM (Table 1), a checkpoint and the one it started from (chapter 05), a contrastive
design and its masked-word side. Every such comparison in the book is decided here, by
:func:`paired_contrast` and :func:`decide`, so chapter 05, the designs and the closing chapter
cannot disagree about the same measurements.

**What is compared.** For each model the regression {eq}`eq-regression` of word weight on KL (or I)
gives the slope β and R². R² ignores the slope's sign -- a model that weights rare words *less*
has a high R² too -- so the rule compares the *signed* association

$$r = \\operatorname{sign}(\\beta)\\,\\sqrt{R^2},$$

the Pearson correlation of weight and KL, together with β.

**How uncertain.** Both models are measured on the same sentences, so their estimates are
correlated; comparing two marginal intervals ("apart or not") ignores that and is not a test. The
*paired* bootstrap resamples sentences once and refits both models on every resample, so each
resample gives one difference Δr and one Δβ; the one-sided p-value of "the contrastive model is
higher" is the share of resamples with a difference ≤ 0 (with the usual +1 correction).

**The rule** (fixed in advance; ``alpha`` = :data:`ALPHA`):

* the two one-sided tests (Δr > 0, Δβ > 0) are corrected together by Holm's step-down method, so
  under the null of "no difference" the chance that a comparison reads *partly reproduced or
  better* is at most ``alpha`` (a test simulates that null and checks it);
* *reproduced*: both tests pass and the contrastive model's own β is positive with its interval
  above 0 (it weights informative words more, not just less negatively than its base);
* *partly reproduced*: one test passes and the contrastive model's β is above 0 at its point
  estimate;
* *not reproduced* otherwise;
* *not measured* when the evidence is missing: a p-value, the model's β or its interval that is absent or
  not a finite number (a comparison that could not be fitted) never reads as a tier. A verdict is never
  better than its evidence.

Several comparisons judged together (:func:`decide_family`) are corrected by Holm over all their
tests, so the family's chance of any false "partly" stays at most ``alpha``.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from .regression import CONTROLS, split_quantity, with_control
from .results import REGRESSION

__all__ = ["ALPHA", "VERDICTS", "CONTRAST_COLUMNS", "RULE", "paired_contrast", "slope_positive", "decide",
           "decide_family", "pooled", "EVIDENCE", "missing_evidence", "judge_contrasts", "judge_finetuning",
           "judge_designs", "baseline_dependence", "corrected_verdicts", "CONTROLS", "split_quantity", "with_control",
           "ROSTER_QUANTITIES",
           "matched_rows", "roster_contrasts", "sentences_key", "paired_mean_difference"]

#: Nominal false-positive rate of one comparison ("partly reproduced or better" when nothing differs).
ALPHA = 0.05
VERDICTS = ("reproduced", "partly reproduced", "not reproduced", "not testable offline", "not measured")
#: The columns of a contrasts table, declared once with chapter 06's (``helpers.results.REGRESSION.contrasts``).
CONTRAST_COLUMNS = list(REGRESSION.contrasts.columns)


def _sums(data: pd.DataFrame, quantity: str, control: str | None = None) -> pd.DataFrame:
    """Per-sentence sums (n, Sx, Sy, Sxx, Syy, Sxy; with a ``control`` z also Sz, Szz, Sxz, Syz) of one model's
    joined table, indexed by sentence."""
    x, y = data[quantity].to_numpy(float), data["weight"].to_numpy(float)
    columns = {"sentence_id": data["sentence_id"].to_numpy(), "n": 1.0, "sx": x, "sy": y, "sxx": x * x,
               "syy": y * y, "sxy": x * y}
    if control is not None:
        z = data[control].to_numpy(float)
        columns.update(sz=z, szz=z * z, sxz=x * z, syz=y * z)
    return pd.DataFrame(columns).groupby("sentence_id").sum()


def _r_beta(sums: np.ndarray):
    """Signed correlation r and OLS slope β from summed rows (vectorised over the first axis). With the four
    control sums as well (:func:`_sums` with a control z): the *partial* correlation of weight and the quantity
    given z, and the quantity's slope in the regression on both (Eq. eq-regression with z held fixed)."""
    parts = np.moveaxis(sums, -1, 0)
    n, sx, sy, sxx, syy, sxy = parts[:6]
    cxy, cxx, cyy = sxy - sx * sy / n, sxx - sx ** 2 / n, syy - sy ** 2 / n
    with np.errstate(invalid="ignore", divide="ignore"):
        if len(parts) == 6:
            return cxy / np.sqrt(cxx * cyy), cxy / cxx
        sz, szz, sxz, syz = parts[6:]
        czz, cxz, cyz = szz - sz ** 2 / n, sxz - sx * sz / n, syz - sy * sz / n
        top = cxy * czz - cxz * cyz
        return top / np.sqrt((cxx * czz - cxz ** 2) * (cyy * czz - cyz ** 2)), top / (cxx * czz - cxz ** 2)


def sentences_key(weights: pd.DataFrame) -> str:
    """A short fingerprint of the sentence ids a weights table covers (paired comparisons need the same set)."""
    import hashlib

    ids = sorted(map(str, pd.unique(weights["sentence_id"])))
    return hashlib.sha256("\n".join(ids).encode()).hexdigest()[:12]


def _shared_sums(model_weights, base_weights, info, base_info, quantity, control, min_shared):
    """Both models' per-sentence sums (:func:`_sums`) on the sentences both were measured on, as two arrays in one
    sentence order; an error when fewer than ``min_shared`` of either model's sentences are shared, or under 2."""
    from .regression import join_information

    def joined(weights, table):
        data = join_information(weights, with_control(table, control), quantity)
        if control is not None:
            data = data.merge(with_control(table, control)[["word", control]], on="word", how="left")
        return _sums(data, quantity, control)

    a = joined(model_weights, info)
    b = joined(base_weights, info if base_info is None else base_info)
    shared = a.index.intersection(b.index)
    for name, s in (("model_weights", a), ("base_weights", b)):
        if len(shared) < min_shared * len(s):
            raise ValueError(f"a paired comparison needs both models measured on the same sentences: only "
                             f"{len(shared)} of the {len(s)} sentences of {name} are in the other table. Attribute "
                             "both models on one sample (the same sentences and limit).")
    if len(shared) < 2:
        raise ValueError(f"the paired bootstrap resamples sentences, so it needs at least 2 shared sentences; "
                         f"got {len(shared)}.")
    return a.loc[shared].to_numpy(), b.loc[shared].to_numpy()


def paired_contrast(model_weights: pd.DataFrame, base_weights: pd.DataFrame, info: pd.DataFrame,
                    quantity: str = "kl", base_info: pd.DataFrame | None = None, n_boot: int = 1000, seed: int = 0,
                    alpha: float = ALPHA, min_shared: float = 0.9, control: str | None = None) -> dict:
    """Paired bootstrap contrast of ``model`` against ``base`` on the sentences both were measured on.

    ``model_weights``/``base_weights``: word-weight tables (``sentence_id, word, weight``) of the two
    models; ``info`` (and ``base_info`` when the base splits words otherwise): the information
    tables they are joined with ({eq}`eq-regression`). Sentences are resampled ``n_boot`` times; each
    resample refits both models. Returns the point values (``r_model, r_base, beta_model, beta_base,
    r2_model, r2_base``), the differences with their central ``1 - alpha`` intervals (``r_diff``,
    ``beta_diff`` and ``_low``/``_high``), the one-sided p-values ``p_r`` and ``p_beta`` of "model is
    higher", ``beta_model_low`` (the model's own β interval), ``n_sentences`` and the ``verdict`` of
    :func:`decide`. Raises when fewer than ``min_shared`` of either model's sentences are shared.

    ``control`` (or ``quantity="kl|log_freq"``): the contrast *beyond* a control held fixed: r is then the
    partial correlation of weight and the quantity given the control (its square is the partial R²) and β the
    quantity's slope in the regression on both (chapter 06's frequency control). The rule is the same.
    """
    from .config import check_count

    check_count("n_boot", n_boot, 1)
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be between 0 and 1 (e.g. 0.05), got {alpha!r}.")
    quantity, named = split_quantity(quantity)
    a, b = _shared_sums(model_weights, base_weights, info, base_info, quantity, control or named, min_shared)
    rng = np.random.default_rng(seed)
    n = len(a)
    counts = rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot)  # one resample, both models
    (r_a, beta_a), (r_b, beta_b) = _r_beta(a.sum(0)), _r_beta(b.sum(0))
    (ra, ba), (rb, bb) = _r_beta(counts @ a), _r_beta(counts @ b)
    dr, db = ra - rb, ba - bb
    ok = np.isfinite(dr) & np.isfinite(db)
    dr, db, ba_ok = dr[ok], db[ok], ba[ok]
    if not len(dr):
        raise ValueError("every bootstrap resample has a constant weight or KL; the regression is undefined.")
    q = [alpha / 2, 1 - alpha / 2]
    out = {"n_sentences": int(n), "r_model": float(r_a), "r_base": float(r_b), "r_diff": float(r_a - r_b),
           "beta_model": float(beta_a), "beta_base": float(beta_b), "beta_diff": float(beta_a - beta_b),
           "r2_model": float(r_a ** 2), "r2_base": float(r_b ** 2)}
    out["r_diff_low"], out["r_diff_high"] = map(float, np.quantile(dr, q))
    out["beta_diff_low"], out["beta_diff_high"] = map(float, np.quantile(db, q))
    out["beta_model_low"] = float(np.quantile(ba_ok, alpha / 2))
    out["p_r"] = float((1 + np.sum(dr <= 0)) / (len(dr) + 1))
    out["p_beta"] = float((1 + np.sum(db <= 0)) / (len(db) + 1))
    out["verdict"] = decide(out, alpha)
    return out


#: The fields of a contrast that its verdict rests on: a missing or non-finite one means "not measured".
EVIDENCE = ("p_r", "p_beta", "beta_model", "beta_model_low")


def missing_evidence(contrast) -> list[str]:
    """The fields of :data:`EVIDENCE` that ``contrast`` lacks or holds as a non-finite number; a p-value outside
    [0, 1] is an error (the table is not a contrasts table)."""
    missing = []
    for name in EVIDENCE:
        try:
            value = float(contrast[name])
        except (KeyError, TypeError, ValueError):
            missing.append(name)
            continue
        if not np.isfinite(value):
            missing.append(name)
        elif name.startswith("p_") and not 0 <= value <= 1:
            raise ValueError(f"{name} = {value!r} is not a p-value (between 0 and 1): the row is not a contrast "
                             "of helpers.rules.paired_contrast.")
    return missing


def _holm(p_values, alpha: float) -> np.ndarray:
    """Holm's step-down rejections (statsmodels' implementation)."""
    from statsmodels.stats.multitest import multipletests

    p = np.asarray(p_values, float)
    return multipletests(p, alpha=alpha, method="holm")[0] if len(p) else np.zeros(0, bool)


def slope_positive(contrast) -> bool:
    """Whether the contrastive model's own slope is positive: its β interval (``beta_model_low``) above 0, the
    sign condition of *reproduced* (informative words weigh more, not only less negatively than the base's)."""
    return bool(contrast["beta_model_low"] > 0)


def _verdict(r_up: bool, beta_up: bool, c) -> str:
    if r_up and beta_up and slope_positive(c):
        return "reproduced"
    if (r_up or beta_up) and c["beta_model"] > 0:
        return "partly reproduced"
    return "not reproduced"


def decide(contrast, alpha: float = ALPHA) -> str:
    """The verdict of one paired contrast (a :func:`paired_contrast` result or a contrasts-table row).

    The two one-sided tests (Δr > 0 with ``p_r``, Δβ > 0 with ``p_beta``) are Holm-corrected at
    ``alpha``; *reproduced* needs both and the model's β interval above 0, *partly reproduced* one and
    the model's β above 0 (see the module's rule).
    """
    missing = missing_evidence(contrast)
    if missing:
        warnings.warn(f"a contrast without finite {', '.join(missing)} is not measured (never a tier).", stacklevel=2)
        return "not measured"
    r_up, beta_up = _holm([contrast["p_r"], contrast["p_beta"]], alpha)
    return _verdict(bool(r_up), bool(beta_up), contrast)


def decide_family(contrasts: pd.DataFrame, alpha: float = ALPHA) -> pd.Series:
    """Verdicts of several comparisons judged together: Holm over all their 2 x n tests, so the chance
    that any of them reads "partly reproduced" or better when none differs is at most ``alpha``."""
    if contrasts.empty:
        return pd.Series([], dtype=object, index=contrasts.index)
    out = pd.Series("not measured", index=contrasts.index, dtype=object)
    measured = [i for i, (_, row) in enumerate(contrasts.iterrows()) if not missing_evidence(row)]
    if len(measured) < len(contrasts):
        names = contrasts["comparison"].iloc[[i for i in range(len(contrasts)) if i not in measured]].tolist() \
            if "comparison" in contrasts else []
        warnings.warn(f"{len(contrasts) - len(measured)} of {len(contrasts)} comparisons have no finite p-values or β "
                      f"({', '.join(map(str, names[:3]))}): not measured, and left out of the Holm correction.",
                      stacklevel=2)
    if not measured:
        return out
    part = contrasts.iloc[measured]
    rejected = _holm(np.r_[part["p_r"].to_numpy(float), part["p_beta"].to_numpy(float)], alpha)
    n = len(part)
    out.iloc[measured] = [_verdict(bool(rejected[i]), bool(rejected[n + i]), row)
                          for i, (_, row) in enumerate(part.iterrows())]
    return out


def pooled(verdicts) -> str:
    """One verdict for several comparisons already corrected together (:func:`decide_family`): reproduced if
    all are, not reproduced if none of the measured ones is even partly, not measured if none was measured,
    else partly reproduced (a claim with a comparison not measured is at best partly reproduced)."""
    verdicts = set(verdicts)
    if not verdicts - {"not measured"}:
        if not verdicts:
            warnings.warn("pooled() of no verdicts: not measured.", stacklevel=2)
        return "not measured"
    measured = verdicts - {"not measured"}
    if measured == {"not reproduced"}:
        return "not reproduced"
    # a claim with an unmeasured comparison is never "reproduced" as a whole: its evidence is incomplete
    return "reproduced" if measured == {"reproduced"} and measured == verdicts else "partly reproduced"


def _interval(c, stat: str) -> str:
    return f"Δ{stat} {c[stat + '_diff']:+.2f} [{c[stat + '_diff_low']:+.2f}, {c[stat + '_diff_high']:+.2f}]"


def judge_contrasts(contrasts: pd.DataFrame, alpha: float = ALPHA) -> dict:
    """One claim's verdict from its contrasts (rows of :data:`helpers.rules.CONTRAST_COLUMNS`), Holm-corrected
    together: ``verdict``, ``evidence`` (each comparison's Δr and Δβ with intervals and its corrected verdict),
    ``verdicts`` (per row). "not measured" when there is no row."""
    if contrasts is None or contrasts.empty:
        return {"verdict": "not measured", "evidence": "", "verdicts": []}
    v = decide_family(contrasts.reset_index(drop=True), alpha)
    parts = [f"{c['comparison']}: {_interval(c, 'r')}, {_interval(c, 'beta')}, β of the first "
             f"{c['beta_model']:+.2f} ({verdict})" for (_, c), verdict in zip(contrasts.iterrows(), v)]
    return {"verdict": pooled(v), "evidence": "; ".join(parts), "verdicts": list(v)}


RULE = (f"Rule (helpers.rules): paired bootstrap over the shared sentences; Δr (r = sign(β)·√R²) and Δβ each "
        f"tested one-sided, Holm-corrected over the claim's comparisons at α = {ALPHA}; reproduced needs both and a "
        "positive β interval, partly one and a positive β.")


def baseline_dependence(contrasts: pd.DataFrame, method: str = "ig", quantity: str = "kl") -> dict:
    """{baseline: verdict} of the matched pairs under every IG baseline in ``contrasts``, and ``depends``:
    whether the verdicts differ (the paper uses ``pad``; its limitation 1)."""
    t = contrasts[(contrasts["method"] == method) & (contrasts["quantity"] == quantity)]
    by = {b: judge_contrasts(part)["verdict"] for b, part in t.groupby("baseline", sort=False)}
    return {"verdicts": by, "depends": len(set(by.values())) > 1}


def judge_finetuning(contrasts: pd.DataFrame) -> dict:
    """Chapter 05's claim (the chapter's own verdict and the closing chapter's row): the default design's
    comparisons -- SimCSE against the MLM it started from, and against the MLM trained as long (the
    continued-MLM control) -- judged together by the one rule."""
    return judge_contrasts(contrasts[contrasts["design"] == "default"] if contrasts is not None else None)


def judge_designs(contrasts: pd.DataFrame) -> dict:
    """The other matched designs (long, reverse, bow), judged together by the one rule."""
    return judge_contrasts(contrasts[contrasts["design"] != "default"] if contrasts is not None else None)


def corrected_verdicts(contrasts: pd.DataFrame, family) -> pd.Series:
    """Each row's verdict with Holm applied within its family (``family``: a column name or a Series of
    labels aligned with ``contrasts``), as :func:`judge_contrasts` applies it to one claim."""
    labels = contrasts[family] if isinstance(family, str) else pd.Series(family, index=contrasts.index)
    out = pd.Series(index=contrasts.index, dtype=object)
    for _, part in contrasts.groupby(labels, sort=False):
        out.loc[part.index] = decide_family(part).to_numpy()
    return out


# --------------------------------------------------------------------------- paired contrasts of a roster
def matched_rows(rows: list[dict]) -> list[tuple[str, str]]:
    """(contrastive row, its base row) for every roster row whose base is in the roster."""
    names = {r["row"] for r in rows}
    return [(r["row"], r["base"]) for r in rows if isinstance(r.get("base"), str) and r["base"] in names]


#: The quantities every roster contrast is judged on: the paper's two, and KL beyond frequency (the book's).
ROSTER_QUANTITIES = ("kl", "self_info", "kl|log_freq")


def roster_contrasts(rows: list[dict], weights: dict, infos: dict, methods=("ig",), quantities=ROSTER_QUANTITIES,
                     baseline: str = "pad", dataset: str | None = None, n_boot: int = 1000,
                     seed: int = 0) -> pd.DataFrame:
    """Every matched pair of the roster judged by the book's one rule (:func:`paired_contrast`).

    ``weights``: {(row, method): word weights} on one sample of sentences (``roster_results``' second
    value); ``infos``: {row: information table}. One row per (pair, method, quantity) with
    :data:`CONTRAST_COLUMNS` (plus ``dataset`` when given).
    """
    records = []
    for model, base in matched_rows(rows):
        for method in methods:
            if (model, method) not in weights or (base, method) not in weights:
                continue
            for quantity in quantities:  # "kl|log_freq": KL with log-frequency held fixed (split_quantity)
                c = paired_contrast(weights[(model, method)], weights[(base, method)], infos[model], quantity,
                                    base_info=infos[base], n_boot=n_boot, seed=seed)
                records.append({"comparison": f"{model} vs {base}", "model": model, "base": base, "method": method,
                                "quantity": quantity, "baseline": baseline if method == "ig" else "mask", **c})
    columns = (["dataset"] if dataset is not None else []) + CONTRAST_COLUMNS
    table = pd.DataFrame(records, columns=CONTRAST_COLUMNS)
    if dataset is not None:
        table.insert(0, "dataset", dataset)
    return table[columns]


def paired_mean_difference(model: pd.DataFrame, base: pd.DataFrame, column: str, key: str = "pair_id",
                           n_boot: int = 1000, seed: int = 0, alpha: float = ALPHA) -> dict:
    """Mean of ``column`` in ``model`` minus its mean in ``base`` over the units (``key``) both measured, with a
    paired bootstrap interval (units resampled once for both), and ``direction``: ``higher`` or ``lower``
    when the interval excludes 0, else ``no detectable change``. Used before a chapter states a direction
    (chapter 10's shares)."""
    from .config import check_count

    check_count("n_boot", n_boot, 1)
    for name, table in (("model", model), ("base", base)):
        missing = {key, column} - set(table.columns)
        if missing:
            raise ValueError(f"{name} has no column {sorted(missing)}.")
    joined = model[[key, column]].merge(base[[key, column]], on=key, suffixes=("_model", "_base")).dropna()
    if len(joined) < 2:
        raise ValueError(f"a paired comparison needs at least 2 {key}s measured in both tables; got {len(joined)}.")
    d = (joined[f"{column}_model"] - joined[f"{column}_base"]).to_numpy(float)
    rng = np.random.default_rng(seed)
    boots = rng.choice(d, size=(n_boot, len(d)), replace=True).mean(axis=1)
    low, high = map(float, np.quantile(boots, [alpha / 2, 1 - alpha / 2]))
    return {"diff": float(d.mean()), "diff_low": low, "diff_high": high, "n": int(len(d)),
            "direction": "higher" if low > 0 else "lower" if high < 0 else "no detectable change"}
