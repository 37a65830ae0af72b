import json
from pathlib import Path

import nbformat
import papermill as pm
import pytest

from helpers import book, builds, chapter_files, pages

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
    pages.parameters_page(out)
    text = out.read_text()
    for path in NOTEBOOKS:
        assert f"## {path.stem}" in text
        for name in pm.inspect_notebook(str(path)):
            assert f"`{name}`" in text


def test_self_trained_pair_settings_agree_across_chapters():
    """Chapters 06-11 name the pair with one parameter whose "book" preset is chapter 05's defaults, and their
    smoke runs use the "smoke" preset, which is chapter 05's smoke run: otherwise each would train its own pair."""
    import ast

    from helpers import training

    users = [p for p in NOTEBOOKS if "self_trained_pair(" in p.read_text()]
    assert [p.stem[:2] for p in users] == ["06", "07", "08", "09", "10", "11", "13"]
    for path in users:
        declared = pm.inspect_notebook(str(path))
        assert ast.literal_eval(declared["self_trained"]["default"]) == "book", path.name
        assert not {"mlm_steps", "simcse_steps", "finetune_pooling"} & set(declared), path.name
        assert book.SMOKE_PARAMETERS[path.stem]["self_trained"] == "smoke", path.name
    ch05 = {k: ast.literal_eval(v["default"]) for k, v in pm.inspect_notebook(str(NOTEBOOKS[4])).items()
            if k != "data_dir"}
    assert NOTEBOOKS[4].stem == "05_finetuning"
    pair = training.SelfTrainedPair.of("book")
    named = {"batch_size": "simcse_batch_size"}
    for field in ("mlm_steps", "mlm_hidden", "mlm_layers", "mlm_batch_size", "simcse_steps", "batch_size", "lr",
                  "temperature", "seed"):
        assert getattr(pair, field) == ch05[named.get(field, field)], field
    assert pair.objective in ch05["objectives"] and pair.simcse_steps in ch05["save_steps"]
    smoke = training.SelfTrainedPair.of("smoke")
    ch05_smoke = book.SMOKE_PARAMETERS["05_finetuning"]
    for field, value in training.SELF_TRAINED_PRESETS["smoke"].items():
        assert ch05_smoke[named.get(field, field)] == value == getattr(smoke, field), field
    assert set(book.SELF_TRAINED_SMOKE) <= set(ch05_smoke)


def test_lab_preset_names_one_pair_and_declared_parameters():
    """The lab path trains one small pair: chapter 05's lab parameters are the "lab" preset that chapters 06-08
    name, and every lab parameter is one the chapter declares (a typo would be refused only at run time)."""
    import ast

    from helpers import training

    named = {"batch_size": "simcse_batch_size"}
    lab = training.SelfTrainedPair.of("lab")
    for field, value in training.SELF_TRAINED_PRESETS["lab"].items():
        assert book.LAB_PARAMETERS["05_finetuning"][named.get(field, field)] == value == getattr(lab, field), field
    for stem, params in book.LAB_PARAMETERS.items():
        declared = pm.inspect_notebook(str(chapter_files.NOTEBOOK_DIR / f"{stem}.ipynb"))
        assert set(params) <= set(declared), (stem, set(params) - set(declared))
        if stem != "05_finetuning":
            assert params["self_trained"] == "lab" and ast.literal_eval(declared["self_trained"]["default"]) == "book"
    assert lab.mlm_steps < training.SelfTrainedPair.of("book").mlm_steps
    with pytest.raises(ValueError, match="choose one"):
        book.run_all(Path("unused"), smoke=True, lab=True)


@pytest.mark.parametrize("preset", ["smoke", "lab"])
def test_presets_pass_the_checks_a_readers_parameters_pass(preset, tmp_path, monkeypatch):
    """The lab and smoke presets are checked as a reader's overrides are (declared, of the chapter's type, None
    only where taken), by run_all before any chapter runs: a wrong preset value stops the run at once."""
    presets = book.SMOKE_PARAMETERS if preset == "smoke" else book.LAB_PARAMETERS
    for stem in presets:
        book.check_chapter_parameters(chapter_files.NOTEBOOK_DIR / f"{stem}.ipynb", book.preset_parameters(stem, **{preset: True}))
    ran = []
    monkeypatch.setattr(book, "run_notebook", lambda *a, **k: ran.append(a))
    broken = {**presets["06_regression"], "n_sentences": "30"}  # a string where the chapter takes an int
    monkeypatch.setitem(presets, "06_regression", broken)
    monkeypatch.setenv("SENTENCE_RESULTS_DIR", str(tmp_path))
    with pytest.raises(ValueError, match="n_sentences"):
        book.run_all(tmp_path, only=["05", "06"], **{preset: True})
    assert not ran  # chapter 05 did not run before the check refused chapter 06's value
    monkeypatch.setitem(presets, "06_regression", {**presets["06_regression"], "n_sentences": 30, "ig_nsteps": 8})
    with pytest.raises(ValueError, match="ig_nsteps"):
        book.run_all(tmp_path, only=["06"], **{preset: True})


