"""The offline contrast's designs (chapter 05): bag-of-words encoders, cached-only runs, and the verdict rule."""
import numpy as np
import pandas as pd
import pytest
import torch

from helpers import bow_encoders, finetuning, matched_designs, training
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
    weights = bow_encoders.bow_weights(vectors, vocab, [text])
    x = torch.tensor(vectors[[vocab.index(w) for w in text.split()]], dtype=torch.float64)[None]
    ig = IntegratedGradients(lambda X: X.mean(1))
    per_output = [ig.attribute(x, baselines=torch.zeros_like(x), target=j, n_steps=8)[0] for j in range(5)]
    norms = torch.stack(per_output).pow(2).sum((0, 2)).sqrt().numpy()  # Frobenius over outputs and dimensions
    assert weights["weight"].to_numpy() == pytest.approx(norms / norms.mean(), rel=1e-6)
    assert weights["word"].tolist() == text.split() and (weights["completeness_gap"] == 0).all()


def test_pool_mean_and_word_dropout():
    emb = torch.arange(12.0).reshape(6, 2)
    pooled = bow_encoders._pool(emb, [[1, 2], [3], [4, 5, 0]])
    assert torch.allclose(pooled[0], emb[[1, 2]].mean(0)) and torch.allclose(pooled[2], emb[[4, 5, 0]].mean(0))
    gen = torch.Generator().manual_seed(0)
    dropped = bow_encoders._pool(emb, [[1, 2, 3, 4]] * 50, drop=0.99, gen=gen)
    assert torch.isfinite(dropped).all()  # every sentence keeps a word
    assert not torch.allclose(bow_encoders._pool(emb, [[1, 2, 3, 4]] * 5, drop=0.5, gen=gen), pooled[:1].expand(5, 2))


def test_bow_training_is_cached_and_starts_from_one_initialisation(tmp_path, monkeypatch):
    monkeypatch.setenv("SENTENCE_CACHE_DIR", str(tmp_path))
    vocab = bow_encoders.bow_vocabulary(SENTENCES, min_count=1)
    kwargs = dict(triplets=TRIPLETS, dim=8, steps=30, batch_size=16, progress=False)
    assert bow_encoders.train_sentence_bow(SENTENCES, "dropout", vocab, train=False, **kwargs) is None
    trained = {o: bow_encoders.train_sentence_bow(SENTENCES, o, vocab, **kwargs)[0] for o in bow_encoders.BOW_OBJECTIVES}
    again, minutes = bow_encoders.train_sentence_bow(SENTENCES, "dropout", vocab, train=False, **kwargs)
    assert np.array_equal(again, trained["dropout"]) and minutes > 0
    assert not np.allclose(trained["cbow"], trained["dropout"]) and not np.allclose(trained["nli"], trained["dropout"])
    with pytest.raises(ValueError, match="objective must be one of"):
        bow_encoders.train_sentence_bow(SENTENCES, "skipgram", vocab, **kwargs)
    with pytest.raises(ValueError, match="needs triplets"):
        bow_encoders.train_sentence_bow(SENTENCES, "nli", vocab, dim=8, steps=3, batch_size=16, progress=False)


def test_bow_run_compares_its_stored_settings(tmp_path, monkeypatch):
    """A bag-of-words file found under a run's name but holding other settings is refused, naming them."""
    import json

    from helpers.config import settings_location

    monkeypatch.setenv("SENTENCE_CACHE_DIR", str(tmp_path))
    vocab = bow_encoders.bow_vocabulary(SENTENCES, min_count=1)
    kwargs = dict(dim=8, steps=5, batch_size=16, progress=False)
    bow_encoders.train_sentence_bow(SENTENCES, "dropout", vocab, **kwargs)
    (path,) = (tmp_path / "runs").glob("bow-dropout-*.npz")
    saved = dict(np.load(path))
    stored = json.loads(str(saved["settings"]))
    assert path == settings_location("bow-dropout", stored, ".npz")  # named by the shared helper
    np.savez(path, vectors=saved["vectors"], minutes=saved["minutes"], settings=json.dumps({**stored, "steps": 4}))
    with pytest.raises(ValueError, match="other settings.*steps: 4 there, 5 now"):
        bow_encoders.train_sentence_bow(SENTENCES, "dropout", vocab, train=False, **kwargs)


