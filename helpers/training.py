"""Training: a small BERT-style MLM from scratch, and SimCSE fine-tuning (paper section 2; the book's Eq. eq-simcse).

The offline book has no pre-trained MLM, so it makes one: :func:`pretrain_mlm` trains a
small BERT on the local corpora (never the STS-B validation sentences the book
attributes) with the bert-base-uncased WordPiece vocabulary, computing the MLM logits only
at masked positions (the 30k-word output layer dominates the cost otherwise).
:func:`simcse` fine-tunes any checkpoint -- the self-trained MLM, a random initialisation,
or a hub MLM such as ``bert-base-uncased`` -- with unsupervised SimCSE (dropout positives,
in-batch negatives) or supervised SimCSE (NLI entailment positives, contradiction hard
negatives), saving checkpoints at chosen steps.

Both go through the one training loop of :mod:`helpers.runs` (:func:`helpers.runs.fit`; each supplies its batch
and loss), deterministic under a seed on the CPU and resumable: checkpoints hold the model, optimiser, scheduler and
step, and the data order and masks are functions of (seed, step), so an interrupted run that resumes gives the same
weights as an uninterrupted one; a finished run is not trained again.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from .precision import DEFAULT as DEFAULT_PRECISION
from .artifacts import checkpoints
from .book import SELF_TRAINED_LAB, SELF_TRAINED_SMOKE
from .data import nli_triplets, pretraining_corpus
from .encoders import mean_pool, resolve_model_path
from .precision import autocast, check_precision
from .runs import fetch_if_published, fit, folder_fingerprint, open_run, run_folder, run_minutes, save_checkpoint

__all__ = ["SIMCSE_OBJECTIVES", "MLMConfig", "new_mlm", "mlm_head", "pretrain_mlm",
           "hash_texts", "history", "SimCSEModel", "simcse_loss", "simcse", "run_minutes", "SIMCSE_STEPS",
           "SAVE_STEPS", "SelfTrainedPair", "SELF_TRAINED_PRESETS", "self_trained_pair"]

SIMCSE_OBJECTIVES = ("unsup", "sup")


# --------------------------------------------------------------------------- models
@dataclass
class MLMConfig:
    """A small BERT for pre-training here (chapter 05's pilot: 4 x 256)."""

    hidden_size: int = 256
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    intermediate_size: int = 1024
    max_length: int = 64


def new_mlm(config: MLMConfig, seed: int = 0):
    """A randomly initialised BertForMaskedLM with the bert-base-uncased vocabulary (from the all-MiniLM-L6-v2 package)."""
    from transformers import AutoTokenizer, BertConfig, BertForMaskedLM

    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path("all-MiniLM-L6-v2"))
    torch.manual_seed(seed)
    bert_config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=config.hidden_size,
                             num_hidden_layers=config.num_hidden_layers, num_attention_heads=config.num_attention_heads,
                             intermediate_size=config.intermediate_size, max_position_embeddings=max(128, config.max_length),
                             attn_implementation="eager")
    return BertForMaskedLM(bert_config), tokenizer


def _mask_tokens(input_ids, attention_mask, tokenizer, gen, mlm_probability=0.15):
    """BERT's masking: 15% of real tokens; of those 80% [MASK], 10% random, 10% kept."""
    special = torch.tensor([[t in tokenizer.all_special_ids for t in row] for row in input_ids.tolist()])
    prob = torch.rand(input_ids.shape, generator=gen)
    chosen = (prob < mlm_probability) & attention_mask.bool() & ~special
    labels = input_ids[chosen]
    inputs = input_ids.clone()
    action = torch.rand(input_ids.shape, generator=gen)
    inputs[chosen & (action < 0.8)] = tokenizer.mask_token_id
    random_ids = torch.randint(tokenizer.vocab_size, input_ids.shape, generator=gen)
    swap = chosen & (action >= 0.8) & (action < 0.9)
    inputs[swap] = random_ids[swap]
    return inputs, chosen, labels


