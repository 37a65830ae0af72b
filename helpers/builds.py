"""Two builds of the book compared, and a full build's recorded times (base layer).

``python -m helpers.book compare-results BEFORE AFTER`` compares two ``results/`` folders table by table
(:func:`compare_results`), and with ``--intervals`` whether one build's values stay inside the other's stated
intervals (:func:`compare_within_intervals`); ``python -m helpers.book record-times`` stores a full build's
chapter times (:func:`record_times`), which the teachers' page quotes.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING

from .chapter_files import notebooks
from .config import ROOT
from .results import RUNNER

if TYPE_CHECKING:  # pandas is imported where a comparison is made (this module is read by the runner's start)
    import pandas as pd

__all__ = ["REFERENCE_TIMES", "record_times", "reference_times", "TIMING", "compare_results", "FINDING_COLUMNS",
           "compare_within_intervals"]


#: A full build's running time per chapter on a stated machine (``python -m helpers.book record-times`` writes it
#: from a build's ``results/book/run_times.json``): the teachers' page shows it beside this build's own times, so a
#: page built quickly (the smoke run) still says what the chapters cost at their defaults.
REFERENCE_TIMES = ROOT / "benchmarks" / "book_build_cpu.json"


def record_times(times_file: Path, out: Path | None = None, note: str = "", commit: str | None = None,
                 warm: bool = False) -> dict:
    """Store a full build's per-chapter seconds (a ``run_times.json``) with the machine, the commit and the date
    as the teachers' page's reference. Refuses a file that lacks a chapter: a partial build is no reference.

    ``warm``: the build was a rebuild over a filled cache (``make book`` again): its times go under the record's
    ``warm`` key, with their total, and the fresh build's record is kept as it was (the teachers' page quotes the
    fresh one; the warm one says what a second ``make book`` costs)."""
    import datetime
    import os
    import platform
    import subprocess

    if not Path(times_file).is_file():
        raise ValueError(f"record-times: {times_file} does not exist; run the book first (make book) and pass its "
                         "results/book/run_times.json.")
    times = json.loads(Path(times_file).read_text())
    missing = [p.stem for p in notebooks() if p.stem not in times]
    if missing:
        raise ValueError(f"record-times: {times_file} has no time for {', '.join(missing)}; a reference needs every "
                         "chapter of one full build.")
    if commit is None:  # the build's commit: this checkout's, unless the build ran in another clone
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                text=True).stdout
    seconds = {p.stem: times[p.stem] for p in notebooks()}
    target = Path(out or REFERENCE_TIMES)
    if warm:
        if not target.is_file():
            raise ValueError(f"record-times --warm: {target} holds no fresh build to keep the warm one beside; record "
                             "a fresh build first.")
        record = json.loads(target.read_text())
        record["warm"] = {"commit": commit.strip(), "date": datetime.date.today().isoformat(), "note": note,
                          "total_seconds": round(sum(seconds.values()), 1), "seconds": seconds}
    else:
        record = {"machine": f"{os.cpu_count()} CPU cores, {platform.machine()}, no GPU used",
                  "commit": commit.strip(), "date": datetime.date.today().isoformat(), "note": note,
                  "seconds": seconds}
    target.write_text(json.dumps(record, indent=2) + "\n")
    return record


def reference_times(path: Path | None = None) -> dict | None:
    """The recorded full build (:func:`record_times`), or None when there is none."""
    path = Path(path or REFERENCE_TIMES)
    return json.loads(path.read_text()) if path.is_file() else None


#: Columns and keys that measure time (different on every run): :func:`compare_results` reports them apart.
TIMING = re.compile(r"(^|_)(seconds|minutes|hours|time|times|elapsed|wall|per_sentence_s|s_per_sentence)($|_)")


def _frame(path: Path):
    import pandas as pd

    if path.suffix == ".json":
        value = json.loads(path.read_text())
        return pd.json_normalize(value) if isinstance(value, dict) else pd.DataFrame(value)
    return pd.read_csv(path)


def compare_results(before: Path, after: Path) -> "pd.DataFrame":
    """Every table of two ``results/`` folders side by side: one row per file with ``status`` (``same``,
    ``differs``, ``only before``, ``only after``), the number of cells that differ and the largest numeric
    difference. Timing columns (:data:`TIMING`) and ``book/run_times.json`` are left out of the comparison
    and named in ``timing_columns``. Equality is exact: a table that is the same to the last digit reads
    ``same``; a float written 1e-16 apart would read ``differs`` with its size in ``max_abs_diff``."""
    import numpy as np
    import pandas as pd

    before, after = Path(before), Path(after)
    for name, folder in (("before", before), ("after", after)):
        if not folder.is_dir():
            raise ValueError(f"{name}={folder} is not a folder: pass two results/ folders (for example a copy of "
                             "results/ saved before a change, and results/ after it).")
    files = sorted({p.relative_to(root) for root in (before, after) for p in root.rglob("*")
                    if p.suffix in (".csv", ".json") and p.is_file()} - {Path(RUNNER.folder, RUNNER.run_times.file())})
    rows = []
    for rel in files:
        a, b = before / rel, after / rel
        row = {"file": str(rel), "status": "same", "cells_differ": 0, "max_abs_diff": 0.0, "timing_columns": "",
               "columns_differ": ""}
        if not a.is_file() or not b.is_file():
            row["status"] = "only after" if not a.is_file() else "only before"
            rows.append(row)
            continue
        fa, fb = _frame(a), _frame(b)
        timing = sorted(c for c in set(fa.columns) | set(fb.columns) if TIMING.search(str(c).lower()))
        fa, fb = fa.drop(columns=timing, errors="ignore"), fb.drop(columns=timing, errors="ignore")
        row["timing_columns"] = ", ".join(map(str, timing))
        if list(fa.columns) != list(fb.columns) or len(fa) != len(fb):
            row.update(status="differs", columns_differ=f"{list(fa.columns)} ({len(fa)} rows) before, "
                                                          f"{list(fb.columns)} ({len(fb)} rows) after")
            rows.append(row)
            continue
        differ, largest, names = 0, 0.0, []
        for col in fa.columns:
            x, y = fa[col], fb[col]
            same = (x == y) | (x.isna() & y.isna())
            if not same.all():
                differ += int((~same).sum())
                names.append(str(col))
                if pd.api.types.is_numeric_dtype(x) and pd.api.types.is_numeric_dtype(y):
                    largest = max(largest, float(np.nanmax(np.abs(x.to_numpy(float) - y.to_numpy(float)))))
        if differ:
            row.update(status="differs", cells_differ=differ, max_abs_diff=largest, columns_differ=", ".join(names))
        rows.append(row)
    return pd.DataFrame(rows)


#: Columns whose change is a change of finding, not of a number: a table whose words in these columns differ is
#: outside its intervals whatever its numbers do.
FINDING_COLUMNS = ("verdict", "direction", "sign", "holds")


def compare_within_intervals(before: Path, after: Path) -> "pd.DataFrame":
    """Whether ``after``'s numbers stay inside ``before``'s stated intervals: for every table in both folders with
    the same rows and columns, every column ``x`` that has ``x_low`` and ``x_high`` beside it is checked row by row
    (after's ``x`` within before's [``x_low``, ``x_high``]), and the words of :data:`FINDING_COLUMNS` must be equal.
    One row per such table: ``checked`` values, ``outside`` (how many fall outside), ``worst`` (the column and row
    furthest outside, in units of the interval's half-width), ``findings_differ``, and ``unmatched``: why a table
    of ``before`` with intervals or findings could not be checked (missing in ``after``, other columns or another
    number of rows), which counts against it as an outside value does. Tables with no interval and no finding
    column are left to :func:`compare_results` (exact)."""
    import numpy as np
    import pandas as pd

    before, after = Path(before), Path(after)
    rows = []
    for a in sorted(before.rglob("*.csv")):
        rel = a.relative_to(before)
        fa = _frame(a)
        names = [c for c in fa.columns if f"{c}_low" in fa.columns and f"{c}_high" in fa.columns
                 and pd.api.types.is_numeric_dtype(fa[c])]
        findings = [c for c in fa.columns if str(c).lower() in FINDING_COLUMNS]
        if not names and not findings:
            continue
        b = after / rel
        fb = _frame(b) if b.is_file() else None
        unmatched = ""
        if fb is None:
            unmatched = "missing in after"
        elif list(fa.columns) != list(fb.columns):
            changed = sorted(set(fa.columns) ^ set(fb.columns))
            unmatched = f"columns differ: {changed}" if changed else "columns in another order"
        elif len(fa) != len(fb):
            unmatched = f"{len(fa)} rows before, {len(fb)} after"
        if unmatched:  # not checked: never counted as inside
            rows.append({"file": str(rel), "checked": 0, "outside": 0, "worst": "", "findings_differ": "",
                         "unmatched": unmatched})
            continue
        checked, outside, worst = 0, 0, (0.0, "")
        for c in names:
            lo, hi = fa[f"{c}_low"].to_numpy(float), fa[f"{c}_high"].to_numpy(float)
            x = pd.to_numeric(fb[c], errors="coerce").to_numpy(float)
            own = pd.to_numeric(fa[c], errors="coerce").to_numpy(float)
            ok = np.isfinite(lo) & np.isfinite(hi)  # rows with no interval are not checked
            # a percentile interval need not contain its own estimate: before's value itself is never "outside"
            lo, hi = np.fmin(lo, own), np.fmax(hi, own)
            checked += int(ok.sum())
            out = ok & ((x < lo) | (x > hi) | ~np.isfinite(x))
            outside += int(out.sum())
            half = np.maximum((hi - lo) / 2, 1e-12)
            excess = np.where(out, np.maximum(lo - x, x - hi) / half, 0.0)
            if out.any() and np.nanmax(excess) > worst[0]:
                i = int(np.nanargmax(excess))
                worst = (float(excess[i]), f"{c} row {i}")
        differ = [c for c in findings if not (fa[c].astype(object).fillna("").astype(str).to_numpy()
                                              == fb[c].astype(object).fillna("").astype(str).to_numpy()).all()]
        rows.append({"file": str(rel), "checked": checked, "outside": outside,
                     "worst": f"{worst[1]} ({worst[0]:.2f} half-widths out)" if worst[1] else "",
                     "findings_differ": ", ".join(map(str, differ)), "unmatched": ""})
    return pd.DataFrame(rows, columns=["file", "checked", "outside", "worst", "findings_differ", "unmatched"])
