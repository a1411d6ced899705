# Tocsin: `make run` starts the embedded stack, `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: run test lint schemas eval bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $@

run: $(STAMP)
	$(BIN)/tocsin run

test: $(STAMP)
	$(BIN)/ruff check schemas services tests bench
	$(BIN)/mypy
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check schemas services tests bench
	$(BIN)/ruff format --check schemas services tests bench
	$(BIN)/mypy

schemas: $(STAMP)
	$(BIN)/python -m schemas.export

eval: $(STAMP)
	$(BIN)/python -m services.classify.evaluation

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) var
