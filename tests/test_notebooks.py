"""Smoke runs: every chapter executes with its smallest parameters and writes its tables."""
import json

import pandas as pd
import pytest

from helpers import book

CHECKS = {}


def check(stem):
    def register(fn):
        CHECKS[stem] = fn
        return fn
    return register


@check("01_theory")
def _theory(results):
    summary = json.loads((results / "theory" / "summary.json").read_text())
    assert summary["pairs_checked"] == book.SMOKE_PARAMETERS["01_theory"]["n_pairs"]
    assert summary["violations"] == 0
    for fit in summary["models"].values():
        assert {"r2_norm2_vs_kl", "slope_norm2_vs_kl", "r2_gnorm_vs_kl", "slope_gnorm_vs_kl"} <= set(fit)
        assert 0 <= fit["r2_norm2_vs_kl"] <= 1
    words = pd.read_csv(results / "theory" / "words.csv")
    assert {"word", "kl", "frequency", "norm2_contrastive", "gnorm2_contrastive"} <= set(words.columns)


@check("02_information")
def _information(results):
    table = pd.read_csv(results / "information" / "stsb_validation_words.csv")
    assert list(table.columns) == ["word", "count", "p", "kl", "self_info", "idf", "sif"]
    assert table["count"].sum() > 30000
    for name in ("sts12_test", "wiki_train", "nli_validation"):
        assert (results / "information" / f"{name}_words.csv").is_file()


WEIGHT_COLUMNS = ["sentence_id", "word_index", "word", "weight", "raw_weight", "n_subwords", "completeness_gap"]


@check("03_integrated_gradients")
def _ig(results):
    smoke = book.SMOKE_PARAMETERS["03_integrated_gradients"]
    weights = pd.read_csv(results / "ig" / "stsb_sample_weights.csv")
    assert list(weights.columns) == WEIGHT_COLUMNS
    assert weights["sentence_id"].nunique() == smoke["n_sentences"]
    assert weights.groupby("sentence_id")["weight"].mean().round(6).eq(1.0).all()
    exact = pd.read_csv(results / "ig" / "figure3_exact_weights.csv")
    assert exact["sentence_id"].nunique() == smoke["exact_sentences"]
    completeness = pd.read_csv(results / "ig" / "completeness.csv")
    assert set(completeness["n_steps"]) == set(smoke["n_steps_grid"])
    assert set(pd.read_csv(results / "ig" / "sketch_error.csv")["projections"]) == set(smoke["projections_grid"])
    assert set(pd.read_csv(results / "ig" / "baselines.csv")["b"]) == set(smoke["baselines"][1:])


@check("04_shap")
def _shap(results):
    weights = pd.read_csv(results / "shap" / "stsb_sample_weights.csv")
    assert list(weights.columns) == WEIGHT_COLUMNS
    assert weights["completeness_gap"].max() < 1e-3  # additivity
    cmp = pd.read_csv(results / "shap" / "ig_vs_shap.csv")
    assert {"overall", "sentence"} <= set(cmp["level"]) and cmp["spearman"].between(-1, 1).all()
    cost = json.loads((results / "shap" / "cost.json").read_text())
    assert cost["shap_seconds_per_sentence"] > 0 and cost["max_evals"] == book.SMOKE_PARAMETERS["04_shap"]["max_evals"]


@check("05_finetuning")
def _finetune(results):
    smoke = book.SMOKE_PARAMETERS["05_finetuning"]
    traj = pd.read_csv(results / "finetune" / "trajectory.csv")
    assert {"run", "step", "r2_kl", "beta_kl", "r2_self_info", "beta_self_info", "stsb_spearman"} <= set(traj.columns)
    assert set(traj["run"]) == {"mlm_then_simcse", "simcse_from_random", "mlm_only"}
    assert set(traj["step"]) == set(smoke["save_steps"])
    assert traj[["r2_kl", "r2_self_info"]].stack().between(0, 1).all()
    assert traj["stsb_spearman"].between(-1, 1).all()
    summary = pd.read_csv(results / "finetune" / "summary.csv")  # first -> last checkpoint of each run
    last = traj[traj["step"] == max(smoke["save_steps"])].set_index("run")
    ends = summary[summary["quantity"] == "r2_kl"].set_index("run")
    assert (ends["end"] - last["r2_kl"]).abs().max() < 1e-9
    assert (ends["end"] - ends["start"] - ends["change"]).abs().max() < 1e-9
    # the MLM is measured once: mlm_only starts where mlm_then_simcse starts
    start = traj[traj["step"] == 0].set_index("run")
    assert start.loc["mlm_only", "r2_kl"] == start.loc["mlm_then_simcse", "r2_kl"]


TABLE_COLUMNS = ["dataset", "model", "pooling", "base", "method", "quantity", "r2", "beta", "r2_low", "r2_high",
                 "beta_low", "beta_high", "n_points", "n_sentences"]


@check("06_regression")
def _regression(results):
    table = pd.read_csv(results / "regression" / "table.csv")
    assert list(table.columns) == TABLE_COLUMNS
    assert set(table["method"]) == {"ig", "shap"} and set(table["quantity"]) == {"kl", "self_info"}
    models = set(table["model"])
    assert {"self-trained MLM (CLS)", "self-trained MLM (MEAN)", "self-trained SimCSE (MEAN)",
            "random init (MEAN, control)", "all-MiniLM-L6-v2"} <= models
    assert table.loc[table["model"] == "self-trained SimCSE (MEAN)", "base"].eq("self-trained MLM (MEAN)").all()
    assert (table["r2_low"] <= table["r2"]).all() and (table["r2"] <= table["r2_high"]).all()
    assert table["n_sentences"].eq(book.SMOKE_PARAMETERS["06_regression"]["n_sentences"] + 3).all()


@check("07_word_weights")
def _word_weights(results):
    fig3 = pd.read_csv(results / "word_weights" / "figure3.csv")
    assert fig3["sentence_id"].nunique() == 3
    assert {"word", "kl", "self_info", "self-trained MLM", "self-trained SimCSE"} <= set(fig3.columns)
    changes = pd.read_csv(results / "word_weights" / "word_changes.csv")
    assert {"word", "before", "after", "change"} <= set(changes.columns)


@check("08_other_datasets")
def _datasets(results):
    table = pd.read_csv(results / "datasets" / "table.csv")
    assert list(table.columns) == TABLE_COLUMNS
    assert set(table["dataset"]) == {"wiki", "nli", "sts12"}


@check("09_explorer")
def _explorer(results):
    pass  # the explorer writes no table; test_html checks its page and test_explorer its behaviour


@pytest.mark.parametrize("path", book.notebooks(), ids=lambda p: p.stem)
def test_notebook_smoke(path, smoke_book):
    assert path.stem not in smoke_book["errors"], smoke_book["errors"].get(path.stem)
    assert path.stem in CHECKS, f"add a check of {path.stem}'s results to this file"
    CHECKS[path.stem](smoke_book["results"])
