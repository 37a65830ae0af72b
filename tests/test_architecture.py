"""The package's layers (ARCHITECTURE.md) hold: every import of every module, at the top or inside a function."""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import book, chapter_files

ROOT = Path(__file__).resolve().parents[1]
HELPERS = ROOT / "helpers"

#: The layers from the bottom up, as ARCHITECTURE.md draws them. A module may import its own layer and those
#: below it, except that analysis skips measure (tables in, tables out) and drawing imports nothing that computes.
LAYERS = {
    "base": {"config", "results", "data", "units", "information", "live", "publishing", "book", "artifacts",
             "chapter_files", "parameters", "pages", "builds"},
    "measure": {"weights", "encoders", "st_modules", "sts", "precision", "attribution", "faithfulness"},
    "analyse": {"regression", "rules", "verdicts", "verdict_text"},
    "study": {"roster", "training", "runs", "finetuning", "standin", "matched_designs", "bow_encoders", "theory", "theory_study",
              "word_change_study", "regression_study", "finetune_study", "sweep", "explorer", "explain", "faithfulness_study",
              "similarity_study", "explain_pair", "explanation", "explanation_sets", "explain_cli", "views"},
    "draw": {"plots"},
}
ALLOWED = {"base": {"base"}, "measure": {"base", "measure"}, "analyse": {"base", "analyse"},
           "study": {"base", "measure", "analyse", "study"}, "draw": set()}
HEAVY = {"torch", "transformers", "captum", "shap", "sentence_transformers"}


def _layer(module: str) -> str:
    return next(name for name, members in LAYERS.items() if module in members)