def mlm_head(model):
    """The masked-LM output head: BERT's ``cls``, RoBERTa's and MPNet's ``lm_head``."""
    for name in ("cls", "lm_head"):
        if hasattr(model, name):
            return getattr(model, name)
    raise ValueError(f"{type(model).__name__} has no masked-LM head (cls or lm_head).")


def _batch_indices(n: int, batch_size: int, step: int, seed: int) -> np.ndarray:
    """The example indices of a step: epochs are seeded permutations, so any step is reproducible alone."""
    per_epoch = n // batch_size
    epoch, offset = divmod(step, per_epoch)
    order = np.random.default_rng([seed, epoch]).permutation(n)
    return order[offset * batch_size:(offset + 1) * batch_size]


def _check_training_args(steps, batch_size, n_examples, what: str, save_every=None) -> None:
    from .config import check_count

    check_count("steps", steps, 1)
    check_count("batch_size", batch_size, 1)
    if save_every is not None:
        check_count("save_every", save_every, 1)
    if n_examples < batch_size:
        raise ValueError(f"{n_examples} {what} are fewer than one batch (batch_size={batch_size}): pass more "
                         "data or a smaller batch_size.")


def _check_texts(sentences, name: str = "sentences") -> None:
    for i, text in enumerate(sentences):
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"{name}[{i}] is {text!r}: every training sentence must be a non-empty str.")


# --------------------------------------------------------------------------- MLM pre-training
def pretrain_mlm(sentences: list[str], steps: int = 3000, batch_size: int = 64, lr: float = 5e-4,
                 warmup: int = 200, config: MLMConfig | None = None, seed: int = 0, save_every: int = 250,
                 save_steps=(), run_dir=None, progress: bool = True, max_steps_this_call: int | None = None,
                 train: bool = True, precision: str = DEFAULT_PRECISION) -> Path | None:
    """Pre-train a small BERT MLM from scratch; return the folder of the final checkpoint.

    ``train=False``: only look: the folder when the run is complete on disk, else None (nothing is trained).
    ``precision``: ``fp32`` (the book's runs) or ``bf16`` (forward and loss under bfloat16 autocast, fp32
    weights and optimiser: :mod:`helpers.precision`); part of the run's name when not fp32.

    Resumes from the latest checkpoint of the run folder (named by the settings' hash under
    ``.cache/runs/`` unless ``run_dir`` is given). ``save_steps``: extra steps to keep a
    checkpoint at. ``max_steps_this_call`` stops early (for tests of resumption).
    """
    from transformers import BertForMaskedLM

    _check_texts(sentences)
    _check_training_args(steps, batch_size, len(sentences), "sentences", save_every)
    check_precision(precision)
    config = config or MLMConfig()
    settings = {"kind": "mlm", "steps": steps, "batch_size": batch_size, "lr": lr, "warmup": warmup,
                "config": asdict(config), "seed": seed, "n_sentences": len(sentences),
                "corpus_hash": hash_texts(sentences), **({"precision": precision} if precision != "fp32" else {})}
    run_dir = run_folder("mlm", settings, run_dir)
    if not train:
        return checkpoints(run_dir).get(steps)
    fetch_if_published("mlm", settings, run_dir, steps)
    start, run = open_run(run_dir, BertForMaskedLM, lambda: new_mlm(config, seed), lr=lr, warmup=warmup, steps=steps)
    if run is None:
        return checkpoints(run_dir)[steps]
    model, tokenizer = run.model, run.tokenizer
    model.train()
    stop = steps if max_steps_this_call is None else min(steps, start + max_steps_this_call)

    def step_loss(step):
        idx = _batch_indices(len(sentences), batch_size, step, seed)
        batch = tokenizer([sentences[i] for i in idx], padding=True, truncation=True,
                          max_length=config.max_length, return_tensors="pt")
        gen = torch.Generator().manual_seed(seed * 104729 + step)
        inputs, chosen, labels = _mask_tokens(batch["input_ids"], batch["attention_mask"], tokenizer, gen)
        with autocast(precision):
            hidden = model.bert(input_ids=inputs, attention_mask=batch["attention_mask"]).last_hidden_state
            logits = mlm_head(model)(hidden[chosen])  # only at masked positions
        return F.cross_entropy(logits.float(), labels)

    def prune(saved):  # keep the latest checkpoint and the requested ones
        for old_step, old_path in checkpoints(run_dir).items():
            if old_step < saved and old_step not in save_steps:
                shutil.rmtree(old_path, ignore_errors=True)

    fit(run, step_loss, start, stop, steps, seed=seed,
        label="MLM pre-training", progress=progress, clip=(list(model.parameters()), 1.0), after_save=prune,
        keep=lambda done: done % save_every == 0 or done == steps or done in save_steps)
    return checkpoints(run_dir)[stop] if stop in checkpoints(run_dir) else run_dir


