"""What the offline pair is a model of (study layer): the self-trained MLM measured as a language model, its
corpus counted, and whether its pre-training gives SimCSE a useful start (chapter 05; the closing chapter).

The book cannot download BERT, so chapters 05-12 judge the paper's contrast on a pair trained here: a small
MLM pre-trained on the local sentences and its SimCSE fine-tune. Whether that pair *stands in* for BERT ->
SimCSE is an empirical question with three parts:

* how good a language model the MLM is: masked-token accuracy and perplexity on held-out sentences, against
  the unigram baseline that knows only how frequent each token is (:func:`mlm_quality`);
* how much it read: the corpus in sentences and words (:func:`corpus_size`);
* whether pre-training helps the sentence encoder at all: SimCSE's STS-B Spearman from the MLM against from
  random weights, with a paired bootstrap interval of the difference over the STS-B pairs
  (:func:`sts_difference`). If it does not, the pair is not a model of BERT -> SimCSE, and every verdict on it
  must say so.

:func:`budget_curve` measures the last part across pre-training budgets (``benchmarks/mlm_budget.py``).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from .precision import DEFAULT as DEFAULT_PRECISION

__all__ = ["corpus_size", "mlm_quality", "sts_difference", "stand_in_row", "STAND_IN_COLUMNS", "budget_curve",
           "BUDGET_COLUMNS", "BUDGET_RECORD", "recorded_budget_curve", "budget_in_words"]


def corpus_size(corpus) -> dict:
    """``sentences`` and ``words`` (the book's word units, :func:`helpers.units.split_words`) of a corpus."""
    from .units import sentence_texts, split_words

    texts = sentence_texts(corpus)
    return {"sentences": len(texts), "words": int(sum(len(split_words(t)) for t in texts))}


@torch.no_grad()
def mlm_quality(checkpoint, texts, train_texts, n_sentences: int = 1000, mask_probability: float = 0.15,
                batch_size: int = 64, seed: int = 0) -> dict:
    """The MLM as a language model on held-out ``texts``: ``masked_accuracy`` and ``perplexity`` (exp of the mean
    cross-entropy) at ``mask_probability`` of the real tokens replaced by [MASK] (fixed by ``seed``), against the
    ``unigram`` baseline estimated on ``train_texts`` (every masked token predicted from its corpus frequency,
    add-one smoothed: ``unigram_accuracy`` is the share of masked tokens that are the most frequent token).
    ``masked_tokens``: how many tokens were scored."""
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    from .training import mlm_head
    from .units import sentence_texts

    texts = sentence_texts(texts)
    rng = np.random.default_rng(seed)
    if len(texts) > n_sentences:
        texts = [texts[i] for i in np.sort(rng.choice(len(texts), n_sentences, replace=False))]
    tokenizer = AutoTokenizer.from_pretrained(str(checkpoint))
    model = AutoModelForMaskedLM.from_pretrained(str(checkpoint)).eval()
    counts = np.ones(tokenizer.vocab_size)  # add-one smoothing
    for start in range(0, len(train_texts), 512):
        ids = tokenizer(list(train_texts[start:start + 512]), add_special_tokens=False)["input_ids"]
        np.add.at(counts, np.concatenate([np.asarray(i, int) for i in ids if i]) if ids else [], 1)
    log_unigram = np.log(counts / counts.sum())
    top = int(np.argmax(counts))
    gen = torch.Generator().manual_seed(seed)
    correct = unigram_correct = n = 0
    nll = unigram_nll = 0.0
    special = set(tokenizer.all_special_ids)
    for start in range(0, len(texts), batch_size):
        batch = tokenizer(texts[start:start + batch_size], padding=True, truncation=True, max_length=64,
                          return_tensors="pt")
        ids = batch["input_ids"]
        real = batch["attention_mask"].bool() & ~torch.isin(ids, torch.tensor(sorted(special)))
        chosen = (torch.rand(ids.shape, generator=gen) < mask_probability) & real
        if not chosen.any():
            continue
        labels = ids[chosen]
        masked = ids.masked_fill(chosen, tokenizer.mask_token_id)
        hidden = model.base_model(input_ids=masked, attention_mask=batch["attention_mask"]).last_hidden_state
        logits = mlm_head(model)(hidden[chosen]).float()
        nll += float(torch.nn.functional.cross_entropy(logits, labels, reduction="sum"))
        correct += int((logits.argmax(-1) == labels).sum())
        unigram_nll -= float(log_unigram[labels.numpy()].sum())
        unigram_correct += int((labels == top).sum())
        n += int(labels.numel())
    if not n:
        raise ValueError("no token was masked: pass more (or longer) texts.")
    return {"masked_accuracy": correct / n, "perplexity": float(np.exp(nll / n)),
            "unigram_accuracy": unigram_correct / n, "unigram_perplexity": float(np.exp(unigram_nll / n)),
            "masked_tokens": n, "held_out_sentences": len(texts)}


def _cosines(checkpoint, pooling: str, pairs: pd.DataFrame) -> np.ndarray:
    from .encoders import load_encoder
    from .sts import pair_cosines

    encoder = load_encoder(str(checkpoint), pooling=pooling)
    return pair_cosines(encoder.encode(pairs["text"].tolist(), batch_size=128))


def sts_difference(checkpoint_a, checkpoint_b, stsb: pd.DataFrame, pooling: str = "mean", n_boot: int = 1000,
                   seed: int = 0, level: float = 0.95) -> dict:
    """STS Spearman of two encoders on the same pairs and the paired bootstrap interval of their difference
    (pairs resampled once for both): ``spearman_a``, ``spearman_b``, ``diff`` (a - b), ``diff_low``,
    ``diff_high``. ``stsb``: the loader's frame (consecutive ``side`` 0/1 rows form a pair with a ``score``)."""
    from scipy.stats import rankdata

    from .config import check_count

    check_count("n_boot", n_boot, 1)
    pairs = stsb.sort_values(["pair_id", "side"])
    complete = pairs.groupby("pair_id")["side"].transform("size") == 2
    if not complete.all():
        raise ValueError(f"stsb holds {int((~complete).sum())} sentences without their pair: pass whole pairs (the "
                         "loader's frame, or a sample of pair_ids).")
    if len(pairs) < 20:
        raise ValueError(f"an STS Spearman on {len(pairs) // 2} pairs says nothing: pass at least 10 pairs.")
    gold = pairs["score"].to_numpy(float)[0::2]
    ca, cb = _cosines(checkpoint_a, pooling, pairs), _cosines(checkpoint_b, pooling, pairs)

    def spearman(x, y):
        rx, ry = rankdata(x, axis=-1), rankdata(y, axis=-1)
        rx, ry = rx - rx.mean(-1, keepdims=True), ry - ry.mean(-1, keepdims=True)
        return (rx * ry).sum(-1) / np.sqrt((rx ** 2).sum(-1) * (ry ** 2).sum(-1))

    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(gold), size=(n_boot, len(gold)))
    boot = spearman(ca[idx], gold[idx]) - spearman(cb[idx], gold[idx])
    tail = (1 - level) / 2
    low, high = np.nanquantile(boot, [tail, 1 - tail])
    sa, sb = float(spearman(ca, gold)), float(spearman(cb, gold))
    return {"spearman_a": sa, "spearman_b": sb, "diff": sa - sb, "diff_low": float(low), "diff_high": float(high)}