def test_settings_keep_their_location():
    """Every cache and run folder is named by config.settings_key; the name of given settings never changes
    (a change would orphan every trained run and cached weight on users' machines)."""
    from pathlib import Path

    from helpers.config import settings_differences, settings_key

    settings = {"steps": 3000, "save": (0, 15), "path": Path("/x")}
    assert settings_key(settings) == "688a3557ec"
    assert settings_key(settings, None).startswith("688a3557ec") and len(settings_key(settings, None)) == 40
    assert settings_differences({"save": [0, 15], "steps": 1}, {"save": (0, 15), "steps": 2}) == "steps: 1 there, 2 now"
    assert settings_differences({"save": [0, 15]}, {"save": (0, 15)}) == ""


def _toy(seed=0, n_sentences=60):
    """A toy information table and a maker of word-weight tables with a chosen slope on KL (same sentences)."""
    rng = np.random.default_rng(seed)
    info = pd.DataFrame({"word": [f"w{i}" for i in range(40)], "kl": rng.gamma(2.0, 0.5, 40)})
    occ = pd.DataFrame([{"sentence_id": s, "word": f"w{i}"} for s in range(n_sentences)
                        for i in rng.choice(40, 8, replace=False)])
    kl = occ["word"].map(info.set_index("word")["kl"]).to_numpy()

    def weights(slope):
        w = occ.assign(weight=np.exp(slope * kl + rng.normal(0, 0.2, len(kl))))
        return w.assign(weight=w["weight"] / w.groupby("sentence_id")["weight"].transform("mean"))
    return info, weights


def _row(design, objective, steps, r2=0.1, beta=0.1):
    return {"design": design, "objective": objective, "steps": steps, "r2": r2, "r2_low": r2 - .02,
            "r2_high": r2 + .02, "beta": beta, "beta_low": beta - .02, "beta_high": beta + .02,
            "stsb_spearman": 0.5, "minutes": 1.0}


def test_design_verdicts_pair_the_right_checkpoints_and_judge_their_weights():
    info, weights = _toy()
    designs = pd.DataFrame([_row("long", "sup", 0, 0.4, -0.2), _row("long", "sup", 150), _row("long", "sup", 750, 0.6),
                            _row("long", "mlm", 0), _row("long", "mlm", 750, 0.45)])
    w = {("long", "sup", 0): weights(-0.3), ("long", "sup", 150): weights(0.0), ("long", "sup", 750): weights(0.6),
         ("long", "mlm", 0): weights(-0.3), ("long", "mlm", 750): weights(0.6)}
    v = matched_designs.design_verdicts(designs, w, info).set_index("comparison")
    first = v.loc["SimCSE sup vs the MLM it started from"]
    assert (first["r2_before"], first["r2_after"]) == (0.4, 0.6) and first["verdict"] == "reproduced"
    assert first["r_diff_low"] > 0 and first["beta_diff_low"] > 0
    same = v.loc["SimCSE sup vs the MLM trained as long"]  # both sides slope 0.6: no difference to find
    assert same["r2_before"] == 0.45 and same["verdict"] == "not reproduced"
    assert "SimCSE unsup vs the MLM it started from" not in v.index  # not measured: no row, no verdict
    with pytest.raises(ValueError, match="no word weights"):
        matched_designs.design_verdicts(designs, {k: x for k, x in w.items() if k[2] != 750}, info)