def hash_texts(texts) -> str:
    import hashlib

    h = hashlib.sha1()
    for t in texts:
        h.update(t.encode())
        h.update(b"\0")
    return h.hexdigest()[:12]


def history(checkpoint: Path) -> pd.DataFrame:
    """The training loss per step recorded up to a checkpoint."""
    return pd.DataFrame(json.loads((Path(checkpoint) / "history.json").read_text()))


# --------------------------------------------------------------------------- SimCSE
class SimCSEModel(torch.nn.Module):
    """Encoder + pooling for training: MEAN over the mask, or CLS through the pooler MLP (SimCSE's CLS)."""

    def __init__(self, backbone, pooling: str):
        super().__init__()
        self.backbone, self.pooling = backbone, pooling
        if pooling == "cls" and getattr(backbone, "pooler", None) is None:
            raise ValueError("CLS pooling needs a model with a pooler layer (AutoModel's default).")

    def forward(self, batch):
        out = self.backbone(**batch)
        if self.pooling == "mean":
            return mean_pool(out.last_hidden_state, batch["attention_mask"], torch.float32)
        return out.pooler_output


def simcse_loss(anchor, positive, negative=None, temperature: float = 0.05):
    """SimCSE's InfoNCE: cosine similarity / temperature, in-batch negatives (+ hard negatives)."""
    sim = F.cosine_similarity(anchor[:, None], positive[None], dim=-1) / temperature
    if negative is not None:
        sim = torch.cat([sim, F.cosine_similarity(anchor[:, None], negative[None], dim=-1) / temperature], dim=1)
    return F.cross_entropy(sim, torch.arange(len(anchor)))


def _check_simcse(objective, pooling, precision, continue_mlm, sentences, triplets, steps, batch_size,
                  save_steps) -> None:
    """:func:`simcse`'s arguments, each error naming the argument and what to pass."""
    if objective not in SIMCSE_OBJECTIVES:
        raise ValueError(f"objective must be one of {SIMCSE_OBJECTIVES}, got {objective!r}.")
    if pooling not in ("mean", "cls"):
        raise ValueError(f"pooling must be 'mean' or 'cls' for SimCSE training, got {pooling!r}.")
    check_precision(precision)
    if continue_mlm or objective == "unsup":
        if not sentences:
            raise ValueError("unsupervised SimCSE and continued MLM need `sentences`.")
        _check_texts(sentences)
        _check_training_args(steps, batch_size, len(sentences), "sentences")
    elif triplets is None or triplets.empty:
        raise ValueError("supervised SimCSE needs `triplets` (anchor, positive, negative).")
    else:
        missing = {"anchor", "positive", "negative"} - set(triplets.columns)
        if missing:
            raise ValueError(f"triplets need the columns anchor, positive, negative; missing {sorted(missing)}.")
        for column in ("anchor", "positive", "negative"):
            _check_texts(triplets[column].tolist(), f"triplets['{column}']")
        _check_training_args(steps, batch_size, len(triplets), "triplets")
    for name, value in (("save_steps", s) for s in save_steps):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value <= steps:
            raise ValueError(f"{name} must hold whole numbers from 0 to steps={steps}, got {value!r}.")


