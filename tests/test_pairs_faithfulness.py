"""Chapters 10 and 11: word-pair contributions add up to the similarity; deletion curves have known answers."""
import numpy as np
import pandas as pd
import pytest

from helpers import faithfulness
from helpers.attribution import IG, pairs
from helpers.encoders import load_encoder
from helpers.information import word_information
from helpers.units import split_words


@pytest.fixture(scope="module")
def tiny():
    return load_encoder("tiny-random-bert")


@pytest.mark.parametrize("similarity", ["dot", "cosine"])
def test_pair_contributions_add_up_to_the_similarity(tiny, similarity):
    a, b = "a man plays a guitar .", "a man is playing some music ."
    t = pairs.pair_weights(tiny, a, b, IG(n_steps=64), similarity=similarity, cache=False)
    assert len(t) == len(split_words(a)) * len(split_words(b))
    fa, fb = tiny.encode([a, b])
    if similarity == "cosine":
        fa, fb = fa / np.linalg.norm(fa), fb / np.linalg.norm(fb)
    assert t.attrs["score"] == pytest.approx(float(fa @ fb), rel=1e-5)
    assert t["contribution"].sum() + t.attrs["reference"] == pytest.approx(t.attrs["score"], rel=1e-4, abs=1e-6)
    assert t.attrs["completeness_gap"] < 1e-4
    coarse = pairs.pair_weights(tiny, a, b, IG(n_steps=2), similarity=similarity, cache=False)
    assert coarse.attrs["completeness_gap"] > t.attrs["completeness_gap"]  # the gap measures the quadrature


def test_pair_weights_take_the_ig_object_and_keep_their_cache_keys(tiny):
    """The pair's settings come from one IG object (as word_weights' do); IG's settings beside it, or another
    method, are refused; the cache key is the one pairs had before (a book's cache still serves them)."""
    from helpers import explain as ex
    from helpers.attribution import SHAP

    a, b = "a man plays a guitar .", "a man is playing some music ."
    t = pairs.pair_weights(tiny, a, b, IG(n_steps=8, projections=16, seed=3), cache=False)
    assert t.attrs["settings"] == {"kind": "pair", "engine": 2, "model": tiny.name, "fingerprint": tiny.fingerprint(),
                                   "pooling": tiny.pooling, "normalize_output": tiny.normalize, "n_steps": 8,
                                   "projections": 16, "similarity": "dot", "baseline": "pad", "seed": 3}
    assert pairs.pair_weights(tiny, a, b, cache=False).attrs["settings"]["n_steps"] == 50  # IG(): exact, 50 points
    bf16 = pairs.pair_weights(tiny, a, b, IG(n_steps=4, precision="bf16"), cache=False).attrs["settings"]
    assert bf16["precision"] == "bf16" and "quadrature" not in bf16
    riemann = pairs.pair_weights(tiny, a, b, IG(n_steps=4, quadrature="riemann_trapezoid"), cache=False)
    assert riemann.attrs["settings"]["quadrature"] == "riemann_trapezoid"  # another rule, another key
    with pytest.raises(TypeError, match=r"pair_weights\(\) got n_steps=20.*method=IG\(n_steps=20\)"):
        pairs.pair_weights(tiny, a, b, n_steps=20)
    with pytest.raises(TypeError, match="IG only"):
        pairs.pair_weights(tiny, a, b, SHAP(max_evals=50))
    with pytest.raises(ValueError, match="a pair is explained by exact IG"):
        ex.explain("tiny-random-bert", a, b, method=IG(n_steps=8, projections=16), cache=False)


def test_pair_contributions_are_bilinear_in_the_two_sentences(tiny):
    """Swapping a and b transposes the matrix; the sketch estimates the exact contributions."""
    a, b = "the dog runs .", "a cat sleeps on the mat ."
    ab = pairs.pair_matrix(pairs.pair_weights(tiny, a, b, IG(n_steps=32), cache=False))
    ba = pairs.pair_matrix(pairs.pair_weights(tiny, b, a, IG(n_steps=32), cache=False))
    assert np.allclose(ab.to_numpy(), ba.to_numpy().T, atol=1e-8)
    sketch = pairs.pair_matrix(pairs.pair_weights(tiny, a, b, IG(n_steps=32, projections=tiny.dim * 4),
                                                  cache=False))
    exact = ab.to_numpy().ravel()
    assert np.corrcoef(exact, sketch.to_numpy().ravel())[0, 1] > 0.9


