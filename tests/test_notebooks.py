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


@pytest.mark.parametrize("path", book.notebooks(), ids=lambda p: p.stem)
def test_notebook_smoke(path, results_tmp, tmp_path):
    book.run_notebook(path, tmp_path / "executed", book.SMOKE_PARAMETERS.get(path.stem, {}), progress=False)
    assert path.stem in CHECKS, f"add a check of {path.stem}'s results to this file"
    CHECKS[path.stem](results_tmp)
