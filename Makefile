# Skype Manager: developer entry points. `make help` lists them.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV ?= .venv
PY := $(VENV)/bin/python
# Extra pytest arguments for `make test`, e.g. make test ARGS="-x -k billing"
ARGS ?=

.PHONY: help run test lint fmt bench bench-rating bench-edge bench-api clean distclean dev-venv

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

run: ## Dev server on 127.0.0.1:$PORT (default 8000), SQLite, demo data
	scripts/run.sh

test: ## Everything CI runs: packages, venv, Postgres+Redis, lint, migrations check, pytest $(ARGS)
	scripts/test.sh $(ARGS)

dev-venv:
	@scripts/venv.sh requirements-dev.txt

lint: dev-venv ## ruff check, ruff format --check, mypy, the layers contract (lint-imports)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .
	$(VENV)/bin/lint-imports

fmt: dev-venv ## Apply ruff fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: dev-venv ## Run every benchmark (benchmarks/*.py; each starts its own throwaway PostgreSQL)
	@shopt -s nullglob; files=(benchmarks/[!_]*.py); \
	if (( $${#files[@]} == 0 )); then echo "no benchmarks/*.py yet"; exit 0; fi; \
	for f in "$${files[@]}"; do echo "+ $(PY) $$f"; $(PY) "$$f"; done

bench-rating: dev-venv ## Rating benchmark: 1M CDRs end to end (ARGS="--cdrs 200000" for fewer)
	$(PY) benchmarks/rating.py $(ARGS)

bench-edge: dev-venv ## SIP edge benchmark: SIPp through Kamailio, 10,000 profiles, ≤ 10 min (ARGS="--quick")
	$(PY) benchmarks/edge.py $(ARGS)

bench-api: dev-venv ## API benchmark: gunicorn + wrk vs a hello-world, 2 × 1M calls, ~30 min (ARGS="--quick": ~2 min)
	$(PY) benchmarks/api.py $(ARGS)

clean: ## Remove caches and build output (keeps .venv, db.sqlite3, media/)
	find . \( -path ./.venv -o -path ./.git \) -prune -o -name __pycache__ -type d -exec rm -rf {} +
	rm -rf .pytest_cache .mypy_cache .ruff_cache .hypothesis staticfiles htmlcov .coverage test-results

distclean: clean ## Also remove .venv, db.sqlite3 and media/
	rm -rf $(VENV) db.sqlite3 media