def test_pair_shares():
    t = pd.DataFrame({"word_a": ["guitar", "guitar", "a"], "word_b": ["guitar", "a", "a"],
                      "contribution": [3.0, -1.0, 1.0]})
    kl = pd.Series({"guitar": 2.0, "a": 0.1, "x": 0.5, "y": 0.4})
    shares = pairs.pair_shares(t, kl)
    assert shares["share_identical"] == pytest.approx(4 / 5) and shares["share_top_kl"] == pytest.approx(3 / 5)


class BagOfWords:
    """A linear bag-of-words encoder whose deletion curve is known in closed form."""

    def __init__(self, tokenizer, vectors: dict):
        self.tokenizer, self.vectors = tokenizer, vectors

    def encode(self, texts, batch_size=64):
        out = []
        for text in texts:
            words = [w for w in text.lower().split() if w in self.vectors]
            out.append(np.mean([self.vectors[w] for w in words], axis=0) if words else np.zeros(3))
        return np.array(out)


def test_deletion_curve_matches_the_closed_form(tiny):
    vectors = {"big": np.array([4.0, 0, 0]), "dog": np.array([0, 3.0, 0]), "barks": np.array([0, 0, 1.0]),
               "[mask]": np.zeros(3)}
    enc = BagOfWords(tiny.tokenizer, vectors)
    sentences = pd.DataFrame({"sentence_id": [7], "text": ["big dog barks"]})
    ranking = pd.DataFrame({"sentence_id": [7, 7, 7], "word_index": [0, 1, 2], "score": [3.0, 2.0, 1.0]})
    curves = faithfulness.deletion_curve(enc, sentences, ranking, k_max=2, removal="delete")
    full = np.array([4.0, 3, 1]) / 3

    def one_minus_cos(v):
        return 1 - v @ full / (np.linalg.norm(v) * np.linalg.norm(full))

    deletion = curves[curves["curve"] == "deletion"].set_index("k")["value"]
    assert deletion[1] == pytest.approx(one_minus_cos(np.array([0, 3.0, 1]) / 2))   # "big" removed
    assert deletion[2] == pytest.approx(one_minus_cos(np.array([0, 0, 1.0])))       # "big dog" removed
    insertion = curves[curves["curve"] == "insertion"].set_index("k")["value"]
    assert insertion[1] == pytest.approx(1 - one_minus_cos(np.array([4.0, 0, 0])))  # only "big" kept
    masked = faithfulness.deletion_curve(enc, sentences, ranking, k_max=1, removal="mask")
    # a [MASK] is a word of the mean here (a zero vector): 1 - cos is unchanged, the mean is not
    assert masked.loc[masked["curve"] == "deletion", "value"].iloc[0] == pytest.approx(deletion[1])
    worse = faithfulness.deletion_curve(enc, sentences, ranking.assign(score=-ranking["score"]), k_max=2,
                                        removal="delete")
    a, b = faithfulness.aopc(curves, n_boot=10), faithfulness.aopc(worse, n_boot=10)
    assert a["aopc"] > b["aopc"]  # removing the biggest vector first moves the sentence more


