import os
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Nothing is downloaded from the Hugging Face hub here or in CI: a hub id is served by its offline package
# (helpers.encoders.resolve_model_path); the tests that need the hub mock it at huggingface_hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# ...nor published runs from the repository (helpers.artifacts); the tests that fetch serve them on loopback
os.environ.setdefault("SENTENCE_ARTIFACTS_URL", "off")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The local dataset copies: $SENTENCE_DATA_DIR, else ../shared/data beside the project."""
    path = Path(os.environ.get("SENTENCE_DATA_DIR") or ROOT.parent / "shared" / "data")
    if not (path / "stsb").is_dir():
        pytest.skip(f"no local dataset copies at {path}; set SENTENCE_DATA_DIR")
    return path


@pytest.fixture()
def results_tmp(tmp_path, monkeypatch, data_dir):
    """Chapters write their tables under a temporary results folder (never the book's)."""
    monkeypatch.setenv("SENTENCE_RESULTS_DIR", str(tmp_path / "results"))
    monkeypatch.setenv("SENTENCE_DATA_DIR", str(data_dir))
    return tmp_path / "results"


@pytest.fixture(scope="session")
def smoke_book(tmp_path_factory, data_dir):
    """Every chapter executed once with its smallest parameters (the smoke run of ``make test``).

    Returns {"book": folder of executed notebooks, "results": results folder, "errors": {stem: message},
    "seconds": {stem: run time}}; the tables go to a temporary results folder.
    """
    from helpers import book

    base = tmp_path_factory.mktemp("smoke")
    saved = {k: os.environ.get(k) for k in ("SENTENCE_RESULTS_DIR", "SENTENCE_DATA_DIR")}
    os.environ["SENTENCE_RESULTS_DIR"] = str(base / "results")
    os.environ["SENTENCE_DATA_DIR"] = str(data_dir)
    errors, seconds = {}, {}
    try:
        for path in book.notebooks():
            start = time.perf_counter()
            try:
                book.run_notebook(path, base / "book", book.SMOKE_PARAMETERS.get(path.stem, {}), progress=False)
            except book.NotebookFailed as err:
                errors[path.stem] = str(err)
            seconds[path.stem] = time.perf_counter() - start
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return {"book": base / "book", "results": base / "results", "errors": errors, "seconds": seconds}
