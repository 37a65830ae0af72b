"""Ordinary least squares of word weight on an information quantity (paper section 5; DESIGN.md section 6)."""
from __future__ import annotations

import numpy as np
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
