"""Run the book's notebooks with papermill (the README).

``python -m helpers.book run`` executes every notebook of ``notebooks/`` in order into
``book/`` (the executed copies the HTML book is built from), showing which notebook
runs and how far it is; a failing notebook stops the run and names the notebook and
the cell. ``--smoke`` uses each chapter's smallest parameters (:data:`SMOKE_PARAMETERS`),
``-p NAME VALUE`` overrides a parameter in every notebook that has it.
``python -m helpers.book parameters-page`` writes the page that lists every chapter's parameters;
``python -m helpers.book compare-results BEFORE AFTER`` compares two ``results/`` folders table by table.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from .builds import compare_results, compare_within_intervals, record_times
from .chapter_files import NOTEBOOK_DIR, notebooks, strip_widgets, sync_text
from .config import ROOT
from .pages import parameters_page, write_pages
from .parameters import check_chapter_parameters, check_overrides, check_types
from .results import RUNNER

__all__ = ["SELF_TRAINED_SMOKE", "SMOKE_PARAMETERS", "SELF_TRAINED_LAB", "LAB_PARAMETERS", "LAB_PRECISION",
           "PRECISION_ENV", "SMOKE_FULL_SIZE", "NOTEBOOK_DIR", "preset_parameters", "NotebookFailed",
           "run_notebook", "select", "run_all", "PRETRAINING_CALLS", "chapters_needing_pretraining", "main"]


#: Chapter 05's own training parameters at their smallest: the pair that ``training.SELF_TRAINED_PRESETS["smoke"]``
#: names for chapters 06-11 (``self_trained="smoke"``), so ``make test`` trains one tiny pair.
SELF_TRAINED_SMOKE = {"mlm_steps": 30, "mlm_hidden": 32, "mlm_layers": 1, "mlm_batch_size": 32, "simcse_steps": 6,
                      "simcse_batch_size": 16}

#: The smallest parameters of each chapter: what ``make test`` runs.
SMOKE_PARAMETERS = {
    "01_theory": {"n_pairs": 500, "steps": 60, "log_every": 20, "batch_size": 64, "n_ranks": 3, "n_seeds": 1,
                  "last_checkpoints": 1, "optimum_dim": 8, "smoothing_grid": [0.0, 0.1, 0.99]},
    "02_information": {"sizes": [300, 1000], "min_counts": [1, 2]},
    "03_integrated_gradients": {"n_sentences": 2, "n_steps": 8, "exact_sentences": 1,
                                "projections_grid": [4, 8], "n_steps_grid": [4, 8],
                                "baselines": ["pad", "mask"], "model": "tiny-random-bert"},
    "05_finetuning": {**SELF_TRAINED_SMOKE, "objectives": ["sup"], "save_steps": [0, 6], "n_sentences": 10,
                      "ig_n_steps": 4, "ig_projections": 4, "train_designs": ["bow"], "bow_steps": 20,
                      "long_steps": 6, "long_save_steps": [0, 6], "reverse_steps": 4},
    "06_regression": {"self_trained": "smoke", "n_sentences": 6, "ig_n_steps": 4, "ig_projections": 4, "max_evals": 40,
                      "sketch_check_sentences": 2, "choice_boot": 20,
                      "n_boot": 50},
    "07_word_weights": {"self_trained": "smoke", "n_sentences": 6, "ig_n_steps": 4, "ig_projections": 4,
                        "min_occurrences": 2},
    "08_other_datasets": {"self_trained": "smoke", "n_sentences": 5, "info_sentences": 300, "ig_n_steps": 4,
                          "ig_projections": 4, "n_boot": 50},
    "09_explorer": {"self_trained": "smoke", "static_pool": 6, "static_sentences": 3, "static_extremes": 1,
                    "ig_n_steps": 4, "ig_projections": 4, "max_evals": 40},
    "10_pair_similarity": {"self_trained": "smoke", "n_pairs": 3, "n_steps": 4, "check_projections": 4, "exact_pairs": 1},
    "11_faithfulness": {"self_trained": "smoke", "n_sentences": 4, "sample_size": 6, "k_max": 2, "random_seeds": [0],
                        "n_boot": 20, "ig_n_steps": 4, "ig_projections": 4, "max_evals": 40},
    "04_shap": {"n_sentences": 2, "max_evals": 40, "model": "tiny-random-bert", "ig_n_steps": 8,
                "ig_projections": 8},
    "13_explain_your_model": {"model": "tiny-random-bert", "n_steps": 4, "k_max": 3, "n_random": 3,
                              "long_words": 120, "self_trained": "smoke",
                              "compare_models": ["tiny-random-bert", "all-MiniLM-L6-v2"], "batch": 3},
}


#: Chapter 05's training parameters of the lab pair, ``training.SELF_TRAINED_PRESETS["lab"]`` for chapters 06-08.
SELF_TRAINED_LAB = {"mlm_steps": 600, "mlm_hidden": 128, "mlm_layers": 2, "mlm_batch_size": 32, "simcse_steps": 60,
                    "simcse_batch_size": 32}

#: The lab path (``--lab``): chapters 05-08 on a laptop in minutes, with a small pair trained for it and small
#: samples. Its numbers show the workflow and the direction of the effects, not the book's verdicts. IG uses 50
#: quadrature points: the small, briefly trained lab pair needs more than the book's pair (its worst completeness
#: gap was 32% at 8 points and 5.2% at 20, a warning a student cannot act on; ``completeness_by_steps`` on the lab
#: MLM: 1.2% at 20, 0.32% at 32, 0.06% at 50 on eight STS-B sentences). Chapter 06 runs IG only: SHAP without
#: block averages needs about 20 model calls per token, which would double the lab's time (chapter 04 teaches
#: SHAP); one sentence per model checks the sketch against exact IG. all-mpnet-base-v2 stays out even where its
#: optional packages are installed (it alone took 4.7 of chapter 06's minutes, with completeness gaps up to 3.4% at
#: 50 points), the baselines table measures the self-trained pair (the matched pair its verdicts are about), and
#: chapters 06-08 attribute the same 20 sentences per model (chapter 07 reads chapter 06's from the cache).
LAB_PARAMETERS = {
    "05_finetuning": {**SELF_TRAINED_LAB, "objectives": ["sup"], "save_steps": [0, 60], "n_sentences": 30,
                      "ig_n_steps": 50, "ig_projections": 8, "designs": [], "train_designs": []},
    "06_regression": {"self_trained": "lab", "include_mpnet": False, "n_sentences": 20, "methods": ["ig"],
                      "ig_n_steps": 50, "ig_projections": 8, "sketch_check_sentences": 1, "choice_boot": 100,
                      "n_boot": 200, "baseline_rows": ["self-trained MLM (MEAN)", "self-trained SimCSE (MEAN)"]},
    "07_word_weights": {"self_trained": "lab", "n_sentences": 20, "ig_n_steps": 50, "ig_projections": 8,
                        "min_occurrences": 2},
    "08_other_datasets": {"self_trained": "lab", "include_mpnet": False, "n_sentences": 20, "info_sentences": 2000,
                          "ig_n_steps": 50, "ig_projections": 8, "n_boot": 200},
}

#: The lab path's arithmetic (``$SENTENCE_PRECISION`` for its kernels unless the reader set it): ``auto`` is bf16
#: where the CPU computes bf16 products natively (AVX-512 BF16 or AMX: IG about 1.4x faster sketched, 2x exact, at a
#: Spearman correlation of 0.998 with fp32; ``benchmarks/precision.py``) and fp32 elsewhere, where bf16 would be
#: emulated and slower. The book's own build stays fp32.
LAB_PRECISION = "auto"
#: The environment variable :mod:`helpers.precision` reads (named here: the runner is below the measure layer).
PRECISION_ENV = "SENTENCE_PRECISION"

#: Chapters that run at full size in seconds and so have no smoke parameters (a test holds every other chapter
#: with a parameters cell to an entry in :data:`SMOKE_PARAMETERS`).
SMOKE_FULL_SIZE = {"12_what_reproduced"}


class NotebookFailed(RuntimeError):
    """A notebook raised: the message names the notebook and the cell."""


def run_notebook(path: Path, out_dir: Path, parameters: dict | None = None, progress: bool = True,
                 checks: str = "warn") -> Path:
    """Execute one notebook with papermill into ``out_dir``; raise :class:`NotebookFailed` on error.

    Progress bars inside the notebook are plain text (:func:`helpers.config.tqdm`); with
    ``progress`` they and every warning are streamed to this process's stderr as they come,
    so a long cell (the MLM pre-training) shows its steps on the terminal. ``checks``: ``error`` makes a
    sentence whose direction this run contradicts stop the run (:func:`helpers.live.check_sentence`; the book build at
    the chapters' defaults), ``warn`` shows a note instead, ``defaults`` is ``error`` when no parameter the
    chapter declares is overridden and ``warn`` otherwise.
    """
    import os

    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    from .config import TEXT_PROGRESS
    from .live import CHECKS_ENV

    if checks not in ("error", "warn", "defaults"):
        raise ValueError(f"checks={checks!r}: use 'error', 'warn' or 'defaults'.")

    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / path.name
    declared = pm.inspect_notebook(str(path))
    params = {k: v for k, v in (parameters or {}).items() if k in declared}
    if checks == "defaults":
        checks = "warn" if params else "error"
    saved = {name: os.environ.get(name) for name in (TEXT_PROGRESS, CHECKS_ENV)}
    os.environ[TEXT_PROGRESS] = "1"  # inherited by the kernel
    os.environ[CHECKS_ENV] = checks
    try:
        pm.execute_notebook(str(path), str(out), parameters=params, kernel_name="python3", cwd=str(ROOT),
                            progress_bar=False, report_mode=False, stderr_file=sys.stderr if progress else None)
    except PapermillExecutionError as err:
        raise NotebookFailed(
            f"notebook {path.name} failed in cell {err.cell_index} (execution count {err.exec_count}): "
            f"{err.ename}: {err.evalue}\n(the executed copy with the traceback is {out})") from err
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    strip_widgets(out)
    return out


def select(only: list[str] | None) -> list[Path]:
    """The notebooks named by ``only`` (all when None or empty): a chapter number (``1``, ``01``), a whole
    name (``01_theory``) or the name without its number (``theory``). Anything else is an error: ``1`` never
    means chapters 10-12, and an empty name never means every chapter."""
    paths = notebooks()
    if not only:
        return paths

    def matches(o: str, path: Path) -> bool:
        number, _, name = path.stem.partition("_")
        if o.isdigit():
            return int(o) == int(number)
        return o in (path.stem, name)

    blank = [o for o in only if not o.strip()]
    if blank:
        raise ValueError(f"--only got an empty name ({only!r}); name chapters by number (01 or 1) or name (theory).")
    unknown = [o for o in only if not any(matches(o.strip(), p) for p in paths)]
    if unknown:
        raise ValueError(f"--only {' '.join(unknown)}: no chapter has that number or name; the notebooks are "
                         f"{', '.join(p.stem for p in paths)}.")
    return [p for p in paths if any(matches(o.strip(), p) for o in only)]


def preset_parameters(stem: str, smoke: bool = False, lab: bool = False) -> dict:
    """A chapter's parameters under a preset: :data:`SMOKE_PARAMETERS`, :data:`LAB_PARAMETERS` or none."""
    return dict(SMOKE_PARAMETERS.get(stem, {})) if smoke else dict(LAB_PARAMETERS.get(stem, {})) if lab else {}


#: The note at the top of every chapter the lab path executed: its bold verdicts are the lab run's, not the book's.
LAB_NOTE = ("```{admonition} A lab run: these numbers show the workflow, not the book's verdicts\n:class: warning\n"
            "This copy ran with the lab preset (`python -m helpers.book run --lab`): a small MLM -> SimCSE pair trained "
            "in minutes, small samples, fewer bootstrap resamples. Its numbers show how the study is done and the "
            "direction of the effects in this small run. A verdict in bold below is this run's, judged by the book's "
            "rule on far less evidence than the book's; the book's verdicts are those of the built book "
            "({doc}`chapter 12 <12_what_reproduced>`).\n```")


def mark_lab_run(path: Path) -> None:
    """Put :data:`LAB_NOTE` after the title of an executed chapter (once)."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    if any(c.cell_type == "markdown" and c.source == LAB_NOTE for c in nb.cells):
        return
    title = next((i for i, c in enumerate(nb.cells) if c.cell_type == "markdown" and c.source.startswith("# ")), -1)
    nb.cells.insert(title + 1, nbformat.v4.new_markdown_cell(LAB_NOTE))
    nbformat.write(nb, path)


def run_all(out_dir: Path, overrides: dict | None = None, smoke: bool = False, only: list[str] | None = None,
            lab: bool = False) -> dict:
    """Run every notebook in order; return and save ``{notebook: seconds}``. ``smoke``: each chapter's smallest
    parameters (:data:`SMOKE_PARAMETERS`); ``lab``: the lab path's (:data:`LAB_PARAMETERS`)."""
    if smoke and lab:
        raise ValueError("--smoke and --lab are two presets: choose one.")
    paths = select(only)
    check_overrides(paths, overrides or {})
    check_types(paths, overrides or {})
    for path in paths:  # the presets pass the checks a reader's overrides pass, before anything runs
        check_chapter_parameters(path, preset_parameters(path.stem, smoke, lab))
    try:
        times = RUNNER.run_times.read_or_none() or {}
    except json.JSONDecodeError:
        times = {}
    set_precision = lab and not os.environ.get(PRECISION_ENV)  # a reader's own setting wins
    if set_precision:
        os.environ[PRECISION_ENV] = LAB_PRECISION  # the kernels inherit it
    try:
        _run_paths(paths, out_dir, overrides, smoke, lab, times)
    finally:
        if set_precision:
            os.environ.pop(PRECISION_ENV, None)
    return times


def _run_paths(paths, out_dir: Path, overrides, smoke: bool, lab: bool, times: dict) -> None:
    """Execute ``paths`` in order, recording each chapter's seconds in ``times`` and its table as it ends."""
    for i, path in enumerate(paths, 1):
        params = preset_parameters(path.stem, smoke, lab)
        params.update(overrides or {})
        print(f"[{i}/{len(paths)}] {path.name} {json.dumps(params) if params else ''}", flush=True)
        start = time.perf_counter()
        # at the chapter's own defaults (the book build) a contradicted sentence stops the run
        out = run_notebook(path, out_dir, params, checks="defaults")
        if lab:
            mark_lab_run(out)
        times[path.stem] = round(time.perf_counter() - start, 1)
        print(f"[{i}/{len(paths)}] {path.name} done in {times[path.stem]} s", flush=True)
        RUNNER.run_times.save(times)  # the chapters run so far (earlier runs of others kept)


#: What a chapter calls when it needs the self-trained MLM (about 40 minutes of pre-training on 2 cores when it
#: is not cached): such a chapter does not fit Binder's free machines.
PRETRAINING_CALLS = ("self_trained_pair(", "pretrain_mlm(")


def _calls(code: str, name: str) -> list[str]:
    """The argument text of every call ``name(...)`` in ``code`` (parentheses matched, so nested calls stay
    inside)."""
    found, start = [], code.find(name)
    while start >= 0:
        depth, i = 0, start + len(name) - 1
        for i in range(start + len(name) - 1, len(code)):
            depth += {"(": 1, ")": -1}.get(code[i], 0)
            if depth == 0:
                break
        found.append(code[start + len(name):i])
        start = code.find(name, i)
    return found


def chapters_needing_pretraining() -> list[str]:
    """The chapters whose code calls the MLM pre-training (read from their sources, not typed). A call with
    ``train=False`` only looks on disk (chapter 13 uses the pair where chapter 05 left it), so it does not count."""
    import nbformat

    out = []
    for path in notebooks():
        code = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")
        if any("train=False" not in args for call in PRETRAINING_CALLS for args in _calls(code, call)):
            out.append(path.stem)
    return out


def _parse_value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _parser() -> argparse.ArgumentParser:
    """The command line: ``run`` and the page, comparison, record and text-twin commands."""
    parser = argparse.ArgumentParser(prog="python -m helpers.book", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run", help="execute the notebooks in order")
    run.add_argument("--out", default=str(ROOT / "book"))
    run.add_argument("--smoke", action="store_true", help="use each chapter's smallest parameters")
    run.add_argument("--lab", action="store_true", help="the lab path's parameters (chapters 05-08 in minutes)")
    run.add_argument("--only", nargs="*", help="chapters by number or name, e.g. 1 03 regression")
    run.add_argument("-p", nargs=2, action="append", metavar=("NAME", "VALUE"), default=[],
                     help="override a parameter (JSON value) in every notebook that declares it")
    page = sub.add_parser("parameters-page", help="write the parameters page")
    page.add_argument("--out", default=str(ROOT / "book" / "parameters.md"))
    pages = sub.add_parser("pages", help="write the generated pages (parameters, reproducibility, downloads, "
                                                  "teachers)")
    pages.add_argument("--book", default=str(ROOT / "book"))
    compare = sub.add_parser("compare-results", help="compare two results/ folders table by table (exit 1 when any "
                                                     "table differs)")
    compare.add_argument("before")
    compare.add_argument("after")
    compare.add_argument("--intervals", action="store_true",
                         help="also say, per table with intervals, whether after's values stay inside before's "
                              "intervals and its verdicts agree (exit 1 when any does not)")
    record = sub.add_parser("record-times", help="store a full build's chapter times as the teachers' page's "
                                                 "reference (benchmarks/book_build_cpu.json)")
    record.add_argument("times", nargs="?", default=str(RUNNER.run_times.path()))
    record.add_argument("--note", default="", help="what else ran on the machine, for example")
    record.add_argument("--commit", default=None, help="the commit the build ran (default: this checkout's)")
    record.add_argument("--warm", action="store_true",
                        help="a rebuild over a filled cache: kept beside the fresh build's record, under 'warm'")
    sub.add_parser("sync-text", help="write every chapter's MyST Markdown twin (notebooks/*.md) from its notebook")
    return parser


def _compare(args) -> int:
    """``compare-results``: the table-by-table report, and with ``--intervals`` the intervals check."""
    try:
        table = compare_results(Path(args.before), Path(args.after))
    except ValueError as err:
        print(f"ERROR: {err}", file=sys.stderr)
        return 2
    print(table.to_string(index=False))
    counts = table["status"].value_counts().to_dict()
    print(f"\n{len(table)} tables: " + ", ".join(f"{n} {k}" for k, n in counts.items()))
    if args.intervals:
        within = compare_within_intervals(Path(args.before), Path(args.after))
        print("\nAgainst the intervals of BEFORE:\n" + within.to_string(index=False))
        bad = within[(within["outside"] > 0) | (within["findings_differ"] != "") | (within["unmatched"] != "")]
        print(f"\n{len(within)} tables with intervals or verdicts: {len(bad)} outside, with other findings or "
              "not comparable (unmatched)")
        return 0 if bad.empty else 1
    return 0 if (table["status"] == "same").all() else 1


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    if args.cmd == "sync-text":
        for path in sync_text():
            print(f"wrote {path.relative_to(ROOT)}")
        return 0
    if args.cmd == "record-times":
        try:
            print(json.dumps(record_times(Path(args.times), note=args.note, commit=args.commit,
                                                 warm=args.warm), indent=2))
        except ValueError as err:
            print(f"ERROR: {err}", file=sys.stderr)
            return 2
        return 0
    if args.cmd == "compare-results":
        return _compare(args)
    if args.cmd == "parameters-page":
        parameters_page(Path(args.out))
        return 0
    if args.cmd == "pages":
        write_pages(Path(args.book))
        return 0
    try:
        run_all(Path(args.out), {k: _parse_value(v) for k, v in args.p}, args.smoke, args.only, lab=args.lab)
    except (NotebookFailed, ValueError) as err:
        print(f"ERROR: {err}", file=sys.stderr)
        return 1 if isinstance(err, NotebookFailed) else 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
