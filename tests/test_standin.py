"""What the offline pair stands for: the MLM measured as a language model against the unigram baseline, the
corpus counted, and SimCSE from the MLM against from random weights with a paired interval."""
import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from helpers import standin, training
from helpers.data import load_sentences

TEXTS = [f"a {w} is {v} the {o} ." for w in ("man", "dog", "child", "woman") for v in ("riding", "eating")
         for o in ("horse", "ball")]


@pytest.fixture(scope="module")
def pair(data_dir):
    return training.self_trained_pair(data_dir, "smoke", progress=False)


def test_corpus_size_counts_sentences_and_word_units():
    # the book's word units: "." is a unit of its own
    assert standin.corpus_size(["A man plays.", "Two dogs run home"]) == {"sentences": 2, "words": 8}


def test_mlm_quality_is_scored_on_masked_tokens_against_the_unigram_baseline(pair, data_dir):
    held_out = load_sentences("stsb", "validation", data_dir=data_dir, limit=100)
    q = standin.mlm_quality(pair["mlm"], held_out, TEXTS * 5, n_sentences=100)
    assert q["masked_tokens"] > 50 and q["held_out_sentences"] == 100
    assert 0 <= q["masked_accuracy"] <= 1 and 0 <= q["unigram_accuracy"] <= 1
    assert q["perplexity"] > 1 and q["unigram_perplexity"] > 1
    again = standin.mlm_quality(pair["mlm"], held_out, TEXTS * 5, n_sentences=100)
    assert again == q  # the masks are fixed by the seed
    # the unigram baseline on a corpus of one repeated sentence: its most frequent token is "a" or "the"
    assert q["unigram_accuracy"] < 0.5


def test_sts_difference_is_zero_against_itself_and_spearman_is_scipys(pair, data_dir):
    stsb = load_sentences("stsb", "validation", data_dir=data_dir).head(200)  # the first 100 pairs
    same = standin.sts_difference(pair["simcse"], pair["simcse"], stsb, n_boot=50)
    assert same["diff"] == 0 and same["diff_low"] == same["diff_high"] == 0
    other = standin.sts_difference(pair["simcse"], pair["mlm"], stsb, n_boot=200)
    cos = standin._cosines(pair["simcse"], "mean", stsb.sort_values(["pair_id", "side"]))
    gold = stsb.sort_values(["pair_id", "side"])["score"].to_numpy()[0::2]
    assert other["spearman_a"] == pytest.approx(spearmanr(cos, gold)[0], abs=1e-9)
    assert other["diff_low"] <= other["diff"] <= other["diff_high"]


def test_the_stand_in_row_says_whether_pretraining_helps(pair, data_dir, monkeypatch):
    stsb = load_sentences("stsb", "validation", data_dir=data_dir).head(100)
    row = standin.stand_in_row(pair["mlm"], pair["simcse"], pair["mlm"], TEXTS, stsb["text"], stsb, n_boot=100,
                               settings={"mlm_steps": 30, "mlm_hidden": 32, "mlm_layers": 1})
    assert list(row.columns) == standin.STAND_IN_COLUMNS and row.loc[0, "corpus_sentences"] == len(TEXTS)
    assert row.loc[0, "pretraining_helps"] == (row.loc[0, "stsb_diff_low"] > 0)
    fake = {"spearman_a": 0.6, "spearman_b": 0.65, "diff": -0.05, "diff_low": -0.08, "diff_high": -0.02}
    monkeypatch.setattr(standin, "sts_difference", lambda *a, **k: fake)
    worse = standin.stand_in_row(pair["mlm"], pair["simcse"], pair["mlm"], TEXTS, stsb["text"], stsb, n_boot=10)
    assert worse.loc[0, "pretraining_helps"] is False or worse.loc[0, "pretraining_helps"] == False  # noqa: E712
    monkeypatch.setattr(standin, "sts_difference", lambda *a, **k: {**fake, "diff_low": 0.01, "diff_high": 0.09})
    assert standin.stand_in_row(pair["mlm"], pair["simcse"], pair["mlm"], TEXTS, stsb["text"], stsb,
                                n_boot=10).loc[0, "pretraining_helps"]


def test_sts_difference_refuses_broken_pairs_and_says_nothing_from_nan(pair, data_dir, monkeypatch):
    stsb = load_sentences("stsb", "validation", data_dir=data_dir).head(100)
    with pytest.raises(ValueError, match="without their pair"):
        standin.sts_difference(pair["mlm"], pair["mlm"], stsb.iloc[1:], n_boot=10)
    with pytest.raises(ValueError, match="at least 10 pairs"):
        standin.sts_difference(pair["mlm"], pair["mlm"], stsb.head(6), n_boot=10)
    monkeypatch.setattr(standin, "_cosines", lambda *a: np.ones(50))  # a constant encoder: Spearman undefined
    nan = standin.sts_difference(pair["mlm"], pair["simcse"], stsb, n_boot=10)
    assert np.isnan(nan["diff"]) and standin._helps(nan) is None


def test_the_budget_figure_exists_with_or_without_a_recorded_curve():
    # chapter 05's text refers to the figure by label: an unmeasured curve draws a panel that says so (a missing
    # figure was an undefined reference and a warning in the book build)
    from helpers import plots

    empty = plots.budget_curve(pd.DataFrame(columns=standin.BUDGET_COLUMNS))
    assert "mlm_budget.py" in " ".join(t.get_text() for t in empty.axes[0].texts)
    assert "not measured" in standin.budget_in_words(pd.DataFrame(columns=standin.BUDGET_COLUMNS))
    curve = pd.DataFrame({"mlm_steps": [300, 1000], "mlm_hidden": [256, 256], "stsb_diff": [-0.02, 0.01],
                          "stsb_diff_low": [-0.05, -0.01], "stsb_diff_high": [0.01, 0.03],
                          "pretraining_helps": [False, False]})
    drawn = plots.budget_curve(curve)
    assert "not measured" not in " ".join(t.get_text() for t in drawn.axes[0].texts)
    assert len(drawn.axes[0].lines) >= 2
    assert [t.get_text() for t in drawn.axes[0].get_xticklabels()] == ["300", "1,000"]  # the budgets, readable


def test_the_budget_curve_in_words_follows_its_intervals():
    def curve(diffs):
        return pd.DataFrame({"mlm_steps": [300, 1000, 3000][:len(diffs)], "mlm_hidden": 256, "mlm_layers": 4,
                             "mlm_minutes": [3.0, 10.0, 30.0][:len(diffs)],
                             "stsb_diff": [d for d, _, _ in diffs], "stsb_diff_low": [lo for _, lo, _ in diffs],
                             "stsb_diff_high": [hi for _, _, hi in diffs],
                             "pretraining_helps": [lo > 0 for _, lo, _ in diffs]})

    below = standin.budget_in_words(curve([(-0.09, -0.11, -0.06), (-0.11, -0.14, -0.08), (-0.07, -0.10, -0.05)]))
    assert "at none of the 3 budgets" in below and "3,000 steps" in below and "every budget" in below
    mixed = standin.budget_in_words(curve([(-0.09, -0.11, -0.06), (-0.01, -0.03, 0.01)]))
    assert "1 of the 2 budgets" in mixed and "every budget" not in mixed
    helps = standin.budget_in_words(curve([(-0.09, -0.11, -0.06), (0.02, 0.01, 0.03), (0.05, 0.03, 0.07)]))
    assert helps.startswith("pre-training helps from 1,000 steps") and "2 of the 3 budgets" in helps
