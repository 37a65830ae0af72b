"""Refused or corrected inputs (issue 25): word units, sentence-transformers encoders, rankings, caches, command lines
and URLs -- inputs that gave a plausible wrong number or a misleading crash.

Each test is written from the user's side: the call, and the exception (with the fragment of its message
that names the culprit) or the corrected output. ``CASES`` extends the table of ``test_bad_inputs.py``; the
stateful cases (caches, command lines, encoders) follow as their own tests.
"""
import json
import sqlite3
import subprocess
import sys
import threading
import time
import unicodedata
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from helpers import attribution as attr
from helpers import faithfulness, information, regression, units
from helpers.attribution import IG, pairs
from helpers.encoders import load_encoder, resolve_model_path

ROOT = Path(__file__).resolve().parent.parent
NFC = "A caf\u00e9 opens."
NFD = unicodedata.normalize("NFD", NFC)
SPECIAL = "A [MASK] dog runs [SEP] fast </s> home <mask> now."
INVISIBLE = "A zero\u200bwidth soft\u00adhyphen and a lone \u0301 mark."


@pytest.fixture(scope="module")
def bert():
    return load_encoder("tiny-random-bert")


@pytest.fixture(scope="module")
def roberta():
    return load_encoder("tiny-random-roberta")


# --------------------------------------------------------------------------- 1. word units
@pytest.mark.parametrize("name", ["tiny-random-bert", "tiny-random-roberta"])
def test_special_token_strings_do_not_shift_the_words(name):
    enc = load_encoder(name)
    table = attr.word_weights(enc, [SPECIAL], attr.IG(n_steps=4), cache=False, progress=False)
    expected = units.split_words(SPECIAL, enc.tokenizer)
    assert table["word"].tolist() == expected  # every word keeps its own weight; none vanish at the end
    assert expected[-2:] == ["now", "."] and expected[0].lower() == "a"
    specials = set(enc.tokenizer.all_special_tokens) | {s.lower() for s in enc.tokenizer.all_special_tokens}
    assert not specials & set(table["word"])  # a special token's string is not a word (nor its pieces joined)
    # the tokenizer's own word numbering and the book's units agree token by token
    inputs = attr.tokenize(enc, SPECIAL)
    toks = enc.tokenizer.convert_ids_to_tokens(inputs["input_ids"][0])
    by_word = {}
    for t, w in zip(toks, inputs["word_ids"]):
        if w is not None:
            by_word.setdefault(w, []).append(t)
    spelled = {inputs["words"][w]: enc.tokenizer.convert_tokens_to_string(v).strip() for w, v in by_word.items()}
    assert spelled and all(s.lower() == w.lower() for w, s in spelled.items()), spelled  # tokens spell their word


@pytest.mark.parametrize("name", ["tiny-random-bert", "tiny-random-roberta"])
def test_composed_and_decomposed_accents_are_one_word(name):
    enc = load_encoder(name)
    table = attr.word_weights(enc, [NFC, NFD], attr.IG(n_steps=4), cache=False, progress=False)
    for sid in (0, 1):
        words = table.loc[table["sentence_id"] == sid, "word"].tolist()
        assert words[1] == "caf\u00e9"  # NFC, never the accent-stripped "cafe" an uncased model reads
        assert len(words) == 4 and "\u0301" not in "".join(words)  # the accent is not a weighted word of its own
    info = information.word_information([NFC, NFD], tokenizer=enc.tokenizer)
    cafe = "caf\u00e9"
    assert info.set_index("word").loc[cafe, "count"] == 2  # one word, counted twice; never ASCII "cafe"
    assert "cafe" not in set(info["word"])


@pytest.mark.parametrize("name", ["tiny-random-bert", "tiny-random-roberta"])
def test_invisible_characters_are_not_words(name):
    enc = load_encoder(name)
    words = attr.word_weights(enc, [INVISIBLE], attr.IG(n_steps=4), cache=False, progress=False)["word"].tolist()
    assert all(w.strip() and not any(unicodedata.category(c) in ("Cf", "Mn") for c in w) for w in words), words
    assert words == units.split_words(INVISIBLE, enc.tokenizer)


