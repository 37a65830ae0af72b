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
def _theory(results, executed):
    from helpers.regression import ols

    summary = json.loads((results / "theory" / "summary.json").read_text())
    assert summary["pairs_checked"] == book.SMOKE_PARAMETERS["01_theory"]["n_pairs"]
    assert summary["violations"] == 0  # a check of the code only: Jensen's inequality guarantees it
    words = pd.read_csv(results / "theory" / "words.csv")
    assert list(words.columns) == ["model", "word", "spread", "frequency", "kl", "kl_same", "norm2", "gnorm"]
    assert abs(summary["spearman_kl_i"]) < 0.3
    # the summary's fits are the regressions of the written word table (two code paths agree)
    for model, fit in summary["models"].items():
        w = words[words["model"] == model]
        refit, gfit = ols(w[fit["kl_column"]], w["norm2"]), ols(w[fit["kl_column"]], w["gnorm"])
        assert fit["r2_kl"] == pytest.approx(refit["r2"], rel=1e-6), model
        if fit["slopes_identified"]:
            assert fit["slope_kl"] == pytest.approx(refit["beta"], rel=1e-6), model
            assert fit["gnorm_slope"] == pytest.approx(gfit["beta"], rel=1e-6), model
        else:  # cosine similarity ignores the norm: its slopes are not printed (null), its R^2 is
            assert fit["slope_kl"] is None and fit["gnorm_slope"] is None, model
        assert {"partial_r2_kl_given_i", "partial_r2_i_given_kl", "partial_r2_kl_given_i_last"} <= set(fit)
    # the closed-form optimum: one row per smoothing level and positive, unbounded without smoothing
    optimum = pd.read_csv(results / "theory" / "optimum.csv")
    smoke = book.SMOKE_PARAMETERS["01_theory"]
    assert sorted(set(optimum["smoothing"])) == sorted(smoke["smoothing_grid"])
    assert not optimum.loc[optimum["smoothing"] == 0, "bounded"].any()
    assert summary["optimum"]["dim"] == smoke["optimum_dim"] and isinstance(summary["optimum"]["reached"], bool)


@check("02_information")
def _information(results, executed):
    import numpy as np

    from helpers.data import load_sentences
    from helpers.units import split_words

    table = pd.read_csv(results / "information" / "stsb_validation_words.csv", keep_default_na=False)
    assert list(table.columns) == ["word", "count", "p", "kl", "self_info", "idf", "sif"]
    # KL of a few words recomputed from the sentences with plain dictionaries (an independent implementation)
    sentences = [split_words(t) for t in load_sentences("stsb", "validation")["text"]]
    total = {}
    for words in sentences:
        for w in words:
            total[w] = total.get(w, 0) + 1
    n = sum(total.values())
    assert table["count"].sum() == n
    by_word = table.set_index("word")
    for word in ("the", "guitar", "horse", "."):
        context = {}
        for words in sentences:
            if word in words:
                for w in words:
                    context[w] = context.get(w, 0) + 1
        m = sum(context.values())
        kl = sum(c / m * np.log((c / m) / (total[w] / n)) for w, c in context.items())
        assert by_word.loc[word, "kl"] == pytest.approx(kl, rel=1e-9), word
    for name in ("sts12_test", "wiki_train", "nli_validation"):
        assert (results / "information" / f"{name}_words.csv").is_file()


WEIGHT_COLUMNS = ["sentence_id", "word_index", "word", "weight", "raw_weight", "n_subwords", "completeness_gap"]


@check("03_integrated_gradients")
def _ig(results, executed):
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
def _shap(results, executed):
    weights = pd.read_csv(results / "shap" / "stsb_sample_weights.csv")
    assert list(weights.columns) == WEIGHT_COLUMNS
    assert weights["completeness_gap"].max() < 1e-3  # additivity
    cmp = pd.read_csv(results / "shap" / "ig_vs_shap.csv")
    assert {"overall", "sentence"} <= set(cmp["level"]) and cmp["spearman"].between(-1, 1).all()
    cost = json.loads((results / "shap" / "cost.json").read_text())
    assert cost["shap_seconds_per_sentence"] > 0 and cost["max_evals"] == book.SMOKE_PARAMETERS["04_shap"]["max_evals"]


