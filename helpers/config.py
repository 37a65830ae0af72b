"""Paths and settings shared by every chapter (the README).

Three locations can be moved with environment variables, so that the book, the
tests and a user's own papermill runs never overwrite each other:

* ``SENTENCE_DATA_DIR``   -- local copies of the public datasets (CI: ``../shared/data``).
  A notebook's ``data_dir`` parameter overrides it. Unset: the loaders go to the hub.
* ``SENTENCE_RESULTS_DIR`` -- where chapters write their tables (default ``results/``).
* ``SENTENCE_CACHE_DIR``   -- attribution caches and trained checkpoints (default ``.cache/``).
"""
from __future__ import annotations

import os
import random
import sys
from pathlib import Path

import numpy as np

__all__ = ["ROOT", "data_dir", "results_base", "results_dir", "CHAPTER_RESULTS", "cache_dir", "settings_key",
           "settings_location", "as_stored", "settings_differences", "cached_table", "frame_digest", "code_digest",
           "check_count", "check_flag", "FLAG_WORDS", "seed_everything", "write_text_atomic",
           "TEXT_PROGRESS", "tqdm"]

ROOT = Path(__file__).resolve().parent.parent


def data_dir(override: str | os.PathLike | None = None) -> Path | None:
    """The local data folder: ``override`` if given, else ``$SENTENCE_DATA_DIR``, else None (hub)."""
    value = override if override not in (None, "") else os.environ.get("SENTENCE_DATA_DIR")
    if value in (None, ""):
        return None
    path = Path(value).expanduser()
    if not path.is_absolute():
        # relative to the working directory, else to the repository (a kernel started in notebooks/)
        tried = [(Path.cwd() / path).resolve(), (ROOT / path).resolve()]
        path = next((p for p in tried if p.is_dir()), tried[0])
    if not path.is_dir():
        raise FileNotFoundError(
            f"The data folder {path} does not exist. Set SENTENCE_DATA_DIR (or the notebook "
            "parameter data_dir) to the folder that holds stsb/, sts12/, wiki1m/ and snli/, "
            "or unset it to download the public copies from the Hugging Face hub."
        )
    return path


def results_base() -> Path:
    """The folder every chapter's results folder is in: ``$SENTENCE_RESULTS_DIR``, else ``results/``."""
    return Path(os.environ.get("SENTENCE_RESULTS_DIR") or ROOT / "results")


def results_dir(chapter: str) -> Path:
    """``results/<chapter>/`` (or ``$SENTENCE_RESULTS_DIR/<chapter>``), created on demand."""
    path = results_base() / chapter
    path.mkdir(parents=True, exist_ok=True)
    return path


#: The results folder each chapter writes (``results/<folder>/``).
CHAPTER_RESULTS = {"01_theory": "theory", "02_information": "information", "03_integrated_gradients": "ig",
                   "04_shap": "shap", "05_finetuning": "finetune", "06_regression": "regression",
                   "07_word_weights": "word_weights", "08_other_datasets": "datasets", "10_pair_similarity": "pairs",
                   "11_faithfulness": "faithfulness", "12_what_reproduced": "reproduced",
                   "13_explain_your_model": "explain"}


def cache_dir(kind: str = "") -> Path:
    """``.cache/<kind>`` (or ``$SENTENCE_CACHE_DIR/<kind>``), created on demand."""
    base = Path(os.environ.get("SENTENCE_CACHE_DIR") or ROOT / ".cache")
    path = base / kind if kind else base
    path.mkdir(parents=True, exist_ok=True)
    return path