def _simcse_step_loss(net, tokenizer, objective, continue_mlm, sentences, triplets, batch_size, max_length,
                      temperature, seed, precision):
    """:func:`simcse`'s batch and loss at a step, for :func:`helpers.runs.fit`: the step's examples (a function of
    (seed, step)) through ``net`` under ``precision``, the loss in fp32 (InfoNCE, or the MLM loss of the control)."""
    n = len(sentences) if (continue_mlm or objective == "unsup") else len(triplets)

    def encode(texts):
        return tokenizer(list(texts), padding=True, truncation=True, max_length=max_length, return_tensors="pt")

    def step_loss(step):
        idx = _batch_indices(n, batch_size, step, seed)
        with autocast(precision):
            if continue_mlm:
                batch = encode([sentences[i] for i in idx])
                gen = torch.Generator().manual_seed(seed * 104729 + step)
                inputs, chosen, labels = _mask_tokens(batch["input_ids"], batch["attention_mask"], tokenizer, gen)
                hidden = net.base_model(input_ids=inputs, attention_mask=batch["attention_mask"]).last_hidden_state
                outputs = (mlm_head(net)(hidden[chosen]),)
            elif objective == "unsup":
                batch = encode([sentences[i] for i in idx])
                outputs = (net(batch), net(batch))  # dropout makes the two differ
            else:
                rows = triplets.iloc[idx]
                outputs = (net(encode(rows["anchor"])), net(encode(rows["positive"])), net(encode(rows["negative"])))
        outputs = [o.float() for o in outputs]  # the loss in fp32 whatever the forward passes ran in
        if continue_mlm:
            return F.cross_entropy(outputs[0], labels)
        return simcse_loss(*outputs, temperature=temperature)

    return step_loss


def simcse(init: str | Path, objective: str = "unsup", pooling: str = "mean", steps: int = 300,
           batch_size: int = 64, lr: float = 1e-4, temperature: float = 0.05, save_steps=(0, 10, 30, 100, 300),
           sentences: list[str] | None = None, triplets: pd.DataFrame | None = None, max_length: int = 64,
           seed: int = 0, run_dir=None, progress: bool = True, init_random: bool = False,
           max_steps_this_call: int | None = None, continue_mlm: bool = False, train: bool = True,
           precision: str = DEFAULT_PRECISION) -> dict[int, Path]:
    """Fine-tune a checkpoint with SimCSE (or, as a control, continue MLM); return {step: checkpoint folder}.

    init: a checkpoint folder or hub name (``bert-base-uncased`` works the same way with internet).
    objective: ``unsup`` (``sentences``; the same sentence twice through dropout) or ``sup``
        (``triplets``: anchor, positive, hard negative).
    init_random: keep the architecture and tokenizer of ``init`` but re-initialise every weight
        (the "SimCSE from random initialisation" control).
    continue_mlm: the "MLM only" control: train ``init`` further with the MLM loss on ``sentences``
        for the same steps (``init`` must be a masked-LM checkpoint, or an encoder, which gets a fresh
        MLM head tied to its input embeddings).
    train: False returns ``{}`` unless the run is complete in the cache (a chapter that only shows runs someone
        has paid for). The training's wall-clock minutes are kept with the run (:func:`run_minutes`).
    precision: ``fp32`` (the book's runs) or ``bf16`` (forward passes under bfloat16 autocast, the loss and the
        weights in fp32); part of the run's name when not fp32.
    """
    from transformers import AutoConfig, AutoModel, AutoModelForMaskedLM, AutoTokenizer

    _check_simcse(objective, pooling, precision, continue_mlm, sentences, triplets, steps, batch_size, save_steps)
    init_path = resolve_model_path(str(init))
    data = sentences if continue_mlm or objective == "unsup" else triplets[["anchor", "positive", "negative"]].to_numpy()
    settings = {"kind": "mlm_only" if continue_mlm else "simcse", "init": str(init), "objective": objective,
                "pooling": pooling, "steps": steps, "batch_size": batch_size, "lr": lr, "temperature": temperature,
                "seed": seed, "init_random": init_random, "max_length": max_length,
                "data": hash_texts(data if continue_mlm or objective == "unsup" else data.ravel()),
                "init_fingerprint": folder_fingerprint(init_path),
                **({"precision": precision} if precision != "fp32" else {})}
    run_dir = run_folder(settings["kind"], settings, run_dir)
    save_steps = sorted(set(int(s) for s in save_steps) | {steps})
    if not train and steps not in checkpoints(run_dir):
        return {}
    fetch_if_published(settings["kind"], settings, run_dir, steps)
    model_class = AutoModelForMaskedLM if continue_mlm else AutoModel

    def new_model():
        torch.manual_seed(seed)  # the random initialisation of init_random, and a fresh MLM head
        model = AutoModel.from_config(AutoConfig.from_pretrained(init_path), attn_implementation="eager") \
            if init_random else model_class.from_pretrained(init_path, attn_implementation="eager")
        return model, AutoTokenizer.from_pretrained(init_path)

    start, run = open_run(run_dir, model_class, new_model, lr=lr, warmup=0, steps=steps)
    if run is None:
        return {s: p for s, p in checkpoints(run_dir).items() if s in save_steps}
    net = (run.model if continue_mlm else SimCSEModel(run.model, pooling)).requires_grad_(True).train()
    if start == 0 and 0 in save_steps:
        save_checkpoint(run_dir, 0, run.model, run.tokenizer, run.optimizer, run.scheduler, run.history)
    stop = steps if max_steps_this_call is None else min(steps, start + max_steps_this_call)
    step_loss = _simcse_step_loss(net, run.tokenizer, objective, continue_mlm, sentences, triplets, batch_size,
                                  max_length, temperature, seed, precision)
    fit(run, step_loss, start, stop, steps, seed=seed,
        label="MLM (control)" if continue_mlm else f"SimCSE {objective}", progress=progress,
        keep=lambda done: done in save_steps)
    return {s: p for s, p in checkpoints(run_dir).items() if s in save_steps}


