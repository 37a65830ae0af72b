"""The chapters teach: an overview, a verdict, exercises with solutions, no number typed by hand,
equations and glue keys that resolve, and bookkeeping cells hidden from readers."""
import re
from pathlib import Path

import nbformat
import pytest

from helpers import book, chapter_files

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = book.notebooks()

# math, inline code and MyST roles are where numbers may legitimately appear
MATH_BLOCK = re.compile(r"\$\$.*?\$\$", re.S)
MATH_INLINE = re.compile(r"\$[^$\n]+\$")
CODE = re.compile(r"`[^`\n]*`")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)
ROLE = re.compile(r"\{[a-z:]+\}`[^`]*`")
DECIMAL = re.compile(r"\d+(?:\.\d+)?\s?%|(?<![\w.])[-+−]?\d+\.\d+(?!\w|\.\d)")
OPTION = re.compile(r"^:[\w-]+:.*$", re.M)  # a directive's options (:width: 90%)
REFERENCE = re.compile(r"\b(?:[Ss]ection|[Aa]ppendix|Table|Figure|Eq\.)\s+[A-Z]?\d+(?:\.\d+)*")


def typed_numbers(markdown: str) -> list[str]:
    """Decimal numbers and percentages typed into prose: outside math, code, roles and sentences citing a paper.

    Integers (counts, years, chapter numbers) and round percentages of settings (a 95% interval) are prose;
    a measured value has decimals, so every decimal or decimal percentage must come from a glue role.
    """
    found = []
    text = REFERENCE.sub(" ", OPTION.sub(" ", MATH_BLOCK.sub(" ", markdown)))
    for sentence in re.split(r"(?<=[.!?])\s+|\n\n", text):
        if "{cite" in sentence:  # a number quoted from a cited paper
            continue
        stripped = ROLE.sub(" ", CODE.sub(" ", MATH_INLINE.sub(" ", sentence)))
        found += [m for m in DECIMAL.findall(stripped) if not re.fullmatch(r"\d+\s?%", m) or m.strip("% ") not in
                  ("1", "5", "95", "97", "99", "100", "0", "50", "2")]
    return found


def test_typed_number_detector_catches_typed_values():
    assert typed_numbers("R² rose from 0.45 to 0.31.") == ["0.45", "0.31"]
    assert typed_numbers("an error of 0.08% against 2.5%.") == ["0.08%", "2.5%"]
    assert typed_numbers("R² {glue:}`r2` and $\\beta = 0.5$ and `lr = 1e-4` and a 95% interval.") == []
    assert typed_numbers("The paper reports 0.65 {cite}`kurita2023contrastive`.") == []
    assert typed_numbers("About 12% of the words.") == ["12%"]


def _cells(path):
    return nbformat.read(path, as_version=4).cells


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_no_measured_number_is_typed(path):
    problems = [(i, n) for i, c in enumerate(_cells(path)) if c.cell_type == "markdown" for n in typed_numbers(c.source)]
    assert not problems, f"{path.name}: numbers typed into markdown (glue them from a cell): {problems}"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_has_overview_verdict_and_exercises(path):
    cells = _cells(path)
    markdown = "\n".join(c.source for c in cells if c.cell_type == "markdown")
    assert "{admonition} Overview" in cells[0].source, "the first cell opens with an Overview admonition"
    for part in ("**You will learn**", "**Before you start**", "**Cost**"):
        assert part in cells[0].source, f"the overview says {part}"
    if path.stem != "12_what_reproduced":
        found = re.split(r"^## (?:\d+\. )?What we found", markdown, flags=re.M)
        assert len(found) == 2, "one closing 'What we found' section"
        verdict = found[1].split("## Exercises", 1)[0]
        assert glue_keys_used(verdict), "the verdict quotes glued numbers"
    exercises = re.findall(r"```\{exercise\}[^\n]*\n:label: (\S+)", markdown)
    solutions = re.findall(r"```\{solution(?:-start)?\} (\S+)\n:class: dropdown", markdown)
    assert len(exercises) >= 3, f"{path.stem} has {len(exercises)} exercises; at least 3"
    assert sorted(exercises) == sorted(solutions), "every exercise has exactly one collapsed solution"
    starts, ends = markdown.count("{solution-start}"), markdown.count("{solution-end}")
    assert starts == ends


def glue_keys_used(markdown: str) -> set[str]:
    """The glue keys a chapter's markdown shows (roles and directives)."""
    return set(re.findall(r"\{glue(?::\w*)?\}`([^`]+)`", markdown)) | set(re.findall(r"```\{glue(?::\w*)?\} (\S+)", markdown))


