"""The verdicts in words (analyse layer), written from the tables, never typed: the closing chapter's bottom line and
its claims table with links (:func:`bottom_line`, :func:`markdown_table`, :func:`short_claim`), chapter 05's
sentence on what the offline pair stands for (:func:`stand_in_sentence`) and chapter 08's finding over datasets
(:func:`datasets_in_words`). The claims and their rules are :mod:`helpers.verdicts`.
"""
from __future__ import annotations

import re

import pandas as pd

from .results import FINETUNE
from .rules import VERDICTS, judge_contrasts, slope_positive
from .verdicts import TIERS

__all__ = ["short_claim", "bottom_line", "stand_in_sentence", "datasets_in_words", "markdown_table"]


def short_claim(claim: str) -> str:
    """A claim without its trailing parenthesis (the source: "(Table 1)", "(toy corpus)")."""
    return re.sub(r"\s*\([^()]*\)$", "", str(claim))


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def _count(rows: pd.DataFrame) -> str:
    """'1 reproduced, 2 partly, 1 not' from the verdict column."""
    counts = rows["verdict"].value_counts()
    words = {"reproduced": "reproduced", "partly reproduced": "partly", "not reproduced": "not",
             "not testable offline": "not testable offline", "not measured": "not measured"}
    return ", ".join(f"{int(counts[v])} {words[v]}" for v in VERDICTS if counts.get(v, 0))


def bottom_line(claims: pd.DataFrame) -> str:
    """The closing chapter's bottom line in plain words, written from the claims table (never typed): what the
    theory checks say, how the paper's empirical claims fared offline, the consistency checks, and whether a
    verdict hangs on a setting."""
    by_tier = {t: claims[claims["tier"] == t] for t in TIERS}
    theory, empirical, consistency, beyond = by_tier.values()
    good = {"reproduced", "partly reproduced"}
    sentences = []
    if len(theory):
        held = theory[theory["verdict"].isin(good)]
        sentences.append(f"**The theory** ({_n(len(theory), 'check')}: {_count(theory)}). Those that hold, at least in "
                         "part: " + ("; ".join(f"“{short_claim(c)}”" for c in held["claim"]) or "none")
                         + ". The bound is true by construction, so its row confirms the code, not the world.")
    if len(empirical):
        tested = empirical[empirical["verdict"].isin(good | {"not reproduced"})]
        full = int((tested["verdict"] == "reproduced").sum())
        part = int((tested["verdict"] == "partly reproduced").sum())
        sentences.append(f"**The paper's empirical claims** ({_n(len(empirical), 'claim')}): on the book's offline models, "
                         f"of the {len(tested)} that can be tested, {full} reproduced in full, {part} in part and "
                         f"{len(tested) - full - part} not at all.")
    if len(consistency):
        sentences.append(f"**Consistency checks**, the same contrast under SHAP, on I and on other datasets "
                         f"({_n(len(consistency), 'check')}): {_count(consistency)}.")
    table1 = claims[claims["claim"].str.contains("(Table 1)", regex=False)]
    if len(beyond) and len(table1):
        sentences.append(f"**Beyond frequency** (the book's question, not the paper's): the paper's own contrast on KL "
                         f"alone is *{table1['verdict'].iloc[0]}*; with log-frequency held fixed it is "
                         f"*{beyond['verdict'].iloc[0]}*, so " + (
                             "the encoders weigh informative words, not only rare ones."
                             if beyond["verdict"].iloc[0] in good else
                             "what the KL-only contrast shows cannot be told apart from weighing rare words."
                             if table1["verdict"].iloc[0] in good else
                             "neither reading is supported on this pair."))
    stand_in = stand_in_sentence()
    if stand_in:
        sentences.append("**What the offline pair stands for:** " + stand_in)
    depends = claims[claims["why"].str.contains("depends on the IG baseline", regex=False)]
    if len(depends):
        sentences.append("**A setting decides a verdict:** " + "; ".join(short_claim(c) for c in depends["claim"])
                         + ": the verdict changes with the IG baseline (the paper's PAD against the others), so read "
                           "those rows with their per-baseline evidence.")
    untestable = claims[claims["verdict"] == "not testable offline"]
    if len(untestable):
        sentences.append(f"{len(untestable)} claim(s) need the paper's checkpoints and are not testable offline.")
    return " ".join(sentences)


def stand_in_sentence(table: pd.DataFrame | None = None) -> str:
    """What the offline pair can and cannot stand for, in words, from chapter 05's ``stand_in.csv`` (or the
    ``table`` given); "" when chapter 05 has not written it."""
    table = FINETUNE.stand_in.read_or_none() if table is None else table
    if table is None or table.empty:
        return ""
    r = table.iloc[0]
    helps = r["pretraining_helps"]
    said = (f"SimCSE from this MLM reaches STS-B Spearman {r['simcse_from_mlm_stsb']:.3f} against "
            f"{r['simcse_from_random_stsb']:.3f} from random weights (difference {r['stsb_diff']:+.3f} "
            f"[{r['stsb_diff_low']:+.3f}, {r['stsb_diff_high']:+.3f}])")
    helps = None if pd.isna(helps) else str(helps) == "True"
    reading = ("whether its pre-training helps SimCSE could not be measured" if helps is None else
               "its pre-training gives SimCSE a useful start, as BERT's does, so the pair models BERT → SimCSE in "
               "that respect, on a far smaller scale" if helps else
               "its pre-training does not give SimCSE a useful start, so the pair is not a model of BERT → SimCSE: "
               "the verdicts above are verdicts on a small pair whose pre-training does not help")
    return (f"An MLM pre-trained on {int(r['corpus_sentences']):,} local "
            f"sentences ({int(r['corpus_words']):,} words; BERT read billions), masked-token accuracy "
            f"{r['masked_accuracy']:.1%} against {r['unigram_accuracy']:.1%} for the unigram baseline (perplexity "
            f"{r['perplexity']:.0f} against {r['unigram_perplexity']:.0f}); {said}: {reading}.")


