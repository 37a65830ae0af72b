"""The results tables are declared once (helpers/results.py): what the chapters write is what is declared, and
nothing else names a results file by a literal string."""
import ast
import csv
import json
import re
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import book, results
from helpers.config import CHAPTER_RESULTS, ROOT


def _columns(path: Path) -> list[str]:
    if path.suffix == ".json":
        return list(json.loads(path.read_text()))
    with path.open(newline="") as f:
        return next(csv.reader(f), [])


def test_every_table_the_smoke_run_wrote_is_declared_with_its_columns(smoke_book):
    """Every file under the smoke run's results/ is a declared table (by folder and name) with the declared
    columns: exactly those, in any order, or at least those where the run names further ones."""
    written = sorted(p for p in smoke_book["results"].rglob("*") if p.is_file())
    assert written, "the smoke run wrote no table"
    for path in written:
        folder = path.parent.name
        table = results.RUNNER.run_times if (folder, path.name) == ("book", "run_times.json") else \
            results.table(folder, path.name)  # an undeclared file raises, naming what the folder declares
        found = [c for c in _columns(path) if c != ""]
        expected = [c for c in table.columns if c != ""]
        assert set(expected) <= set(found), (path, sorted(set(expected) - set(found)))
        if not table.more_columns:
            assert set(found) == set(expected), (path, sorted(set(found) - set(expected)))
    every_chapter = {CHAPTER_RESULTS[s] for s in CHAPTER_RESULTS}
    assert every_chapter <= {p.parent.name for p in written}, every_chapter - {p.parent.name for p in written}


def _python_sources():
    """(where, source) of every helpers module but the registry, and every code cell of every chapter."""
    for path in sorted((ROOT / "helpers").rglob("*.py")):
        if path.name != "results.py":
            yield str(path.relative_to(ROOT)), path.read_text()
    import nbformat

    for path in book.notebooks():
        nb = nbformat.read(path, as_version=4)
        for i, cell in enumerate(nb.cells):
            if cell.cell_type == "code":
                source = "\n".join(line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!")))
                yield f"{path.name} cell {i}", source


def _literal_results_names(source: str) -> list[str]:
    """String literals that name a declared results file (``"contrasts.csv"``, ``"results/ig/baselines.csv"``)."""
    files = {f.split("{")[0] if "{" not in f else None for names in results.declared_files().values() for f in names}
    files.discard(None)
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value
            if text.rsplit("/", 1)[-1] in files or re.search(r"_words\.csv$", text):
                found.append(text)
    return found


def test_no_chapter_or_module_names_a_results_file_by_a_literal():
    """A chapter writes and reads its tables through helpers.results; no module or chapter cell types a results
    file's name (``"contrasts.csv"``), calls ``to_csv`` or ``write_text`` itself, or reads by folder and name."""
    offenders = []
    for where, source in _python_sources():
        for text in _literal_results_names(source):
            offenders.append(f"{where}: names {text!r}")
        if " cell " in where and re.search(r"\.to_csv\(|\.write_text\(", source):
            offenders.append(f"{where}: writes a file itself")
        if "load_result(" in source:
            offenders.append(f"{where}: reads a table by folder and name")
    assert not offenders, "\n".join(offenders)


def test_the_literal_check_finds_a_typed_name():
    """The check above can fail: a typed name, a path with a folder and chapter 02's pattern are each caught."""
    assert _literal_results_names('x = load("contrasts.csv")') == ["contrasts.csv"]
    assert _literal_results_names('p = "results/finetune/stand_in.csv"') == ["results/finetune/stand_in.csv"]
    assert _literal_results_names('p = f"{name}_validation_words.csv"') == ["_validation_words.csv"]
    assert _literal_results_names('x = "contrasts"') == []


def _table_by_table_saves(source: str) -> list[str]:
    """Calls that write one declared table of a chapter (``results.IG.completeness.save(df)``), not a Result."""
    chapters = {name for name in results.__all__ if isinstance(getattr(results, name), results.Chapter)}
    found = []
    for node in ast.walk(ast.parse(source)):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "save"
                and isinstance(node.func.value, ast.Attribute) and isinstance(node.func.value.value, ast.Attribute)
                and node.func.value.value.attr in chapters):
            found.append(ast.unparse(node.func))
    return found


#: Chapter 02 writes one word table per corpus it reads (``{dataset}_{split}_words``): a table named by fields,
#: which a Result (one table per declared name) does not hold.
PER_CORPUS = {"02_information.ipynb"}


