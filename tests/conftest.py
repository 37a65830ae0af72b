import functools
import http.server
import os
import threading
import time
from pathlib import Path

import pytest
from hypothesis import settings

# Property-based tests (tests/test_properties.py): "ci" (the default) is small and derandomised, so make test
# is quick and repeatable; "explore" searches longer with fresh examples (pytest --hypothesis-profile=explore).
settings.register_profile("ci", max_examples=60, deadline=None, derandomize=True, database=None, print_blob=True)
settings.register_profile("explore", max_examples=1000, deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

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


@pytest.fixture()
def server(tmp_path):
    """A folder served on 127.0.0.1 (a thread; stopped at the end): {"url", "root", "requests"}."""
    root = tmp_path / "served"
    root.mkdir()
    requests = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            requests.append(self.path)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield {"url": f"http://127.0.0.1:{httpd.server_address[1]}", "root": root, "requests": requests}
    httpd.shutdown()
    httpd.server_close()
