"""Explain your own encoder: one call on a SentenceTransformer object, its folder or its name; one command; a
picture. Every check compares with what the model itself computes or with the book's own functions."""
import io
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers import explain as ex
from helpers.attribution import IG, word_weights
from helpers.encoders import load_encoder, resolve_model_path

ROOT = Path(__file__).resolve().parents[1]
TEXT = "A man is playing a guitar on the stage."
OTHER = "A person plays an instrument."


@pytest.fixture(scope="module")
def folder():
    return str(resolve_model_path("all-MiniLM-L6-v2"))


@pytest.fixture(scope="module")
def st_model(folder):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(folder)


@pytest.fixture(scope="module")
def one(st_model):
    return ex.explain(st_model, TEXT)


def test_one_text_from_object_folder_and_name_equals_word_weights(st_model, folder, one):
    expected = word_weights(load_encoder(folder, normalize="auto"), [TEXT], IG(n_steps=20, projections=16, seed=0), progress=False)
    np.testing.assert_allclose(one.table["weight"], expected["weight"], rtol=1e-5)
    assert list(one.table["word"]) == list(expected["word"])
    for model in (folder, "all-MiniLM-L6-v2"):
        np.testing.assert_allclose(ex.explain(model, TEXT).table["weight"], expected["weight"], rtol=1e-5)
    assert one.settings["normalize"] is True  # the model's Normalize is kept, as model.encode() applies it
    assert any("sketched with 16" in n for n in one.notes)
    exact = ex.explain(st_model, TEXT, exact=True)
    assert exact.settings["projections"] is None and not any("sketched" in n for n in exact.notes)


def test_an_exact_text_defaults_to_the_fast_settings_and_everything_else_to_fp32(st_model, one, monkeypatch):
    """exact=True on a text runs in precision 'auto' with EXACT_CHUNK directions a pass unless told otherwise; the
    sketch and pairs stay fp32 with their own chunk. The chunk each call used is read where the engine gets it."""
    from helpers.precision import resolve

    chunks = []
    engine = IG.token_norms

    def spy(self, *args):
        chunks.append(self.chunk_size)
        return engine(self, *args)

    monkeypatch.setattr(IG, "token_norms", spy)
    exact = ex.explain(st_model, TEXT, exact=True, cache=False)
    assert exact.settings["precision"] == resolve("auto") and chunks == [ex.EXACT_CHUNK]
    assert ("computed in bf16" in exact.notes[0]) == (resolve("auto") == "bf16")
    told = ex.explain(st_model, TEXT, exact=True, cache=False, precision="fp32", internal_batch_size=2)
    assert told.settings["precision"] == "fp32" and chunks[-1] == 2
    ex.explain(st_model, TEXT, cache=False)
    assert chunks[-1] == ex.SKETCH_CHUNK and one.settings["precision"] == "fp32"
    assert ex.explain(st_model, TEXT, OTHER, n_steps=8, cache=False).settings["precision"] == "fp32"
    assert ex.explain(st_model, TEXT, method="shap", max_evals=40, cache=False).settings["precision"] == "fp32"
    # a longer text pushes fewer directions at once (16 x 20 points x 32 tokens at most), never fewer than one
    options = {"method": "ig", "exact": True, "n_steps": None, "quadrature": "gausslegendre", "baseline": "pad",
               "projections": 16, "internal_batch_size": None, "seed": 0}
    assert [ex._text_method(options, "fp32", tokens).chunk_size for tokens in (25, 32, 64, 128, 256, 10 ** 6)] == [
        16, 16, 8, 4, 2, 1]
    assert ex._text_method({**options, "internal_batch_size": 32}, "fp32", 512).chunk_size == 32


def test_a_text_whose_gap_is_above_the_threshold_says_so_in_its_notes_and_one_warning(st_model, one):
    """Too few quadrature points leave the weights short of the embedding's change: the explanation says so in a
    note and a warning (a set of texts: one warning for all); within the threshold nothing is added."""
    import warnings

    from helpers.views import GAP_THRESHOLD, CompletenessGap

    with pytest.warns(CompletenessGap, match="raise n_steps") as caught:
        e = ex.explain(st_model, "007 is 007", n_steps=2, projections=4, cache=False)
    assert e.numbers["completeness_gap"] > GAP_THRESHOLD and len(caught) == 1
    assert any(n.startswith(f"completeness gap {e.numbers['completeness_gap']:.1%}, above the 1%") for n in e.notes)
    assert one.numbers["completeness_gap"] <= GAP_THRESHOLD and not any("above the" in n for n in one.notes)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        many = ex.explain(st_model, [TEXT, OTHER, "007 is 007"], n_steps=2, projections=4, cache=False)
    over = sum(x.numbers["completeness_gap"] > GAP_THRESHOLD for x in many.explanations)
    gap_warnings = [str(w.message) for w in caught if issubclass(w.category, CompletenessGap)]
    assert over >= 1 and len(gap_warnings) == 1 and gap_warnings[0].startswith(f"{over} of 3 texts")


