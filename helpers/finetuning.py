"""Chapter 05's runs (study layer): the self-trained MLM fine-tuned with SimCSE beside its controls, every saved
checkpoint measured (paper Table 1's quantities and STS-B), the runs' start and end side by side, and the chapter's
verdict by the book's one rule.

The training itself is :mod:`helpers.training` (the MLM and SimCSE loops, the shared pair's settings); the matched
designs of the chapter's fifth section, which measure their checkpoints with :func:`measure_checkpoint` too, are
:mod:`helpers.matched_designs`; the chapter's whole study in one call, these runs with the designs and the stand-in, is
:func:`helpers.finetune_study.finetune_study`.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .config import tqdm
from .training import SAVE_STEPS, SIMCSE_STEPS, history, simcse

__all__ = ["checkpoint_method", "measure_checkpoint", "finetune_runs", "SUMMARY_QUANTITIES", "trajectory_summary",
           "finetune_verdict", "masked_sides_with_negative_slope"]


def checkpoint_method(method=None, seed: int = 0):
    """The attribution method a checkpoint is measured with: ``method`` as given (a method object), or the
    chapter's default, IG with 16 points and 16 sketched directions (Eq. eq-sketch)."""
    from .attribution import IG, make_method

    return IG(n_steps=16, projections=16, seed=seed) if method is None else make_method(method, {"seed": seed})


def measure_checkpoint(checkpoint, pooling: str, sample: pd.DataFrame, info: pd.DataFrame, stsb: pd.DataFrame,
                       method=None, seed: int = 0) -> tuple[dict, pd.DataFrame]:
    """What the fine-tuning chapter tracks at each checkpoint (paper Table 1's quantities, plus STS):

    word weights on ``sample`` by ``method`` (:func:`checkpoint_method`: sketched IG by default), R^2 and beta of
    weight on KL and on I (``info`` from the attributed corpus), the same with the word's
    subword count as a covariate, and the STS Spearman of cosine similarity on ``stsb``.
    Returns (measurements, word weights).
    """
    from .attribution import word_weights
    from .encoders import load_encoder
    from .sts import sts_spearman
    from .regression import regress, regress_with_covariates

    encoder = load_encoder(str(checkpoint), pooling=pooling)
    weights = word_weights(encoder, sample, checkpoint_method(method, seed), progress=False)
    row = {"stsb_spearman": sts_spearman(encoder, stsb)}
    for quantity in ("kl", "self_info"):
        fit = regress(weights, info, quantity, n_boot=200, seed=seed)
        row.update({f"r2_{quantity}": fit["r2"], f"beta_{quantity}": fit["beta"],
                    f"r2_{quantity}_low": fit["r2_low"], f"r2_{quantity}_high": fit["r2_high"],
                    f"beta_{quantity}_low": fit["beta_low"], f"beta_{quantity}_high": fit["beta_high"]})
    cov = regress_with_covariates(weights, info, "kl")
    row.update({"beta_kl_given_subwords": cov["beta"], "r2_kl_added_over_subwords": cov["r2"] - cov["r2_covariates_only"]})
    return row, weights


def finetune_runs(init, sample: pd.DataFrame, info: pd.DataFrame, stsb: pd.DataFrame, sentences: list[str],
                   triplets: pd.DataFrame | None, objectives=("sup",), pooling: str = "mean",
                   steps: int = SIMCSE_STEPS, save_steps=SAVE_STEPS, controls=("simcse_from_random", "mlm_only"),
                   batch_size: int = 64, lr: float = 1e-4, temperature: float = 0.05, method=None, seed: int = 0,
                   progress: bool = True):
    """Train every run of the fine-tuning chapter and measure each saved checkpoint (``method``: the attribution
    method object, :func:`checkpoint_method`).

    Runs: ``mlm_then_simcse`` (one per objective), and the controls ``simcse_from_random``
    (same objective as the first, from re-initialised weights) and ``mlm_only`` (the MLM loss
    continued for the same steps). Returns (trajectory, weights): one row per (run, objective,
    step) with the measurements of :func:`measure_checkpoint`, and every checkpoint's word weights.
    Step 0 of every run that starts from ``init``'s weights (all but ``simcse_from_random``) is
    the same model, so it is measured once.
    """
    plan = [("mlm_then_simcse", obj, {}) for obj in objectives]
    if "simcse_from_random" in controls:
        plan.append(("simcse_from_random", objectives[0], {"init_random": True}))
    if "mlm_only" in controls:
        plan.append(("mlm_only", "mlm", {"continue_mlm": True}))
    unknown = set(controls) - {"simcse_from_random", "mlm_only"}
    if unknown:
        raise ValueError(f"unknown controls {sorted(unknown)}; choose from simcse_from_random, mlm_only.")
    rows, weights = [], []
    start = None  # (row, weights) of the shared step 0
    for run, objective, extra in plan:
        ckpts = simcse(init, objective="unsup" if objective == "mlm" else objective, pooling=pooling, steps=steps,
                       batch_size=batch_size, lr=lr, temperature=temperature, save_steps=save_steps,
                       sentences=sentences, triplets=triplets, seed=seed, progress=progress, **extra)
        for step, path in tqdm(ckpts.items(), desc=f"measure {run}/{objective}", disable=not progress):
            from_init = step == 0 and not extra.get("init_random")
            if from_init and start is not None:
                row, w = start
            else:
                row, w = measure_checkpoint(path, pooling, sample, info, stsb, method, seed)
                start = (row, w) if from_init else start
            loss = history(path)["loss"] if step > 0 else pd.Series([np.nan])
            rows.append({"run": run, "objective": objective, "step": step, **row,
                         "train_loss": float(loss.tail(10).mean()), "checkpoint": str(path)})
            weights.append(w.assign(run=run, objective=objective, step=step))
    return pd.DataFrame(rows), pd.concat(weights, ignore_index=True)