def test_all_methods_agree_on_the_units_and_the_information_table_joins_one_to_one(bert):
    texts = [SPECIAL, NFD, INVISIBLE]
    ig = attr.word_weights(bert, texts, attr.IG(n_steps=4), cache=False, progress=False)
    assert ig.groupby("sentence_id")["word"].agg(list).tolist() == [
        ["a", "dog", "runs", "fast", "<", "/", "s", ">", "home", "<", "mask", ">", "now", "."],
        ["a", "caf\u00e9", "opens", "."], ["a", "zerowidth", "softhyphen", "and", "a", "lone", "mark", "."]]
    shap = attr.word_weights(bert, texts, attr.SHAP(max_evals=200), cache=False, progress=False)
    assert ig[["sentence_id", "word_index", "word"]].equals(shap[["sentence_id", "word_index", "word"]])
    pair = pairs.pair_weights(bert, SPECIAL, NFD, IG(n_steps=4), cache=False)
    assert pair.drop_duplicates("index_a")["word_a"].tolist() == ig.loc[ig["sentence_id"] == 0, "word"].tolist()
    assert pair.drop_duplicates("index_b")["word_b"].tolist() == ig.loc[ig["sentence_id"] == 1, "word"].tolist()
    from helpers import explorer

    info = information.word_information(texts, tokenizer=bert.tokenizer)
    shown = explorer.sentence_weights(SPECIAL, "tiny-random-bert", "mean", info, method="IG (exact)", n_steps=4)
    assert shown["word"].tolist() == ig.loc[ig["sentence_id"] == 0, "word"].tolist() and shown["seen"].all()
    joined = regression.join_information(ig, info)
    assert len(joined) == len(ig)  # every occurrence finds its word: one to one


def test_a_word_cut_by_truncation_is_not_reported_whole(bert):
    # "antidisestablishmentarianism" is many word pieces: put it across the limit
    long = " ".join(["dog"] * (bert.max_length - 4)) + " antidisestablishmentarianism end"
    with pytest.warns(UserWarning, match="antidisestablishmentarianism"):
        table = attr.word_weights(bert, [long], attr.IG(n_steps=4), cache=False, progress=False)
    assert "antidisestablishmentarianism" not in set(table["word"])


# --------------------------------------------------------------------------- 2. tables that do not belong together
def test_cased_weights_against_an_uncased_information_table_are_refused(roberta):
    texts = ["The Man runs.", "A Dog barks.", "the man sits ."]
    weights = attr.word_weights(roberta, texts, attr.IG(n_steps=4), cache=False, progress=False)
    uncased = information.word_information(texts)  # the default units: bert-base-uncased's
    with pytest.raises(ValueError, match="do not share word units.*tokenizer=encoder.tokenizer"):
        regression.regress(weights, uncased, n_boot=10)
    with pytest.raises(ValueError, match="do not share word units"):
        faithfulness.rankings({"IG": weights}, uncased, weights)
    own = information.word_information(texts, tokenizer=roberta.tokenizer)
    assert regression.regress(weights, own, n_boot=10)["n_points"] == len(weights)


def test_the_explorer_computes_each_models_reference_in_its_own_units(data_dir):
    from helpers import explorer

    table = explorer.sentence_weights("The Man plays.", "tiny-random-roberta", "mean", "stsb", method="IG (exact)",
                             n_steps=4, data_dir=data_dir)
    assert table.set_index("word").loc["Man", "seen"]  # a capitalised word is found in the cased reference
    uncased = explorer.reference_information("stsb", data_dir)
    with pytest.raises(ValueError, match="do not share word units"):
        explorer.sentence_weights("The Man plays.", "tiny-random-roberta", "mean", uncased, method="IG (exact)", n_steps=4)


# --------------------------------------------------------------------------- 3. the encoder the user has
def _st(path, max_seq_length, order):
    from sentence_transformers import SentenceTransformer, models

    mods = [models.Transformer(path, max_seq_length=max_seq_length), models.Pooling(32, "mean")]
    torch.manual_seed(0)
    for kind in order:
        mods.append(models.Dense(32, 7 if kind == "dense" else 32, activation_function=torch.nn.Tanh())
                    if kind == "dense" else models.Normalize())
    return SentenceTransformer(modules=mods, device="cpu")


LONG = " ".join(["the quick brown fox jumps over the lazy dog"] * 5)


@pytest.mark.parametrize("order", [("dense", "normalize"), ("normalize", "dense"), ("normalize",), ("dense",), ()],
                         ids=lambda o: "pool-" + "-".join(o) if o else "pool")
def test_sentence_transformers_encoders_equal_encode_beyond_max_seq_length(order, tmp_path):
    from sentence_transformers import SentenceTransformer

    folder = tmp_path / "st"
    _st(resolve_model_path("tiny-random-bert"), 12, order).save(str(folder))
    # as all-MiniLM-L6-v2 is saved: the model's limit in sentence_bert_config.json, below the tokenizer's own
    for name, change in (("tokenizer_config.json", {"model_max_length": 128}),
                         ("sentence_bert_config.json", {"max_seq_length": 12, "do_lower_case": False})):
        config = folder / name
        config.write_text(json.dumps({**json.loads(config.read_text()), **change}))
    st = SentenceTransformer(str(folder), device="cpu")
    texts = ["A man plays.", LONG]
    reference = st.encode(texts)
    assert st.max_seq_length == 12
    for source in (st, str(folder)):
        enc = load_encoder(source, normalize="auto")
        assert enc.max_length == 12
        np.testing.assert_allclose(enc.encode(texts), reference, atol=1e-5)