def test_equation_labels_resolve_and_are_unique():
    sources = [c.source for p in CHAPTERS for c in _cells(p) if c.cell_type == "markdown"]
    sources += [p.read_text() for p in (ROOT / "book").glob("*.md")]
    text = "\n".join(sources)
    labels = re.findall(r"\$\$ \((eq-[\w-]+)\)", text)
    assert len(labels) == len(set(labels)), "an equation label is defined twice"
    assert len(labels) >= 12
    referenced = set(re.findall(r"\{eq\}`(eq-[\w-]+)`", text))
    assert referenced <= set(labels), f"unknown equation labels: {referenced - set(labels)}"
    for needed in ("eq-ig", "eq-ig-norm", "eq-kl", "eq-self-info", "eq-regression", "eq-bootstrap"):
        assert needed in labels


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_bookkeeping_cells_are_hidden(path):
    for c in _cells(path):
        if c.cell_type != "code":
            continue
        tags = c.metadata.get("tags", [])
        if "parameters" in tags:
            assert "hide-input" in tags, "the parameters cell is collapsed for readers"
        if re.search(r"\.to_csv\(out_dir|write_text\(|print\(\"wrote\"", c.source):
            assert "remove-cell" in tags, f"a cell that writes results is hidden: {c.source[:80]}"


def test_pages_do_not_point_to_developer_notes():
    for path in [*CHAPTERS, *(ROOT / "book").glob("*.md"), ROOT / "README.md", *(ROOT / "helpers").glob("*.py")]:
        text = path.read_text()
        assert "DESIGN.md" not in text, path.name  # docstrings cite the paper and the book's equation labels
    labels = set(re.findall(r"\(eq-[\w-]+\)=|label: (eq-[\w-]+)|\$\$ \((eq-[\w-]+)\)",
                            " ".join(p.read_text() for p in CHAPTERS)))
    defined = {x for group in labels for x in (group if isinstance(group, tuple) else (group,)) if x}
    cited = set(re.findall(r"\b(eq-[a-z][\w-]*)\b", " ".join(p.read_text() for p in (ROOT / "helpers").glob("*.py"))))
    assert defined and cited <= defined, f"docstrings cite equation labels no chapter defines: {cited - defined}"


def test_figure_names_are_unique_and_referenced_names_exist():
    names, refs = [], set()
    for p in CHAPTERS:
        for c in _cells(p):
            fig = c.metadata.get("mystnb", {}).get("figure", {})
            if fig.get("name"):
                names.append(fig["name"])
            if c.cell_type == "markdown":
                names += re.findall(r"```\{figure\}[^\n]*\n:name: (\S+)", c.source)
                refs |= set(re.findall(r"\{numref\}`([^`]+)`", c.source))
    assert len(names) == len(set(names))
    assert refs <= set(names), refs - set(names)
    for svg in ("jensen_sgns", "ig_path", "shap_hierarchy"):
        path = ROOT / "book" / "figures" / f"{svg}.svg"
        assert path.is_file() and path.stat().st_size < 10_000 and "<script" not in path.read_text()


def _notation_rows() -> list[tuple[str, str]]:
    text = (ROOT / "book" / "notation.md").read_text()
    table = text[text.index("| symbol | meaning | where |"):text.index("## Glossary")]
    return [(row.split("|")[1].strip(), row.split("|")[3]) for row in table.splitlines()[2:] if row.startswith("|")]


def test_notation_covers_every_chapter_without_a_symbol_used_twice():
    """One meaning per symbol (the symbols of a row are its $...$ pieces), and every chapter that numbers an
    equation gets at least one row pointing to it."""
    rows = _notation_rows()
    symbols = [s for cell, _ in rows for s in re.findall(r"\$([^$]+)\$", cell)]
    repeated = sorted({s for s in symbols if symbols.count(s) > 1})
    assert not repeated, f"symbols with two rows: {repeated}"
    where = " ".join(w for _, w in rows)
    with_math = [p.stem for p in CHAPTERS if re.search(r"\$\$ \(eq-", "\n".join(  # chapters with numbered equations
        c.source for c in nbformat.read(p, as_version=4).cells if c.cell_type == "markdown"))]
    assert len(with_math) >= 8
    missing = [stem for stem in with_math if f"<{stem}>" not in where]
    assert not missing, f"chapters the notation table never points to: {missing}"


def test_every_citation_resolves():
    """Every {cite} key of the chapters and book pages is an entry of book/references.bib."""
    keys = set(re.findall(r"^@\w+\{([^,]+),", (ROOT / "book" / "references.bib").read_text(), re.M))
    texts = ["\n".join(c.source for c in nbformat.read(p, as_version=4).cells if c.cell_type == "markdown")
             for p in CHAPTERS] + [p.read_text() for p in (ROOT / "book").glob("*.md")]
    cited = {k.strip() for t in texts for group in re.findall(r"\{cite(?::[a-z]+)?\}`([^`]+)`", t)
             for k in group.split(",")}
    assert len(cited) > 20
    assert cited <= keys, f"cited but not in references.bib: {sorted(cited - keys)}"


