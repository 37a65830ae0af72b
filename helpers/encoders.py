"""Sentence encoders: loading and pooling (paper section 2 and Table 1).

:func:`load_encoder` loads hub names and local folders through transformers' Auto
classes and wraps them in :class:`Encoder`, which maps input word embeddings
(the word-embedding layer's output, before position embeddings) to the sentence
vector with MEAN or CLS pooling -- the function f(X) that attribution differentiates.
A sentence-transformers model's ``modules.json`` (pooling, Dense, Normalize, truncation) is followed.

Where a name's weights come from (the offline packages :data:`OFFLINE_MODELS`, the tiny models made here, the hub)
is :mod:`helpers.weights`.
"""
from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import weights as _weights  # hub_online read at each call (a test or user may replace it)
from .precision import DEFAULT as DEFAULT_PRECISION
# where the weights come from (offline packages, models made here, the hub): helpers.weights; its public names are
# kept here too, where users have imported them from
from .st_modules import (SIMILARITY_NAMES, ST_POOLINGS, L2Normalize, Truncate,  # noqa: F401 (imported from here)
                         UnsupportedPooling, check_order, default_prompt, post_modules,
                         sentence_transformers_modules, similarity_name, st_pooling)
from .weights import (MINILM_SHA256, OFFLINE_MODELS, OFFLINE_STAND_INS, OPTIONAL_PACKAGES, ST_FILES,  # noqa: F401
                      OfflineWeights, display_name, hub_reachable, hub_st_folder, mpnet_installed,
                      random_init_copy, resolve, resolve_model_path, weights_source)

__all__ = ["POOLINGS", "POOLING_ALIASES", "CLS_MEANINGS", "ST_POOLINGS", "TOKENIZER_FILES", "PAPER_ROSTER",
           "display_name", "MissingPoolerError", "UnsupportedPooling", "Truncate", "SIMILARITY_NAMES",
           "similarity_name", "L2Normalize", "mean_pool", "Encoder", "PoolingChoice", "sentence_transformers_modules",
           "load_encoder", "roster_rows",
           # kept from before helpers.weights held them
           "OFFLINE_MODELS", "OPTIONAL_PACKAGES", "ST_FILES", "MINILM_SHA256", "OFFLINE_STAND_INS", "hub_reachable",
           "weights_source", "resolve_model_path", "OfflineWeights", "random_init_copy"]

POOLINGS = ("mean", "cls", "cls_before_pooler")
#: Other names a user may pass: ``cls_pooler`` says explicitly what the book's (and the paper's) ``cls`` means.
POOLING_ALIASES = {"cls_pooler": "cls"}
#: What the two worlds mean by "cls", for the messages that must name both.
CLS_MEANINGS = ("in this book (and the paper) pooling='cls' is the pooler MLP on [CLS] (also 'cls_pooler'); "
                "in sentence-transformers 'cls' is the [CLS] vector itself, which here is 'cls_before_pooler'")


#: A model folder needs one of these to have a tokenizer.
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "spiece.model", "sentencepiece.bpe.model")

#: The paper's roster (paper Table 1): row, hub checkpoint, pooling, base row.
PAPER_ROSTER = [
    {"row": "BERT (CLS)", "name": "bert-base-uncased", "pooling": "cls", "base": None},
    {"row": "U.SimCSE-BERT", "name": "princeton-nlp/unsup-simcse-bert-base-uncased", "pooling": "cls", "base": "BERT (CLS)"},
    {"row": "S.SimCSE-BERT", "name": "princeton-nlp/sup-simcse-bert-base-uncased", "pooling": "cls", "base": "BERT (CLS)"},
    {"row": "DiffCSE-BERT", "name": "voidism/diffcse-bert-base-uncased-sts", "pooling": "cls", "base": "BERT (CLS)"},
    {"row": "BERT (MEAN)", "name": "bert-base-uncased", "pooling": "mean", "base": None},
    {"row": "SBERT", "name": "sentence-transformers/bert-base-nli-mean-tokens", "pooling": "mean", "base": "BERT (MEAN)"},
    # roberta-base was pre-trained without next-sentence prediction and ships no pooler weights:
    # its [CLS] (<s>) row is the vector before the pooler, never a randomly initialised one
    {"row": "RoBERTa (CLS before pooler)", "name": "roberta-base", "pooling": "cls_before_pooler", "base": None},
    {"row": "U.SimCSE-RoBERTa", "name": "princeton-nlp/unsup-simcse-roberta-base", "pooling": "cls",
     "base": "RoBERTa (CLS before pooler)"},
    {"row": "S.SimCSE-RoBERTa", "name": "princeton-nlp/sup-simcse-roberta-base", "pooling": "cls",
     "base": "RoBERTa (CLS before pooler)"},
    {"row": "DiffCSE-RoBERTa", "name": "voidism/diffcse-roberta-base-sts", "pooling": "cls",
     "base": "RoBERTa (CLS before pooler)"},
    {"row": "RoBERTa (MEAN)", "name": "roberta-base", "pooling": "mean", "base": None},
    {"row": "SRoBERTa", "name": "sentence-transformers/roberta-base-nli-mean-tokens", "pooling": "mean", "base": "RoBERTa (MEAN)"},
    {"row": "MPNet (MEAN)", "name": "microsoft/mpnet-base", "pooling": "mean", "base": None},
    {"row": "all-mpnet-base-v2", "name": "sentence-transformers/all-mpnet-base-v2", "pooling": "mean", "base": "MPNet (MEAN)"},
]