def test_a_pair_sums_to_the_models_own_similarity(st_model):
    e = ex.explain(st_model, TEXT, OTHER)
    sim = float(st_model.similarity(st_model.encode([TEXT]), st_model.encode([OTHER]))[0, 0])
    n = e.numbers
    assert e.settings["similarity"] == "cosine" and n["score"] == pytest.approx(sim, abs=1e-5)
    total = e.table["contribution"].sum() + n["reference"]
    assert abs(total - sim) <= n["completeness_gap"] * abs(sim) + 1e-5
    # the marks are each text's words with the sum of their pair contributions
    marks_a = e.table.groupby("index_a")["contribution"].sum().to_numpy()
    np.testing.assert_allclose(e.marks[0]["contribution"], marks_a)
    assert list(e.marks[1]["word"]) == ["a", "person", "plays", "an", "instrument", "."]


def test_the_models_own_similarity_function_is_followed(tmp_path, folder):
    copy = tmp_path / "dot-model"
    shutil.copytree(folder, copy)
    config = copy / "config_sentence_transformers.json"
    data = json.loads(config.read_text()) if config.is_file() else {}
    config.write_text(json.dumps({**data, "similarity_fn_name": "dot"}))
    assert ex.similarity_of(str(copy)) == "dot" and ex.similarity_of(folder) == "cosine"
    data["similarity_fn_name"] = "euclidean"
    config.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="euclidean"):
        ex.explain(str(copy), TEXT, OTHER)


@pytest.mark.parametrize("method, fragment", [("gausslegendre", "quadrature"), ("integrated_gradients", "'ig'"),
                                              ("lime", "one of")])
def test_familiar_names_that_mean_something_else_are_explained(method, fragment, folder):
    with pytest.raises(ValueError, match=fragment):
        ex.explain(folder, TEXT, method=method)


def test_terminal_rendering_at_a_fixed_width(one):
    text = one.to_text(width=40, colour=False)
    lines = text.splitlines()
    assert all(len(line) <= 40 for line in lines)
    body = lines[next(i for i, line in enumerate(lines) if line.startswith("a[")):]
    words = re.findall(r"(\S+)\[(\d+\.\d\d)\]", " ".join(body[:3]))
    assert [w for w, _ in words] == list(one.table["word"])
    assert [float(v) for _, v in words] == pytest.approx(one.table["weight"].round(2).tolist(), abs=0.006)
    coloured = one.to_text(width=40, colour=True)
    assert "\x1b[48;5;" in coloured and re.sub(r"\x1b\[[0-9;]*m", "", coloured).count("guitar") >= 1


def test_html_is_self_contained_and_shows_every_word(one, tmp_path):
    page = one.to_html(tmp_path / "e.html")
    assert not re.search(r"<(script|link|img|iframe)\b", page) and "http" not in page and "url(" not in page
    spans = re.findall(r'<span class="w"[^>]*>([^<]*)</span>', page)
    assert spans == list(one.table["word"])
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("Chromium is not installed (make test installs it where it can)")
    out = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                          "--dump-dom", (tmp_path / "e.html").as_uri()], capture_output=True, text=True, timeout=90)
    shown = re.findall(r'<span class="w"[^>]*>([^<]*)</span>', out.stdout)
    assert shown == list(one.table["word"])


def test_save_load_and_shap(one, tmp_path):
    back = ex.Explanation.load(one.save(tmp_path / "e.json"))
    pd.testing.assert_frame_equal(back.table, one.table, check_dtype=False)
    assert back.notes == one.notes and back.numbers == one.numbers
    shap_e = one.to_shap()  # each word's share of the text's weight: shap's f(x) is 1, "the whole attribution"
    np.testing.assert_allclose(shap_e.values, one.table["weight"] / one.table["weight"].sum())
    assert shap_e.base_values + shap_e.values.sum() == pytest.approx(1.0)
    drawn = ex.shap_text_html(one)
    assert all(w in drawn for w in ("guitar", "stage"))
    assert "np.float" not in drawn and re.search(r"rgba\(\d+(\.\d+)?, ", drawn)  # colours browsers can read


