"""Benchmark of the one-line call ``helpers.explain.explain`` (issue: explain your own encoder).

In one run, on all-MiniLM-L6-v2: the wall time of the default call (sketched IG, k = 16) and of the exact
path (every output dimension), on a 20-word sentence and on a 300-word passage (explained in windows;
its exact path is timed on one window and scaled by the number of windows, since it takes hours on a
CPU), and a pair of sentences (always exact). One JSON line per measurement, with the ratio exact / sketch:

    python benchmarks/explain_speed.py --repeats 2
    python benchmarks/explain_speed.py --exact-settings --repeats 1   # which settings make the exact case fast
    python benchmarks/explain_speed.py --exact-defaults --repeats 3   # exact=True's defaults against the former ones

Prints measurements only; nothing is asserted (speed targets are not timed tests).
"""
from __future__ import annotations

import argparse
import json
import platform
import time

import torch

from helpers.encoders import load_encoder
from helpers.explain import _windows, explain

SENTENCE = ("A young man in a red jacket is playing an old guitar on the stage while a small crowd "
            "listens quietly.")  # 20 words
PASSAGE_SENTENCES = ["The city council met on Tuesday to discuss the budget for the new public library.",
                     "Several residents asked why the opening had been delayed for almost two years.",
                     "The architect explained that the original design did not meet the fire safety code.",
                     "A revised plan adds two stairwells and moves the reading room to the ground floor."]


def passage(n_words: int = 300) -> str:
    words, i = [], 0
    while len(words) < n_words:
        words += PASSAGE_SENTENCES[i % len(PASSAGE_SENTENCES)].split()
        i += 1
    return " ".join(words[:n_words])


def timed(repeats, fn):
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def exact_settings(model: str, repeats: int) -> None:
    """The exact 20-word case under each setting that can make it faster (precision, cotangent chunk, quadrature
    points), timed side by side in one run, with the completeness gap each leaves and the Spearman correlation of
    its word weights with the reference (fp32, 20 points, chunk 4: the call's former defaults)."""
    from scipy.stats import spearmanr

    from helpers.precision import hardware

    reference = explain(model, SENTENCE, exact=True, cache=False, precision="fp32", n_steps=20, internal_batch_size=4)
    grid = [("fp32", 4, 20), ("fp32", 32, 20), ("bf16", 32, 20), ("bf16", 32, 12), ("bf16", 32, 10), ("bf16", 64, 10),
            ("fp32", 32, 10)]
    for precision, chunk, n_steps in grid:
        seconds = timed(repeats, lambda: explain(model, SENTENCE, exact=True, cache=False, precision=precision,
                                                 n_steps=n_steps, internal_batch_size=chunk))
        e = explain(model, SENTENCE, exact=True, cache=False, precision=precision, n_steps=n_steps,
                    internal_batch_size=chunk)
        print(json.dumps({"case": "20-word sentence, exact", "precision": precision, "internal_batch_size": chunk,
                          "n_steps": n_steps, "exact_s": round(seconds, 2),
                          "completeness_gap": round(e.numbers["completeness_gap"], 6),
                          "spearman_vs_reference": round(float(spearmanr(e.table["weight"],
                                                                         reference.table["weight"])[0]), 5),
                          "bf16_units": hardware("cpu")["units"], "threads": torch.get_num_threads()}), flush=True)


def exact_defaults(model: str, repeats: int) -> None:
    """``explain(model, SENTENCE, exact=True)`` with the call's defaults (precision ``auto``, ``EXACT_CHUNK``
    directions a pass) against the former defaults (fp32, 4 a pass), alternating, each timed ``repeats`` times in
    this run: the best and the median of each, their ratio, the completeness gaps and the Spearman correlation of
    the two explanations' word weights."""
    from statistics import median

    from scipy.stats import spearmanr

    from helpers.explain import EXACT_CHUNK
    from helpers.precision import hardware

    runs = {"defaults": [], "former": []}
    calls = {"defaults": lambda: explain(model, SENTENCE, exact=True, cache=False),
             "former": lambda: explain(model, SENTENCE, exact=True, cache=False, precision="fp32",
                                       internal_batch_size=4)}
    out = {}
    for _ in range(repeats):
        for name, call in calls.items():
            start = time.perf_counter()
            out[name] = call()
            runs[name].append(time.perf_counter() - start)
    new, old = out["defaults"], out["former"]
    print(json.dumps({"case": "20-word sentence, exact, defaults", "words": len(SENTENCE.split()),
                      "precision": new.settings["precision"], "internal_batch_size": EXACT_CHUNK,
                      "n_steps": new.settings["n_steps"], "exact_s": round(min(runs["defaults"]), 2),
                      "exact_median_s": round(median(runs["defaults"]), 2),
                      "former_defaults_s": round(min(runs["former"]), 2),
                      "former_defaults_median_s": round(median(runs["former"]), 2),
                      "speedup_median": round(median(runs["former"]) / median(runs["defaults"]), 2),
                      "completeness_gap": round(new.numbers["completeness_gap"], 6),
                      "former_completeness_gap": round(old.numbers["completeness_gap"], 6),
                      "spearman_vs_former": round(float(spearmanr(new.table["weight"], old.table["weight"])[0]), 5),
                      "repeats": repeats, "bf16_units": hardware("cpu")["units"],
                      "threads": torch.get_num_threads()}), flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--exact-settings", action="store_true",
                        help="only the exact 20-word case under each precision, chunk and quadrature setting")
    parser.add_argument("--exact-defaults", action="store_true",
                        help="only the exact 20-word case with the call's defaults against the former defaults")
    args = parser.parse_args(argv)
    if args.exact_defaults:
        explain(args.model, "Warm-up.")
        exact_defaults(args.model, args.repeats)
        return
    if args.exact_settings:
        explain(args.model, "Warm-up.")
        exact_settings(args.model, args.repeats)
        return
    explain(args.model, "Warm-up.")  # model load and first-call costs are not part of the measurement
    long = passage()
    host = {"cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads()}
    sketch = timed(args.repeats, lambda: explain(args.model, SENTENCE, cache=False))
    exact = timed(args.repeats, lambda: explain(args.model, SENTENCE, exact=True, cache=False))
    print(json.dumps({"case": "20-word sentence", "words": len(SENTENCE.split()), "sketch_s": round(sketch, 2),
                      "exact_s": round(exact, 2), "exact_over_sketch": round(exact / sketch, 1), **host}))
    sketch = timed(args.repeats, lambda: explain(args.model, long, long="windows", cache=False))
    # the exact path on a whole passage takes hours on a CPU: it is timed on one window and scaled by the count
    encoder = load_encoder(args.model, normalize="auto")
    windows = _windows(encoder, long)
    one = timed(1, lambda: explain(args.model, windows[0][1], exact=True, cache=False))
    estimate = one * len(windows)
    print(json.dumps({"case": "300-word passage (windows)", "words": len(long.split()), "windows": len(windows),
                      "sketch_s": round(sketch, 2), "exact_one_window_s": round(one, 2),
                      "exact_s_estimated": round(estimate, 1), "exact_over_sketch": round(estimate / sketch, 1),
                      **host}))
    pair = timed(args.repeats, lambda: explain(args.model, SENTENCE, PASSAGE_SENTENCES[0], cache=False))
    print(json.dumps({"case": "pair (exact)", "pair_s": round(pair, 2), **host}))


if __name__ == "__main__":
    main()