def test_the_offline_minilm_cuts_where_sentence_transformers_does():
    from sentence_transformers import SentenceTransformer

    text = " ".join(["word"] * 400)
    st = SentenceTransformer(resolve_model_path("all-MiniLM-L6-v2"), device="cpu")
    enc = load_encoder("all-MiniLM-L6-v2", normalize="auto")
    assert enc.max_length == st.max_seq_length == 256
    np.testing.assert_allclose(enc.encode([text]), st.encode([text]), atol=1e-5)


def test_max_length_and_module_order_are_in_the_fingerprint(tmp_path):
    folder = tmp_path / "st"
    _st(resolve_model_path("tiny-random-bert"), 16, ("normalize", "dense")).save(str(folder))
    before = load_encoder(str(folder)).fingerprint()
    config = folder / "sentence_bert_config.json"  # the older format, as all-MiniLM-L6-v2 has it
    config.write_text(json.dumps({**json.loads(config.read_text()), "max_seq_length": 8}))
    after = load_encoder(str(folder))
    assert after.max_length == 8 and after.fingerprint() != before  # same weights, another length: another key


def test_cls_is_refused_as_ambiguous_for_sentence_transformers_models(tmp_path):
    _st(resolve_model_path("tiny-random-bert"), 16, ()).save(str(tmp_path / "st"))
    with pytest.raises(ValueError, match="ambiguous.*pooler MLP.*cls_before_pooler"):
        load_encoder(str(tmp_path / "st"), pooling="cls")
    assert load_encoder(str(tmp_path / "st"), pooling="cls_before_pooler").pooling == "cls_before_pooler"


# --------------------------------------------------------------------------- 4. rankings
SENTENCES = pd.DataFrame({"sentence_id": [0, 1], "text": ["A dog runs home .", "Two cats sleep ."]})


def _ranking(rows):
    return pd.DataFrame(rows, columns=["sentence_id", "word_index", "score"])


GOOD = [(0, i, s) for i, s in enumerate([0.1, 0.9, 0.5, 0.3, 0.2])] + [(1, i, s) for i, s in enumerate([1, 2, 3, 4])]
RANKING_CASES = [
    ("a word left out", [r for r in GOOD if r[:2] != (0, 4)], "not ranked"),
    ("a word twice", GOOD + [(0, 1, 0.4)], "more than once"),
    ("an unknown index", GOOD + [(1, 9, 0.4)], "unknown word indices [9]"),
    ("a NaN score", [(0, 1, float("nan"))] + [r for r in GOOD if r[:2] != (0, 1)], "NaN"),
    ("another sentence's ranking", [(0, i, s) for i, s in enumerate([1, 2, 3, 4])]
     + [(1, i, s) for i, s in enumerate([1, 2, 3, 4])], "not ranked"),
]


@pytest.mark.parametrize("case", RANKING_CASES, ids=[c[0] for c in RANKING_CASES])
def test_a_ranking_is_checked_against_its_sentence(bert, case):
    _, rows, fragment = case
    with pytest.raises(ValueError, match=fragment.replace("[", r"\[").replace("]", r"\]")):
        faithfulness.deletion_curve(bert, SENTENCES, _ranking(rows), k_max=2)
    curves = faithfulness.deletion_curve(bert, SENTENCES, _ranking(GOOD), k_max=5)
    assert curves["fraction"].max() == 1.0 and (curves.groupby("sentence_id")["k"].max() == [5, 4]).all()


def test_a_ranking_with_words_from_another_sentence_is_refused(bert):
    ranking = _ranking(GOOD).assign(word=["a", "dog", "runs", "home", ".", "two", "cats", "sleep", "."])
    faithfulness.deletion_curve(bert, SENTENCES, ranking, k_max=1)
    swapped = ranking.assign(sentence_id=ranking["sentence_id"].map({0: 0, 1: 1}))
    swapped.loc[swapped["sentence_id"] == 1, "word"] = ["one", "cat", "sleeps", "."]
    with pytest.raises(ValueError, match="another sentence's ranking"):
        faithfulness.deletion_curve(bert, SENTENCES, swapped, k_max=1)


