"""The explanation's pictures and the calls issue 41 added: the pair matrix, models side by side, many texts at
once, names, the gap rule, the summary repr, and screenshots of every view in headless Chromium.

Each test reads the numbers back from what a reader gets (the HTML's cells, the JSON lines, the DOM a browser
builds) and compares them with the explanation's own tables.
"""
import json
import re
import shutil
import subprocess
import sys
import warnings
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers import explain as ex
from helpers.encoders import resolve_model_path
from helpers.views import GAP_THRESHOLD

TEXT = "A man is playing a guitar on the stage."
OTHER = "A person plays an instrument."


@pytest.fixture(scope="module")
def pair():
    return ex.explain("tiny-random-bert", TEXT, OTHER, n_steps=8, cache=False)


class _Cells(HTMLParser):
    """Every SVG group of the pair matrix with its data attributes."""

    def __init__(self):
        super().__init__()
        self.cells, self.totals = [], []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "g" and a.get("class") == "cell":
            self.cells.append((int(a["data-row"]), int(a["data-col"]), float(a["data-value"])))
        if tag == "g" and a.get("class") == "total":
            self.totals.append((a["data-side"], int(a["data-index"]), float(a["data-total"])))


def test_the_pair_html_holds_the_matrix_its_cells_and_margins_read_back(pair):
    page = pair.to_html()
    parsed = _Cells()
    parsed.feed(page)
    m = pair.matrix()
    assert m.shape == (len(pair.marks[0]), len(pair.marks[1])) == (10, 6)
    got = np.full(m.shape, np.nan)
    for i, j, v in parsed.cells:
        got[i, j] = v
    np.testing.assert_allclose(got, m.to_numpy(), rtol=1e-5, atol=1e-9)  # every cell, each the table's contribution
    a = [v for side, _, v in sorted(parsed.totals) if side == "a"]
    b = [v for side, _, v in sorted(parsed.totals) if side == "b"]
    np.testing.assert_allclose(a, pair.marks[0]["contribution"], rtol=1e-5, atol=1e-9)  # margins: per-word totals
    np.testing.assert_allclose(b, pair.marks[1]["contribution"], rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(a, m.sum(axis=1), rtol=1e-5, atol=1e-9)
    assert "<details>" in page and "every word pair" in page  # the long table stays, collapsed
    assert not re.search(r"""(src|href)=["']?https?://(?!contrastive-word-weights)""", page)


def test_the_score_line_is_an_equation_only_when_the_parts_add_up(pair):
    from helpers.attribution import IG
    from helpers.attribution.pairs import pair_weights

    closed = ex.explain("all-MiniLM-L6-v2", TEXT, OTHER)  # n_steps not given: the ladder
    encoder = closed._encoder
    first = pair_weights(encoder, TEXT, OTHER, IG(n_steps=ex.PAIR_STEPS[0]), similarity="cosine")
    assert first.attrs["completeness_gap"] > GAP_THRESHOLD  # 20 points do not close this pair ...
    assert closed.numbers["n_steps"] == ex.PAIR_STEPS[1] and closed.numbers["closes"]  # ... so it went on to 50
    assert closed.numbers["completeness_gap"] <= GAP_THRESHOLD
    assert f"similarity {closed.numbers['score']:.4f} = word pairs" in closed.to_text(colour=False, width=400)
    assert "quadrature raised" in " ".join(closed.notes)
    with pytest.warns(UserWarning, match="miss the score by"):
        loose = ex.explain("all-MiniLM-L6-v2", TEXT, OTHER, n_steps=2)  # the user's own, too few points
    assert not loose.numbers["closes"] and loose.numbers["n_steps"] == 2
    for view in (loose.to_text(colour=False, width=400), loose.to_html()):
        assert "= word pairs" not in view and "do NOT add up" in view
    assert "do not add up" in repr(loose)


def test_the_reference_term_is_explained_with_its_numbers_and_a_link(pair):
    page = pair.to_html()
    ref = pair.numbers["reference"]
    assert f"The reference term ({ref:+.4f})" in page and "baseline inputs" in page
    assert "10_pair_similarity.html#equation-eq-pair" in page
    assert f"({pair.numbers['score'] - ref:+.4f} here)" in page


def test_models_side_by_side_on_a_text_and_on_a_pair():
    c = ex.explain(["tiny-random-bert", "all-MiniLM-L6-v2"], TEXT, cache=False)
    a = ex.explain("tiny-random-bert", TEXT, cache=False)
    b = ex.explain("all-MiniLM-L6-v2", TEXT, cache=False)
    assert c.models == ["tiny-random-bert", "all-MiniLM-L6-v2"]
    np.testing.assert_allclose(c.table["weight_a"], a.table["weight"])
    np.testing.assert_allclose(c.table["weight_b"], b.table["weight"])
    np.testing.assert_allclose(c.table["change"], b.table["weight"] - a.table["weight"])
    assert "guitar" in repr(c) and "tiny-random-bert" in c.to_html()
    cp = ex.explain(["tiny-random-bert", "all-MiniLM-L6-v2"], TEXT, OTHER, n_steps=8, cache=False)
    mats = cp.matrices()
    assert list(mats) == ["tiny-random-bert", "all-MiniLM-L6-v2", "change"]
    np.testing.assert_allclose(mats["change"], mats["all-MiniLM-L6-v2"] - mats["tiny-random-bert"])
    assert cp.to_html().count('class="pair-matrix"') == 3  # both matrices and their difference
    fig = cp.plot()
    assert len(fig.axes) == 9  # three panels, each with its two margins
    with pytest.raises(ValueError, match="two models side by side; got 3"):
        ex.explain(["tiny-random-bert"] * 3, TEXT)


def test_models_with_other_word_units_are_refused_naming_them():
    text = "Don't panic, it's only a test."
    with pytest.raises(ValueError, match="split the text into different words"):
        ex.explain(["tiny-random-bert", "tiny-random-roberta"], text, n_steps=4)


def test_a_100_text_batch_equals_the_single_calls_and_shows_a_progress_bar(capsys):
    words = ["guitar", "stage", "dog", "river", "market", "rain", "piano", "train", "garden", "storm"]
    texts = [f"The {w} near the {v} was {i} times louder." for i, (w, v) in
             enumerate((w, v) for w in words for v in reversed(words))]
    assert len(texts) == 100
    many = ex.explain("tiny-random-bert", texts, n_steps=4, projections=4, cache=False, show_progress_bar=True)
    assert "100/100" in capsys.readouterr().err
    assert len(many) == 100 and list(many.table["text_id"].unique()) == list(range(100))
    for i in (0, 37, 99):  # rows equal the single-text calls (computed afresh, no cache)
        single = ex.explain("tiny-random-bert", texts[i], n_steps=4, projections=4, cache=False)
        rows = many.table[many.table["text_id"] == i].drop(columns="text_id").reset_index(drop=True)
        pd.testing.assert_frame_equal(rows, single.table)
    assert "100 texts" in repr(many)
    with pytest.raises(ValueError, match=r"text\[2\] must be a non-empty string"):
        ex.explain("tiny-random-bert", ["a b", "c d", " "])


def test_the_cli_round_trips_a_file_of_texts_to_json_lines(tmp_path):
    texts = ["A man is playing a guitar.", "007 is a number, 1e5 too.", "A dog runs in the park."]
    source = tmp_path / "texts.txt"
    source.write_text("\n".join(texts[:2]) + "\n\n" + texts[2] + "\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    run = subprocess.run([sys.executable, "-m", "helpers", "explain", "--model", "tiny-random-bert", "--texts-file",
                          str(source), "--jsonl", str(out), "--no-colour"], capture_output=True, text=True, check=True)
    assert len(out.read_text().splitlines()) == 3 and "3/3" in run.stderr
    assert "1 blank line of" in run.stderr and "counts the texts, not the file's lines" in run.stderr
    back = ex.ExplanationSet.read_jsonl(out)
    direct = ex.explain("tiny-random-bert", texts)
    pd.testing.assert_frame_equal(back.table, direct.table)
    assert back.texts == texts and "007" in set(back.table["word"])
    piped = subprocess.run([sys.executable, "-m", "helpers", "explain", "--model", "tiny-random-bert", "--texts-file",
                            "-", "--jsonl", str(tmp_path / "piped.jsonl")], input="\n".join(texts),
                           capture_output=True, text=True, check=True)
    assert piped.returncode == 0
    pd.testing.assert_frame_equal(ex.ExplanationSet.read_jsonl(tmp_path / "piped.jsonl").table, direct.table)
    lines = out.read_text().splitlines()
    lines[1] = lines[1].replace('"007"', '"008"')
    (tmp_path / "edited.jsonl").write_text("\n".join(lines))
    with pytest.raises(ValueError, match=r"edited\.jsonl, line 2: its content does not match the sha256"):
        ex.ExplanationSet.read_jsonl(tmp_path / "edited.jsonl")


