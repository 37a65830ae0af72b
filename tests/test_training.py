import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from helpers import data, finetuning, training
from helpers.training import MLMConfig

TINY = MLMConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64, max_length=24)
SENTENCES = [f"a {w} is {v} the {o} ." for w in ("man", "dog", "child", "woman", "cat", "bird")
             for v in ("riding", "playing", "eating", "watching") for o in ("horse", "guitar", "ball", "apple")]


def _weights(folder):
    return load_file(str(folder / "model.safetensors"))


def test_mlm_loss_goes_down_and_is_deterministic(tmp_path):
    a = training.pretrain_mlm(SENTENCES, steps=40, batch_size=16, lr=3e-3, warmup=5, config=TINY, seed=1,
                              run_dir=tmp_path / "a", progress=False)
    b = training.pretrain_mlm(SENTENCES, steps=40, batch_size=16, lr=3e-3, warmup=5, config=TINY, seed=1,
                              run_dir=tmp_path / "b", progress=False)
    loss = training.history(a)["loss"]
    assert loss.tail(10).mean() < loss.head(10).mean()
    wa, wb = _weights(a), _weights(b)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_mlm_resume_equals_uninterrupted(tmp_path):
    kwargs = dict(steps=12, batch_size=16, lr=3e-3, warmup=2, config=TINY, seed=2, save_every=4, progress=False)
    whole = training.pretrain_mlm(SENTENCES, run_dir=tmp_path / "whole", **kwargs)
    training.pretrain_mlm(SENTENCES, run_dir=tmp_path / "split", max_steps_this_call=5, **kwargs)  # "interrupted"
    assert max(training.checkpoints(tmp_path / "split")) == 5
    assert sorted(training.checkpoints(tmp_path / "whole")) == [12]  # superseded periodic checkpoints are pruned
    resumed = training.pretrain_mlm(SENTENCES, run_dir=tmp_path / "split", **kwargs)
    wa, wb = _weights(whole), _weights(resumed)
    assert all(torch.allclose(wa[k], wb[k], atol=1e-6) for k in wa)
    # a finished run is not trained again
    assert training.pretrain_mlm(SENTENCES, run_dir=tmp_path / "split", **kwargs) == resumed


@pytest.fixture(scope="module")
def mlm(tmp_path_factory):
    return training.pretrain_mlm(SENTENCES, steps=20, batch_size=16, lr=3e-3, warmup=5, config=TINY, seed=0,
                                 run_dir=tmp_path_factory.mktemp("mlm"), progress=False)


@pytest.mark.parametrize("objective", ["unsup", "sup"])
def test_simcse_learns_and_resumes(mlm, tmp_path, objective):
    triplets = pd.DataFrame({"anchor": SENTENCES[:48], "positive": SENTENCES[1:49], "negative": SENTENCES[48:96][::-1]})
    kwargs = dict(objective=objective, steps=12, batch_size=16, lr=1e-3, save_steps=(0, 4, 12), sentences=SENTENCES,
                  triplets=triplets, seed=3, progress=False)
    whole = training.simcse(mlm, run_dir=tmp_path / "whole", **kwargs)
    assert sorted(whole) == [0, 4, 12]
    loss = training.history(whole[12])["loss"]
    assert loss.tail(4).mean() < loss.head(4).mean()
    training.simcse(mlm, run_dir=tmp_path / "split", max_steps_this_call=4, **kwargs)
    resumed = training.simcse(mlm, run_dir=tmp_path / "split", **kwargs)
    wa, wb = _weights(whole[12]), _weights(resumed[12])
    assert all(torch.allclose(wa[k], wb[k], atol=1e-6) for k in wa)


def test_controls_run(mlm, tmp_path):
    rand = training.simcse(mlm, steps=4, batch_size=16, save_steps=(0, 4), sentences=SENTENCES, init_random=True,
                           run_dir=tmp_path / "r", progress=False)
    w0, wm = _weights(rand[0]), load_file(str(mlm / "model.safetensors"))
    key = "embeddings.word_embeddings.weight"
    assert not torch.equal(w0[key], wm["bert." + key])  # re-initialised
    cont = training.simcse(mlm, steps=4, batch_size=16, save_steps=(0, 4), sentences=SENTENCES, continue_mlm=True,
                           run_dir=tmp_path / "m", progress=False)
    assert sorted(cont) == [0, 4]
    with pytest.raises(ValueError, match="objective"):
        training.simcse(mlm, objective="infonce", sentences=SENTENCES)


