# Set-up, the two everyday jobs and the linters. The venv gets the CPU build of torch 2.13.0 (from this machine's local
# index; elsewhere pip fetches it), then the package with its test extras.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
LINT_STAMP := $(VENV)/.lint-installed
DOCS_STAMP := $(VENV)/.docs-installed
LINT_PATHS := src tests benchmarks scripts

.PHONY: setup demo test test-slow test-all bench lint docs clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[test,baselines,serve,export,weights,heif,openvino]"
	touch $(STAMP)

# demo-output is the demo's own folder: a second `make demo` replaces its figures.
demo: setup
	$(VENV)/bin/mprnet demo --out demo-output --overwrite

# The everyday run leaves out the tests marked slow (GPU-run scripts, torchrun, ONNX exports, the browser, the
# longer training runs); CI runs both.
test: setup
	$(PY) -m pytest -m "not slow"

test-slow: setup
	$(PY) -m pytest -m slow

test-all: setup
	$(PY) -m pytest

bench: setup
	$(PY) benchmarks/speed.py

# ruff (lint rules and formatting) and mypy, configured in pyproject.toml; pinned in the `lint` extra.
$(LINT_STAMP): pyproject.toml $(STAMP)
	$(PY) -m pip install -q -e ".[lint]"
	touch $(LINT_STAMP)

lint: $(LINT_STAMP)
	$(VENV)/bin/ruff check $(LINT_PATHS)
	$(VENV)/bin/ruff format --check $(LINT_PATHS)
	$(VENV)/bin/mypy

# The documentation site (MkDocs, Material theme) into site/; its reference pages are generated from the code by
# scripts/docs_reference.py. --strict turns every broken link or missing page into a failure, as in CI.
$(DOCS_STAMP): pyproject.toml $(STAMP)
	$(PY) -m pip install -q -e ".[docs]"
	touch $(DOCS_STAMP)

docs: $(DOCS_STAMP)
	$(VENV)/bin/mkdocs build --strict

clean:
	rm -rf $(VENV) site demo-output .pytest_cache .ruff_cache .mypy_cache