@check("05_finetuning")
def _finetune(results, executed):
    smoke = book.SMOKE_PARAMETERS["05_finetuning"]
    traj = pd.read_csv(results / "finetune" / "trajectory.csv")
    assert {"run", "step", "r2_kl", "beta_kl", "r2_self_info", "beta_self_info", "stsb_spearman"} <= set(traj.columns)
    assert set(traj["run"]) == {"mlm_then_simcse", "simcse_from_random", "mlm_only"}
    assert set(traj["step"]) == set(smoke["save_steps"])
    # every checkpoint's R^2 and beta are the regression of the weights the chapter wrote
    from helpers.data import load_sentences
    from helpers.information import word_information
    from helpers.regression import regress

    info = word_information(load_sentences("stsb", "validation"))
    weights = pd.read_csv(results / "finetune" / "checkpoint_weights.csv", keep_default_na=False)
    for _, row in traj.iterrows():
        w = weights[(weights["run"] == row["run"]) & (weights["objective"] == row["objective"])
                    & (weights["step"] == row["step"])]
        fit = regress(w, info, "kl", n_boot=10)
        assert fit["r2"] == pytest.approx(row["r2_kl"], rel=1e-6) and fit["beta"] == pytest.approx(row["beta_kl"], rel=1e-6)
    summary = pd.read_csv(results / "finetune" / "summary.csv")  # first -> last checkpoint of each run
    last = traj[traj["step"] == max(smoke["save_steps"])].set_index("run")
    ends = summary[summary["quantity"] == "r2_kl"].set_index("run")
    assert (ends["end"] - last["r2_kl"]).abs().max() < 1e-9
    assert (ends["end"] - ends["start"] - ends["change"]).abs().max() < 1e-9
    # the designs table: the chapter's own runs and the bag-of-words design it trains at the smoke settings
    from helpers.matched_designs import DESIGN_COLUMNS

    designs = pd.read_csv(results / "finetune" / "designs.csv")
    assert list(designs.columns) == DESIGN_COLUMNS and {"default", "bow"} <= set(designs["design"])
    bow = designs[designs["design"] == "bow"].set_index("objective")
    assert set(bow.index) == {"init", "cbow", "dropout", "nli"} and (bow["r2_low"] <= bow["r2"]).all()
    default = designs[designs["design"] == "default"]
    assert default["r2"].tolist() == pytest.approx(traj["r2_kl"].tolist())
    # the MLM is measured once: mlm_only starts where mlm_then_simcse starts
    start = traj[traj["step"] == 0].set_index("run")
    assert start.loc["mlm_only", "r2_kl"] == start.loc["mlm_then_simcse", "r2_kl"]


from helpers.regression import TABLE_COLUMNS  # noqa: E402


@check("06_regression")
def _regression(results, executed):
    table = pd.read_csv(results / "regression" / "table.csv")
    assert list(table.columns) == TABLE_COLUMNS
    assert set(table["method"]) == {"ig", "shap"} and set(table["quantity"]) == {"kl", "self_info"}
    models = set(table["model"])
    assert {"self-trained MLM (CLS before pooler)", "self-trained MLM (MEAN)", "self-trained SimCSE (MEAN)",
            "random init (MEAN, control)", "all-MiniLM-L6-v2"} <= models
    assert table.loc[table["model"] == "self-trained SimCSE (MEAN)", "base"].eq("self-trained MLM (MEAN)").all()
    assert table["n_sentences"].eq(book.SMOKE_PARAMETERS["06_regression"]["n_sentences"] + 3).all()
    ig = table[table["method"] == "ig"]
    assert ig["sketch_spearman"].notna().all() and table.loc[table["method"] == "shap", "sketch_spearman"].isna().all()
    # the choices table's Table-1 setting (frobenius, mean1) is Table 1's row: two code paths agree
    choices = pd.read_csv(results / "regression" / "choices.csv")
    same = choices[(choices["word_agg"] == "frobenius") & (choices["normalize"] == "mean1")].set_index("model")
    kl = ig[ig["quantity"] == "kl"].set_index("model")
    assert len(same) >= 4 and len(choices) == len(same) * 12
    for model, row in same.iterrows():
        assert row["r2"] == pytest.approx(kl.loc[model, "r2"], rel=1e-9)
        assert row["beta"] == pytest.approx(kl.loc[model, "beta"], rel=1e-9)


