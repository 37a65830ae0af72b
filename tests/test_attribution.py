import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from helpers import attribution as attr
from helpers.encoders import load_encoder

SENTENCE = "A man is playing a guitar."


@pytest.fixture(scope="module", params=["tiny-random-bert", "tiny-random-roberta"])
def tiny(request):
    return load_encoder(request.param)


@pytest.fixture(scope="module")
def bert():
    return load_encoder("tiny-random-bert")


@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_exact_engine_equals_captum_loop(tiny, pooling):
    enc = load_encoder(tiny.name, pooling=pooling)
    ids = attr.tokenize(enc, SENTENCE)["input_ids"]
    for quadrature in ("gausslegendre", "riemann_trapezoid"):
        ours = attr.ig_token_norms(enc, ids, n_steps=12, quadrature=quadrature, chunk_size=7)["token_norms"]
        ref = attr.ig_captum_token_norms(enc, ids, n_steps=12, quadrature=quadrature)
        np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-7)
        assert ours[0] == 0 and ours[-1] == 0  # special tokens keep their embedding: no attribution


def test_completeness(tiny):
    ids = attr.tokenize(tiny, SENTENCE)["input_ids"]
    coarse = attr.ig_token_norms(tiny, ids, n_steps=2, quadrature="riemann_left")["completeness_gap"]
    fine = attr.ig_token_norms(tiny, ids, n_steps=64)["completeness_gap"]
    assert fine < 1e-3 and fine < coarse


def test_the_completeness_grid_is_computed_once_per_model_texts_and_settings(bert, tmp_path, monkeypatch):
    """Chapter 03's grid is read back from .cache/completeness on a rebuild, bit for bit; other texts, another
    setting or a changed weight compute it anew, and so does a damaged entry."""
    from helpers.attribution import ig

    monkeypatch.setenv("SENTENCE_CACHE_DIR", str(tmp_path))
    texts, grid = [SENTENCE, "The cat sat."], [2, 4]
    first = attr.completeness_by_steps(bert, texts, grid, progress=False)
    assert first.equals(attr.completeness_by_steps(bert, texts, grid, progress=False, cache=False))
    calls = []
    original = ig.tokenize  # called once per text and grid point (the code that computes is part of the key)
    monkeypatch.setattr(ig, "tokenize", lambda *a, **k: calls.append(1) or original(*a, **k))
    assert attr.completeness_by_steps(bert, texts, grid, progress=False).equals(first) and not calls
    attr.completeness_by_steps(bert, texts[:1], grid, progress=False)  # other texts
    attr.completeness_by_steps(bert, texts, grid, projections=8, progress=False)  # another setting
    assert len(calls) == 2 * 4 + 4
    with torch.no_grad():
        bert.model.get_input_embeddings().weight[5:9] *= -1.0
    try:
        attr.completeness_by_steps(bert, texts, grid, progress=False)  # a changed weight
        assert len(calls) == 2 * 4 + 4 + 2 * 4
    finally:
        with torch.no_grad():
            bert.model.get_input_embeddings().weight[5:9] *= -1.0
    for entry in (tmp_path / "completeness").glob("*.parquet"):
        entry.write_bytes(entry.read_bytes()[:40])  # truncated: computed again, not trusted
    assert attr.completeness_by_steps(bert, texts, grid, progress=False).equals(first)
    with pytest.raises(ValueError, match="quadrature must be one of"):
        attr.completeness_by_steps(bert, texts, grid, quadratures=("simpson",), progress=False)