def test_deletion_curves_are_computed_once_per_model_sentences_and_order(tiny, tmp_path, monkeypatch):
    """Chapter 11's curves are read back from .cache/deletion, bit for bit; a ranking with the same order (other
    scores) is served, another order, another removal or a changed weight is computed anew."""
    import torch

    monkeypatch.setenv("SENTENCE_CACHE_DIR", str(tmp_path))
    sentences = pd.DataFrame({"sentence_id": ["007", "8"], "text": ["a man plays a guitar .", "the dog barks ."]})
    ranking = pd.DataFrame({"sentence_id": ["007"] * 6 + ["8"] * 4, "word_index": [0, 1, 2, 3, 4, 5, 0, 1, 2, 3],
                            "score": [6.0, 5, 4, 3, 2, 1, 4, 3, 2, 1]})
    first = faithfulness.deletion_curve(tiny, sentences, ranking, k_max=3)
    assert first.equals(faithfulness.deletion_curve(tiny, sentences, ranking, k_max=3, cache=False))
    assert first["sentence_id"].tolist()[0] == "007"  # the ids come back as they were given
    calls = []
    original = tiny.encode
    monkeypatch.setattr(tiny, "encode", lambda *a, **k: calls.append(1) or original(*a, **k))
    same_order = ranking.assign(score=ranking["score"] * 10)
    assert faithfulness.deletion_curve(tiny, sentences, same_order, k_max=3).equals(first) and not calls
    faithfulness.deletion_curve(tiny, sentences, ranking.assign(score=-ranking["score"]), k_max=3)
    faithfulness.deletion_curve(tiny, sentences, ranking, k_max=3, removal="delete")
    assert len(calls) == 2
    with torch.no_grad():
        tiny.model.get_input_embeddings().weight[5:9] *= -1.0
    try:
        faithfulness.deletion_curve(tiny, sentences, ranking, k_max=3)
        assert len(calls) == 3
    finally:
        with torch.no_grad():
            tiny.model.get_input_embeddings().weight[5:9] *= -1.0
    faithfulness.deletion_curve(tiny, sentences, ranking, k_max=3)
    assert len(calls) == 3  # the weights restored: served again
    curves = faithfulness._curves
    monkeypatch.setattr(faithfulness, "_curves", lambda *a: curves(*a))  # other code computing the curves
    faithfulness.deletion_curve(tiny, sentences, ranking, k_max=3)
    assert len(calls) == 4
    from helpers import precision

    monkeypatch.setattr(precision, "DEFAULT", "bf16")  # $SENTENCE_PRECISION=bf16: encode() runs in bf16
    faithfulness.deletion_curve(tiny, sentences, ranking, k_max=3)
    assert len(calls) == 5


def test_edit_sentence_and_rankings(tiny):
    text = "A man, playing guitar."
    assert faithfulness.edit_sentence(text, tiny.tokenizer, {1, 2}, "delete") == "A playing guitar."
    assert faithfulness.edit_sentence(text, tiny.tokenizer, {1}, "mask") == "A [MASK], playing guitar."
    with pytest.raises(ValueError, match="removal must be one of"):
        faithfulness.edit_sentence(text, tiny.tokenizer, {1}, "drop")
    info = word_information(["a man playing guitar .", "a man eats ."])
    base = pd.DataFrame({"sentence_id": [0] * 4, "word_index": [0, 1, 2, 3], "word": ["a", "man", "theremin", "."],
                         "weight": [0.5, 1.5, 1.2, 0.8]})
    ranks = faithfulness.rankings({"IG": base}, info, base, seeds=(0,))
    assert set(ranks) == {"IG", "reverse IG", "KL", "I", "IDF", "random (seed 0)"}
    order = faithfulness.rank_words(ranks["KL"])[0]
    assert order[-1] == 2  # "theremin" is unseen: no KL, ranked last (not as zero information)
    assert faithfulness.rank_words(ranks["reverse IG"])[0] == faithfulness.rank_words(ranks["IG"])[0][::-1]
    with pytest.raises(ValueError, match="has no words for sentences"):
        faithfulness.deletion_curve(tiny, pd.DataFrame({"sentence_id": [5], "text": ["a b"]}), ranks["IG"])