def test_every_chapter_writes_its_tables_through_one_result():
    """A chapter's tables go through ``results.Result(...)`` and one ``save()``: each checked against its declaration
    when the Result is made, before any is written; no chapter saves table by table."""
    offenders = [f"{where}: {call}" for where, source in _python_sources() if " cell " in where
                 and where.split(" cell ")[0] not in PER_CORPUS for call in _table_by_table_saves(source)]
    assert not offenders, "write these through results.Result(...).save():\n" + "\n".join(offenders)
    assert _table_by_table_saves("results.IG.completeness.save(df)") == ["results.IG.completeness.save"]
    assert _table_by_table_saves("results.Result(results.IG, completeness=df).save()") == []


def _folder(tmp_path, monkeypatch):
    monkeypatch.setenv("SENTENCE_RESULTS_DIR", str(tmp_path))
    return tmp_path


def test_save_refuses_columns_that_are_not_the_declared_ones(tmp_path, monkeypatch):
    _folder(tmp_path, monkeypatch)
    t = results.IG.completeness
    good = pd.DataFrame({"quadrature": ["gausslegendre"], "n_steps": [20], "max_gap": [0.01], "mean_gap": [0.005]})
    path = t.save(good)
    assert path == tmp_path / "ig" / "completeness.csv"
    plain = tmp_path / "plain.csv"
    plain.write_text("x")  # a table is as readable as any file this process writes (mkstemp's are private)
    assert path.stat().st_mode & 0o777 == plain.stat().st_mode & 0o777
    with pytest.raises(ValueError, match=r"ig/completeness is named by no field; got \['dataset'\]"):
        t.save(good, dataset="stsb")
    pd.testing.assert_frame_equal(t.read(), good)
    with pytest.raises(ValueError, match=r"ig/completeness .*lacks \['mean_gap'\]"):
        t.save(good.drop(columns="mean_gap"))
    with pytest.raises(ValueError, match=r"has \['extra'\], which are not declared"):
        t.save(good.assign(extra=1))
    # where the run names further columns (a model per column), those are allowed; the declared ones are not optional
    figure3 = results.WORD_WEIGHTS.figure3
    row = {c: [1] for c in figure3.columns}
    figure3.save(pd.DataFrame({**row, "my-model": [1.0]}))
    with pytest.raises(ValueError, match="lacks"):
        figure3.save(pd.DataFrame({"my-model": [1.0]}))
    # a table written with its index declares the index's name first
    changes = results.WORD_WEIGHTS.word_changes
    frame = pd.DataFrame({c: [0.5] for c in changes.columns[1:]}, index=pd.Index(["dog"], name="word"))
    changes.save(frame)
    assert list(changes.read().columns) == list(changes.columns)
    with pytest.raises(ValueError, match="lacks"):
        changes.save(frame.reset_index(drop=True))


def test_a_failed_save_leaves_the_table_that_was_there(tmp_path, monkeypatch):
    """Writing goes through a temporary file: a crash half-way leaves the old table whole and no stray file."""
    _folder(tmp_path, monkeypatch)
    t = results.IG.sketch_error
    old = pd.DataFrame({"projections": [8], "seed": [0], "spearman": [0.9], "median_rel_error": [0.1]})
    t.save(old)

    class Crashing(pd.DataFrame):
        def to_csv(self, out, **kwargs):
            out.write("projections,seed,spear")
            raise OSError("No space left on device")

    with pytest.raises(OSError, match="No space"):
        t.save(Crashing(old.assign(seed=1)))
    pd.testing.assert_frame_equal(t.read(), old)
    assert [p.name for p in (tmp_path / "ig").iterdir()] == ["sketch_error.csv"]


def test_a_table_not_written_names_the_chapter_and_a_file_name_cannot_leave_its_folder(tmp_path, monkeypatch):
    _folder(tmp_path, monkeypatch)
    with pytest.raises(FileNotFoundError, match=r"run chapter 06_regression first .*--only 06"):
        results.REGRESSION.table.read()
    assert results.REGRESSION.table.read_or_none() is None
    assert not (tmp_path / "regression").exists()  # asking for a table creates no folder
    words = results.INFORMATION.words
    frame = pd.DataFrame({c: ["x"] for c in words.columns})
    assert words.save(frame, dataset="stsb", split="validation").name == "stsb_validation_words.csv"
    assert results.table("information", "stsb_validation_words.csv") is words
    for bad in ({"dataset": "../../etc", "split": "x"}, {"dataset": "a/../../etc", "split": "x"},
                {"dataset": "a\\..\\b", "split": "x"}, {"dataset": ".hidden", "split": "x"}):
        with pytest.raises(ValueError, match="outside results/information"):
            words.save(frame, **bad)
    with pytest.raises(ValueError, match=r"named by dataset=, split=; got \['dataset'\]"):
        words.path(dataset="stsb")
    with pytest.raises(ValueError, match=r"results/regression/ has no table 'tabel'; its tables are table, contrasts"):
        results.table("regression", "tabel")
    with pytest.raises(ValueError, match="unknown results folder 'regresion'"):
        results.table("regresion", "table")
    assert not any(p.is_file() for p in Path(tmp_path).parent.glob("etc*"))


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_any_order_of_the_declared_columns_is_accepted_and_any_missing_one_is_named(data):
    """Property over every declared CSV table: the declared columns in any order pass the check; dropping any
    non-empty subset fails naming exactly the dropped columns."""
    tables = [t for c in results.CHAPTERS.values() for t in c.tables().values() if t.kind == "csv" and not t.index]
    t = data.draw(st.sampled_from(tables))
    order = data.draw(st.permutations(list(t.columns)))
    t.check(pd.DataFrame(columns=order))
    dropped = data.draw(st.sets(st.sampled_from(list(t.columns)), min_size=1))
    kept = [c for c in order if c not in dropped]
    with pytest.raises(ValueError) as err:
        t.check(pd.DataFrame(columns=kept))
    named = re.search(r"lacks (\[.*?\])", str(err.value)).group(1)
    assert set(ast.literal_eval(named)) == dropped


