# Set-up and the two everyday jobs. The venv gets the CPU build of torch 2.13.0 (from this machine's local
# index; elsewhere pip fetches it), then the package with its test extras.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup demo test bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[test,baselines,serve]"
	touch $(STAMP)

demo: setup
	$(VENV)/bin/mprnet demo --out demo-output

test: setup
	$(PY) -m pytest

bench: setup
	$(PY) benchmarks/speed.py

clean:
	rm -rf $(VENV) demo-output .pytest_cache
