"""The closing chapter's verdicts follow their stated rules, on tables built to land on each side of them."""
import json

import pandas as pd
import pytest

from helpers import verdicts
from helpers.regression import TABLE_COLUMNS


def _row(model, base, r2, beta, width=0.02, method="ig", quantity="kl", dataset="stsb"):
    return {"dataset": dataset, "model": model, "pooling": "mean", "base": base, "method": method, "quantity": quantity,
            "r2": r2, "beta": beta, "r2_low": r2 - width, "r2_high": r2 + width, "beta_low": beta - width,
            "beta_high": beta + width, "n_points": 100, "n_sentences": 10, "sketch_spearman": float("nan"),
            "sketch_median_rel_err": float("nan")}


def _table(r2_mlm, beta_mlm, r2_cl, beta_cl, width=0.02):
    rows = []
    for method in ("ig", "shap"):
        for quantity in ("kl", "self_info"):
            rows += [_row("MLM", "", r2_mlm, beta_mlm, width, method, quantity),
                     _row("CL", "MLM", r2_cl, beta_cl, width, method, quantity)]
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)


@pytest.mark.parametrize("numbers, expected", [
    ((0.1, 0.1, 0.5, 0.5), "reproduced"),                  # both higher, intervals apart
    ((0.1, 0.1, 0.5, 0.11), "partly reproduced"),          # R² apart, β higher but overlapping
    ((0.1, 0.1, 0.11, 0.11), "partly reproduced"),         # both higher, overlapping
    ((0.5, 0.1, 0.4, 0.11), "not reproduced"),             # R² lower, β overlapping
    ((0.5, 0.5, 0.1, 0.1), "not reproduced"),              # the reverse contrast
])
def test_contrast_rule(numbers, expected):
    assert verdicts.contrast(_table(*numbers), "CL", "MLM")["verdict"] == expected


def test_contrast_names_a_missing_model():
    with pytest.raises(KeyError, match="base 'BERT'"):
        verdicts.contrast(_table(0.1, 0.1, 0.5, 0.5), "CL", "BERT")


def test_claims_table_reads_results(tmp_path, monkeypatch):
    monkeypatch.setenv("SENTENCE_RESULTS_DIR", str(tmp_path))
    claims = verdicts.claims_table()
    assert len(claims) == len(verdicts.CLAIMS) and set(claims["verdict"]) == {"not measured"}
    assert claims["why"].str.contains("run chapter").all()
    (tmp_path / "regression").mkdir(exist_ok=True)
    _table(0.1, 0.1, 0.5, 0.5).to_csv(tmp_path / "regression" / "table.csv", index=False)
    assert verdicts.claim_table1()["verdict"] == "reproduced"
    _table(0.5, 0.5, 0.1, 0.1).to_csv(tmp_path / "regression" / "table.csv", index=False)
    assert verdicts.claim_table1()["verdict"] == "not reproduced"
    # I and KL agree on "not reproduced": the KL/I claim is reproduced (the same picture)
    assert verdicts.claim_kl_i()["verdict"] == "reproduced"
    (tmp_path / "theory").mkdir(exist_ok=True)
    models = {"sgns_untied": {"partial_r2_kl_given_i": 0.9, "partial_r2_i_given_kl": 0.05, "gnorm_slope": 2.1},
              "contrastive": {"partial_r2_kl_given_i": 0.1, "partial_r2_i_given_kl": 0.3},
              "cbow": {"partial_r2_kl_given_i": 0.2, "partial_r2_i_given_kl": 0.1}}
    (tmp_path / "theory" / "summary.json").write_text(json.dumps({"violations": 0, "pairs_checked": 10,
                                                                  "models": models}))
    assert verdicts.claim_bound()["verdict"] == "reproduced"
    assert verdicts.claim_norms()["verdict"] == "reproduced"
    assert verdicts.claim_toy_contrastive()["verdict"] == "not reproduced"
    models["sgns_untied"]["gnorm_slope"] = 3.8
    (tmp_path / "theory" / "summary.json").write_text(json.dumps({"violations": 0, "pairs_checked": 10,
                                                                  "models": models}))
    assert verdicts.claim_norms()["verdict"] == "partly reproduced"


def test_figure3_reading(tmp_path, monkeypatch):
    monkeypatch.setenv("SENTENCE_RESULTS_DIR", str(tmp_path))
    (tmp_path / "word_weights").mkdir(exist_ok=True)
    as_read = {"guitar": 0.3, "horse": 0.2, "is": -0.2, ".": -0.3, "a": 0.01, "with": -0.02}
    pd.DataFrame({"word": list(as_read), "change": list(as_read.values())}).to_csv(
        tmp_path / "word_weights" / "word_changes.csv", index=False)
    row = verdicts.claim_figure3()
    assert row["verdict"] == "reproduced" and row["evidence"].startswith("6 of 6")
    flipped = {w: -c for w, c in as_read.items()}
    pd.DataFrame({"word": list(flipped), "change": list(flipped.values())}).to_csv(
        tmp_path / "word_weights" / "word_changes.csv", index=False)
    assert verdicts.claim_figure3()["verdict"] == "not reproduced"


def test_markdown_table_links_chapters():
    claims = pd.DataFrame([{"claim": "a | b", "chapter": "06_regression", "evidence": "x", "verdict": "reproduced",
                            "why": "y"}])
    text = verdicts.markdown_table(claims)
    assert "{doc}`06 <06_regression>`" in text and "a \\| b" in text and "**reproduced**" in text


def test_designs_claim_pools_every_measured_comparison(tmp_path, monkeypatch):
    from helpers.contrast import DESIGN_COLUMNS

    monkeypatch.setenv("SENTENCE_RESULTS_DIR", str(tmp_path))
    (tmp_path / "finetune").mkdir(exist_ok=True)

    def row(objective, steps, r2, beta):
        return {"design": "bow", "objective": objective, "steps": steps, "r2": r2, "r2_low": r2 - 0.01,
                "r2_high": r2 + 0.01, "beta": beta, "beta_low": beta - 0.01, "beta_high": beta + 0.01,
                "stsb_spearman": 0.5, "minutes": 1.0}

    rows = [row("init", 0, 0.0, 0.0), row("cbow", 10, 0.1, 0.1), row("dropout", 10, 0.5, 0.5), row("nli", 10, 0.4, 0.4)]
    pd.DataFrame(rows, columns=DESIGN_COLUMNS).to_csv(tmp_path / "finetune" / "designs.csv", index=False)
    assert verdicts.claim_designs()["verdict"] == "reproduced"
    rows[3] = row("nli", 10, 0.05, 0.3)  # NLI: beta apart, R² lower -> partly; the pooled verdict follows
    pd.DataFrame(rows, columns=DESIGN_COLUMNS).to_csv(tmp_path / "finetune" / "designs.csv", index=False)
    row_ = verdicts.claim_designs()
    assert row_["verdict"] == "partly reproduced" and row_["evidence"].count("bow,") == 2
