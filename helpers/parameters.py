"""A chapter's parameters checked where users pass them (base layer): every ``-p`` override of
``python -m helpers.book run`` and every preset before anything runs (declared by a chapter run, of the type its
parameters cell gives it, None only where it takes None), and the values papermill injected, at the top of a
chapter (:func:`check_parameters`). papermill's ``inspect_notebook`` reads the parameters cells.
"""
from __future__ import annotations

from pathlib import Path

from .chapter_files import NOTEBOOK_DIR

__all__ = ["PARAMETER_TYPES", "takes_none", "check_types", "check_parameters", "check_overrides",
           "check_chapter_parameters"]


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


def check_chapter_parameters(path: Path, params: dict) -> None:
    """One chapter's parameters (a preset's) through the checks every override passes: declared by the chapter
    (:func:`check_overrides`) and of its type (:func:`check_types`)."""
    check_overrides([path], params)
    check_types([path], params)
