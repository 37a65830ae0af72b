"""Chapter 05's study (study layer): what SimCSE does to the word weights of the MLM it starts from, in one call.

The chapter's runs (SimCSE from the MLM, SimCSE from random weights, the MLM trained on) measured at every saved
checkpoint (:func:`helpers.finetuning.finetune_runs`); their comparisons judged by the book's one rule
(:func:`helpers.matched_designs.design_verdicts`) and the chapter's verdict (:func:`helpers.finetuning.finetune_verdict`);
the other matched designs (:func:`helpers.matched_designs.run_designs`), judged with them
(:func:`helpers.matched_designs.chapter_verdicts`); and what the self-trained pair stands for
(:func:`helpers.standin.stand_in_row`, with the recorded budget curve). One call returns the chapter's tables as a
:class:`helpers.results.Result`, with the verdict's values and the budget curve in ``figures``.
"""
from __future__ import annotations

import pandas as pd

from . import results
from .matched_designs import DESIGNS, chapter_verdicts, default_design_rows, default_design_weights, design_verdicts, run_designs
from .finetuning import finetune_runs, finetune_verdict, trajectory_summary
from .standin import STAND_IN_COLUMNS, recorded_budget_curve, stand_in_row
from .training import SAVE_STEPS, SIMCSE_STEPS

__all__ = ["finetune_study", "stand_in_of"]


def stand_in_of(mlm, trajectory: pd.DataFrame, corpus, stsb: pd.DataFrame, pooling: str = "mean", steps: int = SIMCSE_STEPS,
                objective: str = "sup", settings: dict | None = None, seed: int = 0) -> pd.DataFrame:
    """The stand-in table (:func:`helpers.standin.stand_in_row`) from the runs' last checkpoints: SimCSE from the MLM
    against SimCSE from random weights, both at ``steps`` with ``objective``; an empty table (the declared columns)
    when the trajectory lacks either run (``controls`` without ``simcse_from_random``)."""
    ends = trajectory[(trajectory["step"] == steps) & (trajectory["objective"] == objective)]
    ends = ends.drop_duplicates("run").set_index("run")["checkpoint"]
    if not {"mlm_then_simcse", "simcse_from_random"} <= set(ends.index):
        return pd.DataFrame(columns=STAND_IN_COLUMNS)
    return stand_in_row(mlm, ends["mlm_then_simcse"], ends["simcse_from_random"], corpus, stsb["text"], stsb, pooling,
                        settings=settings, seed=seed)


def finetune_study(mlm, sample: pd.DataFrame, info: pd.DataFrame, stsb: pd.DataFrame, corpus, triplets, *,
                   objectives=("sup",), pooling: str = "mean", steps: int = SIMCSE_STEPS, save_steps=SAVE_STEPS,
                   controls=("simcse_from_random", "mlm_only"), batch_size: int = 64, lr: float = 1e-4,
                   temperature: float = 0.05, method=None, designs=DESIGNS, train_designs=("bow",),
                   long_steps: int = 750, long_save_steps=(0, 150, 300, 750), reverse_steps: int = 200,
                   bow_steps: int = 500, mlm_settings: dict | None = None, seed: int = 0,
                   progress: bool = True) -> results.Result:
    """Chapter 05's tables for the MLM ``mlm`` (a checkpoint folder or hub name), with ``sample`` attributed at every
    checkpoint, ``info`` its KL and I, ``stsb`` the STS-B pairs scored, ``corpus`` the MLM's training sentences and
    ``triplets`` SNLI's (``None`` for unsupervised runs only).

    The keywords are the chapter's parameters: the runs' (``objectives`` ... ``temperature``; ``method``: how a
    checkpoint is measured, :func:`helpers.finetuning.checkpoint_method`), the other designs' (``designs`` shown if
    measured, ``train_designs`` trained when missing, their lengths) and ``mlm_settings`` (the MLM's ``mlm_steps``,
    ``mlm_hidden``, ``mlm_layers``, written into the stand-in row). Returns ``trajectory``, ``checkpoint_weights``,
    ``summary``, ``designs``, ``contrasts``, ``stand_in`` and, when recorded, ``budget_curve``; ``figures``:
    ``verdict`` (:func:`helpers.finetuning.finetune_verdict`: the runs' ends and the chapter's verdict) and
    ``budget_curve`` (empty when not recorded)."""
    trajectory, weights = finetune_runs(
        mlm, sample, info, stsb, corpus, triplets, objectives=objectives, pooling=pooling, steps=steps,
        save_steps=save_steps, controls=controls, batch_size=batch_size, lr=lr, temperature=temperature, method=method,
        seed=seed, progress=progress)
    design_weights = default_design_weights(weights)  # every measured checkpoint's word weights, by design
    default_contrasts = design_verdicts(default_design_rows(trajectory), design_weights, info, seed=seed)
    verdict = finetune_verdict(trajectory, default_contrasts)
    designs_table = pd.concat([default_design_rows(trajectory), run_designs(
        mlm, sample, info, stsb, corpus, triplets, designs=designs, train=train_designs, long_steps=long_steps,
        long_save_steps=long_save_steps, reverse_steps=reverse_steps, bow_steps=bow_steps, method=method, seed=seed,
        progress=progress, weights=design_weights)], ignore_index=True)
    contrasts = chapter_verdicts(default_contrasts, designs_table, design_weights, info, seed=seed)
    stand_in = stand_in_of(mlm, trajectory, corpus, stsb, pooling, steps, objectives[0], mlm_settings, seed)
    curve = recorded_budget_curve()  # benchmarks/mlm_budget_cpu.jsonl: measured once, not part of the build
    return results.Result(
        results.FINETUNE, trajectory=trajectory.drop(columns=["checkpoint"]), checkpoint_weights=weights,
        summary=trajectory_summary(trajectory), designs=designs_table, contrasts=contrasts, stand_in=stand_in,
        **({"budget_curve": curve} if len(curve) else {}),
        figures={"verdict": verdict, "budget_curve": curve})
