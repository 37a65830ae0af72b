import numpy as np
import pandas as pd
import pytest

from helpers import explorer
from helpers.information import word_information

INFO = word_information(["a man is playing a guitar .", "a dog runs in the park .", "the man is dancing ."])
TINY = [("tiny", "tiny-random-bert", "mean")]


def test_explain_marks_unseen_words():
    table = explorer.explain("A man plays the theremin.", "tiny-random-bert", "mean", INFO)
    assert table["word"].tolist() == ["a", "man", "plays", "the", "theremin", "."]
    assert table.set_index("word").loc["theremin", "seen"] == False  # noqa: E712
    assert np.isnan(table.set_index("word").loc["theremin", "kl"])  # unseen is not zero
    assert table.set_index("word").loc["man", "seen"] and table["weight"].mean() == pytest.approx(1.0)


def test_heat_strip_html():
    table = explorer.explain("A man <plays>.", "tiny-random-bert", "mean", INFO)
    page = explorer.heat_strip(table, "tiny")
    assert "&lt;" in page and "<plays>" not in page  # words are escaped
    assert page.count("dashed") == (~table["seen"]).sum()
    assert "completeness gap" in page


def test_errors_become_messages(data_dir):
    for sentence, models, expected in [("   ", TINY, "Type a sentence"), ("word " * 300, TINY, "more than the model"),
                                       ("A dog.", [("x", "no-such-org/no-such-model-xyz", "mean")], "Could not load")]:
        page = explorer.render_html(sentence, models, "stsb", data_dir=data_dir)
        assert "Cannot explain this" in page and expected in page and "Traceback" not in page


def test_widget_updates_and_reports_errors(data_dir):
    app = explorer.Explorer({"tiny A": ("tiny-random-bert", "mean"), "tiny B": ("tiny-random-roberta", "mean")},
                            "A man is playing a guitar.", data_dir)
    page, fig = app.view()
    assert "guitar" in page and fig is not None and len(fig.axes) == 2  # two models side by side
    app.text.value = ""
    page, fig = app.view()
    assert "Cannot explain this" in page and fig is None
    app.left.value = "other (type a hub name)"
    app.text.value = "A dog."
    assert "Hub name" in app.view()[0]
    app.update()  # displays without raising, outside a kernel too