class MissingPoolerError(ValueError):
    """``pooling="cls"`` asked of a checkpoint that has no trained pooler weights."""


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor, mask_dtype=None) -> torch.Tensor:
    """MEAN pooling (paper section 2) over the attention mask, special tokens included: the one definition of
    :class:`Encoder` and SimCSE training (``mask_dtype=torch.float32``: its bf16 sums in fp32, as always). The
    bag-of-words encoders (:mod:`helpers.matched_designs`) average over index lists, not a masked batch: their own sum."""
    mask = attention_mask.unsqueeze(-1).to(mask_dtype or hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)


@dataclass(eq=False)
class Encoder:
    """A sentence encoder f: input word embeddings -> sentence vector (paper Eq. 1; paper Eq. 1)."""

    name: str
    model: torch.nn.Module
    tokenizer: object
    pooling: str = "mean"
    normalize: bool = False
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    #: modules applied after pooling, in a sentence-transformers model's order (its Dense layers, and a
    #: Normalize that a Dense layer follows, as :class:`L2Normalize`)
    post: list = field(default_factory=list)
    #: a sentence-transformers model's ``max_seq_length`` (its tokens are cut there, not at the position limit)
    max_seq_length: int | None = None
    #: which weights were loaded: ``hub``, ``folder``, ``package ...`` (see :func:`weights_source`)
    weights: str = ""
    #: the similarity ``model.similarity()`` computes: a sentence-transformers model's ``similarity_fn_name``
    #: (``cosine`` when it names none, and for models that are not sentence-transformers models)
    similarity_fn_name: str = "cosine"
    #: the prompt a sentence-transformers model writes before every text by default (its
    #: ``default_prompt_name``), or None; :func:`helpers.explain.explain` refuses a model that has one
    prompt: str | None = None

    @property
    def dim(self) -> int:
        """Length of the sentence vector: the transformer's width, through the Dense layers and a truncation."""
        dim = self.model.config.hidden_size
        for module in self.post:
            linear = [m for m in module.modules() if isinstance(m, torch.nn.Linear)]
            if linear:
                dim = linear[-1].out_features
            elif isinstance(module, Truncate):
                dim = min(dim, module.dim)
        return dim

    @property
    def max_length(self) -> int:
        """Longest input in tokens, special tokens included."""
        limit = getattr(self.tokenizer, "model_max_length", None) or 10 ** 9
        positions = getattr(self.model.config, "max_position_embeddings", limit)
        offset = 2 if self.model.config.model_type in ("roberta", "mpnet") else 0  # padding_idx offset
        longest = int(min(limit, positions - offset))
        return min(longest, int(self.max_seq_length)) if self.max_seq_length else longest

    def embed_tokens(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Input word embeddings X: the word-embedding layer's output, before positions are added."""
        return self.model.get_input_embeddings()(input_ids.to(self.device))

    def pool(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """s = f(X): MEAN over the attention mask (special tokens included), or CLS through the pooler MLP."""
        out = self.model(inputs_embeds=inputs_embeds, attention_mask=attention_mask)
        hidden = out.last_hidden_state
        if self.pooling == "mean":
            s = mean_pool(hidden, attention_mask)
        elif self.pooling == "cls":
            s = out.pooler_output
        else:
            s = hidden[:, 0]
        for module in self.post:
            s = module(s)
        return F.normalize(s, dim=-1) if self.normalize else s

    @torch.no_grad()
    def encode(self, sentences, batch_size: int = 64, precision: str = DEFAULT_PRECISION) -> np.ndarray:
        """Sentence vectors of a list of strings (for evaluation, e.g. STS Spearman), computed in ``precision``
        (``fp32`` or ``bf16``, :mod:`helpers.precision`) and returned as fp32."""
        from .precision import autocast

        vectors = []
        for start in range(0, len(sentences), batch_size):
            batch = self.tokenizer(list(sentences[start:start + batch_size]), padding=True, truncation=True,
                                   max_length=self.max_length, return_tensors="pt").to(self.device)
            with autocast(precision, self.device):
                pooled = self.pool(self.embed_tokens(batch["input_ids"]), batch["attention_mask"])
            vectors.append(pooled.float().cpu())
        return torch.cat(vectors).numpy()

    def fingerprint(self) -> str:
        """A hash of the weights' bytes and the settings: cache keys change when the model does.

        Every tensor's bytes are hashed (blake2b), so any change of a weight -- two rows swapped, one value
        edited -- gives another fingerprint (a sum of the weights would not see a permutation). The hash is
        kept while no tensor was replaced or changed in place (torch's version counters), so asking again is
        free."""
        settings = [self.name, self.pooling, self.normalize]
        if self.max_seq_length or any(isinstance(m, (L2Normalize, Truncate)) for m in self.post):
            # settings of a sentence-transformers model that change the output: its length and module order
            settings += [self.max_length, [repr(m) if isinstance(m, Truncate) else type(m).__name__ for m in self.post]]
        states = [self.model.state_dict(keep_vars=True)] + [m.state_dict(keep_vars=True) for m in self.post]
        tensors = [(k, v) for state in states for k, v in state.items()]
        stamp = (json.dumps(settings), tuple((k, v.data_ptr(), v._version, tuple(v.shape), str(v.dtype))
                                             for k, v in tensors))
        if getattr(self, "_fingerprint", (None, None))[0] == stamp:
            return self._fingerprint[1]
        h = hashlib.blake2b(stamp[0].encode(), digest_size=16)
        with torch.no_grad():
            for key, value in tensors:
                flat = value.detach().contiguous().cpu().reshape(-1)
                h.update(f"{key}|{tuple(value.shape)}|{value.dtype}".encode())
                if flat.numel():
                    h.update(flat.view(torch.uint8).numpy())
        self._fingerprint = (stamp, h.hexdigest()[:16])
        return self._fingerprint[1]


class PoolingChoice(UserWarning):
    """``pooling="auto"`` says which pooling it read from a sentence-transformers model."""


def _from_sentence_transformer(model, pooling: str, normalize, device) -> Encoder:
    """An :class:`Encoder` from a loaded ``SentenceTransformer``: its transformer, tokenizer, modules in their
    order and ``max_seq_length``."""
    modules = list(model)
    kinds = [type(m).__name__ for m in modules]
    for kind in kinds:
        if kind not in ("Transformer", "Pooling", "Dense", "Normalize"):
            raise ValueError(f"the SentenceTransformer has a {kind} module, which the book does not follow.")
    check_order(kinds, "the SentenceTransformer")
    first = modules[0]
    if getattr(first, "do_lower_case", False):
        raise ValueError("the SentenceTransformer lower-cases its input (do_lower_case), which the book does not follow.")
    if not isinstance(getattr(first, "auto_model", None), torch.nn.Module):
        raise ValueError("the SentenceTransformer runs on a backend other than PyTorch (ONNX, OpenVINO): attribution "
                         "needs gradients; load it with backend='torch'.")
    try:
        chosen = st_pooling(modules[1].get_config_dict(), "the SentenceTransformer's Pooling module")
    except UnsupportedPooling:
        if pooling == "auto":
            raise
        chosen = None  # the caller overrides the model's pooling (load_encoder only; explain never does)
    entries = [("dense", torch.nn.Sequential(m.linear, m.activation_function).eval().requires_grad_(False))
               if type(m).__name__ == "Dense" else ("normalize", None) for m in modules[2:]]
    if getattr(model, "truncate_dim", None) is not None:
        entries.append(("truncate", model.truncate_dim))
    pooling = _auto_pooling(pooling, chosen, "the SentenceTransformer")
    device = _device(device)
    post, final = post_modules(entries, normalize, device)
    auto_model = first.auto_model.to(device).eval()
    auto_model.requires_grad_(False)
    prompts = getattr(model, "prompts", None) or {}
    return Encoder(name=getattr(auto_model.config, "_name_or_path", "") or "SentenceTransformer", model=auto_model,
                   tokenizer=first.tokenizer, pooling=pooling, normalize=final, device=device, post=post,
                   max_seq_length=getattr(first, "max_seq_length", None),
                   similarity_fn_name=similarity_name(getattr(model, "similarity_fn_name", None)),
                   prompt=default_prompt(prompts, getattr(model, "default_prompt_name", None), "the SentenceTransformer"))


def _auto_pooling(pooling: str, chosen: str | None, where: str, is_st: bool = True) -> str:
    if pooling == "cls" and is_st:
        raise ValueError(f"pooling='cls' is ambiguous for {where}, a sentence-transformers model: {CLS_MEANINGS}. "
                         "Pass 'cls_pooler' or 'cls_before_pooler' (or 'auto', which follows its Pooling module).")
    if pooling != "auto":
        return POOLING_ALIASES.get(pooling, pooling)
    if chosen is None:  # not a sentence-transformers model: the book's default, MEAN
        return "mean"
    warnings.warn(f"pooling='auto': {where} pools with {chosen!r}.", PoolingChoice, stacklevel=3)
    return chosen


def _device(device) -> torch.device:
    """``device`` as torch names it (None: the GPU when there is one), checked: a GPU this torch cannot reach is an
    error naming the argument, not an assertion from inside torch."""
    try:
        chosen = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"device={device!r} is not a device torch knows ({err}): pass 'cpu', 'cuda' or "
                         "'cuda:0'.") from None
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r}, but this torch sees no CUDA GPU (torch {torch.__version__}): leave device "
                         "out (the GPU is used when there is one) or pass 'cpu'.")
    try:
        torch.empty(0, device=chosen)
    except RuntimeError as err:
        raise ValueError(f"device={device!r} cannot be used here ({str(err).splitlines()[0]}): leave device out or "
                         "pass 'cpu'.") from None
    return chosen


