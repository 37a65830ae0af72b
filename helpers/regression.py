"""Ordinary least squares of word weight on an information quantity (paper section 5; DESIGN.md section 6)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import statsmodels.api as sm


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
    fit = sm.OLS(y, sm.add_constant(x, has_constant="add")).fit()
    return {"r2": float(fit.rsquared), "beta": float(fit.params[1]),
            "intercept": float(fit.params[0]), "n": int(len(x))}


def join_information(weights, info, quantity: str = "kl", min_match: float = 0.9):
    """Attach each word occurrence's information quantity to its weight (one row per occurrence).

    A weight table and an information table must share word units (DESIGN.md section 4):
    if fewer than ``min_match`` of the occurrences find their word in ``info``, that is an
    error (different tokenizers, casing, or corpora), not a silent empty join. Occurrences of
    words missing from ``info`` (e.g. dropped by ``min_count``) are removed with a warning.
    """
    import warnings

    if quantity not in info.columns:
        raise ValueError(f"the information table has no column {quantity!r}; it has {', '.join(info.columns)}.")
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
    data = join_information(weights, info, quantity)
    fit = ols(data[quantity], data["weight"])
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