# --------------------------------------------------------------------------- the book's SimCSE run
SIMCSE_STEPS = 150  # the book's SimCSE run length (chapter 05 and the self-trained pair of 06-09)
SAVE_STEPS = (0, 15, 50, 150)  # its measured checkpoints


@dataclass(frozen=True)
class SelfTrainedPair:
    """The settings of the offline "MLM vs its contrastive fine-tune" pair that chapters 06-11 share.

    The defaults are the fine-tuning chapter's (chapter 05), so its cached runs are reused and nothing is
    trained twice. A chapter's parameters cell names the pair with one value, ``self_trained``, read by
    :meth:`of`: a preset name (``"book"``: these defaults; ``"smoke"``: the smallest pair, what ``make test``
    trains), a dict of fields (the unnamed ones keep the book's defaults) or a :class:`SelfTrainedPair`.
    """
    mlm_steps: int = 3000
    mlm_hidden: int = 256
    mlm_layers: int = 4
    mlm_batch_size: int = 64
    objective: str = "sup"
    pooling: str = "mean"
    simcse_steps: int = SIMCSE_STEPS
    batch_size: int = 64
    lr: float = 1e-4
    temperature: float = 0.05
    seed: int = 0
    #: the arithmetic of both trainings: ``fp32`` (the book's recorded runs) or ``bf16`` (helpers.precision)
    precision: str = DEFAULT_PRECISION

    @classmethod
    def of(cls, value="book") -> "SelfTrainedPair":
        """A preset name, a dict of fields or a SelfTrainedPair; an unknown name or field is an error naming it."""
        if isinstance(value, cls):
            return value
        if isinstance(value, str):
            if value not in SELF_TRAINED_PRESETS:
                raise ValueError(f"self_trained={value!r} is not a preset; use one of {sorted(SELF_TRAINED_PRESETS)}, "
                                 "a dict of SelfTrainedPair fields or a SelfTrainedPair")
            return cls(**SELF_TRAINED_PRESETS[value])
        if isinstance(value, dict):
            fields = set(cls.__dataclass_fields__)
            unknown = sorted(set(value) - fields)
            if unknown:
                raise ValueError(f"self_trained has unknown settings {unknown}; the settings are {sorted(fields)}")
            if value.get("objective", "sup") not in SIMCSE_OBJECTIVES:
                raise ValueError(f"self_trained objective={value['objective']!r}: use one of {SIMCSE_OBJECTIVES}")
            check_precision(value.get("precision", "fp32"))
            for name in ("mlm_steps", "mlm_hidden", "mlm_layers", "mlm_batch_size", "simcse_steps", "batch_size"):
                if name in value and (isinstance(value[name], bool) or not isinstance(value[name], int)
                                      or value[name] < 1):
                    raise ValueError(f"self_trained {name}={value[name]!r}: a positive whole number is needed")
            return cls(**value)
        raise TypeError(f"self_trained must be a preset name, a dict or a SelfTrainedPair, not {type(value).__name__}")

    def settings(self) -> dict:
        out = asdict(self)
        if out["precision"] == "fp32":
            del out["precision"]  # the book's runs keep their names
        return out