def test_the_lab_time_is_read_from_its_record(tmp_path):
    assert "benchmarks/lab_path.py" in pages.lab_time_line(tmp_path / "missing.json")
    record = tmp_path / "lab.json"
    record.write_text(json.dumps({"machine": "2 CPU cores", "date": "2026-12-06", "commit": "abc", "total_seconds": 275.4,
                                  "seconds": {"05_finetuning": 100.0, "06_regression": 150.2}, "output_mb": 1.2}))
    line = pages.lab_time_line(record)
    assert "4 min 35 s" in line and "06_regression (150 s)" in line
    # a bf16 run says so, and what a CPU without native bf16 units gets (the fp32 run of the same record)
    record.write_text(json.dumps({"machine": "2 CPU cores", "date": "2026-12-06", "commit": "abc", "total_seconds": 280.2,
                                  "precision": "bf16", "bf16_units": ["avx512_bf16"], "output_mb": 1.7,
                                  "seconds": {"05_finetuning": 121.2, "06_regression": 70.1},
                                  "runs": {"fp32": {"total_seconds": 401.0}}}))
    line = pages.lab_time_line(record)
    assert "4 min 40 s in all in bf16, which this CPU computes natively (avx512_bf16)" in line
    assert "without native bf16 units the lab computes in fp32" in line and "6 min 41 s" in line


def test_the_lab_path_computes_in_bf16_only_where_the_cpu_has_it_and_the_reader_did_not_choose(tmp_path, monkeypatch):
    """``run --lab`` gives its kernels ``SENTENCE_PRECISION=auto`` (bf16 on native units, else fp32) unless the reader
    set the variable, and leaves the variable as it found it; the book's own run sets nothing."""
    import os

    seen = []
    monkeypatch.setattr(book, "run_notebook", lambda *a, **k: seen.append(os.environ.get(book.PRECISION_ENV)) or
                        tmp_path / "x.ipynb")
    monkeypatch.setattr(book, "mark_lab_run", lambda path: None)
    monkeypatch.setenv("SENTENCE_RESULTS_DIR", str(tmp_path))
    monkeypatch.delenv(book.PRECISION_ENV, raising=False)
    book.run_all(tmp_path, only=["06"], lab=True)
    assert seen == ["auto"] and book.PRECISION_ENV not in os.environ
    book.run_all(tmp_path, only=["06"], smoke=True)
    assert seen == ["auto", None]
    monkeypatch.setenv(book.PRECISION_ENV, "fp32")
    book.run_all(tmp_path, only=["06"], lab=True)
    assert seen == ["auto", None, "fp32"] and os.environ[book.PRECISION_ENV] == "fp32"
    from helpers import precision

    assert book.PRECISION_ENV == precision.ENV  # named twice only because the runner sits below the measure layer


def test_the_lab_presets_rows_are_rows_of_the_lab_roster(monkeypatch):
    """The lab's ``baseline_rows`` name rows its roster has (a name that is not one is refused, naming the
    parameter and the rows there are), and the lab leaves all-mpnet-base-v2 out even where it is installed."""
    from helpers import encoders
    from helpers.encoders import roster_rows
    from helpers.roster import rows_named

    monkeypatch.setattr(encoders, "random_init_copy", lambda name: f"{name}-random")  # no model is loaded

    pair = {"mlm": "mlm-folder", "simcse": "simcse-folder", "simcse_pooling": "mean"}
    for stem in ("06_regression", "08_other_datasets"):
        params = book.LAB_PARAMETERS[stem]
        rows = roster_rows("offline", self_trained=pair, include_mpnet=params["include_mpnet"])
        assert "all-mpnet-base-v2" not in [r["row"] for r in rows]
    chosen = rows_named(rows, book.LAB_PARAMETERS["06_regression"]["baseline_rows"])
    assert [r["row"] for r in chosen] == book.LAB_PARAMETERS["06_regression"]["baseline_rows"]
    with pytest.raises(ValueError, match=r"baseline_rows: 'self-trained MLM \(mean\)' is not a row.*'self-trained MLM \(MEAN\)'"):
        rows_named(rows, ["self-trained MLM (mean)"])
    with pytest.raises(ValueError, match="list of row names"):
        rows_named(rows, "all-MiniLM-L6-v2")


