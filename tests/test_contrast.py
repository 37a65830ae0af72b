"""The offline contrast's designs (chapter 05): bag-of-words encoders, cached-only runs, and the verdict rule."""
import numpy as np
import pandas as pd
import pytest
import torch

from helpers import contrast, training
from helpers.training import MLMConfig

SENTENCES = [f"a {w} is {v} the {o} ." for w in ("man", "dog", "child", "woman", "cat", "bird")
             for v in ("riding", "playing", "eating", "watching") for o in ("horse", "guitar", "ball", "apple")]
TRIPLETS = pd.DataFrame({"anchor": SENTENCES[:40], "positive": SENTENCES[1:41], "negative": SENTENCES[50:90]})


def test_bow_weights_are_integrated_gradients_of_the_mean(tmp_path):
    """For f(X) = mean of the word vectors and the zero baseline, captum's IG over every output gives the norms."""
    from captum.attr import IntegratedGradients

    vocab = ["[UNK]", "a", "man", "is", "riding", "the", "horse", "."]
    vectors = np.random.default_rng(0).normal(size=(len(vocab), 5))
    text = "a man is riding the horse ."
    weights = contrast.bow_weights(vectors, vocab, [text])
    x = torch.tensor(vectors[[vocab.index(w) for w in text.split()]], dtype=torch.float64)[None]
    ig = IntegratedGradients(lambda X: X.mean(1))
    per_output = [ig.attribute(x, baselines=torch.zeros_like(x), target=j, n_steps=8)[0] for j in range(5)]
    norms = torch.stack(per_output).pow(2).sum((0, 2)).sqrt().numpy()  # Frobenius over outputs and dimensions
    assert weights["weight"].to_numpy() == pytest.approx(norms / norms.mean(), rel=1e-6)
    assert weights["word"].tolist() == text.split() and (weights["completeness_gap"] == 0).all()


def test_pool_mean_and_word_dropout():
    emb = torch.arange(12.0).reshape(6, 2)
    pooled = contrast._pool(emb, [[1, 2], [3], [4, 5, 0]])
    assert torch.allclose(pooled[0], emb[[1, 2]].mean(0)) and torch.allclose(pooled[2], emb[[4, 5, 0]].mean(0))
    gen = torch.Generator().manual_seed(0)
    dropped = contrast._pool(emb, [[1, 2, 3, 4]] * 50, drop=0.99, gen=gen)
    assert torch.isfinite(dropped).all()  # every sentence keeps a word
    assert not torch.allclose(contrast._pool(emb, [[1, 2, 3, 4]] * 5, drop=0.5, gen=gen), pooled[:1].expand(5, 2))


def test_bow_training_is_cached_and_starts_from_one_initialisation(tmp_path, monkeypatch):
    monkeypatch.setenv("SENTENCE_CACHE_DIR", str(tmp_path))
    vocab = contrast.bow_vocabulary(SENTENCES, min_count=1)
    kwargs = dict(triplets=TRIPLETS, dim=8, steps=30, batch_size=16, progress=False)
    assert contrast.train_bow_text(SENTENCES, "dropout", vocab, train=False, **kwargs) is None
    trained = {o: contrast.train_bow_text(SENTENCES, o, vocab, **kwargs)[0] for o in contrast.BOW_OBJECTIVES}
    again, minutes = contrast.train_bow_text(SENTENCES, "dropout", vocab, train=False, **kwargs)
    assert np.array_equal(again, trained["dropout"]) and minutes > 0
    assert not np.allclose(trained["cbow"], trained["dropout"]) and not np.allclose(trained["nli"], trained["dropout"])
    with pytest.raises(ValueError, match="objective must be one of"):
        contrast.train_bow_text(SENTENCES, "skipgram", vocab, **kwargs)
    with pytest.raises(ValueError, match="needs triplets"):
        contrast.train_bow_text(SENTENCES, "nli", vocab, dim=8, steps=3, batch_size=16, progress=False)


def _side(r2, beta, w=0.02):
    return pd.Series({"r2": r2, "r2_low": r2 - w, "r2_high": r2 + w, "beta": beta, "beta_low": beta - w,
                      "beta_high": beta + w})


@pytest.mark.parametrize("before, after, expected", [
    ((0.1, -0.1), (0.5, 0.3), "reproduced"),
    ((0.3, -0.1), (0.1, 0.2), "partly reproduced"),   # beta apart, R² lower: the MLM's negative slope
    ((0.1, 0.1), (0.11, 0.11), "partly reproduced"),
    ((0.3, 0.2), (0.1, 0.1), "not reproduced"),
])
def test_design_verdict(before, after, expected):
    assert contrast.design_verdict(_side(*before), _side(*after)) == expected


def test_design_verdicts_compare_the_right_checkpoints():
    def row(design, objective, steps, r2, beta):
        return {"design": design, "objective": objective, "steps": steps, **_side(r2, beta).to_dict(),
                "stsb_spearman": 0.5, "minutes": 1.0}

    designs = pd.DataFrame([row("long", "sup", 0, 0.4, -0.2), row("long", "sup", 150, 0.3, -0.1),
                            row("long", "sup", 750, 0.6, 0.3), row("long", "mlm", 0, 0.4, -0.2),
                            row("long", "mlm", 750, 0.45, -0.25)])
    v = contrast.design_verdicts(designs).set_index("comparison")
    first = v.loc["SimCSE sup vs the MLM it started from"]
    assert (first["r2_before"], first["r2_after"]) == (0.4, 0.6) and first["verdict"] == "reproduced"
    assert v.loc["SimCSE sup vs the MLM trained as long", "r2_before"] == 0.45
    assert "SimCSE unsup vs the MLM it started from" not in v.index  # not measured: no row, no verdict


def test_simcse_runs_only_when_asked_and_records_its_minutes(tmp_path):
    tiny = MLMConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64, max_length=24)
    mlm = training.pretrain_mlm(SENTENCES, steps=4, batch_size=16, config=tiny, run_dir=tmp_path / "mlm",
                                progress=False)
    kwargs = dict(objective="unsup", steps=3, batch_size=16, save_steps=(0, 3), sentences=SENTENCES, progress=False,
                  run_dir=tmp_path / "run")
    assert training.simcse(mlm, train=False, **kwargs) == {}
    trained = training.simcse(mlm, **kwargs)
    assert training.simcse(mlm, train=False, **kwargs) == trained
    assert training.run_minutes(trained[3]) > 0
    with pytest.raises(ValueError, match="unknown designs"):
        contrast.run_designs(mlm, None, None, None, SENTENCES, TRIPLETS, designs=["longer"])