def test_chapter_05_verdict_and_the_closing_row_agree(tmp_path, monkeypatch):
    """The same trajectory gives chapter 05 and chapter 12 one verdict: both read it through helpers.rules."""
    from helpers import verdicts

    info, weights = _toy(1)
    for slopes, expected in (((-0.3, 0.6, -0.3), "reproduced"), ((0.3, -0.3, 0.3), "not reproduced"),
                             ((0.1, 0.45, 0.45), "partly reproduced")):
        start, end, mlm = slopes
        traj = pd.DataFrame({"run": ["mlm_then_simcse"] * 2 + ["mlm_only"], "objective": ["sup", "sup", "mlm"],
                             "step": [0, 150, 150], "r2_kl": 0.1, "beta_kl": [start, end, mlm], "stsb_spearman": 0.5,
                             "r2_kl_low": 0.0, "r2_kl_high": 0.2, "beta_kl_low": 0.0, "beta_kl_high": 0.2,
                             "checkpoint": ""})
        w = pd.concat([weights(start).assign(run="mlm_then_simcse", objective="sup", step=0),
                       weights(end).assign(run="mlm_then_simcse", objective="sup", step=150),
                       weights(mlm).assign(run="mlm_only", objective="mlm", step=150)])
        rows = pd.DataFrame([{**_row("default", o, s), "beta": b} for o, s, b in
                             (("sup", 0, start), ("sup", 150, end), ("mlm", 150, mlm))])
        contrasts = matched_designs.design_verdicts(rows, matched_designs.default_design_weights(w), info)
        chapter05 = finetuning.finetune_verdict(traj, contrasts)["verdict"]
        monkeypatch.setenv("SENTENCE_RESULTS_DIR", str(tmp_path))
        (tmp_path / "finetune").mkdir(exist_ok=True)
        contrasts.to_csv(tmp_path / "finetune" / "contrasts.csv", index=False)
        assert chapter05 == verdicts.claim_finetuning()["verdict"] == expected, slopes


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
        matched_designs.run_designs(mlm, None, None, None, SENTENCES, TRIPLETS, designs=["longer"])


def test_the_masked_sides_with_a_negative_slope_are_named():
    """MiniLM as published (the reverse design's step 0) is a contrastive side; the MLM a SimCSE run starts from, the
    continued MLM, MiniLM after MLM training and CBOW are masked sides, named when their slope is negative."""
    designs = pd.DataFrame([
        {"design": "default", "objective": "sup", "steps": 0, "beta": -0.2},     # the MLM SimCSE starts from
        {"design": "default", "objective": "sup", "steps": 150, "beta": -0.5},   # SimCSE: not a masked side
        {"design": "reverse", "objective": "mlm", "steps": 0, "beta": -0.3},     # MiniLM as published: contrastive
        {"design": "bow", "objective": "cbow", "steps": 500, "beta": 0.1},       # positive: not named
    ])
    assert finetuning.masked_sides_with_negative_slope(designs) == ["the self-trained MLM"]
    designs.loc[len(designs)] = {"design": "reverse", "objective": "mlm", "steps": 200, "beta": -0.1}
    designs.loc[len(designs)] = {"design": "bow", "objective": "cbow", "steps": 900, "beta": -0.1}
    assert finetuning.masked_sides_with_negative_slope(designs) == ["CBOW (bag of words)", "MiniLM after MLM training",
                                                                  "the self-trained MLM"]


