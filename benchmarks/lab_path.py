"""The lab path as a student meets it: chapters 05-08 with the lab preset, from an empty cache and empty results.

Runs ``python -m helpers.book run --lab --only 05 06 07 08`` with ``SENTENCE_CACHE_DIR`` and
``SENTENCE_RESULTS_DIR`` pointing at new empty folders (nothing trained, attributed or downloaded before), and
records the wall-clock time of the whole command and of each chapter in ``benchmarks/lab_path_cpu.json``
(the README and the teachers' page quote it), under ``runs`` by the precision the lab computed in (bf16 where the
CPU has native bf16 units, else fp32; ``SENTENCE_PRECISION=fp32 python benchmarks/lab_path.py`` adds the fp32 run). Run it in a fresh clone after ``make setup``, with nothing else
on the cores::

    python benchmarks/lab_path.py

Prints and records a measurement; nothing is asserted (speed targets are not timed tests).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    from helpers.book import LAB_PARAMETERS, LAB_RECORD  # the lab's chapters and where its time is read from

    parser.add_argument("--out", default=str(LAB_RECORD))
    args = parser.parse_args(argv)
    import torch

    from helpers.book import LAB_PRECISION
    from helpers.precision import ENV, hardware, resolve

    with tempfile.TemporaryDirectory(prefix="lab-path-") as tmp:
        tmp = Path(tmp)
        env = {**os.environ, "SENTENCE_CACHE_DIR": str(tmp / "cache"), "SENTENCE_RESULTS_DIR": str(tmp / "results"),
               "SENTENCE_ARTIFACTS_URL": os.environ.get("SENTENCE_ARTIFACTS_URL", "off")}
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "helpers.book", "run", "--lab", "--only",
                        *(stem[:2] for stem in LAB_PARAMETERS), "--out", str(tmp / "lab")], cwd=ROOT, env=env, check=True)
        total = time.perf_counter() - started
        chapters = json.loads((tmp / "results" / "book" / "run_times.json").read_text())
        size = sum(p.stat().st_size for p in (tmp / "lab").rglob("*") if p.is_file()) + \
            sum(p.stat().st_size for p in (tmp / "results").rglob("*") if p.is_file())
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=ROOT).stdout.strip()
    record = {"machine": f"{os.cpu_count()} CPU cores, no GPU used", "threads": torch.get_num_threads(),
              "commit": commit, "date": time.strftime("%Y-%m-%d"),
              "note": "empty SENTENCE_CACHE_DIR and SENTENCE_RESULTS_DIR, nothing else on the cores",
              "precision": resolve(os.environ.get(ENV) or LAB_PRECISION),
              "bf16_units": hardware("cpu")["units"], "cpu": hardware("cpu")["cpu"],
              "total_seconds": round(total, 1), "seconds": chapters, "output_mb": round(size / 1e6, 1)}
    # one record per precision measured (``SENTENCE_PRECISION=fp32 python benchmarks/lab_path.py`` adds the fp32 run a
    # CPU without native bf16 gets); the top level is the run the lab path makes here by default
    out = Path(args.out)
    earlier = json.loads(out.read_text()) if out.is_file() else {}
    runs = {**earlier.get("runs", {}), record["precision"]: {k: record[k] for k in (
        "commit", "date", "total_seconds", "seconds", "output_mb")}}
    default = resolve(LAB_PRECISION)
    top = record if record["precision"] == default or "total_seconds" not in earlier else earlier
    record = {**{k: v for k, v in top.items() if k != "runs"}, "runs": runs}
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
