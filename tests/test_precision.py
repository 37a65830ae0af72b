"""The precision setting (fp32 or bf16): one argument through IG (norms, outputs, pairs), SHAP, explain, the
sweep and training; bf16 stays close to fp32, its gap is measured against fp32 outputs, and the two never
share a cache row or a run. Speed is measured in benchmarks/precision.py, not here."""
import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from helpers import precision as prec
from helpers import sweep, training
from helpers.attribution import IG, SHAP, tokenize, word_weights
from helpers.attribution.ig import ig_token_norms, ig_token_outputs
from helpers.attribution.pairs import pair_weights
from helpers.encoders import load_encoder
from helpers.explain import explain

TEXT = "A man with a hard hat is dancing on the stage."
TEXTS = [f"a {w} is {v} the {o} ." for w in ("man", "dog", "child", "woman") for v in ("riding", "eating")
         for o in ("horse", "ball")]


@pytest.fixture(scope="module")
def bert():
    return load_encoder("tiny-random-bert")


def test_bf16_word_weights_are_close_to_fp32_and_the_gap_is_measured_in_fp32(bert):
    a = word_weights(bert, [TEXT], IG(n_steps=8), cache=False, progress=False)
    b = word_weights(bert, [TEXT], IG(n_steps=8, precision="bf16"), cache=False, progress=False)
    assert spearmanr(a["weight"], b["weight"])[0] > 0.98
    assert np.abs(a["weight"] - b["weight"]).max() < 0.05 * a["weight"].max()
    # bf16's gap includes its rounding: larger than fp32's, and still small
    assert a["completeness_gap"].iloc[0] < b["completeness_gap"].iloc[0] < 0.05
    ids = tokenize(bert, TEXT)["input_ids"]
    exact, rounded = (ig_token_outputs(bert, ids, n_steps=4, precision=p) for p in ("fp32", "bf16"))
    np.testing.assert_array_equal(exact["f_x"], rounded["f_x"])  # f(X) itself is never rounded
    assert not np.array_equal(exact["J"], rounded["J"])  # ...the path's passes are


def test_bf16_reaches_every_path(bert):
    shap_b = word_weights(bert, [TEXT], SHAP(max_evals=60, precision="bf16"), cache=False, progress=False)
    assert np.isfinite(shap_b["weight"]).all()
    p32, p16 = (pair_weights(bert, TEXT, "A person dances.", IG(n_steps=4, precision=p), cache=False)
                for p in ("fp32", "bf16"))
    assert p32.attrs["score"] == p16.attrs["score"]  # the score is fp32 either way
    assert np.corrcoef(p32["contribution"], p16["contribution"])[0, 1] > 0.99
    e = explain(bert, TEXT, n_steps=4, projections=4, precision="bf16", cache=False)
    assert e.settings["precision"] == "bf16" and "computed in bf16" in e.notes[0]
    resolved = prec.resolve("auto")
    assert resolved == ("bf16" if prec.hardware("cpu")["native"] else "fp32")
    assert explain(bert, TEXT, n_steps=4, projections=4, precision="auto", cache=False).settings["precision"] == resolved


def test_precisions_never_share_a_cache_row(bert, tmp_path):
    db = tmp_path / "c.sqlite"
    a = word_weights(bert, [TEXT], IG(n_steps=4), cache=db, progress=False)
    b = word_weights(bert, [TEXT], IG(n_steps=4, precision="bf16"), cache=db, progress=False)
    again = word_weights(bert, [TEXT], IG(n_steps=4), cache=db, progress=False)
    assert not np.array_equal(a["raw_weight"], b["raw_weight"])
    np.testing.assert_array_equal(again["raw_weight"], a["raw_weight"])
    assert a.attrs["settings"] != b.attrs["settings"] and "precision" not in a.attrs["settings"]  # fp32: old keys


@pytest.mark.parametrize("value, fragment", [("float16", "fp32"), ("bfloat16", "'bfloat16' is 'bf16'"),
                                             ("auto", "precision must be one of")])
