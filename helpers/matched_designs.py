"""The paper's contrast offline: matched designs of a masked-word model and a contrastive one (chapter 05).

The paper's headline compares each MLM with its contrastive fine-tune. Offline there is no
pre-trained BERT, so this module measures every matched design the book can afford, with the
same sentences, the same IG settings and bootstrap intervals:

* ``long``: the self-trained MLM fine-tuned with supervised and with unsupervised SimCSE for
  longer than the chapter's default, beside the same MLM trained as long with its own loss
  (the continued-MLM control), measured at several checkpoints;
* ``reverse``: all-MiniLM-L6-v2, a fully trained contrastive encoder, trained further with the
  MLM loss (a fresh MLM head tied to its input embeddings), then with supervised SimCSE again;
* ``bow``: the theory's own setting on real text: bag-of-words encoders (mean-pooled word
  vectors, one vector per word of the book's word units) trained from one initialisation with a
  masked-word objective (CBOW) and contrastively (word-dropout positives; NLI positives).

The bag-of-words encoders themselves are :mod:`helpers.bow_encoders`.

Every run is cached in ``.cache/runs/``; with ``train=False`` a design is measured only when its
runs are already there, so a chapter can show the long runs without paying for them.
:func:`design_verdicts` judges each comparison by the book's one rule (:mod:`helpers.rules`: a paired bootstrap
of the two sides' word weights on the same sentences).
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from .bow_encoders import BOW_OBJECTIVES, bow_init, bow_sts, bow_vocabulary, bow_weights, train_sentence_bow
from .config import check_count

__all__ = ["DESIGN_COLUMNS", "long_design", "reverse_design", "bow_design", "COMPARISONS", "chapter_verdicts", "default_design_rows",
           "default_design_weights", "design_verdicts", "DESIGNS", "run_designs", "main"]

DESIGN_COLUMNS = ["design", "objective", "steps", "r2", "r2_low", "r2_high", "beta", "beta_low", "beta_high",
                  "stsb_spearman", "minutes"]


def _design_row(design: str, objective: str, step: int, m: dict, minutes: float) -> dict:
    return {"design": design, "objective": objective, "steps": int(step), "r2": m["r2_kl"],
            "r2_low": m["r2_kl_low"], "r2_high": m["r2_kl_high"], "beta": m["beta_kl"],
            "beta_low": m["beta_kl_low"], "beta_high": m["beta_kl_high"], "stsb_spearman": m["stsb_spearman"],
            "minutes": minutes}


def _measure_runs(design, runs, sample, info, stsb, pooling, method, seed, measured, weights=None):
    """Measure every checkpoint of ``runs`` ({objective: {step: path}}); ``measured`` shares step-0 rows;
    ``weights`` (a dict) collects each checkpoint's word weights under (design, objective, step)."""
    from .finetuning import measure_checkpoint
    from .training import run_minutes

    rows = []
    for objective, ckpts in runs.items():
        for step, path in ckpts.items():
            key = str(Path(path).resolve()) if step else f"init:{design}"
            if key not in measured:
                measured[key] = measure_checkpoint(path, pooling, sample, info, stsb, method, seed)
            rows.append(_design_row(design, objective, step, measured[key][0], run_minutes(path)))
            if weights is not None:
                weights[_key(design, objective, step)] = measured[key][1]
    return rows


def long_design(mlm, sample, info, stsb, sentences, triplets, steps: int = 750, save_steps=(0, 150, 300, 750),
                objectives=("sup", "unsup", "mlm"), pooling: str = "mean", train: bool = False,
                batch_size: int = 64, lr: float = 1e-4, temperature: float = 0.05, method=None, seed: int = 0,
                progress: bool = True, weights=None) -> pd.DataFrame:
    """Design 1: SimCSE (``sup``, ``unsup``) and the continued MLM (``mlm``) from the self-trained MLM for
    ``steps`` steps, measured at ``save_steps``. Runs missing from the cache are trained only with ``train``."""
    from .training import simcse

    check_count("steps", steps, 1)
    runs = {}
    for objective in objectives:
        if objective not in ("sup", "unsup", "mlm"):
            raise ValueError(f"objectives must be among sup, unsup, mlm; got {objective!r}.")
        ckpts = simcse(mlm, objective="unsup" if objective == "mlm" else objective, pooling=pooling, steps=steps,
                       batch_size=batch_size, lr=lr, temperature=temperature, save_steps=save_steps,
                       sentences=sentences, triplets=triplets, seed=seed, progress=progress,
                       continue_mlm=objective == "mlm", train=train)
        if ckpts:
            runs[objective] = ckpts
    rows = _measure_runs("long", runs, sample, info, stsb, pooling, method, seed, {}, weights)
    return pd.DataFrame(rows, columns=DESIGN_COLUMNS)