def settings_key(settings, length: int | None = 10) -> str:
    """The name every cache entry and run folder takes from its settings: the sha1 of their sorted JSON
    (values JSON cannot hold are written as text), cut to ``length`` hex digits (None: all 40).

    Used by the training runs, the bag-of-words runs, the attribution cache and the published runs'
    names, so one change of settings names a new location everywhere in the same way."""
    import hashlib
    import json

    digest = hashlib.sha1(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()
    return digest if length is None else digest[:length]


def settings_location(kind: str, settings: dict, suffix: str = "") -> Path:
    """``.cache/runs/<kind>-<settings_key>`` (+ ``suffix``): where a run with these settings lives."""
    return cache_dir("runs") / f"{kind}-{settings_key(settings)}{suffix}"


def frame_digest(frame, columns=None) -> str:
    """The sha1 of a table's values (``columns`` of it, in their order; :func:`pandas.util.hash_pandas_object` per
    row, with the column names and dtypes): a cache key part that changes when any value (NaN and -inf apart), row
    or row order of the inputs does."""
    import hashlib

    import pandas as pd

    frame = frame if columns is None else frame[list(columns)]
    h = hashlib.sha1(repr([(str(c), str(t)) for c, t in frame.dtypes.items()]).encode())
    h.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return h.hexdigest()


def code_digest(*functions) -> str:
    """The sha1 of the functions' source code: a cache key part, so that a cached result made by code that has
    changed since (a fixed bug, another formula) is not served as if it were the new code's."""
    import hashlib
    import inspect

    h = hashlib.sha1()
    for f in functions:
        try:
            h.update(inspect.getsource(f).encode())
        except (OSError, TypeError):  # no source (a compiled or interactive function): its name at least
            h.update(f"{getattr(f, '__module__', '')}.{getattr(f, '__qualname__', repr(f))}".encode())
    return h.hexdigest()


def cached_table(kind: str, settings: dict, compute, cache: bool = True, code=()):
    """``compute()``'s table, kept in ``.cache/<kind>/<settings_key>.parquet`` so that a rebuild with the same
    settings reads it instead of computing it again (chapter 03's completeness grid, chapter 11's deletion curves,
    chapter 05's STS-B Spearman per checkpoint).

    ``settings`` must hold everything the table depends on: the model's fingerprint (its weights' bytes), the
    inputs' digest (:func:`frame_digest`), every argument, the precision the passes run in; ``code``: the functions
    that compute it, whose source (:func:`code_digest`) is part of the key, so a change of the code computes the
    table anew. Parquet keeps every float bit for bit, so a table read back equals the one computed. The entry is
    written to a temporary file and renamed (a crash leaves no half entry); a damaged or unreadable entry is
    computed again and rewritten; a table Parquet cannot hold is returned without being kept. ``cache=False``
    computes and keeps nothing.

    Written here rather than with ``joblib.Memory``: joblib would key on the pickled arguments, which for an
    encoder are its whole weights, at every call; the fingerprint is computed once per model."""
    import pandas as pd

    if not cache:
        return compute()
    path = cache_dir(kind) / f"{settings_key({**settings, 'code': code_digest(*code)}, None)}.parquet"
    if path.is_file():
        try:
            return pd.read_parquet(path)
        except Exception:  # noqa: BLE001 - truncated, edited, not Parquet: computed again below and rewritten
            pass
    table = compute()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        table.to_parquet(tmp)
        tmp.replace(path)  # a reader sees the whole entry or none
    except (ValueError, TypeError, OSError, ImportError, NotImplementedError) as exc:  # pyarrow's errors are these
        tmp.unlink(missing_ok=True)
        import warnings

        warnings.warn(f"The {kind} table was computed but not cached ({type(exc).__name__}: {exc}); the next run "
                      "computes it again.", stacklevel=2)
    return table


def as_stored(settings: dict) -> dict:
    """The settings as they read back from a JSON file (tuples as lists, other values as text)."""
    import json

    return json.loads(json.dumps(settings, sort_keys=True, default=str))


def settings_differences(stored: dict, wanted: dict) -> str:
    """'' when the stored settings are the wanted ones; else each difference as "name: <there>, <now>".

    Every cache and run folder compares what it stored with what the caller wants before it reuses it
    (training runs, bag-of-words runs and sweep shards raise an error naming these differences)."""
    stored, wanted = as_stored(stored), as_stored(wanted)
    differ = sorted(k for k in set(stored) | set(wanted) if stored.get(k) != wanted.get(k))
    return "; ".join(f"{k}: {stored.get(k)!r} there, {wanted.get(k)!r} now" for k in differ)


def check_count(name: str, value, minimum: int = 1, allow_none: bool = False):
    """A whole-number argument at least ``minimum`` (or None where allowed); else a ValueError naming it."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        what = f"a whole number >= {minimum}" + (" or None" if allow_none else "")
        raise ValueError(f"{name} must be {what}, got {value!r}.")
    return int(value)


#: Strings that spell a yes or a no: refused where a flag or a path is expected (a flag written as text on a command
#: line or in a parameters file would otherwise count as true, or name a file).
FLAG_WORDS = ("true", "false", "yes", "no", "none", "on", "off", "0", "1")


def check_flag(name: str, value) -> bool:
    """A True/False argument (numpy's bool too); else a ValueError naming it (the string 'False' is true in Python,
    so a flag given as text would silently mean the opposite)."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    hint = " (a string is not a flag: the string 'False' counts as true)" if isinstance(value, str) else ""
    raise ValueError(f"{name} must be True or False, got {value!r}{hint}.")


def write_text_atomic(path, text, what: str = "file") -> Path:
    """``text`` (a string, or a function that writes to the open file) written to ``path`` through a temporary file
    beside it and a rename: a reader sees the whole file or the old one, and a failed write leaves no temporary
    file. A ``path`` that is a folder, or whose folder does not exist, is an error naming it (``what``: what the
    file is, for the message)."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder: name the {what} to write in it (for example {path / 'out'}).")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"{path.parent}: no such folder for the {what} {path.name}; create it first.")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8", newline="") as out:  # exactly the text given, no newline translation
            if isinstance(text, str):
                out.write(text)
            else:
                text(out)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def seed_everything(seed: int) -> np.random.Generator:
    """Seed python, numpy and torch; return a numpy Generator for explicit use."""
    random.seed(seed)
    np.random.seed(seed)
    try:
        import torch

        torch.manual_seed(seed)
    except ImportError:  # pragma: no cover - torch is a hard requirement of the book
        pass
    return np.random.default_rng(seed)


#: Set by ``python -m helpers.book run``: progress bars are text (streamed to the terminal, saved as text in
#: the executed notebooks) instead of Jupyter widgets.
TEXT_PROGRESS = "SENTENCE_TEXT_PROGRESS"


def tqdm(*args, **kwargs):
    """A tqdm progress bar: a widget in Jupyter, plain text in the book's papermill runs (``$SENTENCE_TEXT_PROGRESS``).

    In a papermill run a widget would be invisible on the terminal and, in the HTML, a widget
    that needs scripts from the network; a text bar on stderr is streamed to the terminal by
    :func:`helpers.book.run_notebook` and stored as plain text.
    """
    if os.environ.get(TEXT_PROGRESS) == "1":
        from tqdm import tqdm as text_bar

        kwargs.setdefault("file", sys.stderr)
        kwargs.setdefault("mininterval", 10.0)  # a line every 10 s at most in the build log
        kwargs.setdefault("ascii", True)
        return text_bar(*args, **kwargs)
    from tqdm.auto import tqdm as auto_bar

    return auto_bar(*args, **kwargs)
