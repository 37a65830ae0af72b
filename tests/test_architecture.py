"""The package's layers (ARCHITECTURE.md) hold: every import of every module, at the top or inside a function."""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import book

ROOT = Path(__file__).resolve().parents[1]
HELPERS = ROOT / "helpers"

#: The layers from the bottom up, as ARCHITECTURE.md draws them. A module may import its own layer and those
#: below it, except that analysis skips measure (tables in, tables out) and drawing imports nothing that computes.
LAYERS = {
    "base": {"config", "data", "units", "information", "live", "publishing", "book", "artifacts"},
    "measure": {"encoders", "attribution", "pairs", "faithfulness"},
    "analyse": {"regression", "rules", "verdicts"},
    "study": {"roster", "training", "contrast", "theory", "sweep", "explorer", "explain"},
    "draw": {"plots"},
}
ALLOWED = {"base": {"base"}, "measure": {"base", "measure"}, "analyse": {"base", "analyse"},
           "study": {"base", "measure", "analyse", "study"}, "draw": set()}
HEAVY = {"torch", "transformers", "captum", "shap", "sentence_transformers"}


def _layer(module: str) -> str:
    return next(name for name, members in LAYERS.items() if module in members)


def imports(path: Path) -> tuple[set, set]:
    """(the package's modules, the other top-level packages) that ``path`` imports anywhere in its code."""
    own, other = set(), set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            own |= {node.module.split(".")[0]} if node.module else {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            (own if node.module.startswith("helpers.") else other).add(node.module.split(".")[-1 if
                                                                        node.module.startswith("helpers.") else 0])
        elif isinstance(node, ast.Import):
            other |= {a.name.split(".")[0] for a in node.names}
    return own, other


def graph() -> dict:
    return {p.stem: imports(p)[0] for p in HELPERS.glob("*.py") if p.stem not in ("__init__", "__main__")}


def test_every_module_has_a_layer():
    modules = {p.stem for p in HELPERS.glob("*.py")} - {"__init__", "__main__"}
    placed = set().union(*LAYERS.values())
    assert modules <= placed, f"modules without a layer (add them to ARCHITECTURE.md and LAYERS): {modules - placed}"


def test_imports_follow_the_layers():
    wrong = {f"{m} ({_layer(m)}) imports {d} ({_layer(d)})" for m, deps in graph().items() for d in deps
             if _layer(d) not in ALLOWED[_layer(m)] | ({_layer(m)} if _layer(m) != "draw" else set())}
    assert not wrong, sorted(wrong)


def test_analysis_and_drawing_import_no_model_code():
    for module in LAYERS["analyse"] | LAYERS["draw"]:
        heavy = imports(HELPERS / f"{module}.py")[1] & HEAVY
        assert not heavy, f"{module} imports {heavy}"
    code = "import sys, helpers.rules, helpers.regression, helpers.verdicts, helpers.plots; " \
           f"print(sorted(m for m in {sorted(HEAVY)!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_no_import_circle():
    g = graph()
    state = {}

    def visit(m, path):
        if state.get(m) == "open":
            raise AssertionError(f"import circle: {' -> '.join(path + [m])}")
        if state.get(m) == "done":
            return
        state[m] = "open"
        for d in sorted(g.get(m, ())):
            visit(d, path + [m])
        state[m] = "done"

    for m in sorted(g):
        visit(m, [])


@pytest.mark.parametrize("path", book.notebooks(), ids=lambda p: p.stem)
def test_every_chapter_with_parameters_has_smoke_parameters(path):
    """A chapter whose parameters cell is not in SMOKE_PARAMETERS would run at full size in make test."""
    import papermill as pm

    declared = pm.inspect_notebook(str(path))
    if not declared or path.stem in book.SMOKE_FULL_SIZE:
        return
    assert path.stem in book.SMOKE_PARAMETERS, (
        f"{path.name} declares parameters {sorted(declared)[:6]} but has no entry in helpers.book.SMOKE_PARAMETERS: "
        "add its smallest settings there (or list it in SMOKE_FULL_SIZE if it costs seconds at full size).")
    unknown = set(book.SMOKE_PARAMETERS[path.stem]) - set(declared)
    assert not unknown, f"SMOKE_PARAMETERS[{path.stem!r}] names parameters the chapter does not declare: {unknown}"
