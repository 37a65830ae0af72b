import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


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
