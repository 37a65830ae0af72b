"""bf16 against fp32, measured on the book's models and sentences (issue "Faster where readers wait").

In one run, for each model (tiny-random-bert, all-MiniLM-L6-v2, and the self-trained pair when it is on disk):
the word weights of the same sentences in fp32 and in bf16 (:mod:`helpers.precision`), exact and sketched,
timed side by side (fp32 and bf16 interleaved, the best of ``--repeats``), with

* ``time_ratio`` = fp32 seconds / bf16 seconds (a speed-up only where the CPU computes bf16 natively: on a
  CPU without AVX-512 BF16 or AMX the ratio is printed as ``emulated`` and no speed-up is claimed);
* ``spearman`` of the word weights, ``max_rel_diff`` (largest difference / largest weight);
* the completeness gaps (each run's worst; bf16's is measured against fp32 outputs, so it includes rounding);
* Table 1's slope β and R² of weight on KL with their sentence-bootstrap intervals in both precisions, and
  whether bf16's point estimates lie inside fp32's intervals;

then the MLM pre-training step and the SimCSE step at the book's sizes, timed in both precisions. One JSON
line per measurement, appended to ``--out`` (``benchmarks/precision_cpu.jsonl``)::

    python benchmarks/precision.py --sentences 20 --repeats 1

Nothing is asserted (speed targets are not timed tests).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr

from helpers import data, information, regression
from helpers.attribution import IG, word_weights
from helpers.encoders import load_encoder
from helpers.precision import hardware

ROOT = Path(__file__).resolve().parents[1]


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _timed(fn, repeats: int):
    best, out = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def _compare(a, b) -> dict:
    merged = a.merge(b, on=["sentence_id", "word_index"], suffixes=("_a", "_b"))
    diff = np.abs(merged["weight_a"] - merged["weight_b"])
    return {"spearman": round(float(spearmanr(merged["weight_a"], merged["weight_b"])[0]), 5),
            "max_rel_diff": round(float(diff.max() / merged["weight_a"].max()), 6),
            "n_words": int(len(merged))}


def _table1(weights, info, n_boot: int) -> dict:
    fit = regression.regress(weights, info, "kl", n_boot=n_boot)
    return {k: round(float(fit[k]), 5) for k in ("beta", "beta_low", "beta_high", "r2", "r2_low", "r2_high")}


def models(include_pair: bool) -> list[tuple[str, str, str]]:
    """(label, name or folder, pooling) of the models measured."""
    out = [("tiny-random-bert", "tiny-random-bert", "mean"), ("all-MiniLM-L6-v2", "all-MiniLM-L6-v2", "mean")]
    if include_pair:
        from helpers.training import self_trained_pair

        pair = self_trained_pair(train=False, progress=False)
        if pair is None:
            print(json.dumps({"note": "the self-trained pair is not on disk (run chapter 05 or make book): "
                                      "measured without it"}), flush=True)
        else:
            out += [("self-trained MLM (MEAN)", str(pair["mlm"]), "mean"),
                    ("self-trained SimCSE (MEAN)", str(pair["simcse"]), pair["simcse_pooling"])]
    return out


def attribution(args, host, record) -> None:
    sample = data.load_sentences("stsb", "validation", limit=args.sentences, seed=1)
    sample = data.with_sentences(sample, data.load_sentences("stsb", "validation"))
    for label, name, pooling in models(not args.no_pair):
        if args.models and label not in args.models:
            continue
        encoder = load_encoder(name, pooling=pooling)
        info = information.word_information(data.load_sentences("stsb", "validation"), tokenizer=encoder.tokenizer)
        for mode, projections in (("exact", None), ("sketch k=16", 16)):
            if mode == "exact" and label == "all-MiniLM-L6-v2" and args.sentences > 8:
                part = sample.head(8)  # exact IG over 384 outputs: a subsample keeps the run under an hour
            else:
                part = sample
            runs = {}
            for precision in ("fp32", "bf16"):
                method = IG(n_steps=args.n_steps, projections=projections, precision=precision)
                options = dict(cache=False, progress=False, gap_warning=float("inf"))
                word_weights(encoder, part.head(1), method, **options)  # warm-up
                runs[precision] = _timed(lambda: word_weights(encoder, part, method, **options), args.repeats)
            (t32, w32), (t16, w16) = runs["fp32"], runs["bf16"]
            row = {"what": "word weights", "model": label, "mode": mode, "n_steps": args.n_steps,
                   "sentences": int(len(part)), "fp32_s": round(t32, 2), "bf16_s": round(t16, 2),
                   "time_ratio": round(t32 / t16, 2) if host["native"] else "emulated",
                   **_compare(w32, w16), "gap_fp32": float(w32["completeness_gap"].max()),
                   "gap_bf16": float(w16["completeness_gap"].max())}
            if len(part) >= 5:
                f32, f16 = _table1(w32, info, args.n_boot), _table1(w16, info, args.n_boot)
                row.update({"table1_fp32": f32, "table1_bf16": f16,
                            "bf16_within_fp32_intervals": bool(f32["beta_low"] <= f16["beta"] <= f32["beta_high"]
                                                              and f32["r2_low"] <= f16["r2"] <= f32["r2_high"])})
            record(row)


def training(args, host, record) -> None:
    from helpers.data import pretraining_corpus
    from helpers.training import MLMConfig, pretrain_mlm, simcse

    corpus = pretraining_corpus()[:2000]
    tmp = ROOT / ".cache" / "benchmark-precision"
    for precision in ("fp32", "bf16"):
        config = MLMConfig(hidden_size=256, num_hidden_layers=4, num_attention_heads=4, intermediate_size=1024)
        started = time.perf_counter()
        folder = pretrain_mlm(corpus, steps=args.train_steps, batch_size=64, warmup=2, config=config,
                              run_dir=tmp / f"mlm-{precision}-{time.time_ns()}", progress=False, precision=precision)
        mlm_s = (time.perf_counter() - started) / args.train_steps
        started = time.perf_counter()
        simcse(folder, objective="unsup", steps=args.train_steps, batch_size=64, sentences=corpus, save_steps=(),
               run_dir=tmp / f"simcse-{precision}-{time.time_ns()}", progress=False, precision=precision)
        simcse_s = (time.perf_counter() - started) / args.train_steps
        record({"what": "training step (book sizes: 256 wide, 4 layers, batch 64)", "precision": precision,
                "mlm_step_s": round(mlm_s, 3), "simcse_step_s": round(simcse_s, 3), "steps": args.train_steps})
    shutil.rmtree(tmp, ignore_errors=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sentences", type=int, default=20)
    parser.add_argument("--n-steps", type=int, default=20)
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--train-steps", type=int, default=20)
    parser.add_argument("--no-pair", action="store_true", help="leave out the self-trained pair")
    parser.add_argument("--models", nargs="*", help="only these model labels (default: all)")
    parser.add_argument("--no-training", action="store_true")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "precision_cpu.jsonl"))
    args = parser.parse_args(argv)
    os.environ.setdefault("SENTENCE_ARTIFACTS_URL", "off")  # train here: this measures training
    host = {**hardware("cpu"), "threads": torch.get_num_threads(), "commit": _commit(),
            "date": time.strftime("%Y-%m-%d")}
    print(json.dumps({"host": host}), flush=True)
    if not host["native"]:
        print(json.dumps({"note": "no AVX-512 BF16 or AMX: torch emulates bf16 here, so no speed-up is reported "
                                  "(the accuracy numbers still hold)"}), flush=True)
    lines = [json.dumps({"host": host})]

    def record(row):
        line = json.dumps({**row, "cpu_units": host["units"], "commit": host["commit"]})
        print(line, flush=True)
        lines.append(line)

    attribution(args, host, record)
    if not args.no_training:
        training(args, host, record)
    with open(args.out, "a", encoding="utf-8") as out:
        out.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
