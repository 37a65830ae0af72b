import warnings

import numpy as np
import pytest
import torch

from helpers.encoders import PAPER_ROSTER, POOLINGS, load_encoder, resolve_model_path, roster_rows


def test_minilm_loads_offline_and_pools():
    enc = load_encoder("sentence-transformers/all-MiniLM-L6-v2")
    assert enc.dim == 384 and enc.model.config._attn_implementation == "eager"
    batch = enc.tokenizer(["A man is playing a guitar.", "A dog."], padding=True, return_tensors="pt")
    hidden = enc.model(**batch).last_hidden_state
    mask = batch["attention_mask"][..., None].float()
    expected = (hidden * mask).sum(1) / mask.sum(1)
    np.testing.assert_allclose(enc.encode(["A man is playing a guitar.", "A dog."]), expected.detach().numpy(), atol=1e-5)
    normed = load_encoder("all-MiniLM-L6-v2", normalize=True).encode(["A dog."])
    assert np.linalg.norm(normed) == pytest.approx(1.0, abs=1e-5)


def test_sentence_transformers_agrees():
    st = pytest.importorskip("sentence_transformers")
    path = resolve_model_path("all-MiniLM-L6-v2")
    model = st.SentenceTransformer(path, device="cpu")
    ref = model.encode(["A young child is riding a horse."], normalize_embeddings=True)
    ours = load_encoder("all-MiniLM-L6-v2", normalize=True).encode(["A young child is riding a horse."])
    np.testing.assert_allclose(ours, ref, atol=1e-5)


def test_cls_pooling_and_missing_pooler(tmp_path):
    from transformers import BertConfig, BertModel

    enc = load_encoder("tiny-random-bert", pooling="cls")
    before = load_encoder("tiny-random-bert", pooling="cls_before_pooler")
    ids = enc.tokenizer(["a b c"], return_tensors="pt")
    out = enc.model(**ids)
    torch.testing.assert_close(enc.pool(enc.embed_tokens(ids["input_ids"]), ids["attention_mask"]), out.pooler_output)
    torch.testing.assert_close(before.pool(before.embed_tokens(ids["input_ids"]), ids["attention_mask"]),
                               out.last_hidden_state[:, 0])
    # a checkpoint saved without pooler weights: CLS pooling is refused, never a random layer
    config = BertConfig.from_pretrained(resolve_model_path("tiny-random-bert"))
    BertModel(config, add_pooling_layer=False).save_pretrained(tmp_path / "nopooler")
    enc.tokenizer.save_pretrained(tmp_path / "nopooler")
    with pytest.raises(ValueError, match="no trained pooler weights"):
        load_encoder(str(tmp_path / "nopooler"), pooling="cls")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_encoder(str(tmp_path / "nopooler"), pooling="mean")


def test_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="offline name"):
        load_encoder("no-such-org/no-such-model-xyz")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="without a model"):
        load_encoder(str(tmp_path / "empty"))
    with pytest.raises(ValueError, match="pooling"):
        load_encoder("tiny-random-bert", pooling="max")


def test_fingerprint_follows_weights():
    a, b = load_encoder("tiny-random-bert"), load_encoder("tiny-random-bert")
    assert a.fingerprint() == b.fingerprint()
    with torch.no_grad():
        b.model.embeddings.word_embeddings.weight[5, 0] += 1.0
    assert a.fingerprint() != b.fingerprint()
    assert load_encoder("tiny-random-bert", pooling="cls").fingerprint() != a.fingerprint()


def test_paper_roster_is_complete():
    assert len(PAPER_ROSTER) == 14
    rows = {r["row"]: r for r in PAPER_ROSTER}
    for r in PAPER_ROSTER:
        assert r["pooling"] in POOLINGS
        if r["base"]:  # a contrastive row names a base row of the same architecture that is itself a base
            base = rows[r["base"]]
            assert base["base"] is None and base["name"].split("/")[-1].split("-")[0] in r["name"].split("/")[-1]
    # the MLMs pooled by CLS must have a trained pooler: bert-base-uncased has (NSP), roberta-base has none
    assert rows["BERT (CLS)"]["pooling"] == "cls"
    assert {r["pooling"] for r in PAPER_ROSTER if r["name"] == "roberta-base"} == {"cls_before_pooler", "mean"}


def test_offline_roster_rows_load_with_their_documented_pooling():
    pair = {"mlm": "tiny-random-bert", "simcse": "tiny-random-bert", "simcse_pooling": "mean"}
    rows = roster_rows("offline", self_trained=pair, include_mpnet=False)
    kinds = {r["row"]: r["kind"] for r in rows}
    for r in rows:
        enc = load_encoder(r["name"], pooling=r["pooling"])
        assert enc.pooling == r["pooling"]
        ids = enc.tokenizer(["A man plays."], return_tensors="pt")
        out = enc.model(**ids)
        expected = {"mean": out.last_hidden_state.mean(1), "cls_before_pooler": out.last_hidden_state[:, 0]}.get(
            r["pooling"], getattr(out, "pooler_output", None))
        torch.testing.assert_close(enc.pool(enc.embed_tokens(ids["input_ids"]), ids["attention_mask"]), expected)
        if r["base"]:
            assert kinds[r["base"]] == "base" and r["kind"] == "contrastive"