def test_rankings_warn_when_the_information_table_lacks_words(bert):
    weights = attr.word_weights(bert, SENTENCES, attr.IG(n_steps=4), cache=False, progress=False)
    info = information.word_information(["a dog runs home .", "two cats ."], tokenizer=bert.tokenizer)
    with pytest.warns(UserWarning, match="1 of 9 words are not in the information table"):
        faithfulness.rankings({"IG": weights}, info, weights)
    with pytest.raises(ValueError, match="not in the information table"):
        faithfulness.rankings({"IG": weights}, information.word_information(["x y z"]), weights)


def test_aopc_names_what_its_input_lacks_and_never_averages_nothing():
    with pytest.raises(ValueError, match=r"no column\(s\) \['curve', 'value'\].*deletion_curve"):
        faithfulness.aopc(pd.DataFrame({"sentence_id": [0], "k": [1], "drop": [0.1]}), n_boot=10)
    with pytest.raises(ValueError, match="no deletion rows"):
        faithfulness.aopc(pd.DataFrame(columns=["sentence_id", "curve", "value"]), n_boot=10)


# --------------------------------------------------------------------------- 5. cache errors
def test_a_locked_cache_is_not_called_damaged(bert, tmp_path):
    db = tmp_path / "weights.sqlite"
    attr.word_weights(bert, ["A dog runs."], attr.IG(n_steps=4), cache=db, progress=False)
    holder = sqlite3.connect(db)
    holder.execute("BEGIN EXCLUSIVE")  # another process writing
    try:
        with pytest.raises(attr.CacheError) as info:
            attr.word_weights(bert, ["A cat sleeps."], attr.IG(n_steps=4), cache=attr.AttributionCache(db, timeout=0.2), progress=False)
        message = str(info.value)
        assert "locked by another process" in message and "healthy" in message and "Delete" not in message
    finally:
        holder.rollback()
        holder.close()
    # once the other writer is done, a longer timeout waits for it instead of failing
    holder = sqlite3.connect(db, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")
    threading.Timer(0.5, holder.rollback).start()
    store = attr.AttributionCache(db, timeout=10)
    assert len(attr.word_weights(bert, ["A cat sleeps."], attr.IG(n_steps=4), cache=store, progress=False)) == 4
    holder.close()


def test_a_read_only_cache_serves_its_rows(bert, tmp_path, monkeypatch):
    db = tmp_path / "weights.sqlite"
    first = attr.word_weights(bert, ["A dog runs."], attr.IG(n_steps=4), cache=db, progress=False)
    import os

    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **k: False if mode == os.W_OK and str(p).startswith(
        str(tmp_path)) else real(p, mode, **k))  # as a user without write permission sees it (root bypasses chmod)
    with pytest.warns(UserWarning, match="read-only: its rows are served"):
        store = attr.AttributionCache(db)
    calls = []
    original = attr.ig_token_norms
    monkeypatch.setattr(attr.ig, "ig_token_norms", lambda *a, **k: calls.append(1) or original(*a, **k))
    again = attr.word_weights(bert, ["A dog runs.", "A cat sleeps."], attr.IG(n_steps=4), cache=store, progress=False)
    assert len(calls) == 1  # the stored sentence was served, the new one computed
    pd.testing.assert_frame_equal(again[again["sentence_id"] == 0], first)
    assert sqlite3.connect(db).execute("SELECT COUNT(*) FROM weights").fetchone()[0] == 1  # nothing written


def test_a_folder_as_the_cache_path_says_so_and_only_a_corrupt_file_is_damaged(bert, tmp_path):
    with pytest.raises(attr.CacheError, match="is a folder, not a file") as info:
        attr.word_weights(bert, ["A dog runs."], attr.IG(n_steps=4), cache=tmp_path, progress=False)
    assert "damaged" not in str(info.value)
    db = tmp_path / "weights.sqlite"
    db.write_bytes(b"not a database" * 200)
    with pytest.raises(attr.CacheError, match="damaged.*Delete the file"):
        attr.word_weights(bert, ["A dog runs."], attr.IG(n_steps=4), cache=db, progress=False)


def test_a_row_stored_under_other_word_units_is_recomputed(bert, tmp_path):
    db = tmp_path / "weights.sqlite"
    fresh = attr.word_weights(bert, [SPECIAL], attr.IG(n_steps=4), cache=db, progress=False)
    con = sqlite3.connect(db)
    key, value = con.execute("SELECT key, value FROM weights").fetchone()
    old = json.loads(value)
    old["words"] = ["a", "[", "mask", "]"] + old["words"][2:]  # as the old splitter numbered them
    text = json.dumps(old)
    con.execute("UPDATE weights SET value = ?, checksum = ? WHERE key = ?",
                (text, attr.AttributionCache.checksum(text), key))
    con.commit()
    with pytest.warns(UserWarning, match="word units differ"):
        again = attr.word_weights(bert, [SPECIAL], attr.IG(n_steps=4), cache=db, progress=False)
    pd.testing.assert_frame_equal(again, fresh)