STAND_IN_COLUMNS = ["corpus_sentences", "corpus_words", "mlm_steps", "mlm_hidden", "mlm_layers", "masked_accuracy",
                    "perplexity", "unigram_accuracy", "unigram_perplexity", "masked_tokens", "simcse_from_mlm_stsb",
                    "simcse_from_random_stsb", "stsb_diff", "stsb_diff_low", "stsb_diff_high", "pretraining_helps"]


def stand_in_row(mlm, simcse_from_mlm, simcse_from_random, corpus, held_out, stsb: pd.DataFrame, pooling: str = "mean",
                 settings: dict | None = None, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Chapter 05's table of the stand-in (:data:`STAND_IN_COLUMNS`): the corpus, the MLM's quality against the
    unigram baseline, and SimCSE's STS-B Spearman from the MLM against from random weights, with the interval
    of the difference; ``pretraining_helps``: that interval lies above 0 (None when it is not a number)."""
    size, quality = corpus_size(corpus), mlm_quality(mlm, held_out, corpus, seed=seed)
    diff = sts_difference(simcse_from_mlm, simcse_from_random, stsb, pooling, n_boot=n_boot, seed=seed)
    s = settings or {}
    row = {"corpus_sentences": size["sentences"], "corpus_words": size["words"], "mlm_steps": s.get("mlm_steps"),
           "mlm_hidden": s.get("mlm_hidden"), "mlm_layers": s.get("mlm_layers"), **quality,
           "simcse_from_mlm_stsb": diff["spearman_a"], "simcse_from_random_stsb": diff["spearman_b"],
           "stsb_diff": diff["diff"], "stsb_diff_low": diff["diff_low"], "stsb_diff_high": diff["diff_high"],
           "pretraining_helps": _helps(diff)}
    return pd.DataFrame([row], columns=STAND_IN_COLUMNS)


def _helps(diff: dict):
    """True when the interval of the difference lies above 0, False when not, None when it is not a number (a
    constant encoder): never a "does not help" from missing evidence."""
    low, high = diff["diff_low"], diff["diff_high"]
    return None if not (np.isfinite(low) and np.isfinite(high)) else bool(low > 0)


BUDGET_COLUMNS = ["mlm_steps", "mlm_hidden", "mlm_layers", "precision", "mlm_minutes", "masked_accuracy", "perplexity",
                  "unigram_perplexity", "simcse_from_mlm_stsb", "simcse_from_random_stsb", "stsb_diff", "stsb_diff_low",
                  "stsb_diff_high", "pretraining_helps"]


def budget_curve(budgets, data_dir=None, simcse_steps: int = 150, batch_size: int = 64, precision: str = DEFAULT_PRECISION,
                 n_boot: int = 1000, seed: int = 0, progress: bool = True) -> pd.DataFrame:
    """SimCSE's STS-B Spearman from the MLM and from random weights across MLM pre-training budgets.

    ``budgets``: (steps, hidden, layers) triples; each MLM is pre-trained on the book's local corpus (in
    ``precision``), fine-tuned with supervised SimCSE for ``simcse_steps`` as chapter 05 does, and compared
    with SimCSE of the same architecture from random weights (one run per width). One row per budget with
    :data:`BUDGET_COLUMNS`. Every run is cached by its settings, so a budget measured once costs nothing later.
    """
    from .data import load_sentences
    from .data import nli_triplets, pretraining_corpus
    from .training import MLMConfig, pretrain_mlm, run_minutes, simcse

    corpus = pretraining_corpus(data_dir)
    triplets = nli_triplets(data_dir)
    stsb = load_sentences("stsb", "validation", data_dir=data_dir)
    rows, random_runs = [], {}
    for steps, hidden, layers in budgets:
        config = MLMConfig(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=max(1, hidden // 64),
                           intermediate_size=4 * hidden)
        mlm = pretrain_mlm(corpus, steps=steps, batch_size=batch_size, config=config, seed=seed, progress=progress,
                           precision=precision)
        tuned = simcse(mlm, objective="sup", steps=simcse_steps, batch_size=batch_size, triplets=triplets,
                       sentences=corpus, save_steps=(), seed=seed, progress=progress, precision=precision)
        if (hidden, layers) not in random_runs:
            random_runs[(hidden, layers)] = simcse(mlm, objective="sup", steps=simcse_steps, batch_size=batch_size,
                                                   triplets=triplets, sentences=corpus, save_steps=(), seed=seed,
                                                   progress=progress, init_random=True, precision=precision)
        diff = sts_difference(tuned[simcse_steps], random_runs[(hidden, layers)][simcse_steps], stsb, "mean",
                              n_boot=n_boot, seed=seed)
        quality = mlm_quality(mlm, stsb["text"], corpus, seed=seed)
        rows.append({"mlm_steps": steps, "mlm_hidden": hidden, "mlm_layers": layers, "precision": precision,
                     "mlm_minutes": run_minutes(mlm), "masked_accuracy": quality["masked_accuracy"],
                     "perplexity": quality["perplexity"], "unigram_perplexity": quality["unigram_perplexity"],
                     "simcse_from_mlm_stsb": diff["spearman_a"], "simcse_from_random_stsb": diff["spearman_b"],
                     "stsb_diff": diff["diff"], "stsb_diff_low": diff["diff_low"], "stsb_diff_high": diff["diff_high"],
                     "pretraining_helps": _helps(diff)})
    return pd.DataFrame(rows, columns=BUDGET_COLUMNS)


#: Where ``benchmarks/mlm_budget.py`` records the curve (one JSON line per budget, a measurement of this machine).
BUDGET_RECORD = "benchmarks/mlm_budget_cpu.jsonl"


def recorded_budget_curve(path=None) -> pd.DataFrame:
    """The recorded budget curve (:data:`BUDGET_RECORD`): the rows of its newest run, :data:`BUDGET_COLUMNS` plus
    ``commit`` and ``date``; an empty table when it has not been measured."""
    import json
    from pathlib import Path

    from .config import ROOT

    path = Path(path) if path else ROOT / BUDGET_RECORD
    if not path.is_file():
        return pd.DataFrame(columns=BUDGET_COLUMNS)
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    rows = [r for r in rows if "stsb_diff" in r]
    if not rows:
        return pd.DataFrame(columns=BUDGET_COLUMNS)
    newest = rows[-1].get("run")
    table = pd.DataFrame([r for r in rows if r.get("run") == newest])
    return table.sort_values(["mlm_hidden", "mlm_steps"]).reset_index(drop=True)


def _hurts(curve: pd.DataFrame) -> str:
    """The budgets whose whole interval lies below zero: there the MLM's start is worse than random weights."""
    below = curve[curve["stsb_diff_high"] < 0]
    if below.empty:
        return ""
    if len(below) < len(curve):
        return (f"; at {len(below)} of the {len(curve)} budgets the whole interval lies below zero: there SimCSE "
                f"starts worse from the MLM than from random weights")
    return ("; at every budget the whole interval lies below zero: SimCSE starts worse from this MLM than from "
            "random weights, and the largest budget measured did not close the gap")


