"""Benchmark of the sharded sweep (helpers.sweep): 1 worker against 2, and the plan's estimate against the run.

In one run, on the offline roster (or --roster tiny: the two tiny random models) and a fixed sample of
STS-B validation sentences, times the sweep on a LocalCluster of 1 and of 2 single-threaded workers
(each into a fresh output folder, so nothing is skipped), and the plan's cost estimate. One JSON line each:

    python benchmarks/sweep_scaling.py --roster offline --n-sentences 24 --shard-size 6 > benchmarks/sweep_scaling_cpu.jsonl

Prints measurements only; nothing is asserted (speed targets are not timed tests).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time

from helpers import sweep

TINY = [{"name": "tiny-random-bert", "pooling": "mean"}, {"name": "tiny-random-roberta", "pooling": "mean"}]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--roster", default="offline", help="offline or tiny")
    parser.add_argument("--methods", nargs="+", default=["ig"])
    parser.add_argument("--n-sentences", type=int, default=24)
    parser.add_argument("--shard-size", type=int, default=6)
    parser.add_argument("--data-dir", default=os.environ.get("SENTENCE_DATA_DIR"))
    args = parser.parse_args()
    from distributed import Client, LocalCluster

    roster, self_trained = (TINY, None) if args.roster == "tiny" else ("offline", None)
    if roster == "offline":
        from helpers.training import self_trained_pair

        self_trained = self_trained_pair(args.data_dir)
    tasks = sweep.plan(roster, ("stsb",), args.methods, args.shard_size, args.n_sentences, args.data_dir,
                       self_trained)
    options = sweep.Options()
    started = time.perf_counter()
    estimate = sweep.estimate(tasks, options)
    probe = time.perf_counter() - started
    machine = {"cpus": os.cpu_count(), "python": platform.python_version(), "tasks": len(tasks),
               "sentences": args.n_sentences, "roster": args.roster}
    print(json.dumps({"what": "plan estimate", "estimated_seconds_one_worker": round(estimate["estimated_seconds"].sum(), 1),
                      "probe_seconds": round(probe, 1), **machine}), flush=True)
    seconds = {}
    for workers in (1, 2):
        with tempfile.TemporaryDirectory() as out, \
                LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
                Client(cluster) as client:
            started = time.perf_counter()
            result = sweep.run(tasks, out, options, client=client, progress=False)
            seconds[workers] = time.perf_counter() - started
            print(json.dumps({"what": f"sweep, {workers} worker(s)", "seconds": round(seconds[workers], 1),
                              "computed": int((result["status"] == "computed").sum()),
                              "task_seconds": round(result["seconds"].sum(), 1), **machine}), flush=True)
    print(json.dumps({"what": "speed-up of 2 workers over 1", "ratio": round(seconds[1] / seconds[2], 2),
                      "estimate_over_measured_1_worker": round(estimate["estimated_seconds"].sum() / seconds[1], 2),
                      **machine}), flush=True)


if __name__ == "__main__":
    main()