def test_teaching_page_reads_prerequisites_and_times(tmp_path, monkeypatch):
    """The teachers' page is generated: prerequisites from each overview, reading time from the word count,
    running time from the executed copy, the summary from the closing chapter's claims."""
    import nbformat
    import pandas as pd

    assert pages.chapter_prerequisites(chapter_files.NOTEBOOK_DIR / "04_shap.ipynb") == ["03_integrated_gradients"]
    assert "06_regression" in pages.chapter_prerequisites(chapter_files.NOTEBOOK_DIR / "08_other_datasets.ipynb")
    levels = pages.dependency_levels({"a": [], "b": ["a"], "c": ["a", "b"], "d": []})
    assert levels == [["a", "d"], ["b"], ["c"]]
    with pytest.raises(ValueError, match="circle"):
        pages.dependency_levels({"a": ["b"], "b": ["a"]})
    monkeypatch.setenv("SENTENCE_RESULTS_DIR", str(tmp_path / "results"))
    executed = tmp_path / "book"
    executed.mkdir()
    nb = nbformat.read(chapter_files.NOTEBOOK_DIR / "02_information.ipynb", as_version=4)
    nb.metadata["papermill"] = {"duration": 90.0}
    nbformat.write(nb, executed / "02_information.ipynb")
    (tmp_path / "results" / "reproduced").mkdir(parents=True)
    pd.DataFrame([{"claim": "A claim | with a bar", "chapter": "06_regression", "verdict": "partly reproduced"}]).to_csv(
        tmp_path / "results" / "reproduced" / "claims.csv", index=False)
    # the recorded full build: refused when a chapter is missing, shown beside this build's times otherwise
    monkeypatch.setattr(builds, "REFERENCE_TIMES", tmp_path / "reference.json")
    times = {p.stem: 60.0 * (i + 1) for i, p in enumerate(book.notebooks())}
    (tmp_path / "partial.json").write_text(json.dumps({"01_theory": 1.0}))
    with pytest.raises(ValueError, match="no time for 02_information"):
        builds.record_times(tmp_path / "partial.json")
    (tmp_path / "times.json").write_text(json.dumps(times))
    with pytest.raises(ValueError, match="no fresh build to keep the warm one beside"):
        builds.record_times(tmp_path / "times.json", warm=True)
    builds.record_times(tmp_path / "times.json", note="a test")
    fresh = json.loads((tmp_path / "reference.json").read_text())
    builds.record_times(tmp_path / "times.json", note="warm", warm=True)  # a rebuild: beside, not instead
    both = json.loads((tmp_path / "reference.json").read_text())
    assert {k: v for k, v in both.items() if k != "warm"} == fresh
    assert both["warm"]["total_seconds"] == sum(times.values()) and both["warm"]["note"] == "warm"
    out = tmp_path / "teaching.md"
    pages.teaching_page(executed, out)
    text = out.read_text()
    row = next(line for line in text.splitlines() if "<02_information>` |" in line and line.startswith("| {doc}"))
    assert f"| {pages.reading_minutes(chapter_files.NOTEBOOK_DIR / '02_information.ipynb')} | 1.5 | 2.0 |" in row
    assert "a test" in text
    assert "not executed" in next(l for l in text.splitlines() if l.startswith("| {doc}") and "<01_theory>` |" in l)
    assert "A claim \\| with a bar" in text and "**partly reproduced**" in text
    assert pages.LAB_COMMAND in text and text.count("**Session") == len(pages.SESSIONS)


def test_self_trained_settings_refuse_unknown_names():
    from helpers import training

    with pytest.raises(ValueError, match="not a preset"):
        training.SelfTrainedPair.of("tiny")
    with pytest.raises(ValueError, match=r"unknown settings \['mlm_step'\]"):
        training.SelfTrainedPair.of({"mlm_step": 10})
    with pytest.raises(ValueError, match="mlm_hidden=0"):
        training.SelfTrainedPair.of({"mlm_hidden": 0})
    assert training.SelfTrainedPair.of({"mlm_steps": 10}).mlm_hidden == 256


def test_widgets_are_stripped_from_executed_copies(tmp_path):
    import nbformat

    from helpers.chapter_files import WIDGET_MIME, strip_widgets

    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("w")
    cell.outputs = [nbformat.v4.new_output("display_data", data={WIDGET_MIME: {"model_id": "x"},
                                                                  "text/plain": "Explorer(...)"})]
    nb.cells = [cell, nbformat.v4.new_code_cell("1")]
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    path = tmp_path / "n.ipynb"
    nbformat.write(nb, path)
    assert chapter_files.strip_widgets(path) == 1
    out = nbformat.read(path, as_version=4)
    assert "widgets" not in out.metadata and out.cells[0].outputs[0]["data"] == {"text/plain": "Explorer(...)"}
    assert chapter_files.strip_widgets(path) == 0  # idempotent