def test_sentence_transformers_models_are_followed(tmp_path):
    """load_encoder runs what SentenceTransformer.encode runs: its pooling, Dense layers and (asked) Normalize."""
    import warnings

    from sentence_transformers import SentenceTransformer, models

    from helpers.encoders import PoolingChoice, load_encoder, resolve_model_path
    from helpers.weights import _tiny_path

    texts = ["A man is playing a guitar.", "Tyrants fall, and a dog runs in the park."]
    minilm = SentenceTransformer(resolve_model_path("all-MiniLM-L6-v2"), device="cpu")
    with pytest.warns(PoolingChoice, match="pools with 'mean'"):
        followed = load_encoder("all-MiniLM-L6-v2", normalize="auto")
    assert np.abs(followed.encode(texts) - minilm.encode(texts)).max() < 1e-5
    assert np.abs(load_encoder(minilm, normalize="auto").encode(texts) - minilm.encode(texts)).max() < 1e-5
    raw = load_encoder("all-MiniLM-L6-v2", pooling="mean")  # the book's measurements leave Normalize out
    unit = raw.encode(texts) / np.linalg.norm(raw.encode(texts), axis=1, keepdims=True)
    assert np.abs(unit - minilm.encode(texts)).max() < 1e-5 and not raw.normalize
    # CLS pooling and a Dense layer, saved as a sentence-transformers folder
    word = models.Transformer(str(_tiny_path("bert")))
    pool = models.Pooling(word.get_word_embedding_dimension(), pooling_mode="cls")
    dense = models.Dense(word.get_word_embedding_dimension(), 7, activation_function=torch.nn.Tanh())
    model = SentenceTransformer(modules=[word, pool, dense], device="cpu")
    model.save(str(tmp_path / "st"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PoolingChoice)
        enc = load_encoder(str(tmp_path / "st"))
    assert enc.pooling == "cls_before_pooler" and enc.dim == 7
    assert np.abs(enc.encode(texts) - model.encode(texts)).max() < 1e-5
    plain = load_encoder(str(_tiny_path("bert")))  # not a sentence-transformers folder: MEAN, no warning
    assert plain.pooling == "mean" and plain.post == []


def test_sentence_transformers_modules_the_book_cannot_follow(tmp_path):
    import json
    import shutil

    from helpers.encoders import load_encoder, resolve_model_path

    folder = tmp_path / "minilm"
    shutil.copytree(resolve_model_path("all-MiniLM-L6-v2"), folder)
    config = json.loads((folder / "1_Pooling" / "config.json").read_text())
    config.update(pooling_mode_mean_tokens=False, pooling_mode_max_tokens=True)
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="1_Pooling/config.json: pooling .*max_tokens"):
        load_encoder(str(folder))
    assert load_encoder(str(folder), pooling="mean").pooling == "mean"  # an explicit choice overrides it
    with pytest.raises(ValueError, match="normalize must be True, False or 'auto'"):
        load_encoder("tiny-random-bert", normalize="yes")


def test_sts_spearman_is_computed_once_per_model_and_pair_set(tmp_path, monkeypatch, data_dir):
    """A rebuild reads a checkpoint's STS-B Spearman from .cache/sts; another weight or another pair set recomputes."""
    from helpers import sts
    from helpers.data import load_sentences

    monkeypatch.setenv("SENTENCE_CACHE_DIR", str(tmp_path))
    pairs = load_sentences("stsb", "validation", data_dir=data_dir).head(40)
    encoder = load_encoder("tiny-random-bert", pooling="mean")
    first = sts.sts_spearman(encoder, pairs)
    assert first == pytest.approx(sts.sts_spearman(encoder, pairs, cache=False))
    calls = []
    original = encoder.encode
    monkeypatch.setattr(encoder, "encode", lambda *a, **k: calls.append(1) or original(*a, **k))
    assert sts.sts_spearman(encoder, pairs) == first and not calls  # served from the cache
    other = pairs.assign(score=pairs["score"].to_numpy()[::-1])  # the same texts, other gold scores
    assert sts.sts_spearman(encoder, other) != first and len(calls) == 1
    with torch.no_grad():
        encoder.model.get_input_embeddings().weight[5:9] *= -1.0  # a changed weight: another fingerprint
    sts.sts_spearman(encoder, pairs)
    assert len(calls) == 2
    assert len(list((tmp_path / "sts").glob("*.parquet"))) == 3
    for entry in (tmp_path / "sts").glob("*.parquet"):
        entry.write_text("not parquet")  # a damaged entry is recomputed, not trusted
    assert sts.sts_spearman(load_encoder("tiny-random-bert", pooling="mean"), pairs) == pytest.approx(first)


def test_mean_pooling_has_one_definition_that_ignores_padding():
    """encoders.mean_pool, which Encoder.pool and SimCSE training share: the mean of the kept token vectors, whatever
    the padded positions hold, in the hidden states' dtype unless a mask dtype is given."""
    from helpers import training
    from helpers.encoders import mean_pool

    gen = torch.Generator().manual_seed(0)
    hidden = torch.randn(3, 5, 4, generator=gen)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 0, 0, 0, 0]])
    pooled = mean_pool(hidden, mask)
    for row, n in enumerate((5, 2, 1)):
        assert torch.allclose(pooled[row], hidden[row, :n].mean(0))
    assert torch.equal(mean_pool(hidden.masked_fill(mask[..., None] == 0, 1e6), mask), pooled)  # padding unseen
    assert mean_pool(hidden.bfloat16(), mask).dtype == torch.bfloat16
    assert mean_pool(hidden.bfloat16(), mask, torch.float32).dtype == torch.float32  # SimCSE's sums in fp32

    class Backbone(torch.nn.Module):
        def forward(self, input_ids, attention_mask):
            return type("Out", (), {"last_hidden_state": hidden})()

    net = training.SimCSEModel(Backbone(), "mean")
    assert torch.equal(net({"input_ids": None, "attention_mask": mask}), pooled)
