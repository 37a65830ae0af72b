"""Record a bf16 build of the book against the fp32 reference: chapter times and whether its tables stay inside the
fp32 build's intervals (issue 39: bf16 becomes the book's default only if every table does).

The build itself, as a newcomer runs it (a fresh clone, empty cache and results, nothing else on the cores):

    git clone <this repository> /tmp/fresh && cd /tmp/fresh
    SENTENCE_DATA_DIR=... SENTENCE_PRECISION=bf16 make book        # or stop it after the chapters you need

Then, from this checkout:

    python benchmarks/bf16_build.py /tmp/fresh/results results-fp32/ [--log build.log] [--note "..."]

writes ``benchmarks/bf16_build_cpu.json``: each chapter's seconds in bf16 beside the recorded fp32 build
(``benchmarks/book_build_cpu.json``), the MLM pre-training's steps per second read from the build's log, and
``helpers.builds.compare_within_intervals`` of every table both builds wrote (values outside the fp32 intervals,
verdicts that differ). A partial build is recorded as partial: only the chapters it ran.
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from helpers import builds  # noqa: E402
from helpers.precision import hardware  # noqa: E402

OUT = ROOT / "benchmarks" / "bf16_build_cpu.json"


def mlm_rate(log: Path) -> float | None:
    """The MLM pre-training's last reported steps per second (tqdm's ``it/s``) in a build's log."""
    rates = re.findall(r"MLM pre-training:[^\r\n]*?([\d.]+)it/s", log.read_text(errors="replace"))
    return float(rates[-1]) if rates else None


def record(bf16_results: Path, fp32_results: Path, log: Path | None = None, note: str = "") -> dict:
    times = json.loads((bf16_results / "book" / "run_times.json").read_text())
    reference = builds.reference_times() or {"seconds": {}}
    ran = [stem for stem in reference["seconds"] if stem in times]
    within = builds.compare_within_intervals(fp32_results, bf16_results)
    from helpers.config import CHAPTER_RESULTS

    folders = {CHAPTER_RESULTS[s] for s in ran if s in CHAPTER_RESULTS}
    within = within[within["file"].str.split("/").str[0].isin(folders)]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
    out = {"what": "the book built with SENTENCE_PRECISION=bf16 from a fresh clone, against the fp32 reference",
           "cpu": hardware("cpu"), "commit": commit.strip(), "note": note, "partial": len(ran) < len(reference["seconds"]),
           "chapters": {s: {"bf16_s": times[s], "fp32_s": reference["seconds"][s],
                            "speedup": round(reference["seconds"][s] / times[s], 2)} for s in ran},
           "mlm_steps_per_s_bf16": mlm_rate(log) if log else None,
           "fp32_reference": {"commit": reference.get("commit"), "note": reference.get("note")},
           "intervals": within.to_dict("records"),
           "tables_outside": int((within["outside"] > 0).sum()),
           "verdicts_differ": int((within["findings_differ"] != "").sum()),
           "tables_unmatched": int((within["unmatched"] != "").sum())}
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bf16_results", type=Path)
    parser.add_argument("fp32_results", type=Path)
    parser.add_argument("--log", type=Path, default=None, help="the bf16 build's log (for the MLM's steps per second)")
    parser.add_argument("--note", default="")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    result = record(args.bf16_results, args.fp32_results, args.log, args.note)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
