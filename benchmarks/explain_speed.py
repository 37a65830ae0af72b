"""Benchmark of the one-line call ``helpers.explain.explain`` (issue: explain your own encoder).

In one run, on all-MiniLM-L6-v2: the wall time of the default call (sketched IG, k = 16) and of the exact
path (every output dimension), on a 20-word sentence and on a 300-word passage (explained in windows;
its exact path is timed on one window and scaled by the number of windows, since it takes hours on a
CPU), and a pair of sentences (always exact). One JSON line per measurement, with the ratio exact / sketch:

    python benchmarks/explain_speed.py --repeats 2

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


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args(argv)
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
