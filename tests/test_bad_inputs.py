"""No silent wrong answers (issue 14): every bad input a user can hand the helpers, and what it must give.

``CASES`` is the table: (id, call, expected exception, fragment of the message that names the
culprit). The calls take a ``ctx`` of fixtures (a tiny encoder, damaged data folders). Each
case returned a wrong answer or an unhelpful crash before the fix. The stateful cases (the
cache, kill-and-resume, damaged checkpoints) follow the table as their own tests.
"""
import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from helpers import attribution as attr
from helpers import data, information, regression, training
from helpers.encoders import load_encoder, resolve_model_path, roster_rows

ROOT = Path(__file__).resolve().parent.parent
SENTENCE = "A man is playing a guitar."
TEXTS = [f"a {w} is {v} the {o} ." for w in ("man", "dog", "child", "woman") for v in ("riding", "eating")
         for o in ("horse", "ball")]
class Killed(BaseException):
    """Stands for the process being killed (pytest reserves KeyboardInterrupt for itself)."""


TINY = training.MLMConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                          max_length=24)


@pytest.fixture(scope="module")
def ctx(tmp_path_factory, data_dir):
    """Damaged copies of the data files, a tiny encoder, a weight table and an information table."""
    base = tmp_path_factory.mktemp("bad")

    def data_copy(name, edit):
        root = base / name
        shutil.copytree(data_dir / "stsb", root / "stsb")
        shutil.copytree(data_dir / "snli", root / "snli")
        edit(root)
        return root

    dev = (data_dir / "stsb" / "sts-dev.csv").read_bytes()
    lines = dev.split(b"\n")
    bert = load_encoder("tiny-random-bert")
    weights = pd.DataFrame({"sentence_id": [0, 0, 0, 1, 1, 1], "word": ["a", "b", "c", "a", "b", "d"],
                            "weight": [0.5, 1.0, 1.5, 0.7, 1.1, 1.2]})
    info = pd.DataFrame({"word": ["a", "b", "c", "d"], "kl": [0.1, 0.5, 0.9, 1.3]})
    return {
        "cut": data_copy("cut", lambda r: (r / "stsb/sts-dev.csv").write_bytes(dev[: len(dev) // 2])),
        "short_row": data_copy("short", lambda r: (r / "stsb/sts-dev.csv").write_bytes(
            b"\n".join(lines[:4] + [b"main-captions\tMSRvid\t2012test\t0005\t3.0\tA dog runs."] + lines[5:]))),
        "fewer_rows": data_copy("fewer", lambda r: (r / "stsb/sts-dev.csv").write_bytes(b"\n".join(lines[:1490]) + b"\n")),
        "empty": data_copy("empty", lambda r: (r / "stsb/sts-dev.csv").write_bytes(b"")),
        "latin1": data_copy("latin1", lambda r: (r / "stsb/sts-dev.csv").write_bytes(
            dev.decode().replace("A man", "A caf\u00e9 man", 1).encode("latin-1", errors="replace"))),
        "snli_skew": data_copy("skew", lambda r: (r / "snli/labels.dev").write_text(
            "\n".join((data_dir / "snli/labels.dev").read_text().splitlines()[:-3]) + "\n")),
        "bert": bert, "weights": weights, "info": info, "tmp": base, "data": data_dir,
    }


def _regress(ctx, **change):
    w = ctx["weights"].assign(**change.get("weights", {}))
    info = change.get("info", ctx["info"])
    return regression.regress(w, info, n_boot=change.get("n_boot", 20))


CASES = [
    # data: a damaged file is an error naming the file and line, never fewer rows or shifted ids
    ("stsb cut mid-row", lambda c: data.load_sentences("stsb", "validation", data_dir=c["cut"]), ValueError,
     "sts-dev.csv, line"),
    ("stsb short row", lambda c: data.load_sentences("stsb", "validation", data_dir=c["short_row"]), ValueError,
     "sts-dev.csv, line 5"),
    ("stsb rows missing", lambda c: data.load_sentences("stsb", "validation", data_dir=c["fewer_rows"]), ValueError,
     "1490 rows, the published file 1500"),
    ("stsb empty file", lambda c: data.load_sentences("stsb", "validation", data_dir=c["empty"]), ValueError,
     "sts-dev.csv is empty"),
    ("stsb latin-1", lambda c: data.load_sentences("stsb", "validation", data_dir=c["latin1"]), ValueError,
     "line 1: not UTF-8"),
    ("snli files not parallel", lambda c: data.load_sentences("nli", "validation", data_dir=c["snli_skew"]),
     ValueError, "parallel"),
    ("limit negative", lambda c: data.load_sentences("wiki", data_dir=c["data"], limit=-1),
     ValueError, "limit"),
    ("a GPU this torch cannot reach", lambda c: load_encoder("tiny-random-bert", device="cuda:99"), ValueError,
     "device='cuda:99'"),
    ("a device torch does not know", lambda c: load_encoder("tiny-random-bert", device="gpu"), ValueError,
     "device='gpu' is not a device torch knows"),
    ("an empty roster", lambda c: roster_rows([]), ValueError, "roster is an empty list"),
    ("a roster entry that is a name", lambda c: roster_rows(["tiny-random-bert"]), ValueError, "needs 'name' and 'pooling'"),
    ("a roster row twice", lambda c: roster_rows([{"name": "tiny-random-bert", "pooling": "mean"}] * 2), ValueError,
     "appear more than once"),
    ("a sentence where a dataset name goes", lambda c: data.load_sentences("a man plays", data_dir=c["data"]),
     ValueError, "pass a list of sentences"),
    # attribution arguments
    ("chunk_size -1", lambda c: attr.word_weights(c["bert"], [SENTENCE], attr.IG(n_steps=4, chunk_size=-1), cache=False),
     ValueError, "chunk_size"),
    ("chunk_size 0", lambda c: attr.word_weights(c["bert"], [SENTENCE], attr.IG(n_steps=4, chunk_size=0), cache=False),
     ValueError, "chunk_size"),
    ("n_steps 2.5", lambda c: attr.word_weights(c["bert"], [SENTENCE], attr.IG(n_steps=2.5), cache=False), ValueError,
     "n_steps"),
    ("sketch misspelled, exact", lambda c: attr.word_weights(c["bert"], [SENTENCE], attr.IG(n_steps=4, sketch="Gaussian"),
                                                            cache=False), ValueError, "sketch must be one of"),
    ("projections 0", lambda c: attr.word_weights(c["bert"], [SENTENCE], attr.IG(n_steps=4, projections=0), cache=False),
     ValueError, "projections"),
    ("shap max_evals 0", lambda c: attr.word_weights(c["bert"], [SENTENCE], attr.SHAP(max_evals=0), cache=False),
     ValueError, "max_evals"),
    ("shap max_evals -5", lambda c: attr.word_weights(c["bert"], [SENTENCE], attr.SHAP(max_evals=-5), cache=False), ValueError, "max_evals"),
    ("duplicate sentence ids", lambda c: attr.word_weights(c["bert"], pd.DataFrame({"sentence_id": [7, 7], "text": [SENTENCE, "A dog runs."]}), attr.IG(n_steps=4), cache=False),
     ValueError, "sentence_id must be unique: [7]"),
    ("no sentences", lambda c: attr.word_weights(c["bert"], [], attr.IG(n_steps=4), cache=False), ValueError,
     "no sentences"),
    ("an int among sentences", lambda c: attr.word_weights(c["bert"], [SENTENCE, 3, None], attr.IG(n_steps=4), cache=False),
     TypeError, "sentence 1"),
    ("word_agg unknown", lambda c: attr.word_weights(c["bert"], [SENTENCE], attr.IG(n_steps=4), word_agg="max", cache=False),
     ValueError, "word_agg"),
    # information functions
    ("None among sentences", lambda c: information.word_information([SENTENCE, None]), TypeError, "sentence 1"),
    ("int among sentences", lambda c: information.word_information([3]), TypeError, "sentence 0"),
    ("min_count 0", lambda c: information.word_information([SENTENCE], min_count=0), ValueError, "min_count"),
    # regression
    ("constant information", lambda c: _regress(c, info=c["info"].assign(kl=0.4)), ValueError, "constant"),
    ("constant weights", lambda c: _regress(c, weights={"weight": 1.0}), ValueError, "constant"),
    ("NaN weight", lambda c: _regress(c, weights={"weight": [0.5, np.nan, 1.5, 0.7, 1.1, 1.2]}), ValueError,
     "non-finite"),
    ("one sentence", lambda c: _regress(c, weights={"sentence_id": 0}), ValueError, "at least 2 sentences"),
    ("duplicated info rows", lambda c: _regress(c, info=pd.concat([c["info"], c["info"].iloc[:1]])), ValueError,
     "more than once"),
    ("n_boot 0", lambda c: _regress(c, n_boot=0), ValueError, "n_boot"),
    # training arguments
    ("simcse pooling max", lambda c: training.simcse("tiny-random-bert", pooling="max", steps=2, batch_size=4,
                                                     sentences=TEXTS, run_dir=c["tmp"] / "p"), ValueError, "pooling"),
    ("mlm steps 0", lambda c: training.pretrain_mlm(TEXTS, steps=0, batch_size=4, config=TINY,
                                                    run_dir=c["tmp"] / "s0"), ValueError, "steps"),
    ("simcse steps 0", lambda c: training.simcse("tiny-random-bert", steps=0, batch_size=4, sentences=TEXTS,
                                                 save_steps=(), run_dir=c["tmp"] / "s1"), ValueError, "steps"),
    ("batch_size 0", lambda c: training.pretrain_mlm(TEXTS, steps=2, batch_size=0, config=TINY,
                                                     run_dir=c["tmp"] / "b0"), ValueError, "batch_size"),
    ("save_every 0", lambda c: training.pretrain_mlm(TEXTS, steps=2, batch_size=4, save_every=0, config=TINY,
                                                     run_dir=c["tmp"] / "e0"), ValueError, "save_every"),
    ("fewer sentences than a batch", lambda c: training.pretrain_mlm(TEXTS[:3], steps=2, batch_size=4, config=TINY,
                                                                     run_dir=c["tmp"] / "few"), ValueError,
     "fewer than one batch"),
    ("empty training sentence", lambda c: training.pretrain_mlm(TEXTS + [""], steps=2, batch_size=4, config=TINY,
                                                                run_dir=c["tmp"] / "blank"), ValueError,
     "sentences[16]"),
    ("save_steps beyond steps", lambda c: training.simcse("tiny-random-bert", steps=2, batch_size=4, sentences=TEXTS,
                                                          save_steps=(5,), run_dir=c["tmp"] / "ss"), ValueError,
     "save_steps"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_refused_with_a_message(ctx, case):
    _, call, error, fragment = case
    with pytest.raises(error) as info:
        call(ctx)
    assert fragment in str(info.value), str(info.value)


# --------------------------------------------------------------------------- SHAP budget and length
def test_too_small_shap_budget_is_raised_and_unsplit_blocks_are_reported(ctx):
    text = "A man with a hard hat is dancing."
    with pytest.warns(UserWarning) as record:
        table = attr.word_weights(ctx["bert"], [text], attr.SHAP(max_evals=5), cache=False, progress=False)
    messages = " ".join(str(r.message) for r in record)
    assert "raised to 23" in messages and "share one SHAP value" in messages
    assert table.attrs["unresolved_sentences"] == 1 and table["weight"].round(9).nunique() < len(table)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a sufficient budget: every token resolved, no warning
        full = attr.word_weights(ctx["bert"], [text], attr.SHAP(max_evals=500), cache=False, progress=False)
    assert full["weight"].round(9).nunique() == len(full) and full.attrs["unresolved_sentences"] == 0


def test_long_sentence_is_truncated_for_shap_as_for_ig(ctx):
    long = " ".join(["word"] * 150) + " end"
    with pytest.warns(UserWarning, match="truncated"):
        table = attr.word_weights(ctx["bert"], [long], attr.SHAP(max_evals=300), cache=False, progress=False)
    assert len(table) == ctx["bert"].max_length - 2 and "end" not in set(table["word"])


def test_non_finite_model_output_is_an_error_not_a_dropped_word(ctx, tmp_path):
    enc = load_encoder("tiny-random-bert")
    with torch.no_grad():
        enc.model.embeddings.LayerNorm.weight[3] = float("nan")
    with pytest.raises(ValueError, match="non-finite"):
        attr.word_weights(enc, [SENTENCE], attr.IG(n_steps=4), cache=tmp_path / "c.sqlite", progress=False)
    assert len(attr.AttributionCache(tmp_path / "c.sqlite")) == 0  # nothing wrong was cached
    with pytest.raises(ValueError, match="non-finite"):
        attr.aggregate_words([0.0, 1.0, np.nan, 0.0], [None, 0, 1, None], ["a", "b"])


# --------------------------------------------------------------------------- the cache checks itself
def test_edited_or_nan_cache_rows_are_recomputed(ctx, tmp_path):
    db = tmp_path / "c.sqlite"
    fresh = attr.word_weights(ctx["bert"], [SENTENCE, "A dog runs."], attr.IG(n_steps=4), cache=db, progress=False)
    con = sqlite3.connect(db)
    keys = [k for (k,) in con.execute("SELECT key FROM weights")]
    value = json.loads(con.execute("SELECT value FROM weights WHERE key = ?", (keys[0],)).fetchone()[0])
    edited = dict(value, token_norms=[v * 2 for v in value["token_norms"]])
    con.execute("UPDATE weights SET value = ? WHERE key = ?", (json.dumps(edited), keys[0]))  # checksum now wrong
    nan_row = json.dumps(dict(value, token_norms=[float("nan")] * len(value["token_norms"])))
    con.execute("UPDATE weights SET value = ?, checksum = ? WHERE key = ?",
                (nan_row, attr.AttributionCache.checksum(nan_row), keys[1]))  # checksum right, numbers not
    con.commit()
    with pytest.warns(UserWarning, match="invalid") as record:
        again = attr.word_weights(ctx["bert"], [SENTENCE, "A dog runs."], attr.IG(n_steps=4), cache=db, progress=False)
    assert len([r for r in record if "invalid" in str(r.message)]) == 2
    pd.testing.assert_frame_equal(again, fresh)


def test_damaged_cache_file_names_itself(ctx, tmp_path):
    db = tmp_path / "weights.sqlite"
    db.write_bytes(b"this is not a database" * 100)
    with pytest.raises(RuntimeError, match=str(db).replace("\\", "\\\\") + ".*Delete the file"):
        attr.word_weights(ctx["bert"], [SENTENCE], attr.IG(n_steps=4), cache=db, progress=False)


# --------------------------------------------------------------------------- kill and resume
def test_shap_killed_midway_resumes_where_it_stopped(ctx, tmp_path, monkeypatch):
    texts = [SENTENCE, "A dog runs.", "Two kids play chess."]
    whole = attr.word_weights(ctx["bert"], texts, attr.SHAP(max_evals=100), cache=tmp_path / "a.sqlite", progress=False)
    calls = []
    original = attr.shap_token_norms

    def dies_on_the_second(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise Killed
        return original(*args, **kwargs)

    monkeypatch.setattr(attr.shapley, "shap_token_norms", dies_on_the_second)
    with pytest.raises(Killed):
        attr.word_weights(ctx["bert"], texts, attr.SHAP(max_evals=100), cache=tmp_path / "b.sqlite", progress=False)
    assert len(attr.AttributionCache(tmp_path / "b.sqlite")) == 1  # the finished sentence was kept
    calls.clear()
    monkeypatch.setattr(attr.shapley, "shap_token_norms", lambda *a, **k: calls.append(1) or original(*a, **k))
    resumed = attr.word_weights(ctx["bert"], texts, attr.SHAP(max_evals=100), cache=tmp_path / "b.sqlite", progress=False)
    assert len(calls) == 2  # only the two unfinished sentences
    pd.testing.assert_frame_equal(resumed, whole)


def _weights(folder):
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


def test_supervised_simcse_killed_midway_resumes_to_the_same_weights(tmp_path, monkeypatch):
    mlm = training.pretrain_mlm(TEXTS, steps=4, batch_size=4, config=TINY, run_dir=tmp_path / "mlm", progress=False)
    triplets = pd.DataFrame({"anchor": TEXTS[:12], "positive": TEXTS[1:13], "negative": TEXTS[4:16][::-1]})
    kwargs = dict(objective="sup", steps=8, batch_size=4, save_steps=(0, 4, 8), triplets=triplets, progress=False)
    whole = training.simcse(mlm, run_dir=tmp_path / "whole", **kwargs)
    calls = []
    original = training.simcse_loss

    def dies_at_step_6(*args, **kwargs):
        calls.append(1)
        if len(calls) == 6:
            raise Killed  # killed between the checkpoints of steps 4 and 8
        return original(*args, **kwargs)

    monkeypatch.setattr(training, "simcse_loss", dies_at_step_6)
    with pytest.raises(Killed):
        training.simcse(mlm, run_dir=tmp_path / "killed", **kwargs)
    monkeypatch.setattr(training, "simcse_loss", original)
    assert max(training.checkpoints(tmp_path / "killed")) == 4
    resumed = training.simcse(mlm, run_dir=tmp_path / "killed", **kwargs)
    wa, wb = _weights(whole[8]), _weights(resumed[8])
    assert all(torch.allclose(wa[k], wb[k], atol=1e-6) for k in wa)


# --------------------------------------------------------------------------- damaged run folders
@pytest.mark.parametrize("damage", ["truncated state.pt", "garbage history.json", "missing config.json"])
def test_a_damaged_checkpoint_is_set_aside_and_the_run_redone_from_the_one_before(tmp_path, damage):
    kwargs = dict(steps=8, batch_size=4, config=TINY, seed=1, save_every=4, save_steps=(4,), progress=False)
    whole = training.pretrain_mlm(TEXTS, run_dir=tmp_path / "whole", **kwargs)
    run = tmp_path / "run"
    final = training.pretrain_mlm(TEXTS, run_dir=run, **kwargs)
    target = {"truncated state.pt": "state.pt", "garbage history.json": "history.json",
              "missing config.json": "config.json"}[damage]
    if damage == "missing config.json":
        (final / target).unlink()
    else:
        blob = (final / target).read_bytes()
        (final / target).write_bytes(blob[: len(blob) // 3] if target == "state.pt" else b"{not json")
    with pytest.warns(UserWarning, match="does not load"):
        redone = training.pretrain_mlm(TEXTS, run_dir=run, **kwargs)  # resumes from step 4, never returns the broken 8
    wa, wb = _weights(whole), _weights(redone)
    assert all(torch.allclose(wa[k], wb[k], atol=1e-6) for k in wa)


def test_same_run_dir_with_other_settings_is_an_error(tmp_path):
    training.pretrain_mlm(TEXTS, steps=2, batch_size=4, config=TINY, run_dir=tmp_path / "r", progress=False)
    before = (tmp_path / "r" / "settings.json").read_text()
    with pytest.raises(ValueError, match="other settings.*steps: 2 there, 3 now"):
        training.pretrain_mlm(TEXTS, steps=3, batch_size=4, config=TINY, run_dir=tmp_path / "r", progress=False)
    assert (tmp_path / "r" / "settings.json").read_text() == before  # not rewritten to describe the wrong run


def test_init_fingerprint_reads_the_whole_weights_file(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    blob = np.random.default_rng(0).bytes(3 << 20)
    (a / "model.safetensors").write_bytes(blob)
    (b / "model.safetensors").write_bytes(blob[:-1] + bytes([blob[-1] ^ 1]))  # differs in the last byte only
    assert training.folder_fingerprint(a) != training.folder_fingerprint(b)


# --------------------------------------------------------------------------- model folders
def test_damaged_model_folders_say_what_is_wrong(tmp_path):
    src = Path(resolve_model_path("tiny-random-bert"))
    cut = tmp_path / "cut"
    shutil.copytree(src, cut)
    blob = (cut / "model.safetensors").read_bytes()
    (cut / "model.safetensors").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(ValueError, match=f"{cut}.*damaged or incomplete"):
        load_encoder(str(cut))
    notok = tmp_path / "notok"
    notok.mkdir()
    for f in ("config.json", "model.safetensors"):
        shutil.copy(src / f, notok / f)
    with pytest.raises(ValueError, match="no tokenizer files"):
        load_encoder(str(notok))


def test_a_half_written_generated_model_is_made_again(tmp_path, monkeypatch):
    monkeypatch.setenv("SENTENCE_CACHE_DIR", str(tmp_path))
    target = tmp_path / "models" / "tiny-random-bert-seed0"
    target.mkdir(parents=True)
    (target / "config.json").write_text("{}")  # a save killed after its first file
    enc = load_encoder("tiny-random-bert")
    assert enc.dim == 32 and (target / ".complete").is_file()


# --------------------------------------------------------------------------- the book runner
def _book(*args, cwd=ROOT, env_results=None):
    import os

    env = dict(os.environ, SENTENCE_RESULTS_DIR=str(env_results))
    return subprocess.run([sys.executable, "-m", "helpers.book", "run", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_book_runner_refuses_unknown_notebooks_and_parameters(tmp_path):
    times = tmp_path / "book" / "run_times.json"
    times.parent.mkdir(parents=True)
    times.write_text('{"01_theory": 12.0}')
    out = _book("--only", "99_nope", "--out", str(tmp_path / "o"), env_results=tmp_path)
    assert out.returncode != 0 and "99_nope" in out.stderr and "01_theory" in out.stderr
    assert json.loads(times.read_text()) == {"01_theory": 12.0}  # not overwritten with {}
    out = _book("--only", "02", "-p", "min_cuont", "5", "--out", str(tmp_path / "o"), env_results=tmp_path)
    assert out.returncode != 0 and "min_cuont" in out.stderr and "min_count" in out.stderr
