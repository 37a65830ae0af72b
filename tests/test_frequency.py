"""Is it information, or just rarity? The frequency-controlled regression and the claim judged on it (issue 40).

Synthetic words whose KL rises with rarity (as in real text): a model whose weight follows frequency only
passes the paper's KL-only contrast and must fail the beyond-frequency one; a model whose weight follows KL
beyond frequency must pass both. The statistics agree with statsmodels."""
import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from helpers import regression, rules, verdict_text, verdicts

V, N_SENT, PER = 300, 200, 8


@pytest.fixture(scope="module")
def world():
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(V) * 0.3)
    log_p = np.log(p)
    kl = -0.6 * log_p + rng.normal(0, 1.0, V)  # rarer words carry more KL, and KL has more in it than rarity
    words = [f"w{i}" for i in range(V)]
    info = pd.DataFrame({"word": words, "p": p, "kl": kl, "self_info": -log_p})
    idx = rng.integers(0, V, (N_SENT, PER)).ravel()
    noise = rng.normal(0, 1, len(idx))

    def table(weight):
        return pd.DataFrame({"sentence_id": np.repeat(np.arange(N_SENT), PER), "word_index": np.tile(np.arange(PER), N_SENT),
                             "word": [words[i] for i in idx], "weight": weight})

    return {"info": info, "frequency_only": table(2 - 0.3 * log_p[idx] + noise),
            "kl_beyond": table(2 + 0.8 * kl[idx] + noise), "base": table(2 + 1.2 * noise + rng.normal(0, .5, len(idx)))}


def test_regress_beyond_agrees_with_statsmodels(world):
    fit = regression.regress_beyond(world["kl_beyond"], world["info"], n_boot=100)
    data = world["kl_beyond"].merge(world["info"], on="word").assign(log_freq=lambda d: np.log(d["p"]))
    both = sm.OLS(data["weight"], sm.add_constant(data[["kl", "log_freq"]])).fit()
    alone = sm.OLS(data["weight"], sm.add_constant(data[["log_freq"]])).fit()
    assert fit["r2_both"] == pytest.approx(both.rsquared) and fit["beta_beyond"] == pytest.approx(both.params["kl"])
    assert fit["partial_r2"] == pytest.approx((both.rsquared - alone.rsquared) / (1 - alone.rsquared))
    assert fit["partial_r2"] == pytest.approx(regression.partial_r2(data["weight"], data["kl"], data["log_freq"]))
    for stat in regression.BEYOND_STATS:
        assert fit[f"{stat}_low"] <= fit[stat] <= fit[f"{stat}_high"], stat


def test_weight_that_follows_frequency_only_fails_beyond_frequency_and_kl_passes(world):
    only = {q: rules.paired_contrast(world["frequency_only"], world["base"], world["info"], q, n_boot=300)
            for q in ("kl", "kl|log_freq")}
    assert only["kl"]["verdict"] == "reproduced"  # the paper's KL-only contrast cannot tell rarity from information
    assert only["kl|log_freq"]["verdict"] == "not reproduced"
    beyond = {q: rules.paired_contrast(world["kl_beyond"], world["base"], world["info"], q, n_boot=300)
              for q in ("kl", "kl|log_freq")}
    assert beyond["kl"]["verdict"] == beyond["kl|log_freq"]["verdict"] == "reproduced"
    # the partial r squared is the partial R² of KL given log-frequency
    fit = regression.regress_beyond(world["kl_beyond"], world["info"], n_boot=10)
    assert beyond["kl|log_freq"]["r2_model"] == pytest.approx(fit["partial_r2"])
    with pytest.raises(ValueError, match="not one of"):
        rules.paired_contrast(world["kl_beyond"], world["base"], world["info"], "kl|zipf", n_boot=10)


@pytest.mark.parametrize("which, expected", [("frequency_only", "not reproduced"), ("kl_beyond", "reproduced")])
def test_the_claim_is_judged_by_the_one_rule_from_the_chapter_tables(world, which, expected, tmp_path, monkeypatch):
    monkeypatch.setenv("SENTENCE_RESULTS_DIR", str(tmp_path))
    rows = [{"row": "MLM", "pooling": "mean", "base": None}, {"row": "CL", "pooling": "mean", "base": "MLM"}]
    weights = {("MLM", "ig"): world["base"], ("CL", "ig"): world[which]}
    infos = {"MLM": world["info"], "CL": world["info"]}
    contrasts = rules.roster_contrasts(rows, weights, infos, n_boot=300)
    assert set(contrasts["quantity"]) == {"kl", "self_info", "kl|log_freq"}
    (tmp_path / "regression").mkdir()
    contrasts.to_csv(tmp_path / "regression" / "contrasts.csv", index=False)
    regression.frequency_controls(rows, weights, infos, "stsb", n_boot=50).to_csv(
        tmp_path / "regression" / "frequency.csv", index=False)
    row = verdicts.claim_beyond_frequency()
    assert row["verdict"] == expected and "partial R² of KL given log-frequency" in row["evidence"]
    assert verdicts.claim_table1()["verdict"] == "reproduced"  # the KL-only claim passes either way
    claims = verdicts.claims_table()
    line = verdict_text.bottom_line(claims)
    assert f"with log-frequency held fixed it is *{expected}*" in line
    assert ("cannot be told apart from weighing rare words" in line) == (expected == "not reproduced")


def test_frequency_controls_has_one_row_per_model_and_method(world):
    rows = [{"row": "MLM", "pooling": "mean", "base": None}, {"row": "CL", "pooling": "mean", "base": "MLM"}]
    weights = {("MLM", "ig"): world["base"], ("CL", "ig"): world["kl_beyond"], ("CL", "shap"): world["frequency_only"]}
    table = regression.frequency_controls(rows, weights, {"MLM": world["info"], "CL": world["info"]}, "stsb", n_boot=20)
    assert list(table.columns) == regression.FREQUENCY_COLUMNS and len(table) == 3
    assert table.set_index(["model", "method"]).loc[("CL", "shap"), "partial_r2"] < 0.05
