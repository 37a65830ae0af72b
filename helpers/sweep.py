"""The paper's whole study on many machines: a sharded sweep of word weights on Dask.

A *plan* is a list of tasks, one per (model, dataset, method, shard of sentences), from a roster
(``offline``, ``paper`` or a list of entries), datasets, methods and a shard size. :func:`run` executes
it on ``dask.distributed``: a ``LocalCluster`` sized to the machine (one worker per GPU when there are
GPUs, through worker resources) or an existing scheduler (``tcp://host:8786``: dask-jobqueue on SLURM,
dask-kubernetes or ``dask ssh`` start one). Each worker loads a model once and reuses it for all its
tasks.

Each task writes its shard to ``<output>/<model>/<dataset>/<method>/shard-NNNNN.parquet`` through
``fsspec`` (a local folder, a shared file system or an object store URL), atomically: written under a
temporary name, then renamed. The settings that determine a shard (model fingerprint, method, IG or
SHAP settings, word merge and normalisation, code version, the shard's sentences) are stored in the
file's metadata. A shard that exists and validates is skipped, so a killed sweep resumes where it
stopped and two sweeps over one output never compute a shard twice; a shard with other settings is an
error (:class:`SweepMismatch`), never a silent mix; a damaged shard (one whose values no longer match the
sha256 stored with it, :func:`data_checksum`) is recomputed with a warning.

:func:`load` returns the union of an output as one DataFrame. ``python -m helpers.sweep --plan`` prints
the tasks and an estimated cost per task from a timing probe, without computing anything else.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import time
import uuid
import warnings
from dataclasses import asdict, dataclass, field
from functools import lru_cache

import pandas as pd

from .precision import DEFAULT as DEFAULT_PRECISION
from .config import check_count, settings_differences

__all__ = ["SHARD_COLUMNS", "CODE_VERSION", "SweepMismatch", "Task", "shard_path", "dataset_sentences", "plan",
           "Options", "shard_settings", "read_shard", "data_checksum", "compute_shard", "make_client", "run", "load", "weights_by_row",
           "estimate", "main"]

SHARD_COLUMNS = ["model", "dataset", "method", "sentence_id", "word_index", "word", "weight", "raw_weight",
                 "n_subwords", "completeness_gap"]
CODE_VERSION = 1  # of this module's shard layout (the attribution engine's version is stored beside it)


class SweepMismatch(ValueError):
    """An existing shard was computed with other settings than this sweep's."""


@dataclass(frozen=True)
class Task:
    """One unit of work: a model row's weights for one shard of one dataset's sentences by one method."""

    row: str
    name: str
    pooling: str
    dataset: str
    method: str
    shard: int
    sentence_ids: tuple
    texts: tuple = field(repr=False)


def _safe(name: str) -> str:
    return re.sub(r"[^\w.-]+", "_", name).strip("_")


def shard_path(output: str, task: Task) -> str:
    return f"{output.rstrip('/')}/{_safe(task.row)}/{task.dataset}/{task.method}/shard-{task.shard:05d}.parquet"


def dataset_sentences(dataset: str, data_dir=None, limit: int | None = None, seed: int = 0) -> pd.DataFrame:
    """The sentences a sweep attributes for a dataset: STS-B validation (all, or a sample of ``limit``), or the
    dataset's held-out evaluation sample (:func:`helpers.data.evaluation_sentences`)."""
    from .data import evaluation_sentences, load_sentences

    if dataset == "stsb":
        return load_sentences("stsb", "validation", data_dir=data_dir, limit=limit, seed=seed)
    return evaluation_sentences(dataset, data_dir, limit=limit or 3000, seed=seed)


def plan(roster="offline", datasets=("stsb",), methods=("ig",), shard_size: int = 100, n_sentences: int | None = None,
         data_dir=None, self_trained: dict | None = None, include_mpnet: bool | None = None, seed: int = 0) -> list[Task]:
    """Every task of a sweep: models of ``roster`` x ``datasets`` x ``methods`` x shards of ``shard_size``."""
    from .encoders import roster_rows

    check_count("shard_size", shard_size, 1)
    check_count("n_sentences", n_sentences, 1, allow_none=True)
    from .attribution import methods as registered

    unknown = sorted(set(methods) - set(registered()))
    if unknown:
        raise ValueError(f"methods must be among {', '.join(registered())}; got {unknown}.")
    rows = roster_rows(roster, self_trained=self_trained, include_mpnet=include_mpnet)
    tasks = []
    for dataset in datasets:
        sentences = dataset_sentences(dataset, data_dir, n_sentences, seed).sort_values("sentence_id")
        ids, texts = sentences["sentence_id"].tolist(), sentences["text"].tolist()
        for row in rows:
            for method in methods:
                for k, start in enumerate(range(0, len(ids), shard_size)):
                    tasks.append(Task(row["row"], row["name"], row["pooling"], dataset, method, k,
                                      tuple(ids[start:start + shard_size]), tuple(texts[start:start + shard_size])))
    return tasks