def test_corpora_exclude_the_attributed_sentences(data_dir):
    corpus = data.pretraining_corpus(data_dir)
    from helpers.data import load_sentences
    held_out = set(load_sentences("stsb", "validation", data_dir=data_dir)["text"])
    assert len(corpus) > 40000 and not held_out & set(corpus)
    triplets = data.nli_triplets(data_dir)
    assert len(triplets) > 3000 and list(triplets.columns) == ["anchor", "positive", "negative"]


def test_any_checkpoint_goes_through_the_same_code(tmp_path):
    """A hub-style checkpoint of another family (RoBERTa: <mask>, lm_head) fine-tunes by name, as bert-base-uncased would."""
    sup = training.simcse("tiny-random-roberta", objective="unsup", pooling="cls", steps=2, batch_size=8,
                          save_steps=(2,), sentences=SENTENCES, run_dir=tmp_path / "s", progress=False)
    mlm = training.simcse("tiny-random-roberta", steps=2, batch_size=8, save_steps=(2,), sentences=SENTENCES,
                          continue_mlm=True, run_dir=tmp_path / "m", progress=False)
    assert (sup[2] / "model.safetensors").is_file() and (mlm[2] / "model.safetensors").is_file()
    assert len(training.history(mlm[2])) == 2


def test_finetune_study_measures_the_shared_start_once(mlm, tmp_path, monkeypatch):
    triplets = pd.DataFrame({"anchor": SENTENCES[:48], "positive": SENTENCES[1:49], "negative": SENTENCES[48:96][::-1]})
    monkeypatch.setenv("SENTENCE_CACHE_DIR", str(tmp_path))
    measured = []

    def fake_measure(path, *args):
        measured.append(path)
        return {"r2_kl": float(len(measured)), "beta_kl": 0.0, "r2_self_info": 0.0, "beta_self_info": 0.0,
                "stsb_spearman": 0.0}, pd.DataFrame({"sentence_id": [0], "weight": [1.0]})

    monkeypatch.setattr(finetuning, "measure_checkpoint", fake_measure)
    traj, weights = finetuning.finetune_runs(mlm, None, None, None, SENTENCES, triplets, steps=4, save_steps=(0, 4),
                                            batch_size=16, progress=False)
    assert len(measured) == 5  # 6 checkpoints; mlm_only's step 0 is the MLM already measured
    start = traj[traj["step"] == 0].set_index("run")["r2_kl"]
    assert start["mlm_only"] == start["mlm_then_simcse"] != start["simcse_from_random"]
    assert set(weights["run"]) == {"mlm_then_simcse", "simcse_from_random", "mlm_only"}


def test_trajectory_summary():
    traj = pd.DataFrame({"run": ["a"] * 3 + ["b"] * 2, "objective": "sup", "step": [50, 0, 10, 0, 50],
                         "r2_kl": [0.5, 0.1, 0.2, 0.3, 0.2], "beta_kl": 1.0, "r2_self_info": 0.0,
                         "beta_self_info": 0.0, "stsb_spearman": [0.6, 0.4, 0.5, 0.4, 0.4]})
    summary = finetuning.trajectory_summary(traj).set_index(["run", "quantity"])
    assert summary.loc[("a", "r2_kl"), ["start", "end", "end_step"]].tolist() == [0.1, 0.5, 50]
    assert summary.loc[("a", "r2_kl"), "change"] == pytest.approx(0.4)
    assert summary.loc[("b", "r2_kl"), "change"] == pytest.approx(-0.1)
    assert summary.loc[("a", "stsb_spearman"), "change"] == pytest.approx(0.2)


def test_masking_is_bert_s_80_10_10_split():
    from transformers import AutoTokenizer

    from helpers.encoders import resolve_model_path

    tok = AutoTokenizer.from_pretrained(resolve_model_path("all-MiniLM-L6-v2"))
    ids = torch.randint(1000, 20000, (100, 100))  # 10,000 ordinary tokens
    ids[:, 0], ids[:, -1] = tok.cls_token_id, tok.sep_token_id
    mask = torch.ones_like(ids)
    mask[:10, 50:] = 0  # padding is never chosen
    gen = torch.Generator().manual_seed(0)
    inputs, chosen, labels = training._mask_tokens(ids, mask, tok, gen)
    eligible = int((mask.bool() & (ids != tok.cls_token_id) & (ids != tok.sep_token_id)).sum())
    n = int(chosen.sum())
    assert not chosen[:, 0].any() and not chosen[:, -1].any() and not chosen[:10, 50:].any()
    assert abs(n - 0.15 * eligible) < 4 * (eligible * 0.15 * 0.85) ** 0.5  # binomial, 4 sd
    assert torch.equal(labels, ids[chosen])
    masked = int((inputs[chosen] == tok.mask_token_id).sum())
    kept = int((inputs[chosen] == ids[chosen]).sum())
    swapped = n - masked - kept
    for count, share in ((masked, 0.8), (swapped, 0.1)):
        assert abs(count - share * n) < 4 * (n * share * (1 - share)) ** 0.5, (count, share, n)
    # kept = the 10% left alone, plus the rare random draws of the token itself
    assert abs(kept - 0.1 * n) < 4 * (n * 0.09) ** 0.5 + 2
    assert torch.equal(inputs[~chosen], ids[~chosen])