# --------------------------------------------------------------------------- 6. command lines
def _cli(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def test_only_matches_whole_chapter_numbers_and_names():
    from helpers.book import select

    assert [p.stem for p in select(["1"])] == ["01_theory"]
    assert [p.stem for p in select(["10", "regression"])] == ["06_regression", "10_pair_similarity"]
    for bad in ([""], ["0"], ["1_"], ["theo"]):
        with pytest.raises(ValueError, match="--only"):
            select(bad)


def test_a_parameter_of_the_wrong_type_is_refused_before_anything_runs(tmp_path):
    out = _cli("helpers.book", "run", "--only", "02", "03", "-p", "n_sentences", '"ten"', "--out", str(tmp_path))
    assert out.returncode == 2 and "-p n_sentences: 03_integrated_gradients declares it as int" in out.stderr
    assert "Nothing was run" in out.stderr and not list(tmp_path.glob("*.ipynb"))
    out = _cli("helpers.book", "run", "--only", "03", "-p", "model", "7", "--out", str(tmp_path))
    assert out.returncode == 2 and "declares it as str" in out.stderr


def test_sweep_plan_trains_nothing(tmp_path, data_dir, monkeypatch):
    from helpers import runs, sweep

    def no_training(*args, **kwargs):
        raise AssertionError("--plan started a training run")

    monkeypatch.setenv("SENTENCE_CACHE_DIR", str(tmp_path))  # a machine where nothing is trained yet
    monkeypatch.setattr(runs, "resume", no_training)  # every run resumes or starts through runs.open_run
    monkeypatch.setattr(sweep, "estimate", lambda tasks, options=None: pd.DataFrame(
        {"model": [t.row for t in tasks], "estimated_seconds": 1.0}))
    lines = []
    monkeypatch.setattr("builtins.print", lambda *a, **k: lines.append(" ".join(map(str, a))))
    assert sweep.main(["--plan", "--data-dir", str(data_dir), "--n-sentences", "4"]) == 0
    text = "\n".join(lines)
    assert "not on disk yet" in text and "Train them first" in text
    assert not any("self-trained" in line for line in lines[1:])  # planned from what is on disk


# --------------------------------------------------------------------------- 7. links and files
@pytest.mark.parametrize("url, plain, pages", [
    ("https://github.com/Me/repo.git", "https://github.com/Me/repo", "https://me.github.io/repo/"),
    ("https://github.com/me/repo/", "https://github.com/me/repo", "https://me.github.io/repo/"),
    ("https://github.com/me/me.github.io", "https://github.com/me/me.github.io", "https://me.github.io/"),
    ("https://gitlab.com/group/sub/project", "https://gitlab.com/group/sub/project",
     "https://group.gitlab.io/sub/project/"),
])
def test_repository_urls_are_parsed_and_give_the_right_pages_address(url, plain, pages):
    from helpers.publishing import parse_repository

    assert parse_repository(url) == (plain, pages)


@pytest.mark.parametrize("url", ["http://github.com/a/b", "https://github.com/a", "https://github.com/a/b/c",
                                 "https://example.com/a/b", "https://github.com/a/b?x=1", "https://github.com/a/b c"])
def test_malformed_repository_urls_are_refused(url):
    from helpers.publishing import parse_repository

    with pytest.raises(ValueError, match="url must look like"):
        parse_repository(url)


def test_launch_links_rewrite_only_the_notebook_path():
    from helpers.publishing import notebook_links

    gitlab = "https://mybinder.org/v2/gl/mybook%2Fbook%2Frepo/main?urlpath=lab%2Ftree%2Fbook%2F03_x.ipynb"
    moved = notebook_links(gitlab)
    assert moved.startswith("https://mybinder.org/v2/gl/mybook%2Fbook%2Frepo/main?")  # the group named book stays
    assert moved.endswith("lab/tree/notebooks/03_x.ipynb")
    colab = "https://colab.research.google.com/github/o/book/blob/book/book/03_x.ipynb"
    assert notebook_links(colab) == "https://colab.research.google.com/github/o/book/blob/book/notebooks/03_x.ipynb"
    assert notebook_links("https://github.com/o/book") == "https://github.com/o/book"