def load_encoder(name_or_path, pooling: str = "auto", normalize: bool | str = False, device=None) -> Encoder:
    """Load a sentence encoder by hub name, offline name, local folder or ``SentenceTransformer`` object
    (paper section 2 and Table 1).

    pooling: ``mean`` (average over the attention mask), ``cls`` or its explicit name ``cls_pooler`` (the
        trained pooler MLP on [CLS], the paper's choice for SimCSE/DiffCSE; a checkpoint without trained
        pooler weights raises :class:`MissingPoolerError`) or ``cls_before_pooler`` (the [CLS] vector itself,
        which sentence-transformers calls "cls"), or ``auto`` (the default): what a sentence-transformers
        model's ``modules.json`` says (its ``1_Pooling/config.json``; a :class:`PoolingChoice` warning names
        it), else ``mean``. For a sentence-transformers model ``cls`` is refused as ambiguous (the message names
        both meanings). Its Dense and Normalize modules run after pooling in the order ``modules.json`` gives,
        and its ``max_seq_length`` cuts the input, as ``model.encode()`` does.
    normalize: apply L2 normalisation at the end. Off by default: the theory assumes unnormalised
        embeddings, so the book leaves out a final Normalize module; ``"auto"`` follows the model's modules
        (then ``encode`` equals sentence-transformers' ``encode``). A Normalize that a Dense layer follows is
        part of the model's function and always applied.
    Attention runs in the "eager" implementation, which supports batched backward passes.
    The weights are frozen (``requires_grad=False``); training code unfreezes what it trains.
    """
    if pooling not in POOLINGS + tuple(POOLING_ALIASES) + ("auto",):
        raise ValueError(f"pooling must be one of {POOLINGS + tuple(POOLING_ALIASES) + ('auto',)}, got {pooling!r} "
                         f"({CLS_MEANINGS}).")
    if normalize not in (True, False, "auto"):
        raise ValueError(f"normalize must be True, False or 'auto', got {normalize!r}.")
    if type(name_or_path).__name__ == "SentenceTransformer":
        return _from_sentence_transformer(name_or_path, pooling, normalize, device)
    if not isinstance(name_or_path, (str, Path)):
        raise TypeError(f"name_or_path must be a name, a folder or a SentenceTransformer, not {type(name_or_path).__name__}.")
    name_or_path = str(name_or_path)
    path, source = resolve(name_or_path)
    offline = source == "hub" and not _weights.hub_online()  # then only the local Hugging Face cache (no retries)
    st_folder = path if Path(path).is_dir() else hub_st_folder(path, offline)
    st = sentence_transformers_modules(st_folder) if st_folder else None
    if pooling == "auto" and st and st.get("pooling_error"):
        raise UnsupportedPooling(st["pooling_error"])
    pooling = _auto_pooling(pooling, st and st["pooling"], f"{name_or_path}'s modules.json" if st else name_or_path,
                            is_st=bool(st))
    device = _device(device)
    post, normalize = post_modules(st["post"] if st else [], normalize, device)
    tokenizer, model = _load_transformer(name_or_path, path, pooling, offline)
    model.to(device).eval()
    model.requires_grad_(False)  # attribution needs input gradients only; frozen weights skip their graph (~10% faster)
    return Encoder(name=name_or_path, model=model, tokenizer=tokenizer, pooling=pooling, normalize=normalize,
                   device=device, post=post, max_seq_length=st["max_seq_length"] if st else None, weights=source,
                   similarity_fn_name=st["similarity_fn_name"] if st else "cosine", prompt=st["prompt"] if st else None)


