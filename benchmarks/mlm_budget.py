"""How much pre-training does the offline MLM need before it helps SimCSE? (issue "Beyond frequency, and a
stand-in named for what it is", point 3.)

For each budget (steps, width, layers) the MLM is pre-trained on the book's local corpus, fine-tuned with
supervised SimCSE for 150 steps as chapter 05 does, and compared with SimCSE of the same architecture from
random weights: STS-B validation Spearman of both and the paired bootstrap interval of their difference
(:func:`helpers.standin.budget_curve`). One JSON line per budget is appended to
``benchmarks/mlm_budget_cpu.jsonl`` (chapter 05 draws the newest run)::

    python benchmarks/mlm_budget.py --budgets 300x256x4 1000x256x4 3000x256x4 --precision bf16

Runs are cached by their settings (``.cache/runs/``), so the book's own budget (3000 x 256 x 4, fp32) costs
nothing after ``make book``. Nothing is asserted.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import time
from pathlib import Path

import torch

from helpers.precision import hardware
from helpers.standin import budget_curve

ROOT = Path(__file__).resolve().parents[1]


def _budget(text: str) -> tuple[int, int, int]:
    steps, width, layers = (int(x) for x in text.lower().split("x"))
    return steps, width, layers


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budgets", nargs="+", type=_budget, default=[(300, 256, 4), (1000, 256, 4),
                                                                           (3000, 256, 4)],
                        help="STEPSxWIDTHxLAYERS, e.g. 3000x256x4 (the book's MLM)")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "mlm_budget_cpu.jsonl"))
    args = parser.parse_args(argv)
    os.environ.setdefault("SENTENCE_ARTIFACTS_URL", "off")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout.strip()
    run = f"{time.strftime('%Y-%m-%dT%H:%M')}-{commit}"
    started = time.perf_counter()
    curve = budget_curve(args.budgets, precision=args.precision, n_boot=args.n_boot)
    host = {"cpu_units": hardware("cpu")["units"], "threads": torch.get_num_threads(), "commit": commit,
            "date": time.strftime("%Y-%m-%d"), "run": run, "total_minutes": round((time.perf_counter() - started) / 60, 1)}
    with open(args.out, "a", encoding="utf-8") as out:
        for row in curve.to_dict("records"):
            line = json.dumps({**row, **host})
            print(line, flush=True)
            out.write(line + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
