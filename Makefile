# Two commands on a fresh machine: `make book` and `make test` (see README.md).
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# The local copies of the public datasets; defaults to ../shared/data where it exists.
SENTENCE_DATA_DIR ?= $(wildcard $(CURDIR)/../shared/data)
export SENTENCE_DATA_DIR

.PHONY: setup lock book notebooks test browser lab clean text

setup: $(STAMP)

# PyTorch's CPU wheels: torch never pulls the CUDA build and its several GB of NVIDIA packages
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu

$(STAMP): requirements.lock pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# torch first, the CPU build: from a local wheel directory when pip is configured with one (no network),
	# else from PyTorch's CPU index
	$(PY) -m pip install --quiet --no-deps --no-index torch==2.13.0 2>/dev/null || \
	  $(PY) -m pip install --quiet --no-deps --index-url $(TORCH_INDEX) torch==2.13.0
	# then exactly the lock: every version pinned, every file checked against its hash
	$(PY) -m pip install --quiet --require-hashes --no-deps -r requirements.lock
	# the book's helpers as a package (editable): chapters import it from any working directory
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

# Remake the lock after an edit of requirements.txt (pip-tools; Linux, Python 3.11)
lock: setup
	CUSTOM_COMPILE_COMMAND="make lock" $(VENV)/bin/pip-compile --quiet --generate-hashes --allow-unsafe \
	  --strip-extras --no-emit-index-url --no-emit-find-links --output-file requirements.lock requirements.txt
	$(PY) -m helpers.publishing   # the chapters' Colab cells install the lock's versions

# Every chapter's MyST Markdown twin (notebooks/*.md, for review as text) from its notebook: run after editing one
text: setup
	$(PY) -m helpers.book sync-text

notebooks: setup
	$(PY) -m helpers.book run --out book

book: notebooks
	$(PY) -m helpers.book pages --book book
	$(VENV)/bin/jupyter-book build . --path-output .
	@echo "The book is in _build/html/index.html"

browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
	  echo "Chromium is not installed and cannot be installed here: the browser test will be skipped"

# JupyterLab on the chapters, with the project's environment as the kernel (as root, in a container: --allow-root)
LAB_ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)
lab: setup
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks $(LAB_ROOT_FLAG)

test: setup browser
	$(PY) -m pytest tests

clean:
	rm -rf _build book/*.ipynb book/parameters.md book/reproducibility.md book/downloads.md book/teaching.md results lab
