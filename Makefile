# The two commands of the README: `make demo` (install + main job) and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test test-slow bench lint docs clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/rgflow reproduce --quick --out figures

test: install
	$(BIN)/python -m pytest -q

test-slow: install
	$(BIN)/python -m pip install -q -e ".[dev,validate]"
	$(BIN)/python -m pytest -q -m slow

# the documentation site: executes examples/*.py and fails on any warning (mkdocs.yml); → site/
docs: install
	$(BIN)/python -m pip install -q -e ".[dev,docs]"
	$(BIN)/mkdocs build --strict

bench: install
	$(BIN)/python benchmarks/bench_sampling.py

lint: install
	$(BIN)/ruff check rgflow tests scripts benchmarks examples

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache site
