"""What a sentence-transformers model runs after its transformer (measure layer): its ``modules.json`` read in order
(the pooling, Dense layers, Normalize, truncation), the prompt it writes before every input and the similarity it
names, as the modules :class:`helpers.encoders.Encoder` applies after pooling.

A folder's files are read here and a loaded ``SentenceTransformer`` object is taken apart by
:func:`helpers.encoders.load_encoder` under the same rules (:func:`check_order`, :func:`post_modules`): the book
needs the transformer apart from the modules after it, since attribution differentiates the whole function from the
input word embeddings.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F

__all__ = ["ST_POOLINGS", "UnsupportedPooling", "st_pooling", "L2Normalize", "Truncate", "SIMILARITY_NAMES",
           "similarity_name", "sentence_transformers_modules", "default_prompt", "read_json", "check_order",
           "post_modules", "dense_module"]


#: sentence-transformers' pooling modes the book follows (its "cls" is the [CLS] vector, no pooler layer)
ST_POOLINGS = {"pooling_mode_mean_tokens": "mean", "pooling_mode_cls_token": "cls_before_pooler", "mean": "mean",
               "cls": "cls_before_pooler"}


def st_pooling(config: dict, where: str) -> str:
    """The book's pooling for a sentence-transformers Pooling config (``pooling_mode_*`` flags, or the newer
    ``pooling_mode`` string); any other mode, or several at once, is an error naming ``where``."""
    if isinstance(config.get("pooling_mode"), str):
        modes = [config["pooling_mode"]]
    else:
        modes = [k for k, v in config.items() if k.startswith("pooling_mode") and v is True]
    if config.get("include_prompt") is False:
        raise UnsupportedPooling(f"{where}: pooling that leaves out the prompt tokens is not one the book follows.")
    if len(modes) != 1 or modes[0] not in ST_POOLINGS:
        raise UnsupportedPooling(f"{where}: pooling {modes} is not one the book follows (mean tokens or the CLS "
                                 "token, one of them); pass pooling='mean' or 'cls_before_pooler' to load_encoder to "
                                 "override it (a different model from the one saved).")
    return ST_POOLINGS[modes[0]]


class UnsupportedPooling(ValueError):
    """A sentence-transformers model pools in a way the book does not follow (max, weighted mean, last token...)."""


class L2Normalize(torch.nn.Module):
    """sentence-transformers' Normalize module where a later module follows it (a Dense layer after it)."""

    def forward(self, s):
        return F.normalize(s, dim=-1)


class Truncate(torch.nn.Module):
    """sentence-transformers' ``truncate_dim``: the sentence vector's first ``dim`` outputs (Matryoshka models)."""

    def __init__(self, dim: int):
        super().__init__()
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise ValueError(f"truncate_dim must be a positive integer, got {dim!r}.")
        self.dim = dim

    def forward(self, s):
        return s[..., :self.dim]

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


#: The similarity functions a sentence-transformers model may name, in the book's spelling.
SIMILARITY_NAMES = {"cosine": "cosine", "cos_sim": "cosine", "dot": "dot", "dot_product": "dot", "dot_score": "dot",
                    "euclidean": "euclidean", "manhattan": "manhattan"}


def similarity_name(name) -> str:
    """The book's name of a similarity function (``cosine``, ``dot``, ``euclidean``, ``manhattan``); None is
    sentence-transformers' default, cosine."""
    key = str(getattr(name, "value", name) or "cosine").lower()
    if key not in SIMILARITY_NAMES:
        raise ValueError(f"similarity {name!r} is not one sentence-transformers defines ({', '.join(SIMILARITY_NAMES)}).")
    return SIMILARITY_NAMES[key]


def sentence_transformers_modules(folder) -> dict | None:
    """What a sentence-transformers folder's ``modules.json`` says comes after the transformer, in its order:
    the pooling (``mean`` or ``cls_before_pooler``), then ``post``, a list of ("dense", module) and
    ("normalize", None) entries, and ``max_seq_length`` from ``sentence_bert_config.json``. None for a folder
    without ``modules.json``. A module or an order the book cannot follow is an error naming it."""
    folder = Path(folder)
    spec = folder / "modules.json"
    if not spec.is_file():
        return None
    out = {"pooling": None, "post": [], "max_seq_length": None}
    kinds = []
    listed = read_json(spec, list)
    if not all(isinstance(m, dict) for m in listed):
        raise ValueError(f"{spec} is damaged: it must list one object per module. Download or save the model again.")
    for module in sorted(listed, key=lambda m: int(m.get("idx", 0))):
        kind = str(module.get("type", "")).rsplit(".", 1)[-1]
        kinds.append(kind)
        path = folder / module.get("path", "")
        if kind == "Transformer":
            config = path / "sentence_bert_config.json"
            if config.is_file():
                settings = read_json(config)
                out["max_seq_length"] = settings.get("max_seq_length")
                if settings.get("do_lower_case"):
                    raise ValueError(f"{config}: do_lower_case lower-cases the text before the tokenizer, which the "
                                     "book does not follow; save the model without it.")
        elif kind == "Pooling":
            config = read_json(path / "config.json")  # a damaged file is an error whatever the pooling asked
            try:  # a pooling the book does not follow is an error only if the caller leaves it to the model
                out["pooling"] = st_pooling(config, str(path / "config.json"))
            except ValueError as err:
                out["pooling_error"] = str(err)
        elif kind == "Dense":
            out["post"].append(("dense", dense_module(path)))
        elif kind == "Normalize":
            out["post"].append(("normalize", None))
        else:
            raise ValueError(f"{spec}: module {module.get('type')!r} is not one the book follows (Transformer, "
                             "Pooling, Dense, Normalize).")
    check_order(kinds, str(spec))
    config = folder / "config_sentence_transformers.json"
    settings = read_json(config) if config.is_file() else {}
    out["similarity_fn_name"] = similarity_name(settings.get("similarity_fn_name"))
    if settings.get("truncate_dim") is not None:
        out["post"].append(("truncate", settings["truncate_dim"]))
    out["prompt"] = default_prompt(settings.get("prompts") or {}, settings.get("default_prompt_name"), str(config))
    return out