def _load_transformer(name_or_path: str, path: str, pooling: str, offline: bool):
    """The tokenizer and transformer of :func:`load_encoder` (eager attention), or an error naming the folder, the
    name and what to do; ``offline``: the local Hugging Face cache only. A pooler whose weights the checkpoint lacks
    is dropped, or refused when ``pooling="cls"`` would go through it."""
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    folder = Path(path) if Path(path).is_dir() else None
    if folder is not None and not (folder / "config.json").is_file():
        raise ValueError(f"{path} is a folder without a model (no config.json). Point to a folder saved with "
                         "save_pretrained, or use a hub name.")
    if folder is not None and not any((folder / f).is_file() for f in TOKENIZER_FILES):
        raise ValueError(f"{folder} has no tokenizer files (one of {', '.join(TOKENIZER_FILES)}): save the "
                         "tokenizer beside the model (tokenizer.save_pretrained(folder)).")
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # its "newly initialized" notice is replaced by the errors below
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, use_fast=True, local_files_only=offline)
        model, info = AutoModel.from_pretrained(path, attn_implementation="eager", output_loading_info=True,
                                                local_files_only=offline)
    except Exception as exc:  # noqa: BLE001 - OSError, ValueError, SafetensorError, ImportError...: say what and where
        raise _load_error(name_or_path, folder, offline, exc) from exc
    finally:
        hf_logging.set_verbosity(verbosity)
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError(f"{name_or_path}: attribution needs a fast tokenizer (word_ids); none could be loaded.")
    untrained_pooler = any(k.startswith("pooler.") or ".pooler." in k for k in info.get("missing_keys", []))
    if untrained_pooler and pooling != "cls" and getattr(model, "pooler", None) is not None:
        model.pooler = None  # randomly initialised and unused: dropped, so the weights (and fingerprint) are the checkpoint's
    if pooling == "cls":
        if getattr(model, "pooler", None) is None and not untrained_pooler:
            raise ValueError(f"{name_or_path} has no pooler layer; use pooling='cls_before_pooler' or 'mean'.")
        if untrained_pooler:
            raise MissingPoolerError(
                f"{name_or_path} has no trained pooler weights (a masked-LM checkpoint, or roberta-base), so "
                "pooling='cls' would go through a randomly initialised layer that changes at every load. Use "
                "pooling='cls_before_pooler' (the [CLS] vector itself) or 'mean'.")
    return tokenizer, model


