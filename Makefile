# evpay: `make run` serves the API with a worker and beat on embedded defaults; `make test` runs the suite.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install run test fuzz lint bench clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed

run: install
	PY=$(PY) ./scripts/run_local.sh

test: install
	PY=$(PY) ./scripts/test.sh $(ARGS)

# Contract fuzzing at length: schemathesis, every operation, FUZZ_EXAMPLES per operation (make test runs 12).
fuzz: install
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-300} FUZZ_TIMEOUT=$${FUZZ_TIMEOUT:-5400} PY=$(PY) ./scripts/test.sh tests/test_contract_fuzz.py $(ARGS)

# ruff (lint, format), the import contracts (pyproject.toml), mypy with django-stubs and djangorestframework-stubs,
# and no model change without its migration (checked on an in-memory database: nothing to set up).
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy
	DATABASE_URL=sqlite:///:memory: $(PY) manage.py makemigrations --check --dry-run

bench: install
	PY=$(PY) ./bench/run_all.sh

clean:
	rm -rf var db.sqlite3 db.sqlite3-wal db.sqlite3-shm staticfiles .pytest_cache