def test_pair_weights_are_cached_and_a_damaged_row_is_recomputed(tiny, tmp_path):
    import sqlite3
    import warnings

    cache = tmp_path / "pairs.sqlite"
    first = pairs.pair_weights(tiny, "a dog runs .", "a cat sleeps .", IG(n_steps=8), cache=cache)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a valid row is served silently
        again = pairs.pair_weights(tiny, "a dog runs .", "a cat sleeps .", IG(n_steps=8), cache=cache)
    assert again["contribution"].tolist() == first["contribution"].tolist()
    db = sqlite3.connect(cache)
    db.execute("UPDATE weights SET value = replace(value, '\"score\"', '\"scores\"')")
    db.commit()
    with pytest.warns(UserWarning, match="is invalid"):
        fixed = pairs.pair_weights(tiny, "a dog runs .", "a cat sleeps .", IG(n_steps=8), cache=cache)
    assert fixed.attrs["score"] == pytest.approx(first.attrs["score"])


def test_forward_mode_contributions_equal_the_backward_engine(tiny):
    """J from Jacobian-vector products (one per token) equals J from D backward passes, and adds up to f(X) - f(X')."""
    import torch

    from helpers.attribution import ig_token_outputs, tokenize
    from helpers.attribution.ig import _ig_engine  # the backward engine itself, the reference for this test

    inputs = tokenize(tiny, "a man with a hard hat is dancing .")
    keep = torch.tensor([[w is None for w in inputs["word_ids"]]])
    forward = ig_token_outputs(tiny, inputs["input_ids"], n_steps=16, keep=keep, chunk_size=3)
    _, _, _, chunks = _ig_engine(tiny, inputs["input_ids"], 16, "gausslegendre", "pad", keep, torch.eye, 4)
    backward = torch.cat([ig.sum(-1).T for _, ig in chunks], dim=1).double().numpy()
    assert np.allclose(forward["J"], backward, atol=1e-5)
    assert np.allclose(forward["J"].sum(0), forward["f_x"] - forward["f_ref"], atol=1e-4)


def test_recovery_is_the_ratio_of_aopcs_with_a_paired_interval():
    """(AOPC_KL - AOPC_random) / (AOPC_IG - AOPC_random) from the curves, and an interval that widens when IG is
    barely better than random (the denominator's instability)."""
    rng = np.random.default_rng(0)
    rows = []
    for sid in range(40):
        noise = rng.normal(0, 0.02)
        for ranking, value in (("IG", 0.6), ("KL", 0.5), ("random (seed 0)", 0.3), ("random (seed 1)", 0.3)):
            for k in (1, 2):
                rows.append({"sentence_id": sid, "k": k, "curve": "deletion", "ranking": ranking,
                             "value": value + noise + rng.normal(0, 0.05)})
    curves = pd.DataFrame(rows)
    r = faithfulness.recovery(curves, "KL")
    per = curves.groupby(["ranking"])["value"].mean()
    rand = (per["random (seed 0)"] + per["random (seed 1)"]) / 2
    assert r["recovery"] == pytest.approx((per["KL"] - rand) / (per["IG"] - rand))
    assert r["recovery_low"] < r["recovery"] < r["recovery_high"] and r["n_sentences"] == 40
    weak = curves.assign(value=np.where(curves["ranking"] == "IG", curves["value"] - 0.28, curves["value"]))
    w = faithfulness.recovery(weak, "KL")
    assert w["recovery_high"] - w["recovery_low"] > 5 * (r["recovery_high"] - r["recovery_low"])
    with pytest.raises(ValueError, match="no ranking"):
        faithfulness.recovery(curves, "SHAP")


def test_paired_mean_difference_states_a_direction_only_when_the_interval_excludes_zero():
    from helpers.rules import paired_mean_difference

    rng = np.random.default_rng(1)
    base = pd.DataFrame({"pair_id": range(50), "share": rng.uniform(0.0, 1.0, 50)})
    up = base.assign(share=base["share"] + 0.05 + rng.normal(0, 0.01, 50))
    same = base.assign(share=base["share"] + rng.normal(0, 0.05, 50))
    d = paired_mean_difference(up, base, "share")
    assert d["direction"] == "higher" and d["diff_low"] > 0 and d["diff"] == pytest.approx(
        (up["share"] - base["share"]).mean())
    assert paired_mean_difference(base, up, "share")["direction"] == "lower"
    assert paired_mean_difference(same, base, "share")["direction"] == "no detectable change"
    # pairs are matched by id, not by row order: shuffled rows give the same answer
    assert paired_mean_difference(up.sample(frac=1, random_state=0), base, "share")["direction"] == "higher"