@dataclass
class Options:
    """The attribution settings of a sweep (``word_weights``' arguments)."""

    n_steps: int = 20
    projections: int | None = 16
    baseline: str = "pad"
    max_evals: int | None = 500
    shap_mask: str = "per_token"
    word_agg: str = "frobenius"
    normalize: str = "mean1"
    seed: int = 0
    #: the arithmetic of the model's passes, ``fp32`` or ``bf16`` (helpers.precision)
    precision: str = DEFAULT_PRECISION
    #: settings of any other registered attribution method (helpers.attribution.Method), by option name
    extra: dict = field(default_factory=dict)

    def for_method(self, method: str) -> dict:
        """The options ``method`` takes (its own settings: each method gets only what its fields name), as the
        shard's metadata records them."""
        from .attribution import method_options

        every = {k: v for k, v in asdict(self).items() if k not in ("extra", "word_agg", "normalize", "seed")}
        return method_options(method, {**every, **self.extra})

    def method(self, name: str):
        """The method ``name`` as the object :func:`helpers.attribution.word_weights` takes: these options' settings
        for it, and ``seed`` where it has one."""
        from .attribution import make_method

        return make_method(name, {**self.for_method(name), "seed": self.seed})


@lru_cache(maxsize=4)
def _encoder(name: str, pooling: str):
    """A worker loads each model once and reuses it for every task it runs."""
    from .encoders import load_encoder

    return load_encoder(name, pooling=pooling)


def shard_settings(task: Task, options: Options, fingerprint: str) -> dict:
    """Everything that determines a shard's numbers (stored in its metadata, compared on reuse)."""
    from .attribution import ENGINE_VERSION

    kept = {**options.for_method(task.method), "word_agg": options.word_agg, "normalize": options.normalize,
            "seed": options.seed}
    if kept.get("precision") == "fp32":
        del kept["precision"]  # shards of earlier sweeps (fp32, before the setting existed) keep their settings
    ids = hashlib.sha1(json.dumps([list(task.sentence_ids), list(task.texts)], default=str).encode()).hexdigest()
    return {"row": task.row, "model": task.name, "pooling": task.pooling, "fingerprint": fingerprint,
            "dataset": task.dataset, "method": task.method, "shard": task.shard, "sentences": ids,
            "engine": ENGINE_VERSION, "code": CODE_VERSION, **kept}


def read_shard(path: str) -> tuple[pd.DataFrame, dict]:
    """A shard's table and its settings (``OSError``/``ValueError`` when it is missing or damaged)."""
    import fsspec
    import pyarrow.parquet as pq

    with fsspec.open(path, "rb") as fh:
        table = pq.read_table(fh)
    meta = table.schema.metadata or {}
    if b"sweep" not in meta:
        raise ValueError(f"{path} has no sweep settings in its metadata.")
    frame = table.to_pandas()
    if list(frame.columns) != SHARD_COLUMNS or not frame["weight"].notna().all():
        raise ValueError(f"{path} does not have the shard columns or holds missing weights.")
    if b"sweep_data" not in meta:
        raise ValueError(f"{path} has no checksum of its data (written before shards carried one).")
    if data_checksum(frame) != meta[b"sweep_data"].decode():
        raise ValueError(f"{path}: its data does not match the checksum stored with it (a weight or word was "
                         "changed after it was written).")
    return frame, json.loads(meta[b"sweep"])


def data_checksum(frame: pd.DataFrame) -> str:
    """sha256 of a shard's values (pandas' row hashes of every column, in order): stored with the shard and
    checked when it is read, so a flipped bit in a weight is never served. The Parquet format keeps no
    checksum of its own by default, hence this one."""
    rows = pd.util.hash_pandas_object(frame[SHARD_COLUMNS], index=False).to_numpy()
    return hashlib.sha256(rows.tobytes()).hexdigest()