def _claim_calls(path: Path) -> list[tuple[int, str, list]]:
    """(cell index, the claimed statement, the cell's tags) of every ``check_sentence(...)`` call of a chapter."""
    import ast

    out = []
    for i, cell in enumerate(nbformat.read(path, as_version=4).cells):
        if cell.cell_type != "code" or "check_sentence(" not in cell.source:
            continue
        for node in ast.walk(ast.parse(cell.source)):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "check_sentence":
                out.append((i, ast.literal_eval(node.args[1]), cell.metadata.get("tags", [])))
    return out


def test_directional_sentences_are_checked_where_they_are_written():
    """Every check_sentence(...) check is hidden from the page and quotes, word for word, a sentence of the Markdown just
    before it: the check and the sentence it guards cannot drift apart. Some chapters carry such checks."""
    found = 0
    for path in CHAPTERS:
        cells = nbformat.read(path, as_version=4).cells
        for index, statement, tags in _claim_calls(path):
            found += 1
            assert "remove-cell" in tags, f"{path.name} cell {index}: a sentence check belongs in a remove-cell cell"
            before = " ".join(c.source for c in cells[max(0, index - 3):index] if c.cell_type == "markdown")
            assert " ".join(statement.split()) in " ".join(before.split()), (
                f"{path.name} cell {index}: the checked sentence “{statement}” is not a sentence of the Markdown before it")
    assert found >= 3


def test_a_contradicted_sentence_stops_the_build_and_only_warns_a_reader(tmp_path):
    """The mechanism end to end: a notebook whose sentence its numbers contradict fails the book build (checks
    at 'error', as helpers.book run sets at the chapters' defaults) naming the sentence; a reader's run
    (checks at 'warn') finishes and shows a note instead."""
    from helpers.live import check_sentence, direction

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# T"),
                nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["parameters"]}),
                nbformat.v4.new_markdown_cell("KL is larger in the larger corpus."),
                nbformat.v4.new_code_cell("from helpers.live import check_sentence\ncheck_sentence(x > 2, 'KL is larger in the larger corpus')",
                                          metadata={"tags": ["remove-cell"]})]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "99_claim.ipynb"
    nbformat.write(nb, path)
    with pytest.raises(book.NotebookFailed, match="KL is larger in the larger corpus"):
        book.run_notebook(path, tmp_path / "out", progress=False, checks="error")
    out = book.run_notebook(path, tmp_path / "warned", progress=False, checks="warn")
    shown = str(nbformat.read(out, as_version=4).cells[3].outputs)
    assert "does not hold" in shown
    book.run_notebook(path, tmp_path / "holds", {"x": 3}, progress=False, checks="error")  # true: no error
    assert check_sentence(True, "anything") and direction("d", 2, 1) == "larger" and direction("d", 1, 2) == "smaller"
    assert direction("d", 1.0, 1.005, tolerance=0.01) == "about the same"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_exercises_say_difficulty_and_time_and_solutions_explain_before_code(path):
    """Each exercise opens with its difficulty, time and kind; each solution says in words what it does
    before any code (a solution that is only code teaches nothing a reader can check by thinking)."""
    cells = nbformat.read(path, as_version=4).cells
    for cell in cells:
        for block in re.findall(r"```\{exercise\}[^\n]*\n(.*?)```", cell.source if cell.cell_type == "markdown" else "",
                                re.S):
            assert re.search(r"\*Difficulty [★☆]{3} · about \d+ minutes · [^*]+\*", block), block[:200]
    for i, cell in enumerate(cells):
        if cell.cell_type == "markdown" and cell.source.lstrip().startswith("```{solution-start}"):
            words = re.sub(r"```\{solution-start\}[^\n]*\n(:[\w-]+:[^\n]*\n)*```", "", cell.source).strip()
            assert len(words.split()) >= 8, f"{path.name} cell {i}: the solution starts with code, not words"


@pytest.mark.parametrize("path", book.notebooks(), ids=lambda p: p.stem)
def test_solutions_are_folded_for_jupyterlab_readers(path):
    """In JupyterLab a solution's code shows below its closed dropdown unless the cell is collapsed: every code cell
    between a solution's gates carries JupyterLab's collapsed flags (``make text`` sets them)."""
    nb = nbformat.read(path, as_version=4)
    cells = chapter_files.solution_cells(nb)
    open_ = [nb.cells[i].source.splitlines()[0] for i in cells if nb.cells[i].metadata.get("jupyter") != chapter_files.HIDDEN]
    assert not open_, f"{path.name}: solution code shown in JupyterLab (run make text): {open_}"
