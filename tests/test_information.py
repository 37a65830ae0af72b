import numpy as np
import pytest

from helpers.data import load_sentences
from helpers.information import context_distribution, word_information
from helpers.units import split_words


def test_hand_computed_corpus():
    info = word_information(["a b", "a c"]).set_index("word")
    # p = (1/2, 1/4, 1/4); "a" is in every sentence, so p(.|a) = p(.) and KL(a) = 0
    assert info.loc["a", "p"] == pytest.approx(0.5)
    assert info.loc["a", "kl"] == pytest.approx(0.0, abs=1e-12)
    # p(.|b) = (1/2, 1/2, 0): KL = 1/2 log(1/2 / 1/2) + 1/2 log(1/2 / 1/4) = log(2) / 2
    assert info.loc["b", "kl"] == pytest.approx(np.log(2) / 2)
    assert info.loc["c", "kl"] == pytest.approx(np.log(2) / 2)
    assert info.loc["b", "self_info"] == pytest.approx(np.log(4))
    assert info.loc["a", "idf"] == pytest.approx(0.0) and info.loc["b", "idf"] == pytest.approx(np.log(2))
    assert info.loc["a", "sif"] == pytest.approx(1e-3 / (1e-3 + 0.5))


def test_repeated_word_counts_its_own_occurrences():
    # n(x, .) over the one sentence containing x: x twice, y once -> p(.|x) = (2/3, 1/3, 0)
    info = word_information(["x x y", "z z z"]).set_index("word")
    p = {"x": 2 / 6, "y": 1 / 6, "z": 3 / 6}
    expected = 2 / 3 * np.log((2 / 3) / p["x"]) + 1 / 3 * np.log((1 / 3) / p["y"])
    assert info.loc["x", "kl"] == pytest.approx(expected)


def test_invariants_on_stsb(data_dir):
    sentences = load_sentences("stsb", data_dir=data_dir)
    info = word_information(sentences)
    assert (info["kl"] >= -1e-12).all()
    np.testing.assert_allclose(info["self_info"], -np.log(info["p"]))
    assert info["p"].sum() == pytest.approx(1.0)
    assert info["count"].sum() == info.attrs["n_tokens"]
    # the paper's example: "the" carries less information than a content word
    by_word = info.set_index("word")
    assert by_word.loc["the", "kl"] < by_word.loc["guitar", "kl"]
    # min_count drops rows, not mass from the distributions
    kept = word_information(sentences, min_count=5).set_index("word")
    assert (kept["count"] >= 5).all() and kept.loc["the", "kl"] == pytest.approx(by_word.loc["the", "kl"])


def test_evenly_spread_word_has_zero_kl():
    rng = np.random.default_rng(0)
    sentences = [" ".join(["the"] + list(rng.choice(list("bcdefgh"), size=4))) for _ in range(200)]
    info = word_information(sentences).set_index("word")
    assert info.loc["the", "kl"] == pytest.approx(0.0, abs=1e-12)
    assert (info.drop("the")["kl"] > 0).all()


def test_word_units():
    assert split_words("A man's Guitar.") == ["a", "man", "'", "s", "guitar", "."]
    # the word is the sentence's own text: lower-cased only because this tokenizer is uncased
    assert split_words("A man's Guitar.", lowercase=False)[-2] == "Guitar"


def test_word_units_match_a_real_tokenizer():
    transformers = pytest.importorskip("transformers")
    from helpers.encoders import resolve_model_path

    tok = transformers.AutoTokenizer.from_pretrained(resolve_model_path("all-MiniLM-L6-v2"))
    text = "A young child's kite, unexpectedly airborne!"
    assert split_words(text, tok) == split_words(text)
    enc = tok(text)
    n_words = max(i for i in enc.word_ids() if i is not None) + 1
    assert n_words == len(split_words(text, tok))


def test_context_distribution_and_errors():
    ctx = context_distribution(["a b", "a c"], "b")
    assert set(ctx["context"]) == {"a", "b"} and ctx["p_given_word"].sum() == pytest.approx(1.0)
    with pytest.raises(KeyError):
        context_distribution(["a b"], "zzz")
    with pytest.raises(ValueError):
        word_information([])
    with pytest.raises(TypeError):
        word_information("a bare string")