@check("07_word_weights")
def _word_weights(results, executed):
    fig3 = pd.read_csv(results / "word_weights" / "figure3.csv")
    assert fig3["sentence_id"].nunique() == 3
    assert {"word", "kl", "self_info", "self-trained MLM", "self-trained SimCSE"} <= set(fig3.columns)
    changes = pd.read_csv(results / "word_weights" / "word_changes.csv")
    assert {"word", "before", "after", "change"} <= set(changes.columns)


@check("08_other_datasets")
def _datasets(results, executed):
    table = pd.read_csv(results / "datasets" / "table.csv")
    assert list(table.columns) == TABLE_COLUMNS
    assert set(table["dataset"]) == {"wiki", "nli", "sts12"}
    assert table["n_sentences"].eq(book.SMOKE_PARAMETERS["08_other_datasets"]["n_sentences"]).all()


@check("09_explorer")
def _explorer(results, executed):
    # the page shows the default sentence's words in its heat strips, one strip per model
    import nbformat

    from helpers.units import split_words

    nb = nbformat.read(executed / "09_explorer.ipynb", as_version=4)
    defaults = {}
    exec(next(c.source for c in nb.cells if "parameters" in c.metadata.get("tags", [])), {}, defaults)
    html = "".join(str(o.get("data", {}).get("text/html", "")) for c in nb.cells if c.cell_type == "code"
                   for o in c.get("outputs", []))
    for word in split_words(defaults["sentence"]):
        assert f">{word}<" in html, word
    assert html.count(">" + split_words(defaults["sentence"])[-1] + "<") >= 2  # two models side by side
    # the static explorer carries every offline model's weights for the chosen sentences, both methods
    import json

    data = json.loads(html.split('id="static-explorer-data">')[1].split("</script>")[0])
    smoke = book.SMOKE_PARAMETERS["09_explorer"]
    assert len(data["sentences"]) >= smoke["static_sentences"] and set(data["methods"]) == {"ig", "shap"}
    assert {"self-trained MLM (MEAN)", "self-trained SimCSE (MEAN)", "all-MiniLM-L6-v2"} <= set(data["models"])
    assert all(str(s["id"]) in data["cells"]["shap"]["all-MiniLM-L6-v2"] for s in data["sentences"])


@check("10_pair_similarity")
def _pairs(results, executed):
    summary = pd.read_csv(results / "pairs" / "summary.csv")
    assert list(summary.columns) == ["model", "n_pairs", "share_top_kl", "share_identical", "median_completeness_gap",
                                     "median_gap_of_contributions"]
    assert summary["n_pairs"].eq(book.SMOKE_PARAMETERS["10_pair_similarity"]["n_pairs"]).all()
    assert summary[["share_top_kl", "share_identical"]].stack().between(0, 1).all()
    per_pair = pd.read_csv(results / "pairs" / "pairs.csv")  # the summary is the mean of the per-pair table
    assert per_pair.groupby("model")["share_top_kl"].mean().reindex(summary["model"]).to_numpy() == pytest.approx(
        summary["share_top_kl"].to_numpy())


