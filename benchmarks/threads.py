"""One thread against two: what running two chapters side by side, one thread each, would gain on 2 cores, and
whether it would keep the book's numbers (issue 39: a fresh build under 60 minutes).

Each setting runs in its own process (torch fixes its thread pool at start), alternating 2, 1, 2, 1, ...: 20 MLM
pre-training steps at the book's sizes (256 wide, 4 layers, batch 64, fp32), then sketched IG (16 directions, 20
points) of 10 STS-B validation sentences through all-MiniLM-L6-v2. Each line gives the seconds per step and per
sentence, a sha1 of the trained weights (equal hashes: the same arithmetic to the last bit) and the sum of the word
weights::

    SENTENCE_DATA_DIR=../shared/data python benchmarks/threads.py --repeats 2 >> benchmarks/threads_cpu.jsonl

The last line is the summary: one thread's throughput as a share of two threads', and whether training at one
thread reproduces the weights trained at two. Nothing is asserted (a measurement, not a test).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path
from statistics import median

ROOT = Path(__file__).resolve().parent.parent


def one(threads: int, workdir: Path) -> dict:
    """The measurement in this process, at ``threads`` threads."""
    import torch

    torch.set_num_threads(threads)
    sys.path.insert(0, str(ROOT))
    from transformers import AutoModel

    from helpers.attribution import IG, word_weights
    from helpers.data import load_sentences, pretraining_corpus
    from helpers.encoders import load_encoder
    from helpers.training import MLMConfig, pretrain_mlm

    config = MLMConfig(hidden_size=256, num_hidden_layers=4, num_attention_heads=4, intermediate_size=1024)
    started = time.perf_counter()
    folder = pretrain_mlm(pretraining_corpus()[:2000], steps=20, batch_size=64, warmup=2, config=config,
                          run_dir=workdir / f"mlm-{threads}-{time.time_ns()}", progress=False, precision="fp32")
    mlm_s = (time.perf_counter() - started) / 20
    model = AutoModel.from_pretrained(str(folder))
    digest = hashlib.sha1(b"".join(p.detach().numpy().tobytes() for p in model.parameters())).hexdigest()[:12]
    encoder = load_encoder("all-MiniLM-L6-v2", normalize="auto")
    texts = load_sentences("stsb", "validation")["text"].head(10).tolist()
    started = time.perf_counter()
    weights = word_weights(encoder, texts, IG(n_steps=20, projections=16), cache=False, progress=False)
    ig_s = (time.perf_counter() - started) / len(texts)
    return {"threads": threads, "mlm_step_s": round(mlm_s, 3), "mlm_weights_sha1": digest,
            "ig_sketch_s_per_sentence": round(ig_s, 3), "ig_weight_sum": round(float(weights["weight"].sum()), 6)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # a child process: measure at this many threads
    parser.add_argument("--workdir", default=str(ROOT / ".cache" / "benchmark-threads"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(one(args.one, Path(args.workdir))), flush=True)
        return 0
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    rows = []
    for _ in range(args.repeats):
        for threads in (2, 1):
            out = subprocess.run([sys.executable, __file__, "--one", str(threads), "--workdir", args.workdir],
                                 capture_output=True, text=True, check=True)
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(json.dumps({**rows[-1], "commit": commit.stdout.strip()}), flush=True)
    import shutil

    shutil.rmtree(args.workdir, ignore_errors=True)
    by = {t: [r for r in rows if r["threads"] == t] for t in (1, 2)}
    share = {k: round(median(r[k] for r in by[2]) / median(r[k] for r in by[1]), 3)
             for k in ("mlm_step_s", "ig_sketch_s_per_sentence")}
    print(json.dumps({"summary": "one thread's throughput as a share of two threads' (median seconds, 2 / 1)",
                      "mlm_share": share["mlm_step_s"], "ig_share": share["ig_sketch_s_per_sentence"],
                      "side_by_side_speedup_at_most": round(2 * min(share.values()), 2),
                      "mlm_weights_same_at_1_and_2_threads": len({r["mlm_weights_sha1"] for r in rows}) == 1,
                      "repeats": args.repeats, "commit": commit.stdout.strip()}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