def test_no_view_shows_a_file_system_path_as_the_models_name(tmp_path):
    from sentence_transformers import SentenceTransformer

    folder = resolve_model_path("all-MiniLM-L6-v2")
    assert "site-packages" in folder  # the offline package's folder ...
    for model in (folder, SentenceTransformer(folder, device="cpu")):
        e = ex.explain(model, "A man is playing a guitar.")
        assert e.model == "sentence-transformers/all-MiniLM-L6-v2"  # ... is named for what it stands for
        for view in (e.to_text(colour=False), e.to_html(), repr(e), json.dumps(e.to_dict())):
            assert "site-packages" not in view and folder not in view
    run = subprocess.run([sys.executable, "-m", "helpers", "explain", "--model", folder, "A dog runs.",
                          "--no-colour"], capture_output=True, text=True, check=True)
    assert "sentence-transformers/all-MiniLM-L6-v2" in run.stdout and "site-packages" not in run.stdout


def test_a_view_or_file_written_where_it_cannot_go_names_the_place_and_leaves_nothing_behind(tmp_path, pair):
    """Saving to a folder, or into a folder that does not exist, was an OSError naming a hidden temporary file and
    left that file behind; ``to_html(path, full=False)`` returned the fragment and wrote nothing."""
    many = ex.explain("tiny-random-bert", ["a man", "a dog"], n_steps=4, cache=False)
    folder = tmp_path / "out"
    folder.mkdir()
    for write in (pair.save, pair.to_html, many.to_jsonl):
        with pytest.raises(IsADirectoryError, match=f"{folder} is a folder: name the"):
            write(folder)
        with pytest.raises(FileNotFoundError, match="no such folder .* create it first"):
            write(tmp_path / "missing" / "x.out")
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["out"]  # no temporary file left
    fragment = pair.to_html(folder / "fragment.html", full=False)
    assert (folder / "fragment.html").read_text(encoding="utf-8") == fragment and "<html" not in fragment