@check("11_faithfulness")
def _faithfulness(results, executed):
    table = pd.read_csv(results / "faithfulness" / "aopc.csv")
    assert list(table.columns[:6]) == ["model", "ranking", "removal", "aopc", "aopc_low", "aopc_high"]
    assert {"IG", "SHAP", "KL", "I", "IDF", "reverse IG", "random (seed 0)"} <= set(table["ranking"])
    assert set(table["removal"]) == {"mask", "delete"}
    assert ((table["aopc_low"] <= table["aopc"]) & (table["aopc"] <= table["aopc_high"])).all()
    recovery = pd.read_csv(results / "faithfulness" / "recovery.csv")  # every ratio with its interval
    assert {"model", "removal", "ranking", "recovery", "recovery_low", "recovery_high"} <= set(recovery.columns)
    assert set(recovery["ranking"]) == {"KL", "I", "IDF"}


@check("13_explain_your_model")
def _explain(results, executed):
    words = pd.read_csv(results / "explain" / "words.csv")
    assert {"word_index", "word", "weight", "kl", "self_info", "seen"} <= set(words.columns)
    assert words["weight"].mean() == pytest.approx(1.0)
    pairs = pd.read_csv(results / "explain" / "pairs.csv")
    assert list(pairs.columns) == ["word_a", "index_a", "word_b", "index_b", "contribution"]
    trust = pd.read_csv(results / "explain" / "faithfulness.csv", index_col=0)["value"]
    assert float(trust["worst"]) <= float(trust["aopc"]) <= float(trust["best"]) + 1e-9
    # chapter 05 ran before it, so the self-trained pair was set side by side (the comparison's table is there)
    compare = pd.read_csv(results / "explain" / "compare.csv")
    assert list(compare.columns) == ["word_index", "word", "weight_a", "weight_b", "change"]
    assert compare["change"].to_numpy() == pytest.approx((compare["weight_b"] - compare["weight_a"]).to_numpy())
    batch = pd.read_csv(results / "explain" / "batch.csv")
    assert batch["text_id"].nunique() == book.SMOKE_PARAMETERS["13_explain_your_model"]["batch"]


@check("12_what_reproduced")
def _reproduced(results, executed):
    from helpers import verdicts

    claims = pd.read_csv(results / "reproduced" / "claims.csv")
    assert len(claims) == len(verdicts.CLAIMS) and set(claims["verdict"]) <= set(verdicts.VERDICTS)
    # every chapter ran before it, so no claim is left "not measured"
    assert "not measured" not in set(claims["verdict"]), claims[["claim", "why"]].to_string()
    # the page's table is the CSV's (generated, not typed)
    import nbformat

    nb = nbformat.read(executed / "12_what_reproduced.ipynb", as_version=4)
    shown = "".join(str(o.get("data", {}).get("application/papermill.record/text/markdown", ""))  # the glued table
                    for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    for verdict, claim in zip(claims["verdict"], claims["claim"]):
        assert f"**{verdict}**" in shown and claim.split(" (")[0] in shown


@pytest.mark.parametrize("path", book.notebooks(), ids=lambda p: p.stem)
def test_notebook_smoke(path, smoke_book):
    assert path.stem not in smoke_book["errors"], smoke_book["errors"].get(path.stem)
    assert path.stem in CHECKS, f"add a check of {path.stem}'s results to this file"
    CHECKS[path.stem](smoke_book["results"], smoke_book["book"])


@pytest.mark.parametrize("path", book.notebooks(), ids=lambda p: p.stem)
def test_every_glue_key_shown_was_glued(path, smoke_book):
    """Each {glue} role of the chapter's prose has a value in the executed notebook (a missing one shows nothing)."""
    import nbformat

    from test_teaching import glue_keys_used

    if path.stem in smoke_book["errors"]:
        pytest.skip("the notebook failed; test_notebook_smoke reports it")
    nb = nbformat.read(smoke_book["book"] / path.name, as_version=4)
    glued = {o.get("metadata", {}).get("scrapbook", {}).get("name") for c in nb.cells if c.cell_type == "code"
             for o in c.get("outputs", [])}
    used = glue_keys_used("\n".join(c.source for c in nb.cells if c.cell_type == "markdown"))
    assert used <= glued, f"glue keys shown but never glued: {sorted(used - glued)}"
