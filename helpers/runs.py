"""A training run on disk (study layer): its folder named by its settings, checkpoints saved whole, resumption from
the newest one that loads, the published runs fetched before training, and the one training loop every checkpointed
run shares (:func:`fit`: the MLM pre-training, SimCSE and the continued-MLM control of :mod:`helpers.training`).

The data order and masks are functions of (seed, step) and the loop seeds each step's dropout, so an interrupted run
that resumes gives the same weights as an uninterrupted one; a finished run is not trained again.
"""
from __future__ import annotations

import json
import shutil
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from .artifacts import checkpoints
from .config import as_stored, settings_differences, settings_location, tqdm

__all__ = ["save_checkpoint", "linear_schedule", "Run", "fit", "open_run", "run_folder", "fetch_if_published", "load_state",
           "resume", "add_minutes", "run_minutes", "folder_fingerprint"]


def save_checkpoint(run_dir: Path, step: int, model, tokenizer, optimizer, scheduler, history: list) -> None:
    tmp = run_dir / f"step-{step}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "step": step}, tmp / "state.pt")
    (tmp / "history.json").write_text(json.dumps(history))
    final = run_dir / f"step-{step}"
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)  # a checkpoint appears whole or not at all


def linear_schedule(optimizer, warmup: int, total: int):
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / max(1, warmup)) * max(0.0, (total - s) / max(1, total - warmup))
        if s >= warmup else (s + 1) / max(1, warmup))


@dataclass
class Run:
    """A training run as the shared loop (:func:`fit`) steps it: the model saved at each checkpoint, its tokenizer,
    optimiser and schedule, the loss history and the run's folder."""

    run_dir: Path
    model: torch.nn.Module
    tokenizer: object
    optimizer: torch.optim.Optimizer
    scheduler: object
    history: list


def fit(run: Run, step_loss, start: int, stop: int, total: int, *, seed: int, label: str, progress: bool,
        keep, clip=None, after_save=None) -> None:
    """The training loop every checkpointed run here shares (the MLM pre-training, SimCSE, the continued-MLM
    control; as d2l's ``Trainer``, each supplies its batch and loss): for each step from ``start`` to ``stop``, seed
    the step's dropout (``seed * 7919 + step``, so a resumed run draws what an unbroken one would), take
    ``step_loss(step)``, step the optimiser (gradients clipped to norm ``clip`` over ``clip``'s parameters when given)
    and the schedule, record the loss, and save a checkpoint when ``keep(step + 1)`` (then ``after_save(step + 1)``).
    The last step is always saved; the wall-clock minutes are added to the run (:func:`run_minutes`).

    The bag-of-words encoders (``helpers.matched_designs``, ``helpers.theory``) train in memory in seconds, with no
    checkpoint, resumption or tokenizer: they keep their own few-line loops."""
    clip = None if clip is None else (list(clip[0]), clip[1])  # parameters() is a generator: read it once, keep it
    bar = tqdm(range(start, stop), desc=label, disable=not progress, initial=start, total=total)
    started = time.perf_counter()
    for step in bar:
        torch.manual_seed(seed * 7919 + step)  # dropout of this step
        loss = step_loss(step)
        run.optimizer.zero_grad()
        loss.backward()
        if clip is not None:
            torch.nn.utils.clip_grad_norm_(clip[0], clip[1])
        run.optimizer.step()
        run.scheduler.step()
        run.history.append({"step": step + 1, "loss": loss.item()})
        bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
        if keep(step + 1):
            save_checkpoint(run.run_dir, step + 1, run.model, run.tokenizer, run.optimizer, run.scheduler, run.history)
            if after_save is not None:
                after_save(step + 1)
    if stop not in checkpoints(run.run_dir) and stop > start:
        save_checkpoint(run.run_dir, stop, run.model, run.tokenizer, run.optimizer, run.scheduler, run.history)
    if stop > start:
        add_minutes(run.run_dir, (time.perf_counter() - started) / 60)


def open_run(run_dir: Path, model_class, new_model, *, lr: float, warmup: int, steps: int) -> tuple[int, Run | None]:
    """A run resumed or started: (the step it starts from, its :class:`Run`), or (``steps``, None) when it is complete
    on disk. The newest checkpoint that loads (:func:`resume`) gives the model, tokenizer, optimiser and schedule
    states and the loss history; with none, ``new_model()`` gives (model, tokenizer). The optimiser is AdamW (weight
    decay 0.01) on a linear schedule with ``warmup`` steps over ``steps`` (the MLM pre-training and SimCSE alike)."""
    start, loaded = resume(run_dir, model_class)
    if start == steps:
        return steps, None
    model, tokenizer, state, history = loaded if loaded else (*new_model(), None, [])
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    scheduler = linear_schedule(optimizer, warmup, steps)
    if state:
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
    return start, Run(run_dir, model, tokenizer, optimizer, scheduler, history)


