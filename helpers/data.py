"""Sentence datasets (paper section 5.1 and appendix F; the README's Data section).

One loader, :func:`load_sentences`, returns a DataFrame with ``sentence_id`` and
``text`` (plus what the dataset adds) in a stable order. It reads the local copy
under the data-path setting (``SENTENCE_DATA_DIR`` or the ``data_dir`` argument)
and, where none is set, the public hub copy through the ``datasets`` library.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from .config import check_count
from .config import data_dir as _resolve_data_dir

__all__ = ["Dataset", "REGISTRY", "LOCAL_FILES", "HUB_SPLITS", "PAPER_SPLIT", "DATASETS", "EVALUATION_SIZE", "EVALUATION_SEED", "FIGURE3",
           "PUBLISHED_ROWS", "SCORE_RANGE", "DataFileError", "load_sentences", "with_sentences", "evaluation_sentences",
           "held_out_texts", "pretraining_corpus", "nli_triplets"]

#: The evaluation sentences of each dataset (what the chapters attribute) are held out of every
#: training corpus of the book: STS-B validation whole, and of the others a fixed sample of the
#: paper's size (3,000 distinct sentences of the default split, appendix F.1).
EVALUATION_SIZE = 3000
EVALUATION_SEED = 0
#: The paper's Figure 3 sentences (all three are in STS-B validation).
FIGURE3 = ("A man is playing a guitar.", "A man with a hard hat is dancing.", "A young child is riding a horse.")


def _pairs_frame(s1, s2, extra: dict) -> pd.DataFrame:
    """Both sentences of each pair, pair-major: ids 2*pair and 2*pair+1."""
    n = len(s1)
    df = pd.DataFrame({
        "pair_id": np.repeat(np.arange(n), 2),
        "side": np.tile([0, 1], n),
        "text": [s for pair in zip(s1, s2) for s in pair],
    })
    for key, values in extra.items():
        df[key] = np.repeat(np.asarray(values), 2)
    return df


#: Pairs (lines) in the published files: a local copy with another count is cut short or mixed up.
PUBLISHED_ROWS = {
    "stsb/sts-train.csv": 5749, "stsb/sts-dev.csv": 1500, "stsb/sts-test.csv": 1379,
    "snli/s1.dev": 9842, "snli/s1.test": 9824,
    "sts12/STS.input.MSRpar.txt": 750, "sts12/STS.input.MSRvid.txt": 750, "sts12/STS.input.SMTeuroparl.txt": 459,
    "sts12/STS.input.surprise.OnWN.txt": 750, "sts12/STS.input.surprise.SMTnews.txt": 399,
}


class DataFileError(ValueError):
    """A local dataset file is damaged: the message names the file (and the line) and what to do."""


def _lines(path: Path) -> list[str]:
    """The lines of a UTF-8 text file; an empty or non-UTF-8 file is an error naming the file and line."""
    raw = path.read_bytes()
    if not raw.strip():
        raise DataFileError(f"{path} is empty: restore it from the dataset's original copy.")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise DataFileError(f"{path}, line {line}: not UTF-8 text ({exc.reason} at byte {exc.start}). The book reads "
                            "the datasets as UTF-8: convert the file (e.g. iconv -f latin1 -t utf-8).") from None
    text = text.removeprefix("\ufeff")  # a byte-order mark some editors write: not part of the first row
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the final newline
    lines = [ln[:-1] if ln.endswith("\r") else ln for ln in lines]  # CRLF files read as LF files
    for number, line in enumerate(lines, 1):
        if "\r" in line:
            raise DataFileError(f"{path}, line {number}: a carriage return inside the line (old Mac line endings, or "
                                "two rows run together): convert the file to one row per line (e.g. dos2unix -c mac).")
    return lines


def _check_rows(path: Path, found: int, root: Path, strict: bool) -> None:
    expected = PUBLISHED_ROWS.get(path.relative_to(root).as_posix()) if strict else None
    if expected is not None and found != expected:
        raise DataFileError(f"{path} has {found} rows, the published file {expected}: it is cut short or altered. "
                            "Restore the original file, or pass strict=False to load_sentences to read it as it is.")


#: The range of the STS gold scores (STS-B and STS12: 0 = unrelated, 5 = equivalent).
SCORE_RANGE = (0.0, 5.0)


def _score(field: str, path: Path, number: int) -> float:
    """A gold similarity score, checked: a number in :data:`SCORE_RANGE`, never NaN or text."""
    try:
        value = float(field.strip())
    except ValueError:
        raise DataFileError(f"{path}, line {number}: the score {field!r} is not a number (STS gold scores are "
                            f"between {SCORE_RANGE[0]:g} and {SCORE_RANGE[1]:g}). Restore the original file.") from None
    if not SCORE_RANGE[0] <= value <= SCORE_RANGE[1]:  # also False for NaN
        raise DataFileError(f"{path}, line {number}: the score {field.strip()!r} is not between {SCORE_RANGE[0]:g} and "
                            f"{SCORE_RANGE[1]:g}, the range of STS gold scores. Restore the original file.")
    return value


def _read_stsb(path: Path, root: Path, strict: bool = True) -> pd.DataFrame:
    rows = []
    # some rows carry 2 extra trailing fields (source notes, with a URL): keep the first 7; quotes are text
    for number, line in enumerate(_lines(path), 1):
        fields = line.split("\t")  # what csv.reader does with QUOTE_NONE, without its own line-ending rules
        if len(fields) < 7:
            raise DataFileError(f"{path}, line {number}: {len(fields)} tab-separated fields, STS-B rows have 7 "
                                "(genre, file, year, id, score, sentence 1, sentence 2). The file is damaged: "
                                "restore it from the original copy.")
        if len(fields) not in (7, 9) or (len(fields) == 9 and "://" not in fields[7] + fields[8]):
            raise DataFileError(f"{path}, line {number}: {len(fields)} tab-separated fields, where STS-B rows have 7 "
                                "(or 9 with two source notes): a sentence holds a tab, so its second half would be "
                                "read as the other sentence. Replace the tab inside the sentence with a space.")
        fields[4] = _score(fields[4], path, number)
        for side in (5, 6):
            if not fields[side].strip():
                raise DataFileError(f"{path}, line {number}: sentence {side - 4} is empty. The file is damaged: "
                                    "restore it from the original copy.")
        rows.append(fields[:7])
    _check_rows(path, len(rows), root, strict)
    genre, _, _, _, score, s1, s2 = map(list, zip(*rows))
    return _pairs_frame(s1, s2, {"score": np.asarray(score, dtype=float), "genre": genre})


def _read_sts12(paths: list[Path], root: Path, strict: bool = True) -> pd.DataFrame:
    frames = []
    for path in paths:
        part = path.name[len("STS.input."):-len(".txt")]
        pairs = []
        for number, line in enumerate(_lines(path), 1):
            fields = line.split("\t")
            if len(fields) < 2 or not fields[0].strip() or not fields[1].strip():
                raise DataFileError(f"{path}, line {number}: expected two tab-separated sentences.")
            pairs.append(fields[:2])
        _check_rows(path, len(pairs), root, strict)
        gold = path.with_name(f"STS.gs.{part}.txt")
        scores = [_score(x, gold, number) for number, x in enumerate(_lines(gold), 1)]
        if len(scores) != len(pairs):
            raise DataFileError(f"{gold} has {len(scores)} scores for the {len(pairs)} pairs of {path}: one of "
                                "the two files is damaged.")
        s1, s2 = zip(*pairs)
        frames.append(_pairs_frame(s1, s2, {"score": scores, "part": [part] * len(s1)}))
    df = pd.concat(frames, ignore_index=True)
    df["pair_id"] = np.repeat(np.arange(len(df) // 2), 2)
    return df


def _read_snli(paths: list[Path], root: Path, strict: bool = True) -> pd.DataFrame:
    s1, s2, labels = ([line.strip() for line in _lines(p)] for p in paths)
    if not len(s1) == len(s2) == len(labels):
        raise DataFileError(f"{', '.join(map(str, paths))} have {len(s1)}, {len(s2)} and {len(labels)} lines; "
                            "they must be parallel (one premise, hypothesis and label per line).")
    _check_rows(paths[0], len(s1), root, strict)
    for name, column in (("premise", s1), ("hypothesis", s2)):
        if "" in column:
            raise DataFileError(f"{paths[0 if name == 'premise' else 1]}, line {column.index('') + 1}: empty {name}.")
    return _pairs_frame(s1, s2, {"label": labels})


def _read_lines(paths: list[Path], root: Path, strict: bool = True) -> pd.DataFrame:
    """One sentence per line (the Wikipedia sample); blank lines are left out."""
    lines = [ln.strip() for ln in _lines(paths[0])]
    return pd.DataFrame({"text": [ln for ln in lines if ln]})


def _hub(name: str, **kwargs):  # pragma: no cover - needs the network
    from datasets import load_dataset

    return load_dataset(name, **kwargs)


def _hub_stsb(split: str) -> pd.DataFrame:  # pragma: no cover - needs the network
    d = _hub("sentence-transformers/stsb", split=split)
    return _pairs_frame(d["sentence1"], d["sentence2"], {"score": np.asarray(d["score"]) * 5.0})


def _hub_sts12(split: str) -> pd.DataFrame:  # pragma: no cover - needs the network
    d = _hub("mteb/sts12-sts", split="test")
    return _pairs_frame(d["sentence1"], d["sentence2"], {"score": d["score"]})


def _hub_wiki(split: str) -> pd.DataFrame:  # pragma: no cover - needs the network
    d = _hub("princeton-nlp/datasets-for-simcse", data_files="wiki1m_for_simcse.txt", split="train")
    return pd.DataFrame({"text": [t.strip() for t in d["text"] if t and t.strip()]})


def _hub_nli(split: str) -> pd.DataFrame:  # pragma: no cover - needs the network
    if split == "train":
        d = _hub("princeton-nlp/datasets-for-simcse", data_files="nli_for_simcse.csv", split="train")
        return _pairs_frame(d["sent0"], d["sent1"], {"hard_neg": d["hard_neg"]})
    d = _hub("stanfordnlp/snli", split=split)
    names = {0: "entailment", 1: "neutral", 2: "contradiction", -1: "-"}
    return _pairs_frame(d["premise"], d["hypothesis"], {"label": [names[x] for x in d["label"]]})


@dataclass(frozen=True)
class Dataset:
    """A dataset the book reads: its local files per split (relative to the data folder, ``SENTENCE_DATA_DIR``) and
    the function that reads them (``read_local(paths, root, strict)``), the splits on the hub and the function that
    loads one (``read_hub(split)``), the split the paper uses, and ``evaluation_split``: the split evaluated whole
    (STS-B validation, the paper's set), or None for a fixed sample of :data:`EVALUATION_SIZE` sentences."""

    local_files: dict
    read_local: Callable
    hub_splits: tuple
    read_hub: Callable
    paper_split: str
    evaluation_split: str | None = None


#: Every dataset the book reads, by name: adding one is a reader and one entry here (CONTRIBUTING.md).
REGISTRY = {
    "stsb": Dataset({"train": ["stsb/sts-train.csv"], "validation": ["stsb/sts-dev.csv"], "test": ["stsb/sts-test.csv"]},
                    lambda paths, root, strict: _read_stsb(paths[0], root, strict), ("train", "validation", "test"),
                    _hub_stsb, "validation", evaluation_split="validation"),
    "sts12": Dataset({"test": [f"sts12/STS.input.{p}.txt" for p in
                               ("MSRpar", "MSRvid", "SMTeuroparl", "surprise.OnWN", "surprise.SMTnews")]},
                     _read_sts12, ("test",), _hub_sts12, "test"),
    "wiki": Dataset({"train": ["wiki1m/wiki1m_head.txt"]}, _read_lines, ("train",), _hub_wiki, "train"),
    "nli": Dataset({"validation": ["snli/s1.dev", "snli/s2.dev", "snli/labels.dev"],
                    "test": ["snli/s1.test", "snli/s2.test", "snli/labels.test"]},
                   _read_snli, ("train", "validation", "test"), _hub_nli, "train"),
}
#: The registry's columns under the names the chapters and tests read: local files per split, hub splits, the
#: paper's split, the names.
LOCAL_FILES = {name: d.local_files for name, d in REGISTRY.items()}
HUB_SPLITS = {name: d.hub_splits for name, d in REGISTRY.items()}
PAPER_SPLIT = {name: d.paper_split for name, d in REGISTRY.items()}
DATASETS = tuple(REGISTRY)


def _read_local(dataset: str, split: str, root: Path, strict: bool = True) -> pd.DataFrame:
    paths = [root / rel for rel in REGISTRY[dataset].local_files[split]]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(
            f"{dataset}/{split}: missing {', '.join(missing)} under the data folder {root} "
            "(SENTENCE_DATA_DIR / data_dir). See shared/data/README.md for the expected layout."
        )
    return REGISTRY[dataset].read_local(paths, root, strict)


def _read_hub(dataset: str, split: str) -> pd.DataFrame:  # pragma: no cover - needs the network
    try:
        return REGISTRY[dataset].read_hub(split)
    except Exception as exc:
        raise RuntimeError(
            f"Could not load {dataset}/{split} from the Hugging Face hub ({type(exc).__name__}: {exc}). "
            "Offline, set SENTENCE_DATA_DIR (or the notebook parameter data_dir) to a folder with "
            "the local copies (CI uses ../shared/data)."
        ) from exc


def _check_dataset(dataset) -> None:
    """``dataset`` is a registered name; else an error listing them (and, for a text with spaces, saying that a
    corpus of one's own is a list of sentences, as ``explain(reference=[...])`` takes it)."""
    if dataset not in REGISTRY:
        hint = (" It looks like a sentence: where a corpus of your own is taken (explain's reference=), pass a "
                "list of sentences." if isinstance(dataset, str) and " " in dataset.strip() else "")
        raise ValueError(f"Unknown dataset {dataset!r}; choose one of {', '.join(REGISTRY)}.{hint}")


def load_sentences(dataset: str, split: str | None = None, data_dir=None, limit: int | None = None,
                   seed: int = 0, deduplicate: bool = False, strict: bool = True) -> pd.DataFrame:
    """Load the sentences of a dataset (paper section 5.1, appendix F.1).

    Parameters
    ----------
    dataset: ``stsb``, ``sts12``, ``wiki`` or ``nli`` (a name of :data:`REGISTRY`).
    split: ``train``, ``validation`` or ``test``; None = the paper's split
        (STS-B validation, STS12 test, wiki train, NLI train = ``nli_for_simcse``).
        Offline, NLI has only SNLI's validation and test; None then means validation.
    data_dir: overrides ``SENTENCE_DATA_DIR``; both unset = the hub copy.
    limit, seed: a reproducible random sample of ``limit`` sentences (kept in file order).
    deduplicate: drop repeated texts (SNLI repeats each premise three times).
    strict: a local file must have the published number of rows (a file cut short is an error
        naming it); False reads your own files in the same layout as they are. Damaged rows,
        empty files and non-UTF-8 files are errors (:class:`DataFileError`) either way.

    Returns a DataFrame with ``sentence_id`` (0..n-1 in the full split, stable across
    samples), ``text`` and the dataset's extra columns (``pair_id``, ``side``, ``score``...).
    """
    _check_dataset(dataset)
    root, entry = _resolve_data_dir(data_dir), REGISTRY[dataset]
    available = tuple(entry.local_files) if root is not None else entry.hub_splits
    if split is None:
        split = entry.paper_split if entry.paper_split in available else available[0]
    if split not in available:
        where = f"in the local copy at {root}" if root is not None else "on the hub"
        raise ValueError(f"{dataset} has no split {split!r} {where}; it has: {', '.join(available)}.")
    check_count("limit", limit, 1, allow_none=True)
    df = _read_local(dataset, split, root, strict) if root is not None else _read_hub(dataset, split)
    df.insert(0, "sentence_id", np.arange(len(df)))
    df = df[["sentence_id", "text"] + [c for c in df.columns if c not in ("sentence_id", "text")]]
    if deduplicate:
        df = df.drop_duplicates("text", keep="first")
    df = _sample(df, limit, seed)
    df.attrs["dataset"], df.attrs["split"] = dataset, split
    return df


def _sample(df: pd.DataFrame, limit: int | None, seed: int) -> pd.DataFrame:
    """A reproducible random sample of ``limit`` rows kept in their order (all rows when ``limit`` is None or larger)."""
    if limit is not None and limit < len(df):
        df = df.iloc[np.sort(np.random.default_rng(seed).choice(len(df), size=limit, replace=False))]
    out = df.reset_index(drop=True)
    out.attrs.update(df.attrs)
    return out


def with_sentences(sample: pd.DataFrame, full: pd.DataFrame, texts=FIGURE3) -> pd.DataFrame:
    """``sample`` plus the first row of ``full`` for each of ``texts`` (e.g. Figure 3's), in id order, no repeats."""
    extra = full[full["text"].isin(texts)].drop_duplicates("text")
    missing = set(texts) - set(extra["text"])
    if missing:
        raise ValueError(f"not in this dataset: {sorted(missing)}")
    out = pd.concat([sample, extra]).drop_duplicates("sentence_id").sort_values("sentence_id")
    out = out.reset_index(drop=True)
    out.attrs.update(sample.attrs)
    return out


def evaluation_sentences(dataset: str, data_dir=None, limit: int | None = None, seed: int = 0) -> pd.DataFrame:
    """The held-out sentences a chapter may evaluate on (attribute, and count KL and I over).

    STS-B: the whole validation split (the paper's set). wiki, nli, sts12: a fixed sample of
    :data:`EVALUATION_SIZE` distinct sentences of the default split (seed :data:`EVALUATION_SEED`),
    the paper's appendix F sample. No training corpus of the book contains any of them
    (:func:`held_out_texts`). ``limit``/``seed``: a reproducible subsample of those.
    """
    _check_dataset(dataset)
    if REGISTRY[dataset].evaluation_split is not None:
        full = load_sentences(dataset, REGISTRY[dataset].evaluation_split, data_dir=data_dir)
    else:
        full = load_sentences(dataset, data_dir=data_dir, limit=EVALUATION_SIZE, seed=EVALUATION_SEED,
                              deduplicate=True)
    if limit is None or limit == len(full):
        return full
    check_count("limit", limit, 1)
    if limit > len(full):
        raise ValueError(f"{dataset} holds out {len(full)} evaluation sentences, fewer than limit={limit}: the "
                         "others are in the book's training corpora. Use at most that many, or train without them.")
    return _sample(full, limit, seed)


def held_out_texts(data_dir=None, datasets=DATASETS) -> frozenset[str]:
    """Every evaluation sentence of every dataset (:func:`evaluation_sentences`): kept out of training.

    Read once per data folder and process (the corpus and the NLI triplets both need it).
    """
    root = _resolve_data_dir(data_dir)
    return _held_out(str(root) if root is not None else None, tuple(datasets))


@lru_cache(maxsize=8)
def _held_out(root: str | None, datasets: tuple) -> frozenset[str]:
    return frozenset().union(*(evaluation_sentences(d, root)["text"] for d in datasets))


# --------------------------------------------------------------------------- training corpora
def pretraining_corpus(data_dir=None, include=("wiki", "stsb_train", "stsb_test", "nli", "sts12")) -> list[str]:
    """The local sentences for MLM pre-training, without any evaluation sentence of any chapter.

    The held-out set is :func:`held_out_texts`: STS-B validation and the 3,000-sentence
    evaluation samples of wiki, NLI and STS12 that the other-datasets chapter attributes.
    """
    parts = {
        "wiki": lambda: load_sentences("wiki", data_dir=data_dir),
        "stsb_train": lambda: load_sentences("stsb", "train", data_dir=data_dir),
        "stsb_test": lambda: load_sentences("stsb", "test", data_dir=data_dir),
        "nli": lambda: pd.concat([load_sentences("nli", s, data_dir=data_dir) for s in ("validation", "test")]),
        "sts12": lambda: load_sentences("sts12", data_dir=data_dir),
    }
    texts = pd.concat([parts[name]()["text"] for name in include]).drop_duplicates()
    held_out = held_out_texts(data_dir)
    return [t for t in texts if t not in held_out]


def nli_triplets(data_dir=None) -> pd.DataFrame:
    """(anchor, positive, hard negative) from NLI: premise, its entailment, its contradiction (supervised SimCSE).

    A triplet with any held-out evaluation sentence (:func:`held_out_texts`) is left out.
    """
    held_out = held_out_texts(data_dir)
    frames = []
    for split in ("validation", "test"):
        df = load_sentences("nli", split, data_dir=data_dir)
        pairs = df.pivot(index="pair_id", columns="side", values="text").rename(columns={0: "premise", 1: "hypothesis"})
        pairs["label"] = df.groupby("pair_id")["label"].first()
        ent = pairs[pairs["label"] == "entailment"].drop_duplicates("premise").set_index("premise")["hypothesis"]
        con = pairs[pairs["label"] == "contradiction"].drop_duplicates("premise").set_index("premise")["hypothesis"]
        both = ent.index.intersection(con.index)
        frames.append(pd.DataFrame({"anchor": both, "positive": ent[both].values, "negative": con[both].values}))
    triplets = pd.concat(frames, ignore_index=True)
    clean = ~triplets.isin(held_out).any(axis=1)
    triplets = triplets[clean].reset_index(drop=True)
    if triplets.empty:
        raise ValueError("no NLI triplets (premise with both an entailment and a contradiction) were found.")
    return triplets
