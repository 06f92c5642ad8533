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
	$(VENV)/bin/otelstream demo

lint: $(STAMP)
	$(VENV)/bin/ruff check otelstream tests benchmarks scripts
	$(VENV)/bin/ruff format --check otelstream tests benchmarks scripts
	$(VENV)/bin/mypy otelstream

# provision.sh installs the tools and servers the tests need (cached in .cache/), so no test
# skips; core_suites.sh then runs the core suites on every other CPython 3.10+ on the machine.
test: lint
	bash scripts/provision.sh
	$(PY) -m pytest
	bash scripts/core_suites.sh $(PY)

# make bench PEERS=.cache/bench-peers-venv/bin/python adds OpenInference and OpenLLMetry
# (build that venv with scripts/bench_peers.sh).
bench: $(STAMP)
	$(PY) -m benchmarks.run $(if $(PEERS),--peers-python $(PEERS))
