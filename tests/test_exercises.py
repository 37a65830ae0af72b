"""Chapters 05-11's exercises run without the chapter's state: after the parameters cell alone, each exercise's
solution cells load what they need (the ``results/`` tables the chapter wrote, the cached models) themselves, so
a reader (or a seminar) can open the notebook and run an exercise without rerunning the chapter."""
import ast
import builtins

import nbformat
import pytest

from helpers import book

STANDALONE = ("05", "06", "07", "08", "09", "10", "11")


def _chapters():
    return [p for p in book.notebooks() if p.stem[:2] in STANDALONE]


def exercise_cells(nb) -> list[tuple[int, str]]:
    """(index, source) of the code cells under a chapter's "## Exercises" heading."""
    inside, cells = False, []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            head = cell.source.lstrip()
            if head.startswith("## "):
                inside = head.startswith("## Exercises")
        elif inside:
            cells.append((i, cell.source))
    return cells


def free_names(source: str) -> set[str]:
    """Names a cell reads that it neither assigns nor imports (nor Python provides)."""
    tree, bound, read = ast.parse(source), set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (read if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            bound.add(node.name)
    return {n for n in read - bound if not hasattr(builtins, n)}


def parameter_names(nb) -> set[str]:
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    return {t.id for t in ast.walk(ast.parse(cell.source)) if isinstance(t, ast.Name)}


@pytest.mark.parametrize("path", _chapters(), ids=lambda p: p.stem)
def test_exercise_cells_read_only_parameters(path):
    """Static: every exercise cell reads only the chapter's parameters and what it defines or imports itself."""
    nb = nbformat.read(path, as_version=4)
    cells = exercise_cells(nb)
    assert cells, f"{path.name} has no exercise code cells"
    params = parameter_names(nb)
    leaks = {i: sorted(free_names(src) - params) for i, src in cells}
    assert not any(leaks.values()), f"{path.name}: exercise cells read the chapter's state: " + str(
        {i: names for i, names in leaks.items() if names})


@pytest.mark.parametrize("path", _chapters(), ids=lambda p: p.stem)
def test_exercises_run_after_the_parameters_alone(path, smoke_book, data_dir, monkeypatch):
    """Dynamic: in the smoke build's executed copy, the parameters cells (the chapter's and papermill's injected
    one) and then each exercise cell alone, in a fresh namespace, reading the smoke run's results/ tables."""
    import matplotlib

    matplotlib.use("Agg")
    if path.stem in smoke_book["errors"]:
        pytest.skip(f"{path.stem} failed in the smoke run (test_notebook_smoke reports it)")
    executed = nbformat.read(smoke_book["book"] / path.name, as_version=4)
    monkeypatch.setenv("SENTENCE_RESULTS_DIR", str(smoke_book["results"]))
    monkeypatch.setenv("SENTENCE_DATA_DIR", str(data_dir))
    setup = [c.source for c in executed.cells
             if {"parameters", "injected-parameters"} & set(c.metadata.get("tags", []))]
    assert setup, f"{path.name}: no parameters cell in the executed copy"
    parameters: dict = {}
    for source in setup:
        exec(compile(source, f"{path.stem}:parameters", "exec"), parameters)
    for i, source in exercise_cells(executed):
        namespace = dict(parameters)
        try:
            exec(compile(source, f"{path.stem}:cell {i}", "exec"), namespace)
        except Exception as err:  # the cell and the error, for the reader of the failure
            pytest.fail(f"{path.name} exercise cell {i} fails after the parameters alone: "
                        f"{type(err).__name__}: {err}\n{source}")