def _load_error(name_or_path: str, folder: Path | None, offline: bool, exc: Exception) -> ValueError:
    """What went wrong loading a model, and what to do: a damaged folder, an offline miss, any other name."""
    first = (str(exc).splitlines() or [""])[0]
    if folder is not None:
        return ValueError(f"Could not load the model folder {folder} ({type(exc).__name__}: {first}). A weights "
                          "or tokenizer file there is damaged or incomplete (an interrupted download or save?): "
                          "save or download the model again.")
    if offline:
        return ValueError(
            f"Could not load the model {name_or_path!r}: the Hugging Face hub cannot be reached (no network, or "
            f"HF_HUB_OFFLINE is set) and the model is not in the local Hugging Face cache. Check the name, connect "
            f"and try again, or use a local folder or an offline name: {', '.join(OFFLINE_MODELS)}.")
    return ValueError(f"Could not load the model {name_or_path!r} ({type(exc).__name__}: {first}). "
                      f"Use a hub name (needs internet), a local folder, or an offline name: {', '.join(OFFLINE_MODELS)}.")


def roster_rows(spec="offline", self_trained: dict | None = None, include_mpnet: bool | None = None) -> list[dict]:
    """The model rows of the results chapters: ``row, name, pooling, base, kind`` (paper Table 1).

    spec: ``paper`` -- the paper's fourteen rows by hub name (internet; a GPU advised);
    ``offline`` -- the self-trained MLM (CLS and MEAN) and its SimCSE fine-tune
    (``self_trained``: {"mlm": folder, "simcse": folder, "simcse_pooling": ...}), a
    random-initialisation control, all-MiniLM-L6-v2, and all-mpnet-base-v2 when its packages
    are installed (``include_mpnet``; None = when available);
    or a list of dicts with ``name``, ``pooling`` and ``base`` (the base row's ``row``, or None).
    Each contrastive row names its base row, so tables can show the difference.
    """
    if isinstance(spec, (list, tuple)):
        if not spec:
            raise ValueError("roster is an empty list: give at least one entry {name, pooling, base}, or 'offline'.")
        rows = []
        for entry in spec:
            if not isinstance(entry, dict) or not {"name", "pooling"} <= set(entry):
                raise ValueError(f"a roster entry needs 'name' and 'pooling' (and optionally 'base', 'row'): {entry}")
            rows.append({"row": entry.get("row", f"{entry['name']} ({entry['pooling'].upper()})"),
                         "name": entry["name"], "pooling": entry["pooling"], "base": entry.get("base"),
                         "kind": entry.get("kind", "contrastive" if entry.get("base") else "base")})
        names = {r["row"] for r in rows}
        if len(names) < len(rows):
            twice = sorted({r["row"] for r in rows if sum(x["row"] == r["row"] for x in rows) > 1})
            raise ValueError(f"roster rows must differ: {twice} appear more than once (their tables would merge); "
                             "give each entry its own 'row' label.")
        for r in rows:
            if r["base"] and r["base"] not in names:
                raise ValueError(f"row {r['row']!r} names the base {r['base']!r}, which is not in the roster.")
        return rows
    if spec == "paper":
        return [{**r, "kind": "contrastive" if r["base"] else "base"} for r in PAPER_ROSTER]
    if spec != "offline":
        raise ValueError(f"roster must be 'offline', 'paper' or a list of entries, got {spec!r}.")
    rows = []
    if self_trained:
        pooling = self_trained.get("simcse_pooling", "mean")
        # the MLM has no trained pooler (BertForMaskedLM saves none): its CLS row is the [CLS] vector itself
        mlm_cls, mlm_mean = "self-trained MLM (CLS before pooler)", "self-trained MLM (MEAN)"
        rows += [
            {"row": mlm_cls, "name": str(self_trained["mlm"]), "pooling": "cls_before_pooler", "base": None,
             "kind": "base"},
            {"row": mlm_mean, "name": str(self_trained["mlm"]), "pooling": "mean", "base": None, "kind": "base"},
            {"row": f"self-trained SimCSE ({pooling.upper()})", "name": str(self_trained["simcse"]), "pooling": pooling,
             "base": mlm_mean if pooling == "mean" else mlm_cls, "kind": "contrastive"},
            {"row": "random init (MEAN, control)", "name": random_init_copy(str(self_trained["mlm"])), "pooling": "mean",
             "base": None, "kind": "control"},
        ]
    rows.append({"row": "all-MiniLM-L6-v2", "name": "all-MiniLM-L6-v2", "pooling": "mean", "base": None, "kind": "contrastive"})
    if include_mpnet or (include_mpnet is None and mpnet_installed()):
        rows.append({"row": "all-mpnet-base-v2", "name": "all-mpnet-base-v2", "pooling": "mean", "base": None,
                     "kind": "contrastive"})
    return rows