def compute_shard(task: Task, output: str, options: Options) -> dict:
    """Run on a worker: compute one shard and write it atomically, or skip it when an identical one exists."""
    import fsspec
    import pyarrow as pa
    import pyarrow.parquet as pq

    from .attribution import word_weights

    path = shard_path(output, task)
    fs, local = fsspec.core.url_to_fs(path)
    encoder = _encoder(task.name, task.pooling)
    settings = shard_settings(task, options, encoder.fingerprint())
    if fs.exists(local):
        try:
            frame, stored = read_shard(path)
        except (OSError, ValueError) as err:
            warnings.warn(f"{path} is damaged ({err}); it is recomputed.", stacklevel=2)
        else:
            changes = settings_differences(stored, settings)
            if changes:
                raise SweepMismatch(f"{path} was computed with other settings ({changes}). Use "
                                    "another output folder for these settings, or delete the old shards.")
            return {"path": path, "status": "skipped", "seconds": 0.0, "rows": len(frame)}
    started = time.perf_counter()
    sentences = pd.DataFrame({"sentence_id": list(task.sentence_ids), "text": list(task.texts)})
    # no SQLite cache on workers: it is not safe to share between machines, and the shard is the cache
    weights = word_weights(encoder, sentences, options.method(task.method), word_agg=options.word_agg,
                           normalize=options.normalize, cache=False, progress=False)
    frame = weights.assign(model=task.row, dataset=task.dataset, method=task.method)[SHARD_COLUMNS]
    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), b"sweep": json.dumps(settings).encode(),
                                           b"sweep_data": data_checksum(frame).encode()})
    fs.makedirs(fs._parent(local), exist_ok=True)
    tmp = f"{local}.tmp-{uuid.uuid4().hex}"
    with fs.open(tmp, "wb") as fh:
        pq.write_table(table, fh)
    fs.mv(tmp, local)  # a reader sees the whole shard or none of it
    return {"path": path, "status": "computed", "seconds": time.perf_counter() - started, "rows": len(frame)}


def make_client(scheduler: str = "local", n_workers: int | None = None):
    """A ``dask.distributed`` client: a ``LocalCluster`` (one single-threaded worker per core, or one per GPU
    with a ``GPU`` resource each) or the scheduler at ``scheduler`` (``tcp://host:8786``)."""
    import os

    from distributed import Client, LocalCluster

    if scheduler != "local":
        return Client(scheduler)
    import torch

    gpus = torch.cuda.device_count()
    if gpus:
        cluster = LocalCluster(n_workers=n_workers or gpus, threads_per_worker=1, resources={"GPU": 1})
    else:
        cluster = LocalCluster(n_workers=n_workers or max(1, (os.cpu_count() or 1)), threads_per_worker=1)
    return Client(cluster)


def run(tasks: list[Task], output: str, options: Options | None = None, client=None, scheduler: str = "local",
        n_workers: int | None = None, progress: bool = True) -> pd.DataFrame:
    """Execute a plan; return one row per task (``path, status, seconds, rows``). Existing valid shards are
    skipped; a failing task fails the sweep after its retries, naming the shard."""
    from distributed import progress as dask_progress

    options = options or Options()
    own = client is None
    client = client or make_client(scheduler, n_workers)
    try:
        if progress:
            print(f"Dask dashboard: {client.dashboard_link}", flush=True)
        resources = {"GPU": 1} if any("GPU" in (w.get("resources") or {})
                                      for w in client.scheduler_info()["workers"].values()) else None
        futures = client.map(compute_shard, tasks, output=output, options=options, pure=False, retries=2,
                             resources=resources)
        if progress:
            dask_progress(futures)
        results = client.gather(futures)
    finally:
        if own:
            cluster = getattr(client, "cluster", None)
            client.close()
            if cluster is not None:
                cluster.close()
    return pd.DataFrame(results)


def load(output: str) -> pd.DataFrame:
    """Every shard under ``output`` as one DataFrame (:data:`SHARD_COLUMNS`); a damaged shard is an error."""
    import fsspec

    fs, root = fsspec.core.url_to_fs(output)
    paths = sorted(p for p in fs.glob(f"{root.rstrip('/')}/*/*/*/shard-*.parquet"))
    if not paths:
        raise FileNotFoundError(f"no shards under {output}: run the sweep first (python -m helpers.sweep).")
    protocol = output.split("://")[0] + "://" if "://" in output else ""
    frames = []
    for p in paths:
        try:
            frames.append(read_shard(protocol + p)[0])
        except (OSError, ValueError) as err:
            raise ValueError(f"{protocol + p} is damaged ({err}); rerun the sweep, which recomputes it.") from err
    return pd.concat(frames, ignore_index=True)