def default_prompt(prompts: dict, name, where: str) -> str | None:
    """The text a sentence-transformers model writes before every input by default (None or "" when none)."""
    if name is None:
        return None
    if name not in prompts:
        raise ValueError(f"{where}: default_prompt_name {name!r} is not among its prompts {sorted(prompts)}.")
    return prompts[name] or None


def read_json(path: Path, kind: type = dict):
    """A model folder's JSON file, or an error naming it: missing, damaged (not JSON) or of the wrong shape."""
    try:
        value = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{path} is missing: the model folder is incomplete. Download or save the model again.") \
            from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path} is damaged or incomplete (not JSON: {exc}). Download or save the model again.") \
            from None
    if not isinstance(value, kind):
        raise ValueError(f"{path} is damaged: it holds a {type(value).__name__}, not a JSON "
                         f"{'object' if kind is dict else 'list'}. Download or save the model again.")
    return value


def check_order(kinds: list[str], where: str) -> None:
    """Transformer, then Pooling, then Dense and Normalize modules in any order: what the book can follow."""
    if kinds[:2] != ["Transformer", "Pooling"] or any(k in ("Transformer", "Pooling") for k in kinds[2:]):
        raise ValueError(f"{where}: the modules run in the order {' -> '.join(kinds)}; the book follows a "
                         "Transformer, then one Pooling, then Dense and Normalize modules.")


def post_modules(entries, normalize, device) -> tuple[list, bool]:
    """The modules after pooling, in order, and whether the output is normalised at the end.

    A final Normalize is the ``normalize`` choice (``"auto"``: kept; False: left out, the book's unnormalised
    embeddings); a Normalize that a Dense layer follows is part of the model's function and always applied."""
    post, final = [], bool(normalize) and normalize != "auto"
    last_dense = max((i for i, (kind, _) in enumerate(entries) if kind == "dense"), default=-1)
    last_truncate = max((i for i, (kind, _) in enumerate(entries) if kind == "truncate"), default=-1)
    for i, (kind, module) in enumerate(entries):
        if kind == "dense":
            post.append(module.to(device))
        elif kind == "truncate":
            post.append(Truncate(module))  # sentence-transformers truncates after every module
        elif i < last_dense:
            post.append(L2Normalize())
        elif normalize == "auto":
            if i < last_truncate:
                post.append(L2Normalize())  # normalised, then truncated: model.encode()'s order
            else:
                final = True
    return post, final


def dense_module(path: Path) -> torch.nn.Module:
    """A sentence-transformers Dense module (Linear then its activation) from its folder."""
    import importlib

    config = read_json(path / "config.json")
    try:
        linear = torch.nn.Linear(int(config["in_features"]), int(config["out_features"]), bias=config.get("bias", True))
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path / 'config.json'} is damaged: a Dense layer needs in_features and out_features "
                         f"({type(exc).__name__}: {exc}). Download or save the model again.") from None
    weights = path / "model.safetensors"
    if not weights.is_file():
        weights = path / "pytorch_model.bin"
    try:
        if weights.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(weights))
        else:
            state = torch.load(weights, map_location="cpu", weights_only=True)
        linear.load_state_dict({k.removeprefix("linear."): v for k, v in state.items()})
    except Exception as exc:  # noqa: BLE001 - SafetensorError, EOFError, RuntimeError...: say which file
        first = (str(exc).splitlines() or [""])[0][:160]
        raise ValueError(f"{weights} (a Dense layer's weights) is damaged, incomplete or missing ({type(exc).__name__}: "
                         f"{first}). Download or save the model again.") from None
    module_name, _, cls = config.get("activation_function", "torch.nn.Identity").rpartition(".")
    activation = getattr(importlib.import_module(module_name), cls)()
    return torch.nn.Sequential(linear, activation).eval().requires_grad_(False)