def test_sketch_is_unbiased_and_exact_at_full_rank(bert):
    ids = attr.tokenize(bert, SENTENCE)["input_ids"]
    exact = attr.ig_token_norms(bert, ids, n_steps=8)["token_norms"] ** 2
    full = attr.ig_token_norms(bert, ids, n_steps=8, projections=bert.dim)["token_norms"] ** 2
    np.testing.assert_allclose(full, exact, rtol=1e-4)  # orthogonal blocks of full rank are exact
    for sketch in ("gaussian", "orthogonal"):
        draws = np.stack([attr.ig_token_norms(bert, ids, n_steps=8, projections=4, sketch=sketch, seed=s)["token_norms"] ** 2
                          for s in range(200)])
        words = exact > 0
        np.testing.assert_allclose(draws.mean(0)[words], exact[words], rtol=0.1)
    gauss = np.stack([attr.ig_token_norms(bert, ids, n_steps=8, projections=8, sketch="gaussian", seed=s)["token_norms"] ** 2 for s in range(60)])
    orth = np.stack([attr.ig_token_norms(bert, ids, n_steps=8, projections=8, sketch="orthogonal", seed=s)["token_norms"] ** 2 for s in range(60)])
    assert orth.std(0)[words].mean() < gauss.std(0)[words].mean()


def test_projection_matrix_second_moment():
    v = attr.projection_matrix(16, 16 * 200, "orthogonal", seed=0)
    np.testing.assert_allclose((v.T @ v / len(v)).numpy(), np.eye(16), atol=1e-4)  # exact per block
    g = attr.projection_matrix(16, 20000, "gaussian", seed=0)
    np.testing.assert_allclose((g.T @ g / len(g)).numpy(), np.eye(16), atol=0.05)


def test_word_aggregation_over_subwords():
    # word 0 = one token (3), word 1 = two tokens (3, 4), special tokens dropped
    words = attr.aggregate_words([9.0, 3.0, 3.0, 4.0, 9.0], [None, 0, 1, 1, None], ["a", "bc"], "frobenius", "none")
    assert words["raw_weight"].tolist() == pytest.approx([3.0, 5.0])
    assert words["n_subwords"].tolist() == [1, 2]
    rms = attr.aggregate_words([0, 3.0, 3.0, 4.0, 0], [None, 0, 1, 1, None], ["a", "bc"], "rms", "none")
    assert rms["raw_weight"].tolist() == pytest.approx([3.0, np.sqrt(12.5)])
    first = attr.aggregate_words([0, 3.0, 3.0, 4.0, 0], [None, 0, 1, 1, None], ["a", "bc"], "first", "none")
    assert first["raw_weight"].tolist() == [3.0, 3.0]
    mean1 = attr.aggregate_words([0, 3.0, 3.0, 4.0, 0], [None, 0, 1, 1, None], ["a", "bc"], "frobenius", "mean1")
    assert mean1["weight"].mean() == pytest.approx(1.0)
    times = attr.aggregate_words([0, 3.0, 3.0, 4.0, 0], [None, 0, 1, 1, None], ["a", "bc"], "sum", "times_length")
    assert times["weight"].tolist() == pytest.approx([6.0, 14.0])
    with pytest.raises(ValueError):
        attr.aggregate_words([1.0], [0], ["a"], "median")


def test_word_weights_on_a_multi_subword_tokenizer(tmp_path):
    roberta = load_encoder("tiny-random-roberta")  # byte-level: every character is a token
    table = attr.word_weights(roberta, ["A man is playing."], attr.IG(n_steps=8), cache=tmp_path / "c.sqlite", progress=False)
    assert table["word"].tolist() == ["A", "man", "is", "playing", "."]  # a cased tokenizer keeps the case
    assert table["n_subwords"].tolist() == [1, 4, 3, 8, 1]  # the space marker joins the next word
    assert table["weight"].mean() == pytest.approx(1.0)


