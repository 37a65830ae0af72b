"""What reproduced: one verdict per claim of the paper, read from the chapters' ``results/`` tables.

Each ``claim_*`` function reads the tables one chapter wrote and returns a row
``{claim, chapter, evidence, verdict, why}``. The verdict is one of :data:`VERDICTS`; the rules
are written into each function, fixed in advance and the same for every build, so a rerun
with other parameters or models can change a verdict but nobody can pick one:

* a **contrast** between a contrastive encoder and its base MLM (the paper's Table 1, its
  appendix E and F, chapter 05's runs and designs) is decided by the book's one rule,
  :mod:`helpers.rules`: a paired bootstrap over the shared sentences of the signed association
  r = sign(β)·√R² and of β, Holm-corrected over every comparison of the claim (so a claim's chance
  of a false "partly reproduced" is at most :data:`helpers.rules.ALPHA`); the chapters write these
  contrasts to ``results/*/contrasts.csv``;
* a claim whose ingredients a chapter did not write is *not measured* (run that chapter);
  one that needs models the offline roster lacks is *not testable offline*.

:func:`claims_table` collects the rows; :mod:`helpers.verdict_text` puts them in words (the bottom line, the
table with links to the chapters) for the closing chapter.
"""
from __future__ import annotations

import pandas as pd

from .results import DATASETS, FINETUNE, REGRESSION, SHAP, THEORY, WORD_WEIGHTS
from .rules import (RULE, VERDICTS, baseline_dependence, judge_contrasts, judge_designs, judge_finetuning,
                    matched_rows)

__all__ = ["VERDICTS", "CLAIMS", "TIERS", "claim", "FIGURE3_READING", "claims_table", "matched_pairs", "claim_bound", "claim_norms", "claim_toy_contrastive",
           "claim_table1", "claim_finetuning", "claim_designs", "claim_ig_shap", "claim_kl_i", "claim_datasets",
           "claim_figure3", "claim_beyond_frequency"]

#: Figure 3's reading in the paper: these words go up under contrastive training, these go down,
#: these stay about the same (judged by each word's 95% interval of change, see :func:`claim_figure3`).
FIGURE3_READING = {"raised": ["guitar", "hat", "child", "horse"], "lowered": ["is", "."], "unchanged": ["a", "with"]}


def _row(claim, chapter, evidence, verdict, why):
    assert verdict in VERDICTS, verdict
    return {"claim": claim, "chapter": chapter, "evidence": evidence, "verdict": verdict, "why": why}


def _missing(claim, chapter, what):
    return _row(claim, chapter, "", "not measured", f"{what} is missing: run chapter {chapter} first.")


def _fmt(x, digits=2):
    return f"{x:+.{digits}f}"


def _contrasts(chapter, **select) -> pd.DataFrame | None:
    """A chapter's contrasts table (``results.FINETUNE``, ``REGRESSION``, ``DATASETS``), rows selected by column."""
    table = chapter.contrasts.read_or_none()
    if table is None:
        return None
    for column, value in select.items():
        table = table[table[column] == value]
    return table.reset_index(drop=True)


def matched_pairs(table: pd.DataFrame) -> list[tuple[str, str]]:
    """(contrastive model, its base MLM) for every row whose base is also in the table (a results table's
    ``model`` and ``base`` columns, matched as :func:`helpers.rules.matched_rows` matches roster rows)."""
    rows = table.drop_duplicates("model")
    return matched_rows([{"row": r["model"], "base": r["base"]} for _, r in rows.iterrows()])


def _theory_summary() -> dict | None:
    """Chapter 01's summary (``results.THEORY.summary``; None when it has not run)."""
    return THEORY.summary.read_or_none()


#: The closing chapter's groups of claims, in the order it shows them: checks of the code and of the theory on the
#: toy corpus, the paper's empirical claims about word weighting, the consistency checks that ask the same contrast
#: under another attribution method, information quantity or dataset, and the book's own question beyond the paper.
#: Each holds the names of its claims, filled by :func:`claim`.
TIERS: dict[str, tuple[str, ...]] = {tier: () for tier in ("code and theory checks", "the paper's empirical claims",
                                                          "consistency checks", "beyond the paper")}
#: Every claim function, in the closing chapter's order (the order of definition), filled by :func:`claim`.
CLAIMS: list = []