def test_every_chapter_that_writes_results_has_its_tables_declared():
    """One entry per chapter folder, each table's folder and chapter filled in from its entry."""
    assert set(results.CHAPTERS) == set(CHAPTER_RESULTS.values())
    for folder, chapter in results.CHAPTERS.items():
        assert chapter.tables(), folder
        for t in chapter.tables().values():
            assert (t.folder, CHAPTER_RESULTS[t.chapter]) == (folder, folder) and t.columns and t.about


def test_a_study_result_checks_its_tables_when_made_and_saves_them_in_one_call(tmp_path, monkeypatch):
    """A chapter's study hands over a Result: a table its chapter does not declare, or one with other columns, is
    refused at once (naming the chapter and the table); save() writes every table where read() finds it."""
    monkeypatch.setenv("SENTENCE_RESULTS_DIR", str(tmp_path))
    chapter = results.FAITHFULNESS
    recovery = pd.DataFrame({c: [1.0] for c in chapter.recovery.columns})
    curves = pd.DataFrame({c: [0] for c in chapter.curves.columns})
    study = results.Result(chapter, recovery=recovery, curves=curves)
    assert study.recovery is recovery and study["curves"] is curves
    with pytest.raises(AttributeError, match="no table 'aopc'.*'curves', 'recovery'"):
        study.aopc
    paths = study.save()
    assert sorted(paths) == ["curves", "recovery"] and chapter.recovery.read().equals(recovery)
    with pytest.raises(ValueError, match=r"11_faithfulness declares the tables .* not \['aopcs'\]"):
        results.Result(chapter, aopcs=recovery)
    with pytest.raises(ValueError, match="faithfulness/recovery.*lacks \\['recovery_low'\\]"):
        results.Result(chapter, recovery=recovery.drop(columns="recovery_low"))
    drawn = results.Result(chapter, recovery=recovery, figures={"weights": {"a model": recovery}})
    assert drawn.figures["weights"]["a model"] is recovery and sorted(drawn.save()) == ["recovery"]
    assert sorted(p.name for p in (tmp_path / "faithfulness").iterdir()) == ["curves.csv", "recovery.csv"]


def test_chapter_07_study_names_a_before_or_after_model_it_was_not_given():
    """word_change_study compares two of its models: a label it was not given is refused before any model loads."""
    from helpers.attribution import IG
    from helpers.word_change_study import word_change_study

    sample = pd.DataFrame({"sentence_id": [0], "text": ["A man is playing a guitar."]})
    with pytest.raises(ValueError, match=r"not in models: \['self-trained SimCSE'\]; models has \['self-trained MLM'\]"):
        word_change_study({"self-trained MLM": "no/such-model"}, sample, pd.DataFrame(), IG())


def test_chapter_06_study_measures_every_mean_row_but_mpnet_under_each_baseline_unless_named():
    """regression_study's baseline rows: by default every MEAN row but all-mpnet-base-v2 (the largest); named rows
    in the roster's order; a name that is not a row is refused, naming the parameter."""
    from helpers.regression_study import baseline_rows_of

    rows = [{"row": "mlm", "pooling": "mean"}, {"row": "cls model", "pooling": "cls"},
            {"row": "all-mpnet-base-v2", "pooling": "mean"}, {"row": "simcse", "pooling": "mean"}]
    assert [r["row"] for r in baseline_rows_of(rows)] == ["mlm", "simcse"]
    assert [r["row"] for r in baseline_rows_of(rows, ["simcse", "cls model"])] == ["cls model", "simcse"]
    with pytest.raises(ValueError, match="baseline_rows: 'simsce' is not a row of this roster"):
        baseline_rows_of(rows, ["simsce"])
