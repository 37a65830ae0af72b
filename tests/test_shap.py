import numpy as np
import pytest

from helpers import attribution as attr
from helpers.encoders import load_encoder


@pytest.fixture(scope="module")
def bert():
    return load_encoder("tiny-random-bert")


def test_shapley_by_enumeration_on_a_known_game():
    # v(S) = (sum of member weights) + 2 * [players 0 and 1 both in S]: phi = w + (1, 1, 0)
    w = np.array([1.0, 2.0, 3.0])
    def value(masks):
        return (masks @ w + 2.0 * (masks[:, 0] & masks[:, 1]))[:, None]
    phi, base = attr.shapley_by_enumeration(value, 3)
    np.testing.assert_allclose(phi[:, 0], [2.0, 3.0, 3.0])
    assert base[0] == 0.0


@pytest.mark.parametrize("text", ["Dogs run.", "A man plays guitar."])
def test_partition_shap_additivity_and_agreement_with_exact(bert, text):
    inputs = attr.tokenize(bert, text)
    part = attr.shap_token_norms(bert, text, inputs, max_evals=500)
    exact = attr.shap_token_norms(bert, text, inputs, algorithm="exact")
    assert part["completeness_gap"] < 1e-5 and exact["completeness_gap"] < 1e-5  # both are efficient
    # PartitionSHAP computes Owen values of shap's token hierarchy: they equal Shapley values when
    # the game is additive within each coalition split; the tiny random BERT is nearly additive,
    # so here they agree closely (not exactly in general).
    np.testing.assert_allclose(part["phi"], exact["phi"], atol=5e-4 * np.abs(exact["phi"]).max() + 1e-6)


def test_word_weights_shap_and_cache(bert, tmp_path):
    db = tmp_path / "c.sqlite"
    table = attr.word_weights(bert, ["A man is playing a guitar."], attr.SHAP(max_evals=200), cache=db, progress=False)
    assert table["word"].tolist() == ["a", "man", "is", "playing", "a", "guitar", "."]
    assert table["weight"].mean() == pytest.approx(1.0)
    assert table["completeness_gap"].max() < 1e-4
    again = attr.word_weights(bert, ["A man is playing a guitar."], attr.SHAP(max_evals=200), cache=db, progress=False)
    assert again.equals(table) and len(attr.AttributionCache(db)) == 1


def test_mask_collapse_is_a_visible_choice(bert):
    text = "A man with a hard hat is dancing."
    # what the choice means: with every token removed, per_token leaves one [MASK] per token, collapsed one in all
    n_tokens = len(bert.tokenizer(text)["input_ids"]) - 2
    for mask, expected in (("per_token", n_tokens), ("collapsed", 1)):
        masker = attr.shap_masker(bert, mask)
        nothing = np.zeros(masker.shape(text)[1], dtype=bool)
        masked = masker(nothing, text)[0][0]
        assert masked.count("[MASK]") == expected, (mask, masked)
    with pytest.raises(ValueError, match="shap_mask"):
        attr.word_weights(bert, [text], attr.SHAP(shap_mask="blank"), cache=False)


def test_string_pitfalls(bert):
    f = attr.shap_model(bert)
    # shap passes a numpy array of strings; a plain str must not be split into characters
    as_array = f(np.array(["A dog runs.", "A cat."], dtype=object))
    as_list = f(["A dog runs.", "A cat."])
    np.testing.assert_allclose(as_array, as_list)
    assert f("A dog runs.").shape == (1, bert.dim)
    table = attr.word_weights(bert, "A dog runs.", attr.SHAP(max_evals=100), cache=False, progress=False)
    assert table["word"].tolist() == ["a", "dog", "runs", "."]


def test_roberta_mask_token():
    roberta = load_encoder("tiny-random-roberta")
    masker = attr.shap_masker(roberta)
    assert masker.mask_token == "<mask>"
    table = attr.word_weights(roberta, ["Dogs run."], attr.SHAP(max_evals=100), cache=False, progress=False)
    assert table["word"].tolist() == ["Dogs", "run", "."]  # RoBERTa-type tokenizers are cased