def test_the_faithfulness_study_is_the_chapters_three_tables(tmp_path, monkeypatch):
    """Chapter 11 in one call: every ranking and removal per model, KL, I and IDF against IG, every curve; the same
    numbers as the measure layer's own calls."""
    from helpers import results
    from helpers.attribution import SHAP, word_weights
    from helpers.faithfulness_study import faithfulness_study

    monkeypatch.setenv("SENTENCE_CACHE_DIR", str(tmp_path))
    sample = pd.DataFrame({"sentence_id": [1, 2, 3], "text": ["a man plays a guitar .", "the dog barks at night .",
                                                              "a woman is slicing an onion ."]})
    info = word_information(sample["text"].tolist() + ["a cat sleeps .", "the man runs ."])
    ig, shap = IG(n_steps=4, projections=8), SHAP(max_evals=40)
    study = faithfulness_study({"tiny": "tiny-random-bert"}, sample, info, ig, shap, k_max=2, removals=["delete"],
                               random_seeds=(0, 1), n_boot=20)
    assert isinstance(study, results.Result) and set(study.tables) == {"aopc", "recovery", "curves"}
    assert set(study.aopc["ranking"]) == {"IG", "SHAP", "reverse IG", "KL", "I", "IDF", "random (seed 0)",
                                          "random (seed 1)"} and set(study.aopc["model"]) == {"tiny"}
    assert study.recovery["ranking"].tolist() == ["KL", "I", "IDF"]
    encoder = load_encoder("tiny-random-bert")
    weights = {"IG": word_weights(encoder, sample, ig, progress=False),
               "SHAP": word_weights(encoder, sample, shap, progress=False)}
    ranks = faithfulness.rankings(weights, info, weights["IG"], seeds=(0, 1))
    table, _ = faithfulness.faithfulness_table(encoder, sample, ranks, k_max=2, removals=["delete"], n_boot=20,
                                               progress=False)
    assert np.allclose(study.aopc["aopc"].to_numpy(), table["aopc"].to_numpy())
    with pytest.raises(ValueError, match="models is empty"):
        faithfulness_study({}, sample, info, ig, shap)


def test_the_similarity_study_is_chapter_10s_three_tables(tiny, data_dir, tmp_path, monkeypatch):
    """Chapter 10 in one call: every pair per model, the per-model summary, the sketch against exact; the same
    numbers as the measure layer's own calls."""
    from helpers import results
    from helpers.data import load_sentences
    from helpers.similarity_study import pair_texts, similarity_study

    monkeypatch.setenv("SENTENCE_CACHE_DIR", str(tmp_path))
    stsb = load_sentences("stsb", "validation", data_dir=data_dir)
    sample = stsb[stsb["pair_id"].isin(stsb["pair_id"].unique()[:3])]
    kl = word_information(stsb).set_index("word")["kl"]
    ig = IG(n_steps=4, projections=8)
    study = similarity_study({"tiny": tiny}, sample, kl, ig, exact_pairs=1, check_projections=8)
    assert isinstance(study, results.Result) and set(study.tables) == {"summary", "sketch_check", "pairs"}
    assert study.pairs["pair_id"].nunique() == 3 and len(study.sketch_check) == 1
    direct = pairs.pairs_study(tiny, sample, kl, ig)
    for column in ("similarity", "share_identical", "share_top_kl"):  # (tiny's top-KL shares are 0 here)
        assert np.allclose(study.pairs[column].to_numpy(), direct[column].to_numpy()), column
    assert study.summary["share_identical"].iloc[0] == pytest.approx(direct["share_identical"].mean())
    first = pair_texts(sample).iloc[0]
    exact = pairs.pair_weights(tiny, *first, ig.replace(projections=None))
    assert study.sketch_check["exact_gap"].iloc[0] == pytest.approx(exact.attrs["completeness_gap"])
    with pytest.raises(ValueError, match="encoders is empty"):
        similarity_study({}, sample, kl, ig)
