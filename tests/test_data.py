import pandas as pd
import pytest

from helpers.data import load_sentences

FIGURE3 = ["A man is playing a guitar.", "A man with a hard hat is dancing.", "A young child is riding a horse."]


@pytest.mark.parametrize("dataset, split, rows", [
    ("stsb", "validation", 3000), ("stsb", "train", 11498), ("stsb", "test", 2758),
    ("sts12", "test", 6216), ("nli", "validation", 19684), ("nli", "test", 19648), ("wiki", "train", 11914),
])
def test_row_counts(data_dir, dataset, split, rows):
    df = load_sentences(dataset, split, data_dir=data_dir)
    assert len(df) == rows
    assert list(df.columns[:2]) == ["sentence_id", "text"]
    assert df["sentence_id"].is_unique and df["text"].str.len().gt(0).all()


def test_stsb_pairs_and_extra_fields(data_dir):
    df = load_sentences("stsb", data_dir=data_dir)  # the paper's split by default
    assert df.attrs["split"] == "validation"
    assert set(FIGURE3) <= set(df["text"])
    first = df.iloc[:2]
    assert first["pair_id"].tolist() == [0, 0] and first["side"].tolist() == [0, 1]
    assert df["score"].between(0, 5).all()
    # rows with two trailing source fields keep their sentences intact
    train = load_sentences("stsb", "train", data_dir=data_dir)
    assert not train["text"].str.contains("Europe Media Monitor").any()


def test_sample_is_reproducible_and_keeps_ids(data_dir):
    full = load_sentences("wiki", data_dir=data_dir)
    a = load_sentences("wiki", data_dir=data_dir, limit=100, seed=3)
    b = load_sentences("wiki", data_dir=data_dir, limit=100, seed=3)
    c = load_sentences("wiki", data_dir=data_dir, limit=100, seed=4)
    pd.testing.assert_frame_equal(a, b)
    assert not a["sentence_id"].equals(c["sentence_id"])
    assert a["sentence_id"].is_monotonic_increasing
    assert (full.set_index("sentence_id").loc[a["sentence_id"], "text"].values == a["text"].values).all()


def test_nli_deduplication(data_dir):
    df = load_sentences("nli", "validation", data_dir=data_dir, deduplicate=True)
    assert df["text"].is_unique and len(df) < 19684


def test_errors(data_dir, tmp_path):
    with pytest.raises(ValueError, match="stsb, sts12, wiki, nli"):
        load_sentences("mnli", data_dir=data_dir)
    with pytest.raises(ValueError, match="has no split 'train'.*test"):
        load_sentences("sts12", "train", data_dir=data_dir)
    with pytest.raises(FileNotFoundError, match="SENTENCE_DATA_DIR"):
        load_sentences("stsb", data_dir=tmp_path)  # a folder without the files
    with pytest.raises(FileNotFoundError, match="SENTENCE_DATA_DIR"):
        load_sentences("stsb", data_dir=tmp_path / "nowhere")


def test_a_new_dataset_is_one_reader_and_one_registry_entry(tmp_path, monkeypatch):
    """CONTRIBUTING's "add a dataset": a reader and one ``REGISTRY`` entry make the dataset's files loadable by
    name, with the paper's split as the default, its evaluation sentences sampled and held out of the training
    corpora; an unknown name lists the registered ones."""
    from helpers import data

    (tmp_path / "toy").mkdir()
    (tmp_path / "toy" / "lines.txt").write_text("".join(f"toy sentence number {i}\n" for i in range(40)))
    monkeypatch.setitem(data.REGISTRY, "toy", data.Dataset({"train": ["toy/lines.txt"]}, data._read_lines, ("train",),
                                                           lambda split: None, "train"))
    table = data.load_sentences("toy", data_dir=tmp_path)
    assert table["text"].tolist()[:2] == ["toy sentence number 0", "toy sentence number 1"] and len(table) == 40
    assert table.attrs == {"dataset": "toy", "split": "train"}
    held = data.evaluation_sentences("toy", tmp_path)  # fewer than EVALUATION_SIZE: all of them
    assert set(held["text"]) == set(table["text"])
    assert set(table["text"]) <= data.held_out_texts(tmp_path, datasets=("toy",))
    with pytest.raises(ValueError, match="choose one of stsb, sts12, wiki, nli, toy"):
        data.load_sentences("toys", data_dir=tmp_path)