def test_word_weights_cache_resumes_and_reuses(bert, tmp_path, monkeypatch):
    db = tmp_path / "cache.sqlite"
    sentences = pd.DataFrame({"sentence_id": [10, 11, 12], "text": [SENTENCE, "A dog runs.", "Two kids play chess."]})
    first = attr.word_weights(bert, sentences.iloc[:2], attr.IG(n_steps=8), cache=db, progress=False)
    assert len(attr.AttributionCache(db)) == 2
    calls = []
    original = attr.ig_token_norms
    monkeypatch.setattr(attr.ig, "ig_token_norms", lambda *a, **k: calls.append(1) or original(*a, **k))
    full = attr.word_weights(bert, sentences, attr.IG(n_steps=8), cache=db, progress=False)
    assert len(calls) == 1  # only the new sentence is computed
    pd.testing.assert_frame_equal(full[full["sentence_id"] != 12].reset_index(drop=True), first)
    # a different option is a different cache entry; post-processing options are not
    attr.word_weights(bert, sentences.iloc[:1], attr.IG(n_steps=8), word_agg="rms", normalize="none", cache=db, progress=False)
    assert len(calls) == 1
    attr.word_weights(bert, sentences.iloc[:1], attr.IG(n_steps=8, baseline="mask"), cache=db, progress=False)
    assert len(calls) == 2


def test_baselines(bert):
    ids = attr.tokenize(bert, SENTENCE)["input_ids"]
    tok = bert.tokenizer
    x = bert.embed_tokens(ids)
    pad = attr.baseline_embeddings(bert, ids, "pad")
    torch.testing.assert_close(pad[0, 0], x[0, 0])  # [CLS] kept
    torch.testing.assert_close(pad[0, 1], bert.embed_tokens(torch.tensor([[tok.pad_token_id]]))[0, 0])
    zero = attr.baseline_embeddings(bert, ids, "zero")
    assert zero[0, 1:-1].abs().sum() == 0 and torch.equal(zero[0, -1], x[0, -1])
    words = slice(1, -1)
    for name, token_id in (("mask", tok.mask_token_id), ("unk", tok.unk_token_id)):
        emb = attr.baseline_embeddings(bert, ids, name)
        expected = bert.embed_tokens(torch.full_like(ids[:, words], token_id))
        torch.testing.assert_close(emb[:, words], expected)
        torch.testing.assert_close(emb[0, [0, -1]], x[0, [0, -1]])
    # each baseline's IG sums to f(x) - f(x'), its own baseline: completeness holds for all four
    for b in attr.BASELINES:
        assert attr.ig_token_norms(bert, ids, n_steps=32, baseline=b)["completeness_gap"] < 1e-3, b
    with pytest.raises(ValueError, match="baseline"):
        attr.baseline_embeddings(bert, ids, "blank")


def test_bad_input(bert):
    with pytest.raises(ValueError, match="empty"):
        attr.word_weights(bert, ["   "], cache=False, progress=False)
    long = " ".join(["word"] * 300)
    with pytest.raises(ValueError, match="more than the model"):
        attr.tokenize(bert, long, truncate=False)
    with pytest.warns(UserWarning, match="truncated"):
        inputs = attr.tokenize(bert, long)
    assert inputs["input_ids"].shape[1] == bert.max_length
    with pytest.raises(ValueError, match="method"):
        attr.word_weights(bert, [SENTENCE], method="lime", cache=False)
    with pytest.raises(ValueError, match="n_steps"):
        attr.word_weights(bert, [SENTENCE], attr.IG(n_steps=1), cache=False)
    with pytest.raises(ValueError, match="quadrature"):
        attr.word_weights(bert, [SENTENCE], attr.IG(quadrature="simpson"), cache=False)


def test_gap_warning(bert):
    # the tiny random model is nearly linear, so a coarse rule and a strict threshold trigger it
    with pytest.warns(UserWarning, match="completeness gap"):
        table = attr.word_weights(bert, [SENTENCE], attr.IG(n_steps=2, quadrature="riemann_left"), cache=False, progress=False, gap_warning=1e-9)
    assert table["completeness_gap"].iloc[0] > 1e-9
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        attr.word_weights(bert, [SENTENCE], attr.IG(n_steps=16), cache=False, progress=False)
