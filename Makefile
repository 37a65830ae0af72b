# Two commands on a fresh machine: `make book` and `make test` (see README.md).
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# The local copies of the public datasets; defaults to ../shared/data where it exists.
SENTENCE_DATA_DIR ?= $(wildcard $(CURDIR)/../shared/data)
export SENTENCE_DATA_DIR

.PHONY: setup book notebooks test browser lab clean

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first, pinned to the CPU build this machine serves from its disk
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -r requirements.txt
	# the book's helpers as a package (editable): chapters import it from any working directory
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

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

# JupyterLab on the chapters, with the project's environment as the kernel
lab: setup
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks

test: setup browser
	$(PY) -m pytest tests

clean:
	rm -rf _build book/*.ipynb book/parameters.md results
