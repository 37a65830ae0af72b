"""Sentence datasets (paper section 5.1 and appendix F; DESIGN.md sections 5 and 9).

One loader, :func:`load_sentences`, returns a DataFrame with ``sentence_id`` and
``text`` (plus what the dataset adds) in a stable order. It reads the local copy
under the data-path setting (``SENTENCE_DATA_DIR`` or the ``data_dir`` argument)
and, where none is set, the public hub copy through the ``datasets`` library.
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd

from .config import data_dir as _resolve_data_dir

#: dataset -> {split: local files (relative to the data folder)}; None = hub only
LOCAL_FILES = {
    "stsb": {
        "train": ["stsb/sts-train.csv"],
        "validation": ["stsb/sts-dev.csv"],
        "test": ["stsb/sts-test.csv"],
    },
    "sts12": {
        "test": [f"sts12/STS.input.{p}.txt" for p in
                 ("MSRpar", "MSRvid", "SMTeuroparl", "surprise.OnWN", "surprise.SMTnews")],
    },
    "wiki": {"train": ["wiki1m/wiki1m_head.txt"]},
    "nli": {
        "validation": ["snli/s1.dev", "snli/s2.dev", "snli/labels.dev"],
        "test": ["snli/s1.test", "snli/s2.test", "snli/labels.test"],
    },
}
#: splits available from the hub, and the split each dataset uses in the paper
HUB_SPLITS = {
    "stsb": ("train", "validation", "test"),
    "sts12": ("test",),
    "wiki": ("train",),
    "nli": ("train", "validation", "test"),
}
PAPER_SPLIT = {"stsb": "validation", "sts12": "test", "wiki": "train", "nli": "train"}
DATASETS = tuple(LOCAL_FILES)
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


def _read_stsb(path: Path) -> pd.DataFrame:
    rows = []
    with open(path, encoding="utf-8") as fh:
        # 22 rows carry 2 extra trailing fields: keep the first 7, never merge quotes
        for fields in csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE):
            if len(fields) >= 7:
                rows.append(fields[:7])
    genre, _, _, _, score, s1, s2 = map(list, zip(*rows))
    return _pairs_frame(s1, s2, {"score": np.asarray(score, dtype=float), "genre": genre})


def _read_sts12(paths: list[Path]) -> pd.DataFrame:
    frames = []
    for path in paths:
        part = path.name[len("STS.input."):-len(".txt")]
        with open(path, encoding="utf-8") as fh:
            pairs = [line.rstrip("\n").split("\t")[:2] for line in fh if line.strip()]
        gold = path.with_name(f"STS.gs.{part}.txt")
        scores = [float(x) if x.strip() else np.nan for x in gold.read_text().splitlines()]
        s1, s2 = zip(*pairs)
        frames.append(_pairs_frame(s1, s2, {"score": scores[: len(s1)], "part": [part] * len(s1)}))
    df = pd.concat(frames, ignore_index=True)
    df["pair_id"] = np.repeat(np.arange(len(df) // 2), 2)
    return df


def _read_snli(paths: list[Path]) -> pd.DataFrame:
    s1, s2, labels = ([line.strip() for line in p.read_text(encoding="utf-8").splitlines()] for p in paths)
    return _pairs_frame(s1, s2, {"label": labels})


def _read_local(dataset: str, split: str, root: Path) -> pd.DataFrame:
    paths = [root / rel for rel in LOCAL_FILES[dataset][split]]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(
            f"{dataset}/{split}: missing {', '.join(missing)} under the data folder {root} "
            "(SENTENCE_DATA_DIR / data_dir). See shared/data/README.md for the expected layout."
        )
    if dataset == "stsb":
        return _read_stsb(paths[0])
    if dataset == "sts12":
        return _read_sts12(paths)
    if dataset == "nli":
        return _read_snli(paths)
    lines = [ln.strip() for ln in paths[0].read_text(encoding="utf-8").splitlines()]
    return pd.DataFrame({"text": [ln for ln in lines if ln]})


def _read_hub(dataset: str, split: str) -> pd.DataFrame:  # pragma: no cover - needs the network
    try:
        from datasets import load_dataset

        if dataset == "stsb":
            d = load_dataset("sentence-transformers/stsb", split=split)
            return _pairs_frame(d["sentence1"], d["sentence2"], {"score": np.asarray(d["score"]) * 5.0})
        if dataset == "sts12":
            d = load_dataset("mteb/sts12-sts", split="test")
            return _pairs_frame(d["sentence1"], d["sentence2"], {"score": d["score"]})
        if dataset == "wiki":
            d = load_dataset("princeton-nlp/datasets-for-simcse", data_files="wiki1m_for_simcse.txt",
                             split="train")
            return pd.DataFrame({"text": [t.strip() for t in d["text"] if t and t.strip()]})
        if split == "train":
            d = load_dataset("princeton-nlp/datasets-for-simcse", data_files="nli_for_simcse.csv",
                             split="train")
            return _pairs_frame(d["sent0"], d["sent1"], {"hard_neg": d["hard_neg"]})
        d = load_dataset("stanfordnlp/snli", split=split)
        names = {0: "entailment", 1: "neutral", 2: "contradiction", -1: "-"}
        return _pairs_frame(d["premise"], d["hypothesis"], {"label": [names[x] for x in d["label"]]})
    except Exception as exc:
        raise RuntimeError(
            f"Could not load {dataset}/{split} from the Hugging Face hub ({type(exc).__name__}: {exc}). "
            "Offline, set SENTENCE_DATA_DIR (or the notebook parameter data_dir) to a folder with "
            "the local copies (CI uses ../shared/data)."
        ) from exc


def load_sentences(dataset: str, split: str | None = None, data_dir=None, limit: int | None = None,
                   seed: int = 0, deduplicate: bool = False) -> pd.DataFrame:
    """Load the sentences of a dataset (paper section 5.1, appendix F.1).

    Parameters
    ----------
    dataset: ``stsb``, ``sts12``, ``wiki`` or ``nli``.
    split: ``train``, ``validation`` or ``test``; None = the paper's split
        (STS-B validation, STS12 test, wiki train, NLI train = ``nli_for_simcse``).
        Offline, NLI has only SNLI's validation and test; None then means validation.
    data_dir: overrides ``SENTENCE_DATA_DIR``; both unset = the hub copy.
    limit, seed: a reproducible random sample of ``limit`` sentences (kept in file order).
    deduplicate: drop repeated texts (SNLI repeats each premise three times).

    Returns a DataFrame with ``sentence_id`` (0..n-1 in the full split, stable across
    samples), ``text`` and the dataset's extra columns (``pair_id``, ``side``, ``score``...).
    """
    if dataset not in DATASETS:
        raise ValueError(f"Unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}.")
    root = _resolve_data_dir(data_dir)
    available = tuple(LOCAL_FILES[dataset]) if root is not None else HUB_SPLITS[dataset]
    if split is None:
        split = PAPER_SPLIT[dataset] if PAPER_SPLIT[dataset] in available else available[0]
    if split not in available:
        where = f"in the local copy at {root}" if root is not None else "on the hub"
        raise ValueError(f"{dataset} has no split {split!r} {where}; it has: {', '.join(available)}.")
    df = _read_local(dataset, split, root) if root is not None else _read_hub(dataset, split)
    df.insert(0, "sentence_id", np.arange(len(df)))
    df = df[["sentence_id", "text"] + [c for c in df.columns if c not in ("sentence_id", "text")]]
    if deduplicate:
        df = df.drop_duplicates("text", keep="first")
    if limit is not None and limit < len(df):
        rng = np.random.default_rng(seed)
        keep = np.sort(rng.choice(len(df), size=limit, replace=False))
        df = df.iloc[keep]
    df = df.reset_index(drop=True)
    df.attrs["dataset"], df.attrs["split"] = dataset, split
    return df


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
