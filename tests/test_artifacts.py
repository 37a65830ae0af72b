"""Published runs (issue 23): a chapter fetches the self-trained pair instead of training it, by sha256.

The whole path runs against a local HTTP server on the loopback address that serves a build's packed runs.
"""
import json
import time
from pathlib import Path

import pandas as pd
import pytest

from helpers import artifacts, training

TEXTS = [f"a {w} is {v} the {o} ." for w in ("man", "dog", "child", "woman") for v in ("riding", "eating")
         for o in ("horse", "ball")]
TINY = training.MLMConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                          max_length=24)


def _train(cache, monkeypatch, url="off"):
    monkeypatch.setenv("SENTENCE_CACHE_DIR", str(cache))
    monkeypatch.setenv("SENTENCE_ARTIFACTS_URL", url)
    return training.pretrain_mlm(TEXTS, steps=4, batch_size=4, config=TINY, progress=False)


def test_a_published_run_is_fetched_instead_of_trained(tmp_path, monkeypatch, server):
    built = _train(tmp_path / "a", monkeypatch)
    artifacts.pack_cache(server["root"], tmp_path / "a" / "runs")
    manifest = json.loads((server["root"] / "manifest.json").read_text())
    assert len(manifest) == 1 and list(manifest.values())[0]["steps"] == [4]

    def no_training(*args, **kwargs):
        raise AssertionError("trained although the run is published")

    monkeypatch.setattr(training, "_mask_tokens", no_training)
    fetched = _train(tmp_path / "b", monkeypatch, server["url"])
    assert (fetched.parent / "fetched.json").is_file() and any(r.endswith(".tar.gz") for r in server["requests"])
    assert (fetched / "model.safetensors").read_bytes() == (built / "model.safetensors").read_bytes()


def test_a_tampered_artifact_is_refused_and_the_run_trained(tmp_path, monkeypatch, server):
    _train(tmp_path / "a", monkeypatch)
    artifacts.pack_cache(server["root"], tmp_path / "a" / "runs")
    archive = next(server["root"].glob("*.tar.gz"))
    blob = bytearray(archive.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    archive.write_bytes(bytes(blob))
    with pytest.warns(artifacts.NotFetched, match="refused"):
        trained = _train(tmp_path / "c", monkeypatch, server["url"])
    assert not (trained.parent / "fetched.json").exists() and (trained / "model.safetensors").is_file()


def test_without_a_server_the_run_is_trained_and_it_says_so(tmp_path, monkeypatch):
    with pytest.warns(artifacts.NotFetched, match="could not be read"):
        trained = _train(tmp_path / "d", monkeypatch, "http://127.0.0.1:9")  # nothing listens on port 9
    assert (trained / "model.safetensors").is_file()


def test_run_names_do_not_depend_on_this_machines_paths():
    a = {"kind": "simcse", "init": "/home/me/.cache/runs/mlm-1/step-3000", "init_fingerprint": "abc", "steps": 150}
    b = dict(a, init="/work/other/.cache/runs/mlm-1/step-3000")
    assert artifacts.run_key("simcse", a) == artifacts.run_key("simcse", b)
    assert artifacts.run_key("simcse", a) != artifacts.run_key("simcse", dict(a, init_fingerprint="abd"))


def test_chapter_06_runs_on_a_fresh_cache_without_training_with_equal_numbers(tmp_path, monkeypatch, server,
                                                                                data_dir):
    """A build trains and publishes the smoke pair; a fresh cache folder fetches it: chapter 06's table is equal."""
    from helpers.book import NOTEBOOK_DIR, SMOKE_PARAMETERS, run_notebook

    chapter = NOTEBOOK_DIR / "06_regression.ipynb"
    params = SMOKE_PARAMETERS["06_regression"]

    def run(cache, url):
        monkeypatch.setenv("SENTENCE_CACHE_DIR", str(tmp_path / cache))
        monkeypatch.setenv("SENTENCE_RESULTS_DIR", str(tmp_path / f"results-{cache}"))
        monkeypatch.setenv("SENTENCE_DATA_DIR", str(data_dir))
        monkeypatch.setenv("SENTENCE_ARTIFACTS_URL", url)
        started = time.perf_counter()
        run_notebook(chapter, tmp_path / f"out-{cache}", params, progress=False)
        return time.perf_counter() - started, pd.read_csv(tmp_path / f"results-{cache}" / "regression" / "table.csv")

    trained_seconds, trained = run("built", "off")
    packed = artifacts.pack_cache(server["root"], tmp_path / "built" / "runs")
    assert any(k.startswith("mlm-") for k in packed) and any(k.startswith("simcse-") for k in packed)
    fetched_seconds, fetched = run("fresh", server["url"])
    runs = tmp_path / "fresh" / "runs"
    assert {p.parent.name.split("-")[0] for p in runs.glob("*/fetched.json")} >= {"mlm", "simcse"}
    pd.testing.assert_frame_equal(fetched, trained)
    print(f"chapter 06 (smoke): trained {trained_seconds:.0f} s, fetched {fetched_seconds:.0f} s")