def run_folder(kind: str, settings: dict, run_dir=None) -> Path:
    """The run's folder (:func:`helpers.config.settings_location` unless given); a folder holding a run with
    other settings is an error naming them."""
    path = Path(run_dir) if run_dir is not None else settings_location(kind, settings)
    path.mkdir(parents=True, exist_ok=True)
    stored_file = path / "settings.json"
    wanted = as_stored(settings)
    if stored_file.is_file():
        try:
            stored = json.loads(stored_file.read_text())
        except json.JSONDecodeError:
            stored = None  # a damaged settings file: the checkpoints decide (they are test-loaded)
        changes = settings_differences(stored, wanted) if stored is not None else ""
        if changes:
            raise ValueError(f"{path} holds a run with other settings ({changes}). Use another run_dir, or "
                             "run_dir=None to let the book name the folder after the settings.")
    tmp = stored_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(wanted, indent=2, sort_keys=True))
    tmp.replace(stored_file)
    from .artifacts import run_key

    (path / "artifact.json").write_text(json.dumps({"key": run_key(kind, settings)}))  # its published name
    return path


def fetch_if_published(kind: str, settings: dict, run_dir: Path, steps: int) -> None:
    """A run with nothing on disk is first looked up among the published runs (:mod:`helpers.artifacts`)."""
    if not checkpoints(run_dir):
        from .artifacts import fetch_run, run_key

        fetch_run(run_key(kind, settings), run_dir, steps)


def load_state(path: Path, model_class):
    """Model, tokenizer, optimiser state and history of a checkpoint, or None when any part does not load."""
    from transformers import AutoTokenizer

    try:
        model = model_class.from_pretrained(path, attn_implementation="eager")
        tokenizer = AutoTokenizer.from_pretrained(path)
        state = torch.load(path / "state.pt", weights_only=False)
        history = json.loads((path / "history.json").read_text())
        if not isinstance(history, list) or state.get("step") != len(history) and history:
            raise ValueError("the history does not match the step")
        return model, tokenizer, state, history
    except Exception as exc:  # noqa: BLE001 - any damage means "do not resume from here"
        warnings.warn(f"The checkpoint {path} does not load ({type(exc).__name__}: {str(exc)[:200]}); it is set "
                      "aside (renamed *.broken) and the run resumes from the one before.", stacklevel=3)
        broken = path.with_name(path.name + ".broken")
        shutil.rmtree(broken, ignore_errors=True)
        path.rename(broken)
        return None


def resume(run_dir: Path, model_class):
    """The newest checkpoint of ``run_dir`` that loads: (step, (model, tokenizer, state, history)) or (0, None)."""
    for step in sorted(checkpoints(run_dir), reverse=True):
        loaded = load_state(checkpoints(run_dir)[step], model_class)
        if loaded is not None:
            return step, loaded
    return 0, None


def add_minutes(run_dir: Path, minutes: float) -> None:
    path = Path(run_dir) / "minutes.json"
    total = json.loads(path.read_text())["minutes"] if path.is_file() else 0.0
    path.write_text(json.dumps({"minutes": total + minutes}))


def run_minutes(checkpoint) -> float:
    """Wall-clock minutes spent training the run a checkpoint belongs to (NaN when not recorded)."""
    path = Path(checkpoint).parent / "minutes.json"
    return float(json.loads(path.read_text())["minutes"]) if path.is_file() else float("nan")


def folder_fingerprint(path) -> str:
    """Identify an init checkpoint by a hash of its weight files, whole (hub names: the name)."""
    import hashlib

    p = Path(path)
    if not p.is_dir():
        return str(path)
    h = hashlib.sha1()
    for f in sorted(p.glob("*.safetensors")) + sorted(p.glob("*.bin")):
        h.update(f.name.encode())
        with open(f, "rb") as fh:  # the whole file: checkpoints that differ only in later layers differ here
            for block in iter(lambda: fh.read(1 << 24), b""):
                h.update(block)
    return h.hexdigest()[:12]