def claim(tier: str):
    """Register a ``claim_*`` function under ``tier`` (one of :data:`TIERS`): the one line a new verdict adds above
    its function, which returns the row ``{claim, chapter, evidence, verdict, why}`` (``_row``, or ``_missing``
    when a table it reads is not there)."""
    if tier not in TIERS:
        raise ValueError(f"tier {tier!r} is not one of the closing chapter's tiers: {list(TIERS)}.")

    def register(function):
        CLAIMS.append(function)
        TIERS[tier] += (function.__name__,)
        return function

    return register


def _tier(function) -> str:
    return next(t for t, names in TIERS.items() if function.__name__ in names)


@claim("code and theory checks")
def claim_bound():
    claim = "The contrastive log-likelihood is bounded below by SGNS over the sentence (Jensen)"
    s = _theory_summary()
    if s is None:
        return _missing(claim, "01_theory", str(THEORY.summary))
    ok = s["violations"] == 0
    return _row(claim, "01_theory", f"{s['violations']} violations in {s['pairs_checked']} random pairs",
                "reproduced" if ok else "not reproduced",
                "A true inequality for any vectors: the check confirms the code, not an empirical fact." if ok else
                "A violation of a true inequality means the two sides are coded inconsistently.")


def _fit_value(fit: dict, key: str) -> float:
    """A model's number from chapter 01's summary: the mean over the last checkpoints where it was written."""
    value = fit.get(f"{key}_last", fit[key])
    return float("nan") if value is None else float(value)


@claim("code and theory checks")
def claim_norms():
    claim = "At the SGNS optimum the squared (G-)norm of a word vector encodes its information gain"
    summary = _theory_summary()
    if summary is None:
        return _missing(claim, "01_theory", str(THEORY.summary))
    fit = summary["models"].get("sgns_untied")
    if fit is None:
        return _missing(claim, "01_theory", "the sgns_untied model")
    kl, i = _fit_value(fit, "partial_r2_kl_given_i"), _fit_value(fit, "partial_r2_i_given_kl")
    encodes = kl >= 0.5 and kl > 2 * i
    evidence = f"SGNS (separate tables): partial R² of KL given I {kl:.2f}, of I given KL {i:.2f}"
    optimum = summary.get("optimum")
    if not optimum:
        return _row(claim, "01_theory", evidence, "partly reproduced" if encodes else "not reproduced",
                    f"The closed-form optimum was not computed in this build ({THEORY.summary} has no 'optimum').")
    reached = bool(optimum["reached"])
    evidence += (f"; closed-form optimum on the smoothed corpus: G-norm slope on KL {optimum['optimum_slope']:.2f} "
                 f"(R² {optimum['optimum_r2']:.2f}); trained: slope {optimum['trained_slope_last']:.2f}, "
                 f"correlation with the optimum {optimum['correlation']:.2f}")
    verdict = "reproduced" if encodes and reached else "partly reproduced" if encodes else "not reproduced"
    why = ("Norms follow KL beyond frequency" if encodes else "Norms do not follow KL beyond frequency") + (
        ", and the trained model reaches the closed-form optimum." if reached else
        ", but the trained model does not reach the closed-form optimum in the chapter's budget.")
    why += (" The optimum's G-norm is 2 KL only where every PMI is small (Oyama et al.'s factor is a limit, "
            "compared here with the exact optimum, not with 2).")
    return _row(claim, "01_theory", evidence, verdict, why)


@claim("code and theory checks")
def claim_toy_contrastive():
    claim = "Contrastive training itself (not any training) makes word norms encode KL (toy corpus)"
    summary = _theory_summary()
    if summary is None:
        return _missing(claim, "01_theory", str(THEORY.summary))
    models = summary["models"]
    if "contrastive" not in models or "cbow" not in models:
        return _missing(claim, "01_theory", "the contrastive and cbow models")
    c, b = _fit_value(models["contrastive"], "partial_r2_kl_given_i"), _fit_value(models["cbow"], "partial_r2_kl_given_i")
    ci = _fit_value(models["contrastive"], "partial_r2_i_given_kl")
    verdict = ("reproduced" if c >= 0.5 and c > 2 * b else "partly reproduced" if c > b and c > ci
               else "not reproduced")
    return _row(claim, "01_theory",
                f"partial R² of KL given I: contrastive {c:.2f}, non-contrastive control (CBOW) {b:.2f}; "
                f"of I given KL (contrastive) {ci:.2f}", verdict,
                "Reproduced would need the contrastive model's norms to follow KL clearly (≥ 0.5) and far more than "
                "the control's.")


