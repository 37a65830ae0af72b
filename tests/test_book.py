import json

import nbformat
import papermill as pm
import pytest

from helpers import book

NOTEBOOKS = book.notebooks()


def test_there_are_chapters():
    assert [p.stem[:2] for p in NOTEBOOKS] == sorted(p.stem[:2] for p in NOTEBOOKS)
    assert {"01_theory", "02_information"} <= {p.stem for p in NOTEBOOKS}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_clean_and_parametrised(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    tagged = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged 'parameters'"
    titles = [l for c in nb.cells if c.cell_type == "markdown" for l in c.source.splitlines() if l.startswith("# ")]
    assert len(titles) == 1 and nb.cells[0].source.startswith("# "), "one title, in the first cell"
    assert not any(c.get("outputs") for c in code), "committed without outputs"
    # every assignment of the parameters cell is visible to papermill (a second '=' on a line hides it)
    assigned = [line.split("=")[0].strip() for line in tagged[0].source.splitlines()
                if line and not line.startswith((" ", "#")) and "=" in line]
    inspected = pm.inspect_notebook(str(path))
    assert list(inspected) == assigned
    assert all(p["help"] for p in inspected.values()), "every parameter has a comment"
    # the smoke parameters only name parameters the notebook declares
    assert set(book.SMOKE_PARAMETERS.get(path.stem, {})) <= set(inspected)


def test_failing_notebook_names_notebook_and_cell(tmp_path):
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("x = 1  # a parameter")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell("y = x + 1"), nbformat.v4.new_code_cell("raise ValueError('boom')")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "99_broken.ipynb"
    nbformat.write(nb, path)
    with pytest.raises(book.NotebookFailed, match=r"99_broken.ipynb failed in cell \d.*ValueError: boom"):
        book.run_notebook(path, tmp_path / "out", progress=False)


def test_parameters_page_lists_every_parameter(tmp_path):
    out = tmp_path / "parameters.md"
    book.parameters_page(out)
    text = out.read_text()
    for path in NOTEBOOKS:
        assert f"## {path.stem}" in text
        for name in pm.inspect_notebook(str(path)):
            assert f"`{name}`" in text


SHARED = ["mlm_steps", "mlm_hidden", "mlm_layers", "mlm_batch_size", "simcse_steps", "simcse_batch_size", "seed"]


def test_self_trained_pair_settings_agree_across_chapters():
    """Chapters 05-08 must name the same self-trained pair, or each would train its own."""
    import ast
    import inspect

    from helpers import training

    chapters = [p for p in NOTEBOOKS if p.stem[:2] in ("05", "06", "07", "08", "09")]
    assert len(chapters) == 5
    defaults = [{k: pm.inspect_notebook(str(p))[k]["default"] for k in SHARED} for p in chapters]
    assert all(d == defaults[0] for d in defaults)
    ch05 = pm.inspect_notebook(str(chapters[0]))
    sig = inspect.signature(training.self_trained_pair).parameters
    assert sig["lr"].default == float(ch05["lr"]["default"])
    assert sig["temperature"].default == float(ch05["temperature"]["default"])
    assert sig["objective"].default in ch05["objectives"]["default"]
    assert sig["simcse_steps"].default == int(ch05["simcse_steps"]["default"])
    assert list(sig["save_steps"].default) == ast.literal_eval(ch05["save_steps"]["default"])
    for stem in ("06_regression", "07_word_weights", "08_other_datasets", "09_explorer"):
        smoke = book.SMOKE_PARAMETERS[stem]
        assert {k: smoke[k] for k in book.SELF_TRAINED_SMOKE} == book.SELF_TRAINED_SMOKE


def test_widgets_are_stripped_from_executed_copies(tmp_path):
    import nbformat

    from helpers.book import WIDGET_MIME, strip_widgets

    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("w")
    cell.outputs = [nbformat.v4.new_output("display_data", data={WIDGET_MIME: {"model_id": "x"},
                                                                  "text/plain": "Explorer(...)"})]
    nb.cells = [cell, nbformat.v4.new_code_cell("1")]
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    path = tmp_path / "n.ipynb"
    nbformat.write(nb, path)
    assert book.strip_widgets(path) == 1
    out = nbformat.read(path, as_version=4)
    assert "widgets" not in out.metadata and out.cells[0].outputs[0]["data"] == {"text/plain": "Explorer(...)"}
    assert book.strip_widgets(path) == 0  # idempotent
