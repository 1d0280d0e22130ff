# Two commands set everything up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck bench check clean

$(STAMP): pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

## run: start the service with its embedded defaults (SQLite in ./var, rules/, playbooks/)
run: $(STAMP)
	$(BIN)/remediator db upgrade
	$(BIN)/remediator serve

## test: lint, type-check, the shipped rules' own tests, and the whole suite (SQLite and PostgreSQL)
test: $(STAMP) lint typecheck
	$(BIN)/remediator test rules/tests/*.test.yml tests/examples/tests/*.test.yml
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

## check: validate the shipped rule files and run their tests, as CI and pre-commit hooks would
check: $(STAMP)
	$(BIN)/remediator check
	$(BIN)/remediator test rules/tests/*.test.yml

## bench: drive a real service over loopback and print alerts/s, latency and RSS
bench: $(STAMP)
	$(BIN)/python -m bench.webhook
	$(BIN)/python -m bench.dashboard
	$(BIN)/python -m bench.replicas

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
