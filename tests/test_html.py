"""The built HTML book, opened in headless Chromium: no broken internal links, no missing images,
no failed cell, and a screenshot of the explorer page."""
import os
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from helpers import book, pages

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
                                                                                   "reproducibility.md", "downloads.md",
                                                                                   "teaching.md"))
    for nb in smoke_book["book"].glob("*.ipynb"):
        shutil.copy(nb, project / "book" / nb.name)
    saved = os.environ.get("SENTENCE_RESULTS_DIR")
    os.environ["SENTENCE_RESULTS_DIR"] = str(smoke_book["results"])
    try:
        pages.write_pages(project / "book")
    finally:
        os.environ.pop("SENTENCE_RESULTS_DIR") if saved is None else os.environ.__setitem__("SENTENCE_RESULTS_DIR", saved)
    jb = Path(sys.executable).parent / "jupyter-book"
    proc = subprocess.run([str(jb), "build", str(project), "--path-output", str(project)], capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    warnings = [l for l in (proc.stdout + proc.stderr).splitlines() if "WARNING" in l]
    return {"html": project / "_build" / "html", "warnings": warnings}


def test_no_page_shows_stderr_output(built_html, smoke_book):
    """Progress bars and warnings (stderr) stay out of the pages: each would render as its own box before the
    tables and figures. The executed copies do hold stderr streams, so the check has something to catch."""
    import nbformat

    streamed = sum(o.get("name") == "stderr" for nb in smoke_book["book"].glob("*.ipynb")
                   for c in nbformat.read(nb, as_version=4).cells for o in c.get("outputs", []))
    assert streamed > 0
    boxes = {p.stem: p.read_text().count("output stderr") for p in (built_html["html"] / "book").glob("*.html")}
    assert not any(boxes.values()), {k: v for k, v in boxes.items() if v}


def test_book_builds_without_warnings(built_html):
    assert not built_html["warnings"], "\n".join(built_html["warnings"][:10])
    pages = {p.stem for p in (built_html["html"] / "book").glob("*.html")}
    assert {p.stem for p in book.notebooks()} | {"intro", "parameters", "reproducibility", "downloads", "teaching"} <= pages


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


def test_launch_buttons_open_committed_notebooks(built_html):
    """Every Binder and Colab link of every page names a chapter that exists in notebooks/ (not book/)."""
    import re

    links = []
    for page in (built_html["html"] / "book").glob("*.html"):
        links += re.findall(r'href="(https://(?:mybinder\.org|colab\.research\.google\.com)[^"]+)"', page.read_text())
    assert len(links) >= 2 * len(book.notebooks())  # a Binder and a Colab button on every chapter
    for link in links:
        match = re.search(r"/(notebooks/[\w-]+\.ipynb)$", unquote(link))
        assert match and (ROOT / match.group(1)).is_file(), link


def test_pages_have_descriptions_and_a_favicon(built_html):
    from bs4 import BeautifulSoup

    for page in (built_html["html"] / "book").glob("*.html"):
        dom = BeautifulSoup(page.read_text(), "html.parser")
        assert dom.title and dom.title.get_text(strip=True), page.name
        description = dom.find("meta", attrs={"name": "description"})
        assert description and len(description["content"]) > 20, page.name
        assert dom.find("meta", attrs={"property": "og:title"}), page.name
        icon = dom.find("link", rel="icon")
        assert icon and (page.parent / icon["href"]).resolve().is_file(), page.name
        for nav in dom.select("a.left-prev, a.right-next"):  # prev/next navigation leads to pages that exist
            assert (page.parent / nav["href"].split("#")[0]).resolve().is_file(), (page.name, nav["href"])
    chapter = BeautifulSoup((built_html["html"] / "book" / "03_integrated_gradients.html").read_text(), "html.parser")
    assert chapter.select_one("a.left-prev") and chapter.select_one("a.right-next")


def _dom(page_uri, budget=4000):
    from bs4 import BeautifulSoup

    proc = _chromium(f"--virtual-time-budget={budget}", "--dump-dom", page_uri)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return BeautifulSoup(proc.stdout, "html.parser")


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (make test installs it where it can)")
def test_static_explorer_renders_the_precomputed_weights(built_html):
    """The explorer works with no kernel: selected through the URL, it shows exactly the weights the page carries."""
    import json
    from urllib.parse import quote

    page = built_html["html"] / "book" / "09_explorer.html"
    data = json.loads(_dom(page.as_uri(), 1000).find("script", id="static-explorer-data").string)
    sentence = data["sentences"][-1]["id"]
    a, b = data["models"][-1], data["models"][0]
    for method in data["methods"]:
        uri = f"{page.as_uri()}#sentence={quote(sentence)}&a={quote(a)}&b={quote(b)}&method={method}"
        dom = _dom(uri)
        view = dom.find("div", attrs={"class": "se-view"})
        assert view["data-sentence"] == sentence and view["data-method"] == method  # read from the URL
        for slot, model in (("a", a), ("b", b)):
            strip = dom.find("div", attrs={"class": "se-strip", "data-slot": slot})
            assert strip is not None and strip["data-model"] == model, (slot, model)
            words = strip.find_all("span", attrs={"class": "se-word"})
            cell = data["cells"][method][model][sentence]
            assert [w.get_text() for w in words] == cell["w"]
            assert [float(w["data-weight"]) for w in words] == pytest.approx(cell["x"])
            kls = [None if w["data-kl"] in ("null", "") else float(w["data-kl"]) for w in words]
            assert kls == [None if k is None else pytest.approx(k) for k in cell["kl"]]


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (make test installs it where it can)")
def test_exercises_render_with_collapsed_solutions(built_html):
    for path in book.notebooks():
        dom = _dom((built_html["html"] / "book" / f"{path.stem}.html").as_uri(), 2000)
        exercises = dom.select("div.exercise")
        solutions = dom.select("div.solution")
        assert len(exercises) >= 3 and len(solutions) == len(exercises), path.stem
        for solution in solutions:  # collapsed until the reader opens it
            assert {"dropdown", "toggle-hidden"} <= set(solution.get("class", [])), (path.stem, solution.get("id"))