def imports(path: Path) -> tuple[set, set]:
    """(the package's modules, the other top-level packages) that ``path`` imports anywhere in its code.

    A module of a subpackage (``helpers/attribution/ig.py``) counts as its subpackage: its imports of its
    siblings (``from .tokens import``) stay inside, and ``from ..encoders import`` is an import of ``encoders``.
    """
    inside = path.parent != HELPERS  # a module of a subpackage
    own, other = set(), set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            if inside and node.level == 1:
                continue  # a sibling in the same subpackage
            if node.level > 1 + inside:
                raise AssertionError(f"{path}: a relative import leaves the package")
            own |= {node.module.split(".")[0]} if node.module else {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            parts = node.module.split(".")
            if parts[0] == "helpers":
                own |= {parts[1]} if len(parts) > 1 else {a.name for a in node.names}
            else:
                other.add(parts[0])
        elif isinstance(node, ast.Import):
            other |= {a.name.split(".")[0] for a in node.names}
    return own, other


def modules() -> dict:
    """{module or subpackage name: its files}: ``helpers/*.py`` and every subpackage as one module."""
    found = {p.stem: [p] for p in HELPERS.glob("*.py") if p.stem not in ("__init__", "__main__")}
    for package in HELPERS.iterdir():
        if (package / "__init__.py").is_file():
            found[package.name] = sorted(package.glob("*.py"))
    return found


def graph() -> dict:
    return {m: set().union(*(imports(f)[0] for f in files)) - {m} for m, files in modules().items()}


def test_every_module_has_a_layer():
    found = set(modules())
    placed = set().union(*LAYERS.values())
    assert found <= placed, f"modules without a layer (add them to ARCHITECTURE.md and LAYERS): {found - placed}"


def test_imports_follow_the_layers():
    wrong = {f"{m} ({_layer(m)}) imports {d} ({_layer(d)})" for m, deps in graph().items() for d in deps
             if _layer(d) not in ALLOWED[_layer(m)] | ({_layer(m)} if _layer(m) != "draw" else set())}
    assert not wrong, sorted(wrong)


def test_analysis_and_drawing_import_no_model_code():
    found = modules()
    for module in LAYERS["analyse"] | LAYERS["draw"]:
        heavy = set().union(*(imports(f)[1] for f in found[module])) & HEAVY
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


def _notebook_uses():
    """(notebook, module, name) for every helpers name a chapter imports or reads as ``module.name``."""
    import ast
    import importlib
    import json
    import types

    out = []
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        cells = json.loads(path.read_text())["cells"]
        src = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        tree = ast.parse("\n".join(line for line in src.split("\n") if not line.lstrip().startswith(("%", "!"))))
        aliases = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("helpers"):
                module = importlib.import_module(node.module)
                for alias in node.names:
                    try:
                        obj = importlib.import_module(f"{node.module}.{alias.name}")
                    except ImportError:
                        obj = getattr(module, alias.name, None)
                    if isinstance(obj, types.ModuleType):
                        aliases[alias.asname or alias.name] = obj
                    else:
                        out.append((path.name, node.module, alias.name))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
                out.append((path.name, aliases[node.value.id].__name__, node.attr))
    return out


def test_chapters_use_only_the_public_surface():
    """Every module states its public names (``__all__``), and a chapter calls nothing else: a private helper
    the chapters lean on becomes public (and documented) or the chapter changes."""
    import importlib

    for name in modules():
        module = importlib.import_module(f"helpers.{name}")
        assert isinstance(getattr(module, "__all__", None), list), f"helpers.{name} has no __all__"
        missing = [n for n in module.__all__ if not hasattr(module, n)]
        assert not missing, f"helpers.{name}.__all__ names what it does not define: {missing}"
    uses = _notebook_uses()
    assert len(uses) > 100  # the chapters' calls were read
    private = sorted({f"{m}.{n} ({nb})" for nb, m, n in uses if n not in importlib.import_module(m).__all__})
    assert not private, f"chapters call names outside their module's __all__: {private}"


def test_every_chapter_has_its_text_twin_and_they_agree(tmp_path):
    """Each notebook is paired with a MyST Markdown file (jupytext) that a reviewer diffs as prose; the two must
    say the same, cell by cell (`make text` rewrites the twins after a notebook is edited)."""
    import shutil

    for path in book.notebooks():
        assert not chapter_files.text_differences(path), (path.name, chapter_files.text_differences(path)[:3],
                                                "run `make text` (python -m helpers.book sync-text)")
    # the check can fail: a twin edited on its own disagrees with its notebook, and a missing twin is named
    chapter = book.notebooks()[-1]
    shutil.copy(chapter, tmp_path / chapter.name)
    edited = chapter_files.text_twin(chapter).read_text().replace("# Explain your own model", "# Explain a model", 1)
    chapter_files.text_twin(tmp_path / chapter.name).write_text(edited)
    assert any("Explain your own model" in d for d in chapter_files.text_differences(tmp_path / chapter.name))
    chapter_files.text_twin(tmp_path / chapter.name).unlink()
    assert chapter_files.text_differences(tmp_path / chapter.name) == [f"{chapter_files.text_twin(chapter).name} is missing"]


# --------------------------------------------------------------------------- rooms of one size
#: A module of one concept reads in one sitting: at most this many lines ...
MODULE_LINES = 450
#: ... except these, each held at its size today so that it can only shrink (the split is still to come).
LARGER_MODULES = {"plots": 453}
#: A function fits on a screen: at most this many lines (under 60), with no exception.
FUNCTION_LINES = 59


def _sizes():
    modules, functions = {}, {}
    for path in HELPERS.rglob("*.py"):
        name = str(path.relative_to(HELPERS).with_suffix(""))
        modules[name] = len(path.read_text().splitlines())
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                functions[(name, node.name)] = max(functions.get((name, node.name), 0),
                                                   node.end_lineno - node.lineno + 1)
    return modules, functions


def test_no_module_or_function_grows_past_its_limit():
    modules, functions = _sizes()
    too_long = {m: n for m, n in modules.items() if n > LARGER_MODULES.get(m, MODULE_LINES)}
    assert not too_long, (f"modules over {MODULE_LINES} lines (or over their recorded size): {too_long}; split the "
                          "module by concept (ARCHITECTURE.md), or shorten it")
    too_long = {f: n for f, n in functions.items() if n > FUNCTION_LINES}
    assert not too_long, f"functions over {FUNCTION_LINES} lines: {too_long}; split them"
    stale = [m for m in LARGER_MODULES if modules.get(m, 0) <= MODULE_LINES]
    assert not stale, f"these are within the limits now: remove them from the exceptions ({stale})"


def test_word_weights_takes_the_method_object_and_at_most_six_other_keywords():
    import inspect

    from helpers.attribution import word_weights

    params = inspect.signature(word_weights).parameters
    named = [p for p in params if params[p].kind is inspect.Parameter.KEYWORD_ONLY]
    assert list(params)[:3] == ["encoder", "sentences", "method"] and len(named) <= 6, list(params)
