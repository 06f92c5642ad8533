# Both targets build the virtual environment they need from nothing but Python 3.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test lint bench

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(PY) examples/demo.py

lint: $(STAMP)
	$(VENV)/bin/ruff check otelstream tests examples benchmarks
	$(VENV)/bin/ruff format --check otelstream tests examples benchmarks
	$(VENV)/bin/mypy otelstream

test: lint
	$(PY) -m pytest

bench: $(STAMP)
	$(PY) -m benchmarks.run
