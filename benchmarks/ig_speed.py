"""Benchmark of the IG engine (issue: IG over every output dimension, fast).

In one run, on the same sentences and model, times captum's IntegratedGradients looped
over every output dimension, the project's exact engine, and the sketch at k = 8, 32, 64;
then prints the completeness gap against n_steps for both quadratures. One JSON line each:

    python benchmarks/ig_speed.py --model all-MiniLM-L6-v2 --n-sentences 2 --n-steps 50

Prints measurements only; nothing is asserted (speed targets are not timed tests).
"""
from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np
import torch
from scipy.stats import spearmanr

from helpers import attribution as attr
from helpers.encoders import load_encoder

DEFAULT_SENTENCES = ["A man is playing a guitar.", "A man with a hard hat is dancing.",
                     "A young child is riding a horse.", "A woman is slicing an onion into thin pieces."]


def word_norms(encoder, inputs, token_norms):
    return attr.aggregate_words(token_norms, inputs["word_ids"], inputs["words"], "frobenius", "mean1")["weight"].to_numpy()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    parser.add_argument("--pooling", default="mean")
    parser.add_argument("--n-sentences", type=int, default=2)
    parser.add_argument("--n-steps", type=int, default=50)
    parser.add_argument("--quadrature", default="gausslegendre")
    parser.add_argument("--chunk-size", type=int, default=4)
    parser.add_argument("--projections", type=int, nargs="*", default=[8, 32, 64])
    parser.add_argument("--sketch-seeds", type=int, default=3, help="sketch repetitions for the error estimate")
    parser.add_argument("--gap-steps", type=int, nargs="*", default=[4, 8, 16, 32, 50])
    parser.add_argument("--skip-captum", action="store_true")
    args = parser.parse_args()

    torch.manual_seed(0)
    enc = load_encoder(args.model, pooling=args.pooling)
    sentences = DEFAULT_SENTENCES[: args.n_sentences]
    inputs = [attr.tokenize(enc, s) for s in sentences]
    tokens = [int(i["input_ids"].shape[1]) for i in inputs]
    print(json.dumps({"setup": {"model": args.model, "dim": enc.dim, "sentences": len(sentences), "tokens": tokens,
                                "n_steps": args.n_steps, "quadrature": args.quadrature, "threads": torch.get_num_threads(),
                                "torch": torch.__version__, "cpu": platform.processor() or platform.machine()}}), flush=True)

    def timed_one(fn):
        start = time.perf_counter()
        out = fn()
        return out, time.perf_counter() - start

    def timed(fn):
        start = time.perf_counter()
        out = [fn(i) for i in inputs]
        return out, (time.perf_counter() - start) / len(inputs)

    # exact and captum alternate sentence by sentence, so a drift in the machine's speed
    # (a shared virtual CPU varies by 10-20% over minutes) affects both alike
    exact, ref, t_exact, t_captum = [], [], 0.0, None
    for i in inputs:
        out, t = timed_one(lambda: attr.ig_token_norms(enc, i["input_ids"], args.n_steps, args.quadrature,
                                                       chunk_size=args.chunk_size)["token_norms"])
        exact.append(out)
        t_exact += t / len(inputs)
        if not args.skip_captum:
            out, t = timed_one(lambda: attr.ig_captum_token_norms(enc, i["input_ids"], args.n_steps, args.quadrature))
            ref.append(out)
            t_captum = (t_captum or 0.0) + t / len(inputs)
    exact_words = [word_norms(enc, i, e) for i, e in zip(inputs, exact)]
    if not args.skip_captum:
        err = max(float(np.max(np.abs(r - e) / np.maximum(np.abs(r), 1e-12))) for r, e in zip(ref, exact))
        print(json.dumps({"method": "captum_loop", "s_per_sentence": round(t_captum, 2), "ratio_to_captum": 1.0}), flush=True)
    print(json.dumps({"method": "exact", "s_per_sentence": round(t_exact, 2),
                      "ratio_to_captum": round(t_captum / t_exact, 2) if t_captum else None,
                      "max_rel_diff_vs_captum": err if t_captum else None}), flush=True)
    for k in args.projections:
        times, rel, rho = [], [], []
        for seed in range(args.sketch_seeds):
            out, t = timed(lambda i: attr.ig_token_norms(enc, i["input_ids"], args.n_steps, args.quadrature,
                                                         projections=k, seed=seed)["token_norms"])
            times.append(t)
            words = [word_norms(enc, i, o) for i, o in zip(inputs, out)]
            rel += [float(np.median(np.abs(w - e) / e)) for w, e in zip(words, exact_words)]
            rho.append(spearmanr(np.concatenate(words), np.concatenate(exact_words))[0])
        t = float(np.mean(times))
        print(json.dumps({"method": f"sketch_k{k}", "s_per_sentence": round(t, 3),
                          "ratio_to_captum": round(t_captum / t, 1) if t_captum else None,
                          "speedup_vs_exact": round(t_exact / t, 1), "median_rel_error": round(float(np.median(rel)), 4),
                          "spearman_vs_exact": round(float(np.mean(rho)), 4)}), flush=True)
    for quadrature in ("gausslegendre", "riemann_trapezoid"):
        for n in args.gap_steps:
            gaps = [attr.ig_token_norms(enc, i["input_ids"], n, quadrature, projections=32)["completeness_gap"] for i in inputs]
            print(json.dumps({"completeness": quadrature, "n_steps": n, "max_gap": round(max(gaps), 5)}), flush=True)


if __name__ == "__main__":
    main()