def reverse_design(sample, info, stsb, sentences, triplets, encoder: str = "all-MiniLM-L6-v2", steps: int = 200,
                   save_steps=(0, 100, 200), train: bool = False, batch_size: int = 32, lr: float = 5e-5,
                   temperature: float = 0.05, method=None, seed: int = 0, progress: bool = True,
                   weights=None) -> pd.DataFrame:
    """Design 4: a trained contrastive encoder continued with the MLM loss (objective ``mlm``), then with
    supervised SimCSE from the last MLM checkpoint (objective ``mlm_then_sup``); step 0 of the first run is
    the encoder as published."""
    from .training import simcse

    mlm = simcse(encoder, objective="unsup", pooling="mean", steps=steps, batch_size=batch_size, lr=lr,
                 save_steps=save_steps, sentences=sentences, seed=seed, progress=progress, continue_mlm=True,
                 train=train)
    runs = {}
    if mlm:
        runs["mlm"] = mlm
        back = simcse(mlm[steps], objective="sup", pooling="mean", steps=steps, batch_size=batch_size, lr=lr,
                      temperature=temperature, save_steps=save_steps, triplets=triplets, seed=seed,
                      progress=progress, train=train)
        if back:
            runs["mlm_then_sup"] = {s + steps: p for s, p in back.items() if s > 0}
    rows = _measure_runs("reverse", runs, sample, info, stsb, "mean", method, seed, {}, weights)
    return pd.DataFrame(rows, columns=DESIGN_COLUMNS)


def bow_design(sample, info, stsb, sentences, triplets, objectives=BOW_OBJECTIVES, min_count: int = 3,
               dim: int = 64, steps: int = 1000, batch_size: int = 256, lr: float = 0.01, n_boot: int = 200,
               seed: int = 0, progress: bool = True, train: bool = True, weights=None) -> pd.DataFrame:
    """Design 3: bag-of-words encoders from one initialisation, one per objective, and that initialisation
    itself (objective ``init``, step 0), regressed like every other design (``train=False``: only the
    objectives already in the cache)."""
    from .regression import regress

    vocab = bow_vocabulary(sentences, min_count)
    start = bow_init(len(vocab), dim, seed).numpy()
    trained = {}
    for o in objectives:
        got = train_sentence_bow(sentences, o, vocab, triplets, dim, steps, batch_size, lr, seed=seed, progress=progress,
                                 train=train)
        if got is not None:
            trained[o] = (*got, steps)
    if not trained:
        return pd.DataFrame(columns=DESIGN_COLUMNS)
    rows = []
    for objective, (vectors, minutes, step) in {"init": (start, 0.0, 0), **trained}.items():
        w = bow_weights(vectors, vocab, sample)
        if weights is not None:
            weights[_key("bow", objective, step)] = w
        fit = regress(w, info, "kl", n_boot=n_boot, seed=seed)
        m = {"r2_kl": fit["r2"], "r2_kl_low": fit["r2_low"], "r2_kl_high": fit["r2_high"], "beta_kl": fit["beta"],
             "beta_kl_low": fit["beta_low"], "beta_kl_high": fit["beta_high"],
             "stsb_spearman": bow_sts(vectors, vocab, stsb)}
        rows.append(_design_row("bow", objective, step, m, minutes))
    return pd.DataFrame(rows, columns=DESIGN_COLUMNS)


# --------------------------------------------------------------------------- verdicts
def _key(design: str, objective: str, step) -> tuple:
    return (design, objective, int(step))