def _pair_fields(chapter05: dict) -> dict:
    """Chapter 05's training parameters as :class:`SelfTrainedPair` fields (its ``simcse_batch_size`` is the
    pair's ``batch_size``): the presets are typed once, in :mod:`helpers.book`."""
    return {("batch_size" if k == "simcse_batch_size" else k): v for k, v in chapter05.items()}


#: Named pairs: "book" is chapter 05's defaults; "smoke" the smallest pair (``make test`` trains it once); "lab" the
#: teachers' lab path (helpers.book.LAB_PARAMETERS), a pair trained in minutes on a laptop.
SELF_TRAINED_PRESETS = {"book": {}, "smoke": _pair_fields(SELF_TRAINED_SMOKE), "lab": _pair_fields(SELF_TRAINED_LAB)}


def self_trained_pair(data_dir=None, settings="book", save_steps=SAVE_STEPS, progress: bool = True,
                      train: bool = True, **overrides) -> dict | None:
    """The offline "MLM vs its contrastive fine-tune" pair: {"mlm", "simcse", "simcse_pooling", "settings"}.

    ``settings``: what :meth:`SelfTrainedPair.of` reads (``"book"``, ``"smoke"``, a dict or the object);
    keyword ``overrides`` replace single fields (``mlm_steps=...``). On a fresh machine this trains the pair
    (the MLM takes ~30 min on 2 cores); ``train=False``: only look on disk, None when either run is not
    complete there.
    """
    pair = SelfTrainedPair.of(settings)
    if overrides:
        pair = SelfTrainedPair.of({**asdict(pair), **overrides})
    corpus = pretraining_corpus(data_dir)
    mlm = pretrain_mlm(corpus, steps=pair.mlm_steps, batch_size=pair.mlm_batch_size, seed=pair.seed,
                       progress=progress,
                       config=MLMConfig(hidden_size=pair.mlm_hidden, num_hidden_layers=pair.mlm_layers,
                                        num_attention_heads=max(1, pair.mlm_hidden // 64),
                                        intermediate_size=4 * pair.mlm_hidden),
                       train=train, precision=pair.precision)
    if mlm is None:
        return None
    triplets = nli_triplets(data_dir) if pair.objective == "sup" else None
    ckpts = simcse(mlm, objective=pair.objective, pooling=pair.pooling, steps=pair.simcse_steps,
                   batch_size=pair.batch_size, lr=pair.lr, temperature=pair.temperature,
                   save_steps=[s for s in save_steps if s <= pair.simcse_steps], sentences=corpus,
                   triplets=triplets, seed=pair.seed, progress=progress, train=train, precision=pair.precision)
    if pair.simcse_steps not in ckpts:
        return None
    return {"mlm": mlm, "simcse": ckpts[pair.simcse_steps], "simcse_pooling": pair.pooling, "settings": pair}