def budget_in_words(curve: pd.DataFrame) -> str:
    """What the budget curve says, in words written from it (never typed)."""
    if curve is None or curve.empty:
        return ("not measured on this machine yet (python benchmarks/mlm_budget.py measures it; each budget costs "
                "one MLM pre-training)")
    helps = curve[curve["pretraining_helps"].astype(str) == "True"]
    span = (f"{int(curve['mlm_steps'].min()):,} to {int(curve['mlm_steps'].max()):,} steps, widths "
            f"{', '.join(str(int(w)) for w in sorted(curve['mlm_hidden'].unique()))}")
    if helps.empty:
        best = curve.loc[curve["stsb_diff"].idxmax()]
        return (f"at none of the {len(curve)} budgets measured ({span}) does SimCSE from the MLM beat SimCSE from "
                f"random weights with an interval above zero; the closest is {int(best['mlm_steps']):,} steps at width "
                f"{int(best['mlm_hidden'])} (difference {best['stsb_diff']:+.3f} [{best['stsb_diff_low']:+.3f}, "
                f"{best['stsb_diff_high']:+.3f}])" + _hurts(curve))
    first = helps.sort_values(["mlm_minutes", "mlm_steps"]).iloc[0]
    return (f"pre-training helps from {int(first['mlm_steps']):,} steps at width {int(first['mlm_hidden'])} "
            f"(difference {first['stsb_diff']:+.3f} [{first['stsb_diff_low']:+.3f}, {first['stsb_diff_high']:+.3f}]; "
            f"{len(helps)} of the {len(curve)} budgets measured, {span}, help)")