#: The comparisons each design makes: (label, (objective, step) of the MLM side, (objective, step) of the
#: contrastive side); ``last`` is the run's final step.
#: SimCSE against the MLM it started from and against the MLM trained as long: the default runs and the long
#: design compare the same sides (at their own lengths).
_SIMCSE_SIDES = [("SimCSE sup vs the MLM it started from", ("sup", 0), ("sup", "last")),
                 ("SimCSE unsup vs the MLM it started from", ("unsup", 0), ("unsup", "last")),
                 ("SimCSE sup vs the MLM trained as long", ("mlm", "last"), ("sup", "last")),
                 ("SimCSE unsup vs the MLM trained as long", ("mlm", "last"), ("unsup", "last"))]
COMPARISONS = {
    "default": _SIMCSE_SIDES,
    "long": _SIMCSE_SIDES,
    "reverse": [("MiniLM vs MiniLM after MLM training (reverse)", ("mlm", "last"), ("mlm", 0)),
                ("SimCSE again vs MiniLM after MLM training", ("mlm", "last"), ("mlm_then_sup", "last"))],
    "bow": [("contrastive (dropout) vs masked-word (CBOW)", ("cbow", "last"), ("dropout", "last")),
            ("contrastive (NLI) vs masked-word (CBOW)", ("cbow", "last"), ("nli", "last"))],
}


def default_design_rows(trajectory: pd.DataFrame) -> pd.DataFrame:
    """The chapter's own runs (``finetuning.finetune_runs``'s trajectory) as rows of the design table (design
    ``default``): objective ``sup``/``unsup`` for SimCSE from the MLM, ``mlm`` for the continued MLM,
    ``random_<objective>`` for SimCSE from random initialisation."""
    from .training import run_minutes

    rows = []
    for _, r in trajectory.iterrows():
        objective = {"mlm_then_simcse": r["objective"], "mlm_only": "mlm"}.get(r["run"], f"random_{r['objective']}")
        minutes = run_minutes(r["checkpoint"]) if r["step"] else 0.0
        rows.append(_design_row("default", objective, r["step"], r, minutes))
    return pd.DataFrame(rows, columns=DESIGN_COLUMNS)


def default_design_weights(weights: pd.DataFrame) -> dict:
    """{(``default``, objective, step): word weights} from ``finetuning.finetune_runs``'s weights (the objectives of
    :func:`default_design_rows`)."""
    out = {}
    for (run, objective, step), w in weights.groupby(["run", "objective", "step"], sort=False):
        name = {"mlm_then_simcse": objective, "mlm_only": "mlm"}.get(run, f"random_{objective}")
        out[_key("default", name, step)] = w.drop(columns=["run", "objective", "step"]).reset_index(drop=True)
    return out


def chapter_verdicts(default_contrasts: pd.DataFrame, designs: pd.DataFrame, weights: dict, info: pd.DataFrame,
                     seed: int = 0) -> pd.DataFrame:
    """Chapter 05's verdict table: its own runs' comparisons (``default_contrasts``, :func:`design_verdicts` of
    :func:`default_design_rows`) and every other design's in ``designs``, each row's verdict Holm-corrected within
    its family (the chapter's own comparisons; the other designs together), as
    :func:`helpers.rules.corrected_verdicts` corrects one claim's rows."""
    from .rules import corrected_verdicts

    other = designs[designs["design"] != "default"]
    table = pd.concat([default_contrasts, design_verdicts(other, weights, info, seed=seed)], ignore_index=True)
    table["verdict"] = corrected_verdicts(table, table["design"].eq("default").map({True: "default",
                                                                                   False: "designs"}))
    return table