def test_compare_results_finds_a_changed_cell_and_ignores_timings(tmp_path, capsys):
    import pandas as pd

    before, after = tmp_path / "before", tmp_path / "after"
    for root in (before, after):
        (root / "ch").mkdir(parents=True)
    table = pd.DataFrame({"model": ["a", "b"], "r2": [0.1, 0.2], "seconds": [1.0, 2.0]})
    table.to_csv(before / "ch" / "t.csv", index=False)
    table.assign(seconds=[5.0, 6.0]).to_csv(after / "ch" / "t.csv", index=False)
    (before / "ch" / "s.json").write_text(json.dumps({"slope": 1.5, "minutes": 3}))
    (after / "ch" / "s.json").write_text(json.dumps({"slope": 1.5, "minutes": 4}))
    report = builds.compare_results(before, after).set_index("file")
    assert (report["status"] == "same").all() and report.loc["ch/t.csv", "timing_columns"] == "seconds"
    assert book.main(["compare-results", str(before), str(after)]) == 0
    table.assign(r2=[0.1, 0.25]).to_csv(after / "ch" / "t.csv", index=False)
    (after / "ch" / "new.csv").write_text("x\n1\n")
    report = builds.compare_results(before, after).set_index("file")
    assert report.loc["ch/t.csv", "status"] == "differs" and report.loc["ch/t.csv", "cells_differ"] == 1
    assert report.loc["ch/t.csv", "max_abs_diff"] == pytest.approx(0.05)
    assert report.loc["ch/new.csv", "status"] == "only after"
    assert book.main(["compare-results", str(before), str(after)]) == 1
    assert book.main(["compare-results", str(before), str(tmp_path / "nowhere")]) == 2


def test_a_lab_run_says_its_numbers_are_the_lab_runs_not_the_books(tmp_path):
    import shutil

    import nbformat

    copy = tmp_path / "06_regression.ipynb"
    shutil.copy(chapter_files.NOTEBOOK_DIR / "06_regression.ipynb", copy)
    book.mark_lab_run(copy)
    book.mark_lab_run(copy)  # once, however often it runs
    cells = nbformat.read(copy, as_version=4).cells
    assert cells[0].source.startswith("# ") and cells[1].source == book.LAB_NOTE
    assert sum(c.source == book.LAB_NOTE for c in cells) == 1
    assert "not the book's verdicts" in book.LAB_NOTE


def test_a_chapter_that_only_looks_for_the_pair_on_disk_does_not_need_the_pretraining():
    """Chapter 13 uses the self-trained pair where chapter 05 left it (``train=False``): it still fits Binder."""
    assert book._calls("a = f(x, g(y), train=False) + f(z)", "f(") == ["x, g(y), train=False", "z"]
    needing = book.chapters_needing_pretraining()
    assert "13_explain_your_model" not in needing and "05_finetuning" in needing and "10_pair_similarity" in needing


def test_compare_within_intervals_flags_a_value_outside_and_a_changed_verdict(tmp_path):
    import pandas as pd

    before, after = tmp_path / "before" / "t", tmp_path / "after" / "t"
    before.mkdir(parents=True)
    after.mkdir(parents=True)
    base = pd.DataFrame({"model": ["a", "b", "c"], "r2": [0.30, 0.50, 0.05], "r2_low": [0.20, 0.52, 0.06],
                         "r2_high": [0.40, 0.60, float("nan")], "verdict": ["reproduced", "not reproduced", "n/a"]})
    base.to_csv(before / "table.csv", index=False)
    # inside, its own estimate (outside its percentile interval), and a row without an interval: all fine
    base.assign(r2=[0.39, 0.50, 0.05]).to_csv(after / "table.csv", index=False)
    ok = builds.compare_within_intervals(tmp_path / "before", tmp_path / "after")
    assert ok.to_dict("records") == [{"file": "t/table.csv", "checked": 2, "outside": 0, "worst": "",
                                      "findings_differ": "", "unmatched": ""}]
    base.assign(r2=[0.45, 0.50, 0.90], verdict=["partly reproduced", "not reproduced", "n/a"]).to_csv(
        after / "table.csv", index=False)
    bad = builds.compare_within_intervals(tmp_path / "before", tmp_path / "after").iloc[0]
    assert bad["outside"] == 1 and bad["worst"].startswith("r2 row 0 (0.50") and bad["findings_differ"] == "verdict"
    # a table that lost a row, lost a column or is missing cannot be checked: it is named, never passed in silence
    base.iloc[:2].to_csv(after / "table.csv", index=False)
    (before / "other.csv").write_bytes((before / "table.csv").read_bytes())
    base.to_csv(before / "gone.csv", index=False)
    base.drop(columns="r2_high").to_csv(after / "other.csv", index=False)
    unmatched = builds.compare_within_intervals(tmp_path / "before", tmp_path / "after").set_index("file")["unmatched"]
    assert unmatched.to_dict() == {"t/gone.csv": "missing in after", "t/other.csv": "columns differ: ['r2_high']",
                                   "t/table.csv": "3 rows before, 2 after"}
