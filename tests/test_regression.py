import numpy as np
import pandas as pd
import pytest

from helpers.regression import join_information, ols, regress


def _simulate(rng, n_sent=150, per=8, beta=0.5, sent_sd=0.3, noise=0.5, vocab=400):
    info = pd.DataFrame({"word": [f"w{i}" for i in range(vocab)], "kl": rng.gamma(2.0, 0.5, vocab)})
    words = rng.integers(0, vocab, size=(n_sent, per))
    sentence_effect = rng.normal(0, sent_sd, n_sent)[:, None]  # points within a sentence are correlated
    y = 1.0 + beta * info["kl"].to_numpy()[words] + sentence_effect + rng.normal(0, noise, words.shape)
    weights = pd.DataFrame({"sentence_id": np.repeat(np.arange(n_sent), per),
                            "word": [f"w{i}" for i in words.ravel()], "weight": y.ravel()})
    return weights, info


def test_ols_known_line():
    x = np.arange(10.0)
    fit = ols(x, 3 + 2 * x)
    assert fit["beta"] == pytest.approx(2.0) and fit["r2"] == pytest.approx(1.0) and fit["intercept"] == pytest.approx(3.0)


def test_regress_recovers_slope_and_r2():
    rng = np.random.default_rng(0)
    weights, info = _simulate(rng, n_sent=2000, sent_sd=0.0)
    res = regress(weights, info, n_boot=200)
    assert res["beta"] == pytest.approx(0.5, abs=0.02)
    var_signal = 0.25 * info["kl"].to_numpy()[pd.factorize(weights["word"].str[1:].astype(int))[0]].var()
    expected_r2 = (0.25 * info.set_index("word").loc[weights["word"], "kl"].var()) / (
        0.25 * info.set_index("word").loc[weights["word"], "kl"].var() + 0.25)
    assert res["r2"] == pytest.approx(expected_r2, abs=0.02)
    assert res["n_points"] == len(weights) and res["n_sentences"] == 2000
    assert res["r2_low"] < res["r2"] < res["r2_high"] and res["beta_low"] < res["beta"] < res["beta_high"]


def test_bootstrap_interval_coverage():
    rng = np.random.default_rng(1)
    hits, reps = 0, 150
    for rep in range(reps):
        weights, info = _simulate(rng, n_sent=80)
        res = regress(weights, info, n_boot=300, seed=rep)
        hits += res["beta_low"] <= 0.5 <= res["beta_high"]
    assert 0.88 <= hits / reps <= 0.99  # nominal 95%, resampling sentences


def test_unit_mismatch_is_an_error():
    rng = np.random.default_rng(2)
    weights, info = _simulate(rng)
    shouted = info.assign(word=info["word"].str.upper())  # e.g. a cased table against uncased weights
    with pytest.raises(ValueError, match="capitalised words .* counted with a cased tokenizer"):
        regress(weights, shouted)  # no attrs on either table: the words themselves show the casing
    with pytest.raises(ValueError, match="no column"):
        regress(weights, info, quantity="entropy")
    partial = info[info["word"] != weights["word"].iloc[0]]
    with pytest.warns(UserWarning, match="missing from the information table"):
        joined = join_information(weights, partial)
    assert len(joined) < len(weights)
