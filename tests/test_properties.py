"""Property-based tests (hypothesis) at the boundaries users cross: the harness that finds the next class of
silent wrong answers here, before an outside prober does (issue 37, point 9).

Each property states what must hold for *any* input a user could hand in: arbitrary Unicode text through the
word units and ``explain``; arbitrary rows through every data loader; save/load round trips of explanations,
attribution caches and sweep shards, also with one byte flipped; the rule and the bootstrap with NaN,
duplicated and missing ids. The examples per property are few enough for ``make test`` (the ``ci`` profile in
``conftest.py``: derandomised, so CI is repeatable); ``pytest --hypothesis-profile=explore`` searches longer.
A failing example hypothesis finds is committed as a regression test (``@example`` below or a case in
``tests/test_bad_inputs*.py``).
"""
import io
import json
import math
import unicodedata
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from helpers import data, information, regression, rules, units
from helpers import attribution as attr
from helpers import explain as ex
from helpers.config import FLAG_WORDS
from helpers.encoders import load_encoder

_CHECKS = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
#: a property that runs a model takes a fifth of the profile's examples (12 in the "ci" profile), the others all
SLOW = settings(max_examples=max(5, settings.default.max_examples // 5), suppress_health_check=_CHECKS)
FAST = settings(max_examples=settings.default.max_examples, suppress_health_check=_CHECKS)

#: Text as users paste it: any Unicode (letters, marks, digits, punctuation, symbols, spaces, invisible
#: characters), with the book's special tokens and accents typed decomposed mixed in.
PIECES = st.sampled_from(["[MASK]", "[SEP]", "</s>", "<mask>", "<pad>", "e\u0301", "\u200b", "\u00ad", "\ufeff",
                          " ", "  ", "\t", "café", "don't", "U.S.", "007", "😀", "\u3042\u3044", "\u0301"])
TEXT = st.lists(st.one_of(st.text(min_size=1, max_size=8), PIECES), min_size=1, max_size=8).map("".join)


@pytest.fixture(scope="module")
def tokenizers():
    return {"bert": load_encoder("tiny-random-bert").tokenizer, "roberta": load_encoder("tiny-random-roberta").tokenizer}


# --------------------------------------------------------------------------- word units
def _visible(ch: str) -> bool:
    return unicodedata.category(ch)[0] in "LNPS" and ch != "\ufffd"


@FAST
@given(text=TEXT)
@example(text="A [MASK] e\u0301 \u200bword.")
@example(text="\u0301\u0301a")
@example(text="A\u0300A")  # found by hypothesis: NFD cut one word in two under a byte-level tokenizer
@example(text="A\u03000")  # ...and then joined a letter and a digit
@example(text="0\u0300:")  # ...and overlapping units
@example(text="A\u0300A\u0300:")  # ...and an accent left at the start of the next piece
@example(text="\r\u0300")  # ...and an accent taken in by white space
@example(text="\u00c0\u200b\u0300")  # ...and an accent behind an invisible character (NFC and NFD apart)
def test_word_units_cover_the_text_with_nfc_words(tokenizers, text):
    for name, tokenizer in tokenizers.items():
        found = units.word_units(text, tokenizer)
        last = 0
        for unit in found:
            assert 0 <= unit["start"] < unit["end"] <= len(text) and unit["start"] >= last, (name, found)
            last = unit["end"]
            word = unit["word"]
            assert word is None or (word.strip() == word and word and unicodedata.normalize("NFC", word) == word)
        covered = np.zeros(len(text), bool)
        for unit in found:
            covered[unit["start"]:unit["end"]] = True
        missed = [ch for i, ch in enumerate(text) if _visible(ch) and not covered[i]]
        assert not missed, (name, text, missed)  # every visible character belongs to a unit
        nfc = unicodedata.normalize("NFC", text)
        assert units.split_words(nfc, tokenizer) == units.split_words(text, tokenizer), name  # NFC changes nothing


@SLOW
@given(text=TEXT)
@example(text="\u200b\u00ad")
@example(text="[MASK]")
def test_explain_gives_finite_weights_on_the_texts_words_or_refuses(text):
    words = units.split_words(text, load_encoder("tiny-random-bert").tokenizer)
    try:
        e = ex.explain("tiny-random-bert", text, n_steps=2, projections=2, cache=False)
    except ValueError as err:
        assert str(err)  # a refusal says why
        assert not text.strip() or not words, (text, str(err))  # only a text without words may be refused
        return
    table = e.table
    assert list(table["word"]) == words[: len(table)] and len(table) == len(words)
    assert np.isfinite(table["weight"]).all() and (table["weight"] >= 0).all()
    assert table["word"].map(lambda w: bool(w) and w.strip() == w).all()


NOT_A_FLAG = st.one_of(st.text(max_size=6), st.sampled_from(["False", "false", "no", "0", "None", "True"]),
                       st.integers(), st.floats(allow_nan=True), st.none(), st.just([False]))
FLAG_WORD = st.tuples(st.sampled_from(FLAG_WORDS),
                      st.sampled_from([str.lower, str.upper, str.title, lambda w: f" {w} "])).map(lambda t: t[1](t[0]))


@FAST
@given(flag=NOT_A_FLAG)
@example(flag="False")
def test_a_flag_that_is_not_true_or_false_is_refused_naming_it(flag):
    """``exact="False"`` is a true string: it must not silently explain exactly (nor ``exact=None`` sketch)."""
    for name in ("exact", "show_progress_bar"):
        with pytest.raises(ValueError, match=f"{name} must be True or False"):
            ex.explain("tiny-random-bert", "A man plays.", cache=False, **{name: flag})


@FAST
@given(word=FLAG_WORD)
@example(word="False")
def test_a_cache_spelled_as_a_flag_is_refused_and_writes_no_file(tmp_path_factory, word):
    """``cache="False"`` would otherwise be the path of a new cache file named False in the working folder."""
    import os

    folder, here = tmp_path_factory.mktemp("cwd"), os.getcwd()
    os.chdir(folder)
    try:
        with pytest.raises(ValueError, match="is a word, not a path"):
            attr.word_weights(load_encoder("tiny-random-bert"), ["A man plays."], attr.IG(n_steps=2, projections=2),
                              cache=word, progress=False)
        with pytest.raises(ValueError, match="is a word, not a path"):
            ex.explain("tiny-random-bert", "A man plays.", cache=word)
    finally:
        os.chdir(here)
    assert not any(folder.iterdir())


# --------------------------------------------------------------------------- loaders: a bad row is an error naming its line
FIELD = st.text(st.characters(blacklist_characters="\t\n", blacklist_categories=("Cs",)), min_size=0, max_size=12)
SCORE = st.one_of(st.floats(-1, 6).map(lambda f: f"{f:.3f}"),
                  st.sampled_from(["nan", "n/a", "", " 3", "inf", "5.0", "0", "1e0", "-0.0"]))


def _expect_loaded_or_named(load, path_name: str, bad_lines: set):
    """Either the loader reads every row right, or it raises naming the file and a line."""
    try:
        return load()
    except data.DataFileError as err:
        message = str(err)
        assert path_name in message, message
        if bad_lines:
            assert any(f"line {n}" in message for n in bad_lines) or any(w in message for w in ("rows", "parallel",
                                                                                         "is empty")), \
                (message, bad_lines)
        return None


def _ok_score(text: str) -> bool:
    """Whether a gold score field is what STS files hold: a number between 0 and 5."""
    try:
        return 0 <= float(text) <= 5
    except ValueError:
        return False


def _crlf(field: str) -> str:
    """A line's last field as a loader reads it: one final carriage return is the line ending (CRLF files)."""
    return field[:-1] if field.endswith("\r") else field


def _write(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(("\n".join(lines) + "\n").encode("utf-8"))


@FAST
@given(rows=st.lists(st.tuples(SCORE, FIELD, FIELD), min_size=1, max_size=6))
@example(rows=[("0.000", "", "\r0")])  # found by hypothesis: csv's own error, no file or line named
@example(rows=[("0.000", "", "")])  # ...and empty sentences loaded as text
@example(rows=[("0.000", "0", "0\r")])  # a final carriage return is the line ending (CRLF), not text
def test_stsb_rows_load_exactly_or_name_their_line(tmp_path_factory, rows):
    root = tmp_path_factory.mktemp("stsb")
    _write(root / "stsb/sts-dev.csv", [f"main-captions\tMSRvid\t2012test\t{i:04d}\t{s}\t{a}\t{b}"
                                       for i, (s, a, b) in enumerate(rows)])

    bad = {i + 1 for i, (s, a, b) in enumerate(rows) if not _ok_score(s) or not a.strip() or not _crlf(b).strip()
           or "\r" in a + _crlf(b)}
    df = _expect_loaded_or_named(lambda: data.load_sentences("stsb", "validation", data_dir=root, strict=False),
                                 "sts-dev.csv", bad)
    if df is None:
        assert bad, rows  # a good file is never refused
        return
    assert not bad, (rows, df)  # a bad row is never loaded as a value
    assert df["text"].tolist() == [t for _, a, b in rows for t in (a, _crlf(b))]
    assert np.allclose(df["score"].to_numpy()[0::2], [float(s) for s, _, _ in rows])


@FAST
@given(rows=st.lists(st.tuples(SCORE, FIELD, FIELD), min_size=1, max_size=5), bom=st.booleans())
def test_sts12_rows_load_exactly_or_name_their_line(tmp_path_factory, rows, bom):
    root = tmp_path_factory.mktemp("sts12")
    parts = ("MSRpar", "MSRvid", "SMTeuroparl", "surprise.OnWN", "surprise.SMTnews")
    for part in parts:
        _write(root / f"sts12/STS.input.{part}.txt", [f"{a}\t{b}" for _, a, b in rows])
        gold = root / f"sts12/STS.gs.{part}.txt"
        _write(gold, [s for s, _, _ in rows])
        if bom:
            gold.write_bytes(b"\xef\xbb\xbf" + gold.read_bytes())

    bad = {i + 1 for i, (s, a, b) in enumerate(rows) if not _ok_score(s) or not a.strip() or not _crlf(b).strip()
           or "\r" in a + _crlf(b)}
    df = _expect_loaded_or_named(lambda: data.load_sentences("sts12", data_dir=root, strict=False), "STS.", bad)
    if df is None:
        assert bad, rows
        return
    assert not bad, (rows, df)
    assert df["text"].tolist() == [t for _ in parts for _, a, b in rows for t in (a, _crlf(b))]
    assert np.allclose(df["score"].to_numpy()[0::2], [float(s) for _ in parts for s, _, _ in rows])


@FAST
@given(rows=st.lists(st.tuples(FIELD, FIELD, st.sampled_from(["entailment", "neutral", "contradiction"])),
                     min_size=1, max_size=6))
def test_snli_rows_load_exactly_or_name_their_line(tmp_path_factory, rows):
    root = tmp_path_factory.mktemp("snli")
    for i, name in enumerate(("s1", "s2", "labels")):
        _write(root / f"snli/{name}.dev", [r[i] for r in rows])
    bad = {i + 1 for i, (a, b, _) in enumerate(rows) if not a.strip() or not b.strip() or "\r" in _crlf(a) + _crlf(b)}
    df = _expect_loaded_or_named(lambda: data.load_sentences("nli", "validation", data_dir=root, strict=False),
                                 "snli", bad)
    if df is None:
        assert bad, rows
        return
    assert not bad, (rows, df)
    assert df["text"].tolist() == [_crlf(t).strip() for a, b, _ in rows for t in (a, b)]


# --------------------------------------------------------------------------- information: documents and words
@FAST
@given(texts=st.lists(st.one_of(TEXT, st.just(""), st.just("   ")), min_size=1, max_size=6))
def test_information_counts_only_real_words_and_documents(texts):
    words = [units.split_words(t) for t in texts]
    if not any(words):
        with pytest.raises(ValueError):
            information.word_information(texts)
        return
    info = information.word_information(texts)
    assert info["count"].sum() == sum(map(len, words)) and (info["idf"] >= 0).all()
    assert info.attrs["n_documents"] == sum(1 for w in words if w)
    everywhere = set.intersection(*(set(w) for w in words if w))
    assert (info.set_index("word").loc[sorted(everywhere), "idf"] == 0).all()
    assert np.isfinite(info[["kl", "self_info", "idf", "sif"]].to_numpy()).all()


# --------------------------------------------------------------------------- round trips, and one byte flipped
WORD = st.text(min_size=1, max_size=10).filter(lambda w: w.strip() == w and w)
NUMBER = st.floats(allow_nan=True, allow_infinity=True, width=64)


@FAST
@given(words=st.lists(WORD, min_size=1, max_size=6), weights=st.lists(NUMBER, min_size=6, max_size=6),
       flip=st.integers(0, 10 ** 9), bit=st.integers(0, 7))
# found by hypothesis: a flipped bit made a lone surrogate escape, and the digest crashed (UnicodeEncodeError)
@example(words=["00\x1f\x1f\x1f\U00010000\U00010000\U00010000", "\x1b"], weights=[0.0] * 6, flip=82237, bit=0)
def test_an_explanation_reads_back_exactly_and_a_flipped_byte_never_serves_other_numbers(tmp_path_factory, words,
                                                                                         weights, flip, bit):
    table = pd.DataFrame({"word_index": range(len(words)), "word": words, "weight": weights[: len(words)]})
    e = ex.Explanation(kind="text", model="m", texts=[" ".join(words)], method="ig", table=table, marks=[],
                       numbers={"completeness_gap": weights[-1]}, notes=[], settings={})
    path = e.save(tmp_path_factory.mktemp("e") / "e.json")
    back = ex.Explanation.load(path)
    pd.testing.assert_frame_equal(back.table, table)
    assert back.texts == e.texts and json.dumps(back.numbers) == json.dumps(e.numbers)
    blob = bytearray(path.read_bytes())
    blob[flip % len(blob)] ^= 1 << bit
    path.write_bytes(bytes(blob))
    try:
        again = ex.Explanation.load(path)
    except ValueError as err:
        assert str(path) in str(err)
        return
    pd.testing.assert_frame_equal(again.table, table)  # only a flip that changes nothing may load


@FAST
@given(norms=st.lists(st.floats(0, 1e6), min_size=1, max_size=8), flip=st.integers(0, 10 ** 6),
       bit=st.integers(0, 7))
def test_a_cache_row_is_served_as_written_or_recomputed(tmp_path_factory, norms, flip, bit):
    import sqlite3

    db = tmp_path_factory.mktemp("c") / "c.sqlite"
    cache = attr.AttributionCache(db)
    value = {"token_norms": norms, "word_ids": list(range(len(norms))), "completeness_gap": 0.0}
    cache.put("k", value)
    assert cache.get("k") == value
    con = sqlite3.connect(db)
    stored = bytearray(con.execute("SELECT value FROM weights").fetchone()[0].encode())
    stored[flip % len(stored)] ^= 1 << bit
    con.execute("UPDATE weights SET value = ?", (stored.decode("utf-8", errors="replace"),))
    con.commit()
    with pytest.warns(UserWarning) if bytes(stored) != json.dumps(value).encode() else _nothing():
        got = cache.get("k")
    assert got is None or got == value


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@FAST
@given(words=st.lists(WORD, min_size=1, max_size=6), weights=st.lists(st.floats(0, 10, allow_nan=False),
                                                                      min_size=6, max_size=6),
       row=st.integers(0, 5), new=st.floats(0, 10, allow_nan=False))
def test_a_shard_checksum_survives_parquet_and_catches_a_changed_weight(tmp_path_factory, words, weights, row, new):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from helpers import sweep

    n = len(words)
    frame = pd.DataFrame({"model": "m", "dataset": "d", "method": "ig", "sentence_id": [0] * n, "word_index": range(n),
                          "word": words, "weight": weights[:n], "raw_weight": weights[:n], "n_subwords": 1,
                          "completeness_gap": 0.0})[sweep.SHARD_COLUMNS]
    path = tmp_path_factory.mktemp("s") / "shard-00000.parquet"
    table = pa.Table.from_pandas(frame, preserve_index=False)
    pq.write_table(table.replace_schema_metadata({b"sweep": b"{}", b"sweep_data": sweep.data_checksum(frame).encode()}),
                   path)
    back, _ = sweep.read_shard(str(path))
    changed = back.copy()
    changed.loc[row % n, "weight"] = new
    assert (sweep.data_checksum(changed) == sweep.data_checksum(back)) == (new == back.loc[row % n, "weight"])


# --------------------------------------------------------------------------- the rule and the bootstrap
MAYBE = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.none(), st.floats(0, 1))


@FAST
@given(p_r=MAYBE, p_beta=MAYBE, beta=MAYBE, beta_low=MAYBE)
def test_a_verdict_is_a_tier_only_on_finite_evidence(p_r, p_beta, beta, beta_low):
    row = {"p_r": p_r, "p_beta": p_beta, "beta_model": beta, "beta_model_low": beta_low}
    finite = all(v is not None and math.isfinite(v) for v in row.values())
    p_ok = all(v is None or not math.isfinite(v) or 0 <= v <= 1 for v in (p_r, p_beta))
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            verdict = rules.decide(row)
        except ValueError:
            assert not p_ok  # only a p-value outside [0, 1] is an error
            return
    assert verdict in rules.VERDICTS
    assert (verdict == "not measured") == (not finite)


IDS = st.one_of(st.integers(0, 6), st.just(float("nan")))


@FAST
@given(ids=st.lists(IDS, min_size=3, max_size=30), seed=st.integers(0, 100), duplicate=st.booleans())
def test_the_bootstrap_uses_every_row_it_fits_or_refuses(ids, seed, duplicate):
    rng = np.random.default_rng(seed)
    words = [f"w{i}" for i in range(8)]
    w = pd.DataFrame({"sentence_id": ids, "word": [words[i] for i in rng.integers(0, 8, len(ids))],
                      "weight": rng.random(len(ids))})
    w["word_index"] = w.groupby("sentence_id", dropna=False).cumcount()
    if duplicate:
        w = pd.concat([w, w.iloc[:1]])
    info = pd.DataFrame({"word": words, "kl": rng.random(8)})
    try:
        fit = regression.regress(w, info, n_boot=30)
    except ValueError as err:
        reasons = ("sentence_id is missing", "twice", "constant", "at least", "Only")
        assert any(r in str(err) for r in reasons), str(err)
        return
    assert not w["sentence_id"].isna().any() and not w.duplicated(["sentence_id", "word_index"]).any()
    assert fit["n_points"] == len(w) and fit["n_sentences"] == w["sentence_id"].nunique()
    assert 0 <= fit["r2"] <= 1 and math.isfinite(fit["beta"])