def test_simcse_loss_by_hand():
    a = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    p = torch.tensor([[2.0, 0.1], [0.3, 1.0], [1.0, 0.8]])
    n = torch.tensor([[0.0, 1.0], [1.0, 0.0], [-1.0, 1.0]])
    t = 0.05

    def cos(u, v):
        return float(u @ v / (u.norm() * v.norm()))

    def by_hand(negatives):
        total = 0.0
        for i in range(3):
            logits = [cos(a[i], p[j]) / t for j in range(3)]
            if negatives:
                logits += [cos(a[i], n[j]) / t for j in range(3)]
            total += -logits[i] + np.log(np.sum(np.exp(logits)))
        return total / 3

    assert training.simcse_loss(a, p, temperature=t).item() == pytest.approx(by_hand(False), rel=1e-5)
    assert training.simcse_loss(a, p, n, temperature=t).item() == pytest.approx(by_hand(True), rel=1e-5)


@pytest.mark.parametrize("r2, beta", [((0.1, 0.5), (0.1, 0.3)), ((0.45, 0.31), (-0.13, -0.10))])
def test_finetune_verdict_reports_the_runs_ends(r2, beta):
    traj = pd.DataFrame({"run": ["mlm_then_simcse"] * 2 + ["mlm_only"] * 2, "objective": ["sup", "sup", "mlm", "mlm"],
                         "step": [0, 150, 0, 150], "r2_kl": [*r2, r2[0], r2[0]], "beta_kl": [*beta, beta[0], beta[0]],
                         "stsb_spearman": 0.5, "r2_kl_low": 0, "r2_kl_high": 1})
    out = finetuning.finetune_verdict(traj, pd.DataFrame(columns=["design", "p_r", "p_beta"]))
    assert out["verdict"] == "not measured"  # no contrast rows: the verdict comes from them, not the ends
    assert out["mlm_then_simcse_beta_kl_end"] == beta[1] and out["mlm_only_r2_kl_end"] == r2[0]
    assert out["start_slope_sign"] == ("negative" if beta[0] < 0 else "positive")


def test_the_shared_loop_seeds_each_step_clips_saves_and_records(tmp_path, monkeypatch):
    """runs.fit, the loop MLM and SimCSE share: a step draws the same randomness whether the run started at 0 or
    resumed at it; gradients are clipped when asked; checkpoints fall where ``keep`` says, and the last step is
    always saved."""
    from helpers import runs

    saved = []
    monkeypatch.setattr(runs, "save_checkpoint", lambda run_dir, step, *a: saved.append(step))
    monkeypatch.setattr(runs, "checkpoints", lambda run_dir: {s: tmp_path / f"step-{s}" for s in saved})

    def new_run():
        layer = torch.nn.Linear(3, 1, bias=False)
        torch.nn.init.zeros_(layer.weight)
        optimizer = torch.optim.SGD(layer.parameters(), lr=1.0)
        return runs.Run(tmp_path, layer, None, optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0), [])

    draws = {}

    def step_loss_of(run):
        def step_loss(step):
            draws.setdefault(step, []).append(torch.rand(1).item())  # what dropout would draw at this step
            return 1000.0 * run.model(torch.ones(1, 3)).sum()
        return step_loss

    whole = new_run()
    runs.fit(whole, step_loss_of(whole), 0, 5, 5, seed=3, label="t", progress=False, keep=lambda s: s % 2 == 0,
             clip=(whole.model.parameters(), 1.0), after_save=lambda s: saved.append(-s))  # a generator, as given
    assert saved == [2, -2, 4, -4, 5]  # keep()'s steps, after_save after each, and the last step
    assert [h["step"] for h in whole.history] == [1, 2, 3, 4, 5]
    assert whole.model.weight.norm().item() == pytest.approx(5.0, rel=1e-5)  # five steps of at most norm 1
    torch.manual_seed(12345)  # another state of the global generator, as after loading a checkpoint
    resumed = new_run()
    runs.fit(resumed, step_loss_of(resumed), 3, 5, 5, seed=3, label="t", progress=False, keep=lambda s: False)
    assert draws[3][0] == draws[3][1] and draws[4][0] == draws[4][1]