def _table_claim(claim, chapter, tables, method, quantity):
    contrasts = _contrasts(tables)
    if contrasts is None:
        return _missing(claim, chapter, str(tables.contrasts))
    pad = contrasts[(contrasts["method"] == method) & (contrasts["quantity"] == quantity)
                    & (contrasts["baseline"] == ("pad" if method == "ig" else "mask"))]
    if pad.empty:
        return _row(claim, chapter, "no contrastive model with its base MLM in the roster", "not testable offline",
                    "The paper's pairs need the hub; offline the only pair is the book's own small one.")
    judged = judge_contrasts(pad)
    why = RULE + " The offline pair is a small self-trained stand-in for BERT and SimCSE-BERT."
    evidence = judged["evidence"]
    if method == "ig":
        dep = baseline_dependence(contrasts, method, quantity)
        if len(dep["verdicts"]) > 1:
            evidence += "; by IG baseline: " + ", ".join(f"{b} {v}" for b, v in dep["verdicts"].items())
            why += (" The verdict depends on the IG baseline (PAD is the paper's choice)." if dep["depends"]
                    else " Every IG baseline gives the same verdict.")
    return _row(claim, chapter, evidence, judged["verdict"], why)


@claim("the paper's empirical claims")
def claim_table1():
    row = _table_claim("R² and β of IG weight on KL are higher for contrastive encoders than for their MLMs "
                       "(Table 1)", "06_regression", REGRESSION, "ig", "kl")
    table = REGRESSION.table.read_or_none()
    if table is not None:  # the encoders without their base in the roster, for context (no verdict from them)
        t = table[(table["method"] == "ig") & (table["quantity"] == "kl")]
        paired = {m for pair in matched_pairs(t) for m in pair}
        alone = [r for _, r in t.iterrows() if r["model"] not in paired and "random" not in r["model"]]
        if alone:
            row["evidence"] += "; without a base offline: " + ", ".join(
                f"{r['model']} R² {r['r2']:.2f}, β {r['beta']:+.2f}" for r in alone)
    return row


@claim("the paper's empirical claims")
def claim_finetuning():
    claim = "Contrastive fine-tuning raises R² and β along training (the same model, step by step)"
    contrasts = _contrasts(FINETUNE)
    if contrasts is None:
        return _missing(claim, "05_finetuning", str(FINETUNE.contrasts))
    judged = judge_finetuning(contrasts)
    if judged["verdict"] == "not measured":
        return _missing(claim, "05_finetuning", "the mlm_then_simcse run")
    return _row(claim, "05_finetuning", judged["evidence"], judged["verdict"],
                RULE + " The comparisons: the last checkpoint against the first, and against the MLM trained as long.")


@claim("the paper's empirical claims")
def claim_designs():
    claim = "The contrast holds on every matched design the book can afford offline (MLM side vs contrastive side)"
    contrasts = _contrasts(FINETUNE)
    if contrasts is None:
        return _missing(claim, "05_finetuning", str(FINETUNE.contrasts))
    judged = judge_designs(contrasts)
    if judged["verdict"] == "not measured":
        return _missing(claim, "05_finetuning", "a design with both sides measured")
    return _row(claim, "05_finetuning", judged["evidence"], judged["verdict"],
                RULE + " Every comparison measured in this build; the long designs appear only when their runs are "
                "in the cache.")


@claim("consistency checks")
def claim_ig_shap():
    claim = "The contrast holds under SHAP as well as under IG (appendix E)"
    cmp = SHAP.ig_vs_shap.read_or_none()
    evidence = ""
    if cmp is not None:
        rho = float(cmp.loc[cmp["level"] == "overall", "spearman"].iloc[0])
        evidence = f"Spearman of IG and SHAP word weights: {rho:.2f} (chapter 04's encoder; context, not the claim); "
    contrasts = _contrasts(REGRESSION, method="shap", quantity="kl")
    if contrasts is None or contrasts.empty:
        return _missing(claim, "06_regression", f"SHAP rows in {REGRESSION.contrasts}")
    judged = judge_contrasts(contrasts)
    return _row(claim, "06_regression", evidence + "under SHAP: " + judged["evidence"], judged["verdict"],
                RULE + " The paper claims the contrast holds under SHAP, not that IG and SHAP rank words alike.")