def test_the_repr_is_a_summary_not_the_fields(pair):
    one = ex.explain("tiny-random-bert", TEXT, n_steps=4)
    for e, must in ((one, ["tiny-random-bert", "one text", "completeness gap", "top words"]),
                    (pair, ["tiny-random-bert", "a pair", f"{pair.numbers['score']:.4f}", "top pairs"])):
        text = repr(e)
        assert all(m in text for m in must), text
        assert "table=" not in text and "settings=" not in text and len(text) < 400


# ------------------------------------------------------------------------------------------ headless Chromium
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def _browse(page: Path, out: Path) -> tuple[str, list]:
    """The DOM Chromium builds from a file, a screenshot, and every request the page itself made (requests whose
    network isolation key is the file's: the browser's own background requests are not the page's)."""
    flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars",
             "--disable-background-networking", "--disable-component-update"]
    net = out.with_suffix(".netlog.json")
    dom = subprocess.run(flags + [f"--log-net-log={net}", "--dump-dom", page.as_uri()], capture_output=True,
                         text=True, timeout=120).stdout
    subprocess.run(flags + [f"--screenshot={out}", "--window-size=1200,1000", page.as_uri()], capture_output=True,
                   timeout=120)
    requests = [e["params"]["url"] for e in json.loads(net.read_text())["events"]
                if "file://" in str(e.get("params", {}).get("network_isolation_key", ""))
                and not str(e["params"].get("url", "file:")).startswith("file:")]
    return dom, requests


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium on this machine")
def test_every_view_in_headless_chromium_shows_every_word_and_the_name_and_loads_nothing(tmp_path, pair):
    from helpers.encoders import display_name

    one = ex.explain("tiny-random-bert", TEXT, n_steps=4)
    views = {"single": one, "pair": pair,
             "side-by-side": ex.explain(["tiny-random-bert", "all-MiniLM-L6-v2"], TEXT, n_steps=4),
             "side-by-side-pair": ex.explain(["tiny-random-bert", "all-MiniLM-L6-v2"], TEXT, OTHER, n_steps=8),
             "batch": ex.explain("tiny-random-bert", [TEXT, OTHER, "Stocks fell sharply today."], n_steps=4)}
    for name, view in views.items():
        page = tmp_path / f"{name}.html"
        view.to_html(page)
        shot = tmp_path / f"{name}.png"
        dom, requests = _browse(page, shot)
        assert requests == [], (name, requests)
        words = {w for t in view.texts for w in re.findall(r"\w+", t)}
        missing = [w for w in words if f">{w.lower()}<" not in dom.lower()]
        assert not missing, (name, missing)
        for model in (view.models if hasattr(view, "models") else [view.model]):
            assert model in dom and model == display_name(model)
        assert shot.stat().st_size > 10_000 and shot.read_bytes()[:4] == b"\x89PNG"
    hostile = tmp_path / "hostile.html"  # the check itself can fail: a page that loads an image is caught
    hostile.write_text(one.to_html().replace("</body>", "<img src='https://example.com/x.png'></body>"))
    assert _browse(hostile, tmp_path / "hostile.png")[1] == ["https://example.com/x.png"]