def weights_by_row(union: pd.DataFrame, dataset: str) -> dict:
    """{(model row, method): word-weight table} of one dataset, as ``roster.roster_results`` takes them."""
    part = union[union["dataset"] == dataset]
    return {(row, method): d.drop(columns=["model", "dataset", "method"]).sort_values(
        ["sentence_id", "word_index"]).reset_index(drop=True) for (row, method), d in part.groupby(["model", "method"])}


def estimate(tasks: list[Task], options: Options | None = None) -> pd.DataFrame:
    """A timing probe: one sentence per (model, method), timed here, times each task's sentence count."""
    from .attribution import word_weights

    options = options or Options()
    per_sentence = {}
    for task in tasks:
        key = (task.name, task.pooling, task.method)
        if key in per_sentence:
            continue
        encoder = _encoder(task.name, task.pooling)
        method = options.method(task.method)
        word_weights(encoder, [task.texts[0]], method, cache=False, progress=False)  # warm-up
        started = time.perf_counter()
        word_weights(encoder, [task.texts[-1]], method, cache=False, progress=False)
        per_sentence[key] = time.perf_counter() - started
    return pd.DataFrame([{"model": t.row, "dataset": t.dataset, "method": t.method, "shard": t.shard,
                          "sentences": len(t.sentence_ids),
                          "estimated_seconds": per_sentence[(t.name, t.pooling, t.method)] * len(t.sentence_ids)}
                         for t in tasks])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.sweep", description=__doc__.split("\n\n")[0])
    parser.add_argument("--roster", default="offline", help="offline, paper, or a JSON list of {name, pooling, base}")
    parser.add_argument("--datasets", nargs="+", default=["stsb"])
    parser.add_argument("--methods", nargs="+", default=["ig"])
    parser.add_argument("--shard-size", type=int, default=100)
    parser.add_argument("--n-sentences", type=int, default=None)
    parser.add_argument("--output", default="sweep")
    parser.add_argument("--scheduler", default="local", help="local, or the address of a running scheduler")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--n-steps", type=int, default=20)
    parser.add_argument("--projections", type=lambda v: None if v == "None" else int(v), default=16)
    parser.add_argument("--max-evals", type=int, default=500)
    parser.add_argument("--precision", choices=("fp32", "bf16"), default=DEFAULT_PRECISION,
                        help="the model's arithmetic: bf16 is faster where the hardware has bf16 units")
    parser.add_argument("--plan", action="store_true", help="print the tasks and their estimated cost, then stop")
    args = parser.parse_args(argv)
    try:
        return _main(args)
    except (ValueError, FileNotFoundError) as err:  # json's decode error is a ValueError
        print(f"error: {err}", file=sys.stderr)
        return 2


def _main(args) -> int:
    """The command, its arguments parsed (an argument at fault is a ValueError naming it)."""
    check_count("workers", args.workers, 1, allow_none=True)
    try:
        roster = json.loads(args.roster) if args.roster.lstrip().startswith("[") else args.roster
    except json.JSONDecodeError as err:
        raise ValueError(f"--roster is not valid JSON ({err}): give offline, paper, or a JSON list such as "
                         '\'[{"name": "all-MiniLM-L6-v2", "pooling": "mean", "base": null}]\'.') from None
    self_trained = None
    if roster == "offline":
        from .training import self_trained_pair

        # --plan computes nothing: it plans from the runs on disk and says what must be trained first
        self_trained = self_trained_pair(args.data_dir, train=not args.plan)
        if self_trained is None:
            print("The self-trained MLM and its SimCSE fine-tune are not on disk yet, so the plan leaves their four "
                  "rows out. Train them first (run chapter 05, or this command without --plan: about 40 minutes "
                  "on 2 CPU cores).", flush=True)
    tasks = plan(roster, args.datasets, args.methods, args.shard_size, args.n_sentences, args.data_dir, self_trained)
    options = Options(n_steps=args.n_steps, projections=args.projections, max_evals=args.max_evals,
                      precision=args.precision)
    if args.plan:
        costs = estimate(tasks, options)
        print(costs.to_string(index=False))
        print(f"{len(tasks)} tasks, about {costs['estimated_seconds'].sum() / 60:.1f} CPU-minutes of one worker")
        return 0
    result = run(tasks, args.output, options, scheduler=args.scheduler, n_workers=args.workers)
    print(result["status"].value_counts().to_string())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