def test_chapter_05_study_is_its_runs_their_verdict_the_designs_and_the_stand_in(tmp_path, monkeypatch):
    """finetune_study: the runs judged as one family (the chapter's verdict), the other designs judged apart with the
    weights they collected, the stand-in from the first objective's last checkpoints, the tables written at once."""
    from helpers import finetune_study, results, rules

    info, toy = _toy(1)
    slopes = {("mlm_then_simcse", "sup", 0): -0.3, ("mlm_then_simcse", "sup", 150): 0.6,
              ("mlm_then_simcse", "unsup", 0): -0.3, ("mlm_then_simcse", "unsup", 150): 0.6,
              ("simcse_from_random", "sup", 0): 0.0, ("simcse_from_random", "sup", 150): 0.2,
              ("mlm_only", "mlm", 150): -0.3}
    columns = results.FINETUNE.trajectory.columns
    traj = pd.DataFrame([{**dict.fromkeys(columns, 0.1), "run": r, "objective": o, "step": s, "beta_kl": b,
                          "checkpoint": f"{r}/{o}/{s}"} for (r, o, s), b in slopes.items()])
    numbered = lambda w: w.assign(word_index=w.groupby("sentence_id").cumcount())  # noqa: E731
    words = {k: numbered(toy(b)).assign(raw_weight=1.0, n_subwords=1, completeness_gap=0.0, run=k[0],
                              objective=k[1], step=k[2]) for k, b in slopes.items()}

    def fake_designs(*args, weights, **kwargs):  # the bag-of-words design, its weights added where the study reads them
        for objective, slope in (("cbow", 0.5), ("dropout", -0.5), ("nli", 0.5)):
            weights[("bow", objective, 500)] = toy(slope)
        return pd.DataFrame([{**_row("bow", o, 500), "beta": b} for o, b in (("cbow", .5), ("dropout", -.5), ("nli", .5))])

    stand_in_calls = []

    def fake_stand_in(mlm, from_mlm, from_random, *args, settings=None, seed=0):
        stand_in_calls.append((from_mlm, from_random, settings))
        return pd.DataFrame([dict.fromkeys(results.FINETUNE.stand_in.columns, 1.0)])

    monkeypatch.setattr(finetune_study, "finetune_runs", lambda *a, controls=(), **k: (
        traj[traj["run"].isin(["mlm_then_simcse", *controls])], pd.concat(words.values(), ignore_index=True)))
    monkeypatch.setattr(finetune_study, "run_designs", fake_designs)
    monkeypatch.setattr(finetune_study, "stand_in_row", fake_stand_in)
    monkeypatch.setattr(finetune_study, "recorded_budget_curve", lambda: pd.DataFrame(columns=["mlm_steps"]))
    monkeypatch.setattr(training, "run_minutes", lambda path: 1.0)
    monkeypatch.setenv("SENTENCE_RESULTS_DIR", str(tmp_path))
    settings = {"mlm_steps": 30, "mlm_hidden": 32, "mlm_layers": 1}
    stsb = pd.DataFrame({"text": SENTENCES[:4]})
    study = finetune_study.finetune_study("mlm", None, info, stsb, SENTENCES, TRIPLETS, objectives=("sup", "unsup"),
                                          steps=150, mlm_settings=settings)

    assert stand_in_calls == [("mlm_then_simcse/sup/150", "simcse_from_random/sup/150", settings)]
    assert study.figures["verdict"]["verdict"] == rules.judge_finetuning(study.contrasts)["verdict"] == "reproduced"
    bow = study.contrasts[study.contrasts["design"] == "bow"].set_index("comparison")["verdict"]
    assert bow["contrastive (dropout) vs masked-word (CBOW)"] == "not reproduced"  # judged on the weights it collected
    assert set(study.designs["design"]) == {"default", "bow"}
    assert "checkpoint" not in study.trajectory and set(study.figures) == {"verdict", "budget_curve"}
    assert sorted(p.name for p in study.save().values()) == sorted(
        f"{name}.csv" for name in ("trajectory", "checkpoint_weights", "summary", "designs", "contrasts", "stand_in"))
    alone = finetune_study.finetune_study("mlm", None, info, stsb, SENTENCES, TRIPLETS, controls=("mlm_only",), steps=150)
    assert alone.stand_in.empty and list(alone.stand_in.columns) == list(results.FINETUNE.stand_in.columns)
    assert len(stand_in_calls) == 1  # the control did not run: no stand-in measured