SUMMARY_QUANTITIES = ("r2_kl", "beta_kl", "r2_self_info", "beta_self_info", "stsb_spearman")


def trajectory_summary(trajectory: pd.DataFrame) -> pd.DataFrame:
    """First and last checkpoint of every run, side by side: did R^2, beta and STS move? (chapter 05).

    One row per (run, objective, quantity) with ``start``, ``end`` and ``change`` = end - start.
    """
    rows = []
    ordered = trajectory.sort_values("step", kind="stable")
    for (run, objective), traj in ordered.groupby(["run", "objective"], sort=False):
        first, last = traj.iloc[0], traj.iloc[-1]
        for quantity in SUMMARY_QUANTITIES:
            rows.append({"run": run, "objective": objective, "quantity": quantity, "start_step": int(first["step"]),
                         "end_step": int(last["step"]), "start": first[quantity], "end": last[quantity],
                         "change": last[quantity] - first[quantity]})
    return pd.DataFrame(rows)


def finetune_verdict(trajectory: pd.DataFrame, contrasts: pd.DataFrame, run: str = "mlm_then_simcse") -> dict:
    """The fine-tuning chapter's verdict on the paper's claim, from its measured trajectory and contrasts.

    ``contrasts``: :func:`helpers.matched_designs.design_verdicts` of the chapter's designs; the verdict is
    :func:`helpers.rules.judge_finetuning` of them (the closing chapter's row reads the same rows with the
    same function). Returns the end values of every run (``<run>_<quantity>_start/end``), ``verdict`` (the
    verdict word), ``verdict_evidence`` (each comparison with its intervals) and ``start_slope_sign``.
    """
    from .rules import judge_finetuning

    out = {}
    ordered = trajectory.sort_values("step", kind="stable")
    for name, traj in ordered.groupby("run", sort=False):
        traj = traj[traj["objective"] == traj["objective"].iloc[0]]
        for q in ("r2_kl", "beta_kl", "stsb_spearman", "r2_kl_low", "r2_kl_high"):
            if q in traj:
                out[f"{name}_{q}_start"], out[f"{name}_{q}_end"] = float(traj[q].iloc[0]), float(traj[q].iloc[-1])
    if f"{run}_r2_kl_start" not in out:
        raise ValueError(f"the trajectory has no run {run!r}; it has {sorted(trajectory['run'].unique())}.")
    for name in ("mlm_then_simcse", "simcse_from_random", "mlm_only"):  # a run left out (controls=[]): NaN
        for q in ("r2_kl", "beta_kl", "stsb_spearman", "r2_kl_low", "r2_kl_high"):
            for end in ("start", "end"):
                out.setdefault(f"{name}_{q}_{end}", float("nan"))
    judged = judge_finetuning(contrasts)
    out["verdict"], out["verdict_evidence"] = judged["verdict"], judged["evidence"]
    out["start_slope_sign"] = "negative" if out[f"{run}_beta_kl_start"] < 0 else "positive"
    return out


def masked_sides_with_negative_slope(designs: pd.DataFrame) -> list[str]:
    """The masked-word sides of the designs whose slope β on KL is negative, by name: the MLM each SimCSE run starts
    from, the continued MLM, MiniLM after MLM training and the CBOW encoder (MiniLM as published is a contrastive
    side, not a masked one)."""
    d = designs
    published = (d["design"] == "reverse") & (d["steps"] == 0)  # MiniLM as published: the contrastive side
    start = (d["steps"] == 0) & d["design"].isin(["default", "long"]) & d["objective"].isin(["sup", "unsup"])
    masked = d[(d["objective"].isin(["mlm", "cbow"]) & ~published) | start]
    names = {"cbow": "CBOW (bag of words)"}
    return sorted({"MiniLM after MLM training" if r.design == "reverse" else names.get(r.objective, "the self-trained MLM")
                   for r in masked.itertuples() if r.beta < 0})