@claim("consistency checks")
def claim_kl_i():
    claim = "The contrast holds on self-information I(w) as on information gain KL(w) (appendix E)"
    contrasts = _contrasts(REGRESSION, method="ig", baseline="pad")
    if contrasts is None:
        return _missing(claim, "06_regression", str(REGRESSION.contrasts))
    on_i, on_kl = (judge_contrasts(contrasts[contrasts["quantity"] == q]) for q in ("self_info", "kl"))
    if on_i["verdict"] == "not measured":
        return _row(claim, "06_regression", "no matched pair", "not testable offline", "")
    return _row(claim, "06_regression", f"on I: {on_i['evidence']}; on KL the verdict is {on_kl['verdict']}",
                on_i["verdict"], RULE + " Judged on I itself: both failing is not the same picture reproduced.")


@claim("consistency checks")
def claim_datasets():
    claim = "The contrast holds on Wikipedia, NLI and STS12 as well (appendix F)"
    contrasts = _contrasts(DATASETS, method="ig", quantity="kl")
    if contrasts is None:
        return _missing(claim, "08_other_datasets", str(DATASETS.contrasts))
    if contrasts.empty:
        return _row(claim, "08_other_datasets", "no contrastive model with its base MLM in the roster",
                    "not testable offline", "The paper's pairs need the hub.")
    judged = judge_contrasts(contrasts.assign(comparison=contrasts["dataset"] + ": " + contrasts["comparison"]))
    return _row(claim, "08_other_datasets", judged["evidence"], judged["verdict"],
                RULE + " Every dataset's matched pair, corrected together.")


@claim("the paper's empirical claims")
def claim_figure3():
    claim = "Contrastive training raises nouns and lowers 'is' and '.', leaving 'a' and 'with' (Figure 3)"
    changes = WORD_WEIGHTS.word_changes.read_or_none()
    if changes is None:
        return _missing(claim, "07_word_weights", str(WORD_WEIGHTS.word_changes))
    if "change_low" not in changes:
        return _missing(claim, "07_word_weights", f"the intervals of {WORD_WEIGHTS.word_changes}")
    by_word = changes.set_index("word")
    hits, checked, rare = [], 0, []
    for direction, words in FIGURE3_READING.items():
        for w in words:
            if w not in by_word.index or pd.isna(by_word.loc[w, "change_low"]):
                rare.append(w)  # fewer than 3 occurrences: its change cannot be told from noise
                continue
            checked += 1
            low, high = float(by_word.loc[w, "change_low"]), float(by_word.loc[w, "change_high"])
            hits.append(low > 0 if direction == "raised" else high < 0 if direction == "lowered"
                        else low <= 0 <= high)
    if not checked:
        return _missing(claim, "07_word_weights", "the paper's example words (each seen at least 3 times)")
    share = sum(hits) / checked
    verdict = "reproduced" if share == 1 else "partly reproduced" if share >= 0.5 else "not reproduced"
    evidence = f"{sum(hits)} of {checked} of the paper's example words move as it reads"
    if rare:
        evidence += f" (seen fewer than 3 times, not judged: {', '.join(rare)})"
    return _row(claim, "07_word_weights", evidence, verdict,
                "Raised or lowered: the 95% interval of the word's mean paired change is above or below 0; about "
                "the same: the interval contains 0. The offline pair is supervised SimCSE against the self-trained "
                "MLM, a stand-in for the paper's BERT and unsupervised SimCSE-BERT.")


@claim("beyond the paper")
def claim_beyond_frequency():
    row = _table_claim("Contrastive encoders weigh informative words beyond frequency: the contrast on KL with "
                       "log-frequency held fixed (the book's question)", "06_regression", REGRESSION, "ig",
                       "kl|log_freq")
    row["why"] += (" KL and I = -log p(w) both grow as a word gets rarer; here r is the partial correlation of weight "
                   "and KL given log p(w) and β the KL slope with log p(w) held fixed, so a model that only weighs "
                   "rare words more cannot pass.")
    frequency = REGRESSION.frequency.read_or_none()
    if frequency is not None and row["verdict"] not in ("not measured",):
        t = frequency[frequency["method"] == "ig"]
        row["evidence"] += "; partial R² of KL given log-frequency: " + ", ".join(
            f"{r['model']} {r['partial_r2']:.2f} [{r['partial_r2_low']:.2f}, {r['partial_r2_high']:.2f}] (of "
            f"log-frequency given KL {r['partial_r2_control']:.2f})" for _, r in t.iterrows())
    return row


def claims_table() -> pd.DataFrame:
    """One row per claim of the paper: tier (:data:`TIERS`), claim, chapter, evidence, verdict, why."""
    return pd.DataFrame([{"tier": _tier(f), **f()} for f in CLAIMS])
