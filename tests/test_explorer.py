import json

import numpy as np
import pandas as pd
import pytest

from helpers import explorer
from helpers.information import word_information

INFO = word_information(["a man is playing a guitar .", "a dog runs in the park .", "the man is dancing ."])
TINY = [("tiny", "tiny-random-bert", "mean")]


def test_explain_marks_unseen_words():
    table = explorer.sentence_weights("A man plays the theremin.", "tiny-random-bert", "mean", INFO)
    assert table["word"].tolist() == ["a", "man", "plays", "the", "theremin", "."]
    assert table.set_index("word").loc["theremin", "seen"] == False  # noqa: E712
    assert np.isnan(table.set_index("word").loc["theremin", "kl"])  # unseen is not zero
    assert table.set_index("word").loc["man", "seen"] and table["weight"].mean() == pytest.approx(1.0)


def test_heat_strip_html():
    table = explorer.sentence_weights("A man <plays>.", "tiny-random-bert", "mean", INFO)
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


def _static_inputs():
    from helpers.attribution import IG, SHAP, word_weights
    from helpers.encoders import load_encoder

    sentences = pd.DataFrame({"sentence_id": [0, 1], "text": ["a man is playing a theremin .", "a dog runs </script> ."]})
    encoder = load_encoder("tiny-random-bert", pooling="mean")
    weights = {("tiny", "ig"): word_weights(encoder, sentences, IG(n_steps=4, projections=4), progress=False),
               ("tiny", "shap"): word_weights(encoder, sentences, SHAP(max_evals=40), progress=False)}
    info = word_information(["a man is playing a guitar .", "the man is dancing .", "a dog runs </script> ."])
    return sentences, weights, {"tiny": info}


def test_static_data_holds_the_weights_and_information():
    sentences, weights, infos = _static_inputs()
    data = explorer.static_data(sentences, weights, infos)
    assert data["models"] == ["tiny"] and set(data["methods"]) == {"ig", "shap"}
    for method in ("ig", "shap"):
        w = weights[("tiny", method)]
        for sid in (0, 1):
            cell = data["cells"][method]["tiny"][str(sid)]
            part = w[w["sentence_id"] == sid].sort_values("word_index")
            assert cell["w"] == part["word"].tolist()
            assert cell["x"] == pytest.approx(part["weight"].round(3).tolist(), abs=1e-9)
            kl = infos["tiny"].set_index("word")["kl"]
            assert cell["kl"] == [round(float(kl[x]), 3) if x in kl.index else None for x in cell["w"]]
    assert None in data["cells"]["ig"]["tiny"]["0"]["kl"]  # "theremin": unseen, not zero
    page = explorer.static_explorer(data)
    payload = page.split('id="static-explorer-data">')[1].split("</script>")[0]
    assert json.loads(payload) == data  # the word "</script>" is escaped and cannot end the data block early
    assert page.count("<script") == 2 and "http" not in page  # nothing loaded from a network


def test_static_and_kernel_explorers_use_the_same_colours():
    table = pd.DataFrame({"word": ["a", "guitar"], "weight": [0.5, 1.5], "kl": [0.1, 2.0], "self_info": [1.0, 5.0],
                          "seen": [True, True], "completeness_gap": [0.0, 0.0]})
    strip = explorer.heat_strip(table)
    colours = explorer.palette()
    assert colours[explorer.colour_index(1.5, 1.5)] in strip and colours[explorer.colour_index(0.5, 1.5)] in strip


def test_static_sentences_picks_figure3_sample_and_extremes():
    sentences, weights, infos = _static_inputs()
    chosen = explorer.static_sentences(sentences, weights, infos, "tiny", n_sentences=1, n_extremes=1,
                                       always=["a dog runs </script> ."])
    assert set(chosen["sentence_id"]) == {0, 1} and chosen["label"].str.len().gt(0).all()
    with pytest.raises(ValueError, match="reference_row 'nope'"):
        explorer.static_sentences(sentences, weights, infos, "nope")