def test_a_pairs_shap_view_adds_up_to_the_models_score():
    pair = ex.explain("tiny-random-bert", "A man plays a guitar.", "A person plays music.", n_steps=8)
    shap_e = pair.to_shap()
    words = list(pair.marks[0]["word"]) + ["[SEP]"] + list(pair.marks[1]["word"])
    assert [w.strip() for w in shap_e.data] == words  # both texts, not only the first
    assert shap_e.base_values + shap_e.values.sum() == pytest.approx(pair.numbers["score"], abs=1e-9)
    # the base is what no word pair carries (the reference terms and the gap): every pair counted once in the values
    assert shap_e.base_values == pytest.approx(pair.numbers["score"] - pair.numbers["sum_of_contributions"], abs=1e-9)


def test_faithfulness_is_normalised_between_greedy_bounds(one):
    f = one.faithfulness(k_max=4, n_random=5)
    assert f["worst"] <= f["aopc"] <= f["best"] + 1e-9 and f["worst"] <= f["random_mean"] <= f["best"]
    reverse = ex.Explanation(**{**{k: getattr(one, k) for k in ("kind", "model", "texts", "method", "marks",
                                                                 "numbers", "notes", "settings")},
                                "table": one.table.assign(weight=-one.table["weight"]), "_encoder": one._encoder})
    r = reverse.faithfulness(k_max=4, n_random=5)
    assert r["normalised"] < f["normalised"]  # the reversed ranking is a worse explanation, and it shows


def test_a_long_text_is_refused_or_explained_in_windows_by_the_stated_rule():
    sentence = "The committee discussed the annual budget and the new library at length."
    long = " ".join([sentence] * 12)  # 158 tokens; tiny-random-bert reads 128
    with pytest.raises(ValueError, match=r"158 tokens and the model reads at most 128"):
        ex.explain("tiny-random-bert", long)
    e = ex.explain("tiny-random-bert", long, long="windows", n_steps=4, projections=4)
    encoder = load_encoder("tiny-random-bert", normalize="auto")
    windows = ex._windows(encoder, long)
    assert len(windows) >= 2 and all(ex.n_tokens(encoder, w) <= encoder.max_length for _, w in windows)
    parts = []  # the rule: each window normalised to mean 1; a word's weight is its mean over its windows,
    for first, w in windows:  # renormalised to mean 1 over the text
        t = word_weights(encoder, [w], IG(n_steps=4, projections=4), progress=False)
        parts.append(t.assign(word_index=t["word_index"] + first))
    mean = pd.concat(parts).groupby("word_index")["weight"].mean()
    np.testing.assert_allclose(e.table["weight"], mean / mean.mean(), rtol=1e-6)
    assert len(e.table) == len(long.split()) + long.count(".") and any("windows" in n for n in e.notes)
    cut = ex.explain("tiny-random-bert", long, long="truncate", n_steps=4, projections=4)
    assert len(cut.table) < len(e.table) and any("get no weight" in n for n in cut.notes)
    with pytest.raises(ValueError, match="windows do not apply"):
        ex.explain("tiny-random-bert", long, "A short text.", long="windows")


def test_the_command_line_round_trips(tmp_path, one):
    out = subprocess.run([sys.executable, "-m", "helpers", "explain", "--model", "all-MiniLM-L6-v2", TEXT,
                          "--no-colour", "--json", str(tmp_path / "e.json"), "--html", str(tmp_path / "e.html")],
                         capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    printed = out.stdout.split("\n\n", 1)[1]
    table = pd.read_csv(io.StringIO(printed), sep=r"\s+")
    saved = ex.Explanation.load(tmp_path / "e.json").table
    for frame in (saved, one.table):
        np.testing.assert_allclose(table["weight"], frame["weight"], atol=1e-6)
        assert list(table["word"]) == list(frame["word"])
    assert (tmp_path / "e.html").is_file()
    bad = subprocess.run([sys.executable, "-m", "helpers", "explain", "--model", "all-MiniLM-L6-v2", "a", "b", "c"],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert bad.returncode == 2 and "one text or two" in bad.stderr
    wrong = subprocess.run([sys.executable, "-m", "helpers", "explain", "--model", "all-MiniLM-L6-v2", "a",
                            "--method", "gausslegendre"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert wrong.returncode == 2 and "quadrature" in wrong.stderr
