"""A new attribution method is one new file: the toy method below is written to a file of its own, imported, and
then accepted, by name or as an object, by word_weights, the sweep, the roster run, the explorer and explain() with no
edit anywhere else."""
import importlib.util
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

from helpers import attribution, explorer, sweep
from helpers.attribution import Method, word_weights
from helpers.data import load_sentences
from helpers.encoders import load_encoder
from helpers.information import word_information
from helpers.roster import roster_results

TOY = '''
"""A toy attribution method: each token's weight is the norm of its input embedding to a power."""
from dataclasses import dataclass

from helpers.attribution import Method


@dataclass
class EmbeddingNorm(Method):
    name = "embedding_norm"
    power: float = 1.0

    def token_norms(self, encoder, text, inputs):
        import torch

        with torch.no_grad():
            norms = encoder.embed_tokens(inputs["input_ids"])[0].norm(dim=-1) ** self.power
        return {"token_norms": norms.tolist(), "completeness_gap": 0.0}
'''

ROWS = [{"row": "tiny-bert", "name": "tiny-random-bert", "pooling": "mean", "base": None}]


@pytest.fixture()
def toy(tmp_path):
    path = tmp_path / "toy_method.py"
    path.write_text(textwrap.dedent(TOY))
    spec = importlib.util.spec_from_file_location("toy_method", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["toy_method"] = module
    spec.loader.exec_module(module)
    yield module.EmbeddingNorm
    Method.registry.pop("embedding_norm", None)
    sys.modules.pop("toy_method", None)


@pytest.fixture(scope="module")
def sentences(data_dir):
    return load_sentences("stsb", "validation", data_dir=data_dir, limit=6, seed=0)


def _expected(encoder, text, power):
    """The toy's word weights computed by hand: embedding norms to the power, subwords merged (Frobenius), mean 1."""
    import torch

    inputs = attribution.tokenize(encoder, text)
    with torch.no_grad():
        norms = (encoder.embed_tokens(inputs["input_ids"])[0].norm(dim=-1) ** power).numpy()
    words = {}
    for norm, w in zip(norms, inputs["word_ids"]):
        if w is not None:
            words[w] = words.get(w, 0.0) + norm ** 2
    raw = np.sqrt([words[w] for w in sorted(words)])
    return raw / raw.mean()


def test_word_weights_runs_a_method_from_a_new_file(toy, sentences):
    encoder = load_encoder("tiny-random-bert", pooling="mean")
    assert "embedding_norm" in attribution.methods()
    w = word_weights(encoder, sentences, toy(power=2.0), cache=False, progress=False)
    first = sentences["text"].iloc[0]
    got = w[w["sentence_id"] == sentences["sentence_id"].iloc[0]]["weight"].to_numpy()
    np.testing.assert_allclose(got, _expected(encoder, first, 2.0), rtol=1e-5)
    by_name = word_weights(encoder, sentences, "embedding_norm", cache=False, progress=False)  # its defaults
    np.testing.assert_allclose(by_name["weight"], word_weights(encoder, sentences, toy(), cache=False,
                                                               progress=False)["weight"])
    assert w.attrs["settings"]["power"] == 2.0  # the method's settings are in the cache key
    with pytest.raises(TypeError, match=r"method=EmbeddingNorm\(power=2.0\)"):  # a setting beside the method
        word_weights(encoder, sentences, "embedding_norm", power=2.0, cache=False, progress=False)
    with pytest.raises(TypeError, match="scale"):
        word_weights(encoder, sentences, "embedding_norm", scale=3, cache=False, progress=False)


def test_the_cache_keeps_methods_and_their_settings_apart(toy, sentences, tmp_path):
    encoder = load_encoder("tiny-random-bert", pooling="mean")
    cache = tmp_path / "cache.sqlite"
    one = word_weights(encoder, sentences, toy(power=1.0), cache=cache, progress=False)
    two = word_weights(encoder, sentences, toy(power=3.0), cache=cache, progress=False)
    assert not np.allclose(one["weight"], two["weight"])


def test_the_sweep_the_roster_run_and_the_explorer_accept_it(toy, sentences, data_dir, tmp_path):
    tasks = sweep.plan(ROWS, datasets=("stsb",), methods=("embedding_norm",), shard_size=4, n_sentences=6,
                       data_dir=data_dir)
    options = sweep.Options(extra={"power": 2.0})
    for task in tasks:
        sweep.compute_shard(task, str(tmp_path / "sweep"), options)
    union = sweep.load(str(tmp_path / "sweep"))
    assert set(union["method"]) == {"embedding_norm"} and len(union)
    encoder = load_encoder("tiny-random-bert", pooling="mean")
    text = tasks[0].texts[0]
    got = union[union["sentence_id"] == tasks[0].sentence_ids[0]].sort_values("word_index")["weight"].to_numpy()
    np.testing.assert_allclose(got, _expected(encoder, text, 2.0), rtol=1e-5)
    with pytest.raises(sweep.SweepMismatch, match="power"):  # other settings on the same output are refused
        sweep.compute_shard(tasks[0], str(tmp_path / "sweep"), sweep.Options(extra={"power": 1.0}))

    table, weights, _ = roster_results(ROWS, sentences, sentences, "stsb", methods=[toy(power=2.0)], n_boot=20,
                                       progress=False)
    assert set(table["method"]) == {"embedding_norm"} and table["r2"].notna().all()
    np.testing.assert_allclose(weights[("tiny-bert", "embedding_norm")].query("sentence_id == @tasks[0].sentence_ids[0]")
                               ["weight"], _expected(encoder, text, 2.0), rtol=1e-5)

    info = word_information(sentences, tokenizer=encoder.tokenizer)
    shown = explorer.sentence_weights(text, "tiny-random-bert", "mean", info, method="embedding_norm")
    np.testing.assert_allclose(shown["weight"], _expected(encoder, text, 1.0), rtol=1e-5)
    shown = explorer.sentence_weights(text, "tiny-random-bert", "mean", info, method=toy(power=2.0))
    np.testing.assert_allclose(shown["weight"], _expected(encoder, text, 2.0), rtol=1e-5)
    with pytest.raises(ValueError, match="registered method"):
        explorer.sentence_weights(text, "tiny-random-bert", "mean", "stsb", method="no_such_method")


def test_explain_accepts_it_by_name_and_as_an_object(toy, sentences):
    from helpers.explain import explain

    encoder = load_encoder("tiny-random-bert", pooling="mean")
    text = sentences["text"].iloc[0]
    e = explain(encoder, text, method=toy(power=2.0), cache=False)
    assert e.method == "embedding_norm"
    np.testing.assert_allclose(e.table["weight"], _expected(encoder, text, 2.0), rtol=1e-5)
    by_name = explain(encoder, text, method="embedding_norm", cache=False)
    np.testing.assert_allclose(by_name.table["weight"], _expected(encoder, text, 1.0), rtol=1e-5)
    for given in ({"n_steps": 10}, {"exact": True}, {"baseline": "zero"}):  # IG's keywords do not reach this method
        with pytest.raises(ValueError, match=next(iter(given))):
            explain(encoder, text, method=toy(power=2.0), cache=False, **given)
        with pytest.raises(ValueError, match=next(iter(given))):
            explain(encoder, text, method="embedding_norm", cache=False, **given)


def test_the_chapters_and_the_sweep_use_one_settings_object(sentences):
    """An IG object gives the same weights through word_weights, the roster run and the sweep's options."""
    from helpers.attribution import IG

    encoder = load_encoder("tiny-random-bert", pooling="mean")
    ig = IG(n_steps=4, projections=4, seed=3)
    direct = word_weights(encoder, sentences, ig, cache=False, progress=False)
    _, weights, _ = roster_results(ROWS, sentences, sentences, "stsb", methods=[ig], n_boot=10, progress=False)
    np.testing.assert_allclose(weights[("tiny-bert", "ig")]["weight"], direct["weight"])
    assert sweep.Options(n_steps=4, projections=4, seed=3).method("ig") == ig
    with pytest.raises(TypeError, match="methods must be a list"):
        roster_results(ROWS, sentences, sentences, "stsb", methods="ig", progress=False)
    with pytest.raises(TypeError, match="projection"):
        ig.replace(projection=8)