_DATASET_NAMES = {"wiki": "Wikipedia", "nli": "NLI", "sts12": "STS12", "stsb": "STS-B"}


def _dataset_name(dataset: str) -> str:
    return _DATASET_NAMES.get(dataset, dataset)


def _listing(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def datasets_in_words(table: pd.DataFrame, contrasts: pd.DataFrame, method: str = "ig",
                      quantity: str = "kl") -> str:
    """Chapter 08's finding in plain words, written from its two tables (never typed).

    For each matched pair, the datasets are sorted by what the signed association r = sign(β)·√R² and the
    contrastive model's own slope say together: the contrastive model weights informative words more than its
    base *and* has a positive slope of its own (the paper's claim); its r rises but its own slope is not positive
    (informative words still do not weigh more than frequent ones: "closer to KL" would mislead here);
    its r falls; or the 95% paired interval of Δr includes zero. Then how many datasets hold after the correction
    (:func:`helpers.rules.judge_contrasts`), which model has the highest R² among positive slopes on each dataset,
    and how high the random-initialisation control gets (the floor the subword merge gives)."""
    what = {"kl": "KL", "self_info": "I"}.get(quantity, "KL beyond frequency")
    sentences = []
    t = contrasts[(contrasts["method"] == method) & (contrasts["quantity"] == quantity)]
    for comparison, rows in t.groupby("comparison", sort=False):
        rows = rows.reset_index(drop=True)
        corrected = judge_contrasts(rows)["verdicts"]
        groups: dict[str, list] = {"up, positive": [], "up, not positive": [], "down": [], "same": []}
        for _, r in rows.iterrows():
            key = ("same" if r["r_diff_low"] <= 0 <= r["r_diff_high"] else "down" if r["r_diff_high"] < 0
                   else "up, positive" if slope_positive(r) else "up, not positive")
            groups[key].append(r)
        model, base = rows.loc[0, "model"], rows.loc[0, "base"]
        names = {k: _listing([_dataset_name(r["dataset"]) for r in v]) for k, v in groups.items() if v}
        parts = []
        if "up, positive" in names:
            parts.append(f"on {names['up, positive']} it weights informative words more than its base does, with a "
                         f"positive slope of its own, as the paper says")
        if "up, not positive" in names:
            slopes = ", ".join(f"{r['beta_model']:+.2f}" for r in groups["up, not positive"])
            parts.append(f"on {names['up, not positive']} its weights move towards {what} (r rises) but its own slope "
                         f"is not positive (β {slopes}): informative words still do not weigh more than frequent "
                         "ones")
        if "down" in names:
            parts.append(f"on {names['down']} it weights informative words less than its base does")
        if "same" in names:
            parts.append(f"on {names['same']} the two cannot be told apart (the interval of Δr includes zero)")
        held = sum(v in {"reproduced", "partly reproduced"} for v in corrected)
        sentences.append(f"{model} against {base}: " + "; ".join(parts)
                         + f". Corrected for testing {_n(len(rows), 'dataset')} at once, the paper's direction holds "
                           f"on {held} of them.")
    fits = table[(table["method"] == method) & (table["quantity"] == quantity)].dropna(subset=["r2", "beta"])
    rising = fits[fits["beta"] > 0]
    if len(rising):
        best = rising.loc[rising.groupby("dataset", sort=False)["r2"].idxmax()]
        leaders = best["model"].unique()
        if len(leaders) == 1:
            sentences.append(f"On every dataset the model whose weights rise with {what} most consistently (the "
                             f"highest R² among positive slopes) is {leaders[0]} (R² {best['r2'].min():.2f} to "
                             f"{best['r2'].max():.2f}).")
        else:
            sentences.append(f"The model whose weights rise with {what} most consistently (the highest R² among "
                             "positive slopes): " + "; ".join(f"{_dataset_name(r['dataset'])}, {r['model']} (R² "
                                                             f"{r['r2']:.2f})" for _, r in best.iterrows()) + ".")
    control = fits[fits["model"].str.startswith("random init")]
    if len(control):
        sentences.append(f"The random-initialisation control, which learnt nothing, reaches R² up to "
                         f"{control['r2'].max():.2f}: that much comes from the merge of subword tokens alone.")
    return " ".join(sentences) or "No matched pair and no fit in this build."


def markdown_table(claims: pd.DataFrame) -> str:
    """The claims as a MyST table with a ``{doc}`` link to each chapter (for a ``{glue:md}`` with ``:format: myst``)."""
    def esc(text):
        return str(text).replace("|", "\\|").replace("\n", " ")

    lines = ["| claim | evidence in this build | verdict | chapter |", "|---|---|---|---|"]
    for tier in (TIERS if "tier" in claims else [None]):
        rows = claims if tier is None else claims[claims["tier"] == tier]
        if tier is not None and len(rows):
            lines.append(f"| ***{tier[0].upper() + tier[1:]}*** | | | |")
        for _, r in rows.iterrows():
            lines.append(f"| {esc(r['claim'])} | {esc(r['evidence'])} {esc(r['why'])} | **{r['verdict']}** | "
                         f"{{doc}}`{r['chapter'][:2]} <{r['chapter']}>` |")
    return "\n".join(lines)