def test_an_unknown_precision_is_refused_naming_it(bert, value, fragment):
    with pytest.raises(ValueError, match=fragment):
        word_weights(bert, [TEXT], IG(n_steps=4, precision=value), cache=False, progress=False)


def test_training_in_bf16_is_its_own_run(tmp_path, monkeypatch):
    monkeypatch.setenv("SENTENCE_CACHE_DIR", str(tmp_path))
    config = training.MLMConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                                max_length=24)
    a = training.pretrain_mlm(TEXTS, steps=2, batch_size=4, config=config, progress=False)
    b = training.pretrain_mlm(TEXTS, steps=2, batch_size=4, config=config, progress=False, precision="bf16")
    assert a.parent != b.parent  # another run, named by its precision
    hist = training.history(b)
    assert np.isfinite(hist["loss"]).all()
    runs = training.simcse(b, objective="unsup", steps=2, batch_size=4, sentences=TEXTS, save_steps=(),
                           progress=False, precision="bf16")
    assert 2 in runs
    pair = training.SelfTrainedPair.of({"precision": "bf16"})
    assert pair.settings()["precision"] == "bf16" and "precision" not in training.SelfTrainedPair.of("book").settings()
    with pytest.raises(ValueError, match="precision"):
        training.SelfTrainedPair.of({"precision": "half"})


def test_the_sweep_keeps_fp32_shard_settings_and_names_bf16(data_dir):
    task = sweep.plan([{"name": "tiny-random-bert", "pooling": "mean"}], shard_size=2, n_sentences=2,
                      data_dir=data_dir)[0]
    fp32 = sweep.shard_settings(task, sweep.Options(), "f")
    bf16 = sweep.shard_settings(task, sweep.Options(precision="bf16"), "f")
    assert "precision" not in fp32 and bf16["precision"] == "bf16"


def test_the_engine_agrees_with_itself_across_chunk_sizes_in_bf16(bert):
    ids = tokenize(bert, TEXT)["input_ids"]
    a = ig_token_norms(bert, ids, n_steps=4, chunk_size=4, precision="bf16")["token_norms"]
    b = ig_token_norms(bert, ids, n_steps=4, chunk_size=32, precision="bf16")["token_norms"]
    np.testing.assert_allclose(a, b, rtol=2e-2)
    assert torch.get_default_dtype() == torch.float32  # autocast leaves nothing behind


def test_the_default_precision_is_the_books_unless_the_environment_says_otherwise():
    """``$SENTENCE_PRECISION`` sets the default of everything the chapters run (training, IG, SHAP, encode, the
    sweep; pairs take an IG object, so IG's default is theirs); an explicit argument wins; a wrong value is refused
    naming the variable."""
    import os
    import subprocess
    import sys

    probe = ("from helpers.attribution import IG, SHAP; from helpers.training import SelfTrainedPair; "
             "from helpers.sweep import Options; "
             "print(IG().precision, SHAP().precision, SelfTrainedPair.of('book').precision, "
             "Options().precision, IG(precision='fp32').precision)")
    env = {k: v for k, v in os.environ.items() if k != prec.ENV}
    run = lambda extra: subprocess.run([sys.executable, "-c", probe], env={**env, **extra}, capture_output=True,  # noqa: E731
                                       text=True)
    assert run({}).stdout.split() == [prec.BOOK] * 4 + ["fp32"]
    assert run({prec.ENV: "bf16"}).stdout.split() == ["bf16"] * 4 + ["fp32"]
    auto = "bf16" if prec.hardware("cpu")["native"] else "fp32"  # the lab path's setting: native units decide
    assert run({prec.ENV: "auto"}).stdout.split() == [auto] * 4 + ["fp32"]
    bad = run({prec.ENV: "fp16"})
    assert bad.returncode != 0 and "$SENTENCE_PRECISION='fp16'" in bad.stderr
