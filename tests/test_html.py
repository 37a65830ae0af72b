"""The built HTML book, opened in headless Chromium: no broken internal links, no missing images,
no failed cell, and a screenshot of the explorer page."""
import os
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from helpers import book

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
BROWSER_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars"]


def _chromium(*args, timeout=90):
    return subprocess.run([CHROMIUM, *BROWSER_FLAGS, *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def built_html(smoke_book, tmp_path_factory):
    """The whole book built by Jupyter Book 1.x from the smoke run's executed notebooks."""
    project = tmp_path_factory.mktemp("project")
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy(ROOT / name, project / name)
    shutil.copytree(ROOT / "book", project / "book", ignore=shutil.ignore_patterns("*.ipynb", "parameters.md",
                                                                                   "reproducibility.md", "downloads.md"))
    for nb in smoke_book["book"].glob("*.ipynb"):
        shutil.copy(nb, project / "book" / nb.name)
    saved = os.environ.get("SENTENCE_RESULTS_DIR")
    os.environ["SENTENCE_RESULTS_DIR"] = str(smoke_book["results"])
    try:
        book.write_pages(project / "book")
    finally:
        os.environ.pop("SENTENCE_RESULTS_DIR") if saved is None else os.environ.__setitem__("SENTENCE_RESULTS_DIR", saved)
    jb = Path(sys.executable).parent / "jupyter-book"
    proc = subprocess.run([str(jb), "build", str(project), "--path-output", str(project)], capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    warnings = [l for l in (proc.stdout + proc.stderr).splitlines() if "WARNING" in l]
    return {"html": project / "_build" / "html", "warnings": warnings}


def test_book_builds_without_warnings(built_html):
    assert not built_html["warnings"], "\n".join(built_html["warnings"][:10])
    pages = {p.stem for p in (built_html["html"] / "book").glob("*.html")}
    assert {p.stem for p in book.notebooks()} | {"intro", "parameters", "reproducibility", "downloads"} <= pages


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (make test installs it where it can)")
def test_pages_in_a_browser_have_no_broken_links_or_images(built_html):
    from bs4 import BeautifulSoup

    html_root = built_html["html"]
    problems = []
    # the root index.html only redirects (meta refresh) to the intro page: its target must exist
    redirect = BeautifulSoup((html_root / "index.html").read_text(), "html.parser").find("meta", attrs={"http-equiv": "Refresh"})
    assert redirect and (html_root / redirect["content"].split("url=")[1]).is_file()
    pages = sorted((html_root / "book").glob("*.html"))
    for page in pages:
        proc = _chromium("--virtual-time-budget=3000", "--dump-dom", page.as_uri())
        assert proc.returncode == 0 and "<html" in proc.stdout, f"Chromium could not open {page}"
        dom = BeautifulSoup(proc.stdout, "html.parser")
        if "An Exception was encountered" in dom.get_text():
            problems.append(f"{page.name}: a cell failed")
        refs = [(a.get("href"), "link") for a in dom.find_all("a")] + [(i.get("src"), "image") for i in dom.find_all("img")]
        refs += [(s.get("src"), "script") for s in dom.find_all("script")]
        refs += [(l.get("href"), "style" if "stylesheet" in (l.get("rel") or []) or "font" in (l.get("as") or "")
                  else "link") for l in dom.find_all("link")]
        for ref, kind in refs:
            if not ref or ref.startswith(("#", "mailto:", "javascript:", "data:")):
                continue
            url = urlparse(ref)
            if url.scheme in ("http", "https") or ref.startswith("//"):
                if kind != "link":  # links for readers to click are fine; nothing may load from a network
                    problems.append(f"{page.name}: loads the {kind} {ref} from a network")
                continue
            target = Path(unquote(url.path)) if url.scheme == "file" else (page.parent / unquote(url.path))
            if not target.resolve().exists():
                problems.append(f"{page.name}: broken {kind} {ref}")
    assert not problems, "\n".join(sorted(set(problems))[:20])


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (make test installs it where it can)")
def test_explorer_page_screenshot(built_html, tmp_path):
    page = built_html["html"] / "book" / "09_explorer.html"
    shot = tmp_path / "explorer.png"
    proc = _chromium("--virtual-time-budget=5000", "--window-size=1280,2400", f"--screenshot={shot}", page.as_uri())
    assert proc.returncode == 0 and shot.is_file(), proc.stderr[-2000:]
    from PIL import Image

    image = Image.open(shot)
    assert image.size == (1280, 2400)
    colours = len(set(image.convert("RGB").resize((128, 240)).getdata()))
    assert colours > 50, "the screenshot is (nearly) blank"
    keep = ROOT / "results" / "book"
    keep.mkdir(parents=True, exist_ok=True)
    shutil.copy(shot, keep / "explorer_screenshot.png")