def design_verdicts(designs: pd.DataFrame, weights: dict, info: pd.DataFrame, n_boot: int = 1000,
                    seed: int = 0) -> pd.DataFrame:
    """Every comparison of :data:`COMPARISONS` whose two sides were measured, judged by the book's one rule
    (:func:`helpers.rules.paired_contrast` on the two sides' word weights; ``weights``: {(design, objective,
    step): word weights}, as :func:`run_designs` and :func:`default_design_weights` collect them). One row per
    comparison: ``design, comparison``, the two sides' R², β and STS-B Spearman, and the contrast's columns
    (:data:`helpers.rules.CONTRAST_COLUMNS`, ``verdict`` among them)."""
    from .rules import paired_contrast

    out = []
    for design, comparisons in COMPARISONS.items():
        d = designs[designs["design"] == design]
        for label, lhs, rhs in comparisons:
            sides = []
            for objective, step in (lhs, rhs):
                rows = d[d["objective"] == objective]
                if len(rows):
                    rows = rows[rows["steps"] == (rows["steps"].max() if step == "last" else step)]
                sides.append(rows.iloc[0] if len(rows) else None)
            if any(s is None for s in sides):
                continue
            before, after = sides
            keys = [_key(design, s["objective"], s["steps"]) for s in sides]
            if any(k not in weights for k in keys):
                raise ValueError(f"{design}, {label}: no word weights for {[k for k in keys if k not in weights]}; "
                                 "pass the weights run_designs collected (its weights= argument).")
            c = paired_contrast(weights[keys[1]], weights[keys[0]], info, "kl", n_boot=n_boot, seed=seed)
            out.append({"design": design, "comparison": label, "r2_before": before["r2"], "r2_after": after["r2"],
                        "beta_before": before["beta"], "beta_after": after["beta"],
                        "stsb_before": before["stsb_spearman"], "stsb_after": after["stsb_spearman"],
                        "model": f"{design}/{after['objective']}@{int(after['steps'])}",
                        "base": f"{design}/{before['objective']}@{int(before['steps'])}", "method": "ig",
                        "quantity": "kl", "baseline": "zero" if design == "bow" else "pad", **c})
    return pd.DataFrame(out)


DESIGNS = ("long", "reverse", "bow")


def run_designs(mlm, sample, info, stsb, sentences, triplets, designs=DESIGNS, train=(), long_steps: int = 750,
                long_save_steps=(0, 150, 300, 750), reverse_steps: int = 200, bow_steps: int = 500,
                method=None, seed: int = 0, progress: bool = True, weights: dict | None = None) -> pd.DataFrame:
    """Every design of ``designs`` (see :data:`DESIGNS`), trained where missing only if it is in ``train``;
    one row per measured checkpoint with :data:`DESIGN_COLUMNS`, measured by ``method`` (the attribution method
    object, :func:`helpers.finetuning.checkpoint_method`). ``weights`` (a dict) collects every
    checkpoint's word weights for :func:`design_verdicts`."""
    unknown = sorted(set(designs) - set(DESIGNS)) + sorted(set(train) - set(DESIGNS))
    if unknown:
        raise ValueError(f"unknown designs {unknown}; choose from {', '.join(DESIGNS)}.")
    frames = []
    ig = {"method": method, "seed": seed, "progress": progress, "weights": weights}
    if "long" in designs:
        frames.append(long_design(mlm, sample, info, stsb, sentences, triplets, steps=long_steps,
                                  save_steps=long_save_steps, train="long" in train, **ig))
    if "reverse" in designs:
        frames.append(reverse_design(sample, info, stsb, sentences, triplets, steps=reverse_steps,
                                     save_steps=(0, reverse_steps // 2, reverse_steps), train="reverse" in train, **ig))
    if "bow" in designs:
        bow = bow_design(sample, info, stsb, sentences, triplets, steps=bow_steps, seed=seed, progress=progress,
                         train="bow" in train, weights=weights)
        frames.append(bow)
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=DESIGN_COLUMNS)


def main(argv=None) -> int:
    """``python -m helpers.matched_designs --train long reverse bow``: train and measure the designs with chapter 05's
    default inputs, so that the chapter (``train_designs = []``) shows them from the cache."""
    import argparse

    from .data import load_sentences, with_sentences
    from .information import word_information
    from .data import nli_triplets, pretraining_corpus
    from .training import self_trained_pair

    parser = argparse.ArgumentParser(prog="python -m helpers.matched_designs", description=main.__doc__.split("\n")[0])
    parser.add_argument("--train", nargs="*", default=list(DESIGNS), choices=DESIGNS)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--n-sentences", type=int, default=100)
    args = parser.parse_args(argv)
    stsb = load_sentences("stsb", "validation", data_dir=args.data_dir)
    sample = with_sentences(load_sentences("stsb", "validation", data_dir=args.data_dir, limit=args.n_sentences,
                                           seed=0), stsb)
    mlm = self_trained_pair(args.data_dir)["mlm"]
    info, weights = word_information(stsb), {}
    table = run_designs(mlm, sample, info, stsb, pretraining_corpus(args.data_dir),
                        nli_triplets(args.data_dir), designs=args.train, train=args.train, weights=weights)
    print(table.round(3).to_string())
    print(design_verdicts(table, weights, info).round(3).to_string())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
