# The two commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: run manage test test-postgres lint typecheck migrations-check pytest bench bench-e2e redis wrk chromium clean mutation screenshots

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.run-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[serve]'
	touch $@

$(VENV)/.test-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev,bench,serve]'
	touch $@ $(VENV)/.run-installed

$(VENV)/.mutation-installed: pyproject.toml $(VENV)/.test-installed
	$(BIN)/pip install -q -e '.[dev,bench,serve,mutation]'
	touch $@

## make run: install, migrate, create the demo admin and key, serve on 127.0.0.1:8000.
run: export DJANGO_DEBUG ?= 1
run: $(VENV)/.run-installed
	@# The system checks run once, with runserver: each warning is printed once.
	$(BIN)/python manage.py migrate --noinput --skip-checks
	$(BIN)/python manage.py demo_setup --skip-checks
	$(BIN)/python manage.py runserver 127.0.0.1:8000

## make manage ARGS="apiauth_createkey --name me --scopes orders:read": a demo management
## command, run as make run runs the demo (its venv, DJANGO_DEBUG=1, its SQLite database).
manage: export DJANGO_DEBUG ?= 1
manage: $(VENV)/.run-installed
	$(BIN)/python manage.py $(ARGS)

## make test: lint, type-check, check migrations, run the suite against a real redis-server.
test: $(VENV)/.test-installed redis wrk chromium lint typecheck migrations-check pytest

## redis-server (with its sentinel mode) and redis-cli (to create the test cluster).
redis:
	@command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "Installing redis-server with apt-get"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server redis-tools >/dev/null; \
	  else \
	    echo "The tests need a redis-server binary on PATH. Install it first:"; \
	    echo "  Debian/Ubuntu: sudo apt-get install redis-server    macOS: brew install redis"; \
	    exit 1; \
	  fi; }

## Chromium for the browser tests (Playwright drives Debian's, never a downloaded one).
chromium:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "Installing chromium with apt-get"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "The browser tests need Chromium on PATH (sudo apt-get install chromium); skipped."; \
	  fi; }

## make test-postgres: the suites on a PostgreSQL server of their own (installed with apt-get
## when missing, started on a free port, stopped afterwards). Or point DATABASE_URL at yours:
## DATABASE_URL=postgres://user@host/name make pytest
test-postgres: $(VENV)/.postgres-installed redis wrk
	.ci/with-postgres $(MAKE) pytest

$(VENV)/.postgres-installed: pyproject.toml $(VENV)/.test-installed
	$(BIN)/pip install -q -e '.[dev,bench,serve,postgres]'
	touch $@

lint: $(VENV)/.test-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.test-installed
	$(BIN)/mypy

migrations-check: $(VENV)/.test-installed
	DJANGO_SETTINGS_MODULE=tests.demo.settings $(BIN)/python manage.py makemigrations --check --dry-run

## The library's suite on its own minimal settings, then the demo project's on the demo's.
pytest: $(VENV)/.test-installed redis wrk
	$(BIN)/pytest
	$(BIN)/pytest tests/demo --ds=tests.demo.settings --cov-append

## make mutation: mutmut over the security-critical pure code ([tool.mutmut] in pyproject.toml),
## then the score per module (>= 90% each, or it fails). Slow (over an hour on two cores): not in CI.
mutation: $(VENV)/.mutation-installed redis
	rm -rf mutants
	$(BIN)/mutmut run --max-children $$(nproc)
	$(BIN)/python -m tests.mutation_report --diff

## make screenshots: the admin pages of docs/admin.md, saved again from their browser test.
screenshots: $(VENV)/.test-installed redis chromium
	APIAUTH_SCREENSHOTS=docs/images/admin $(BIN)/pytest tests/test_admin_browser.py -p no:randomly --no-cov

bench: $(VENV)/.test-installed redis
	$(BIN)/python -m bench

## make bench-e2e: the demo, the anchor stack and the floor under gunicorn, driven by wrk
## (the anchor and the floor also with the demo's middleware).
bench-e2e: $(VENV)/.test-installed redis wrk
	$(BIN)/python -m bench e2e --same-middleware

wrk:
	@command -v wrk >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "Installing wrk with apt-get"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; \
	  else \
	    echo "The end-to-end benchmark needs wrk. Debian/Ubuntu: sudo apt-get install wrk"; \
	    exit 1; \
	  fi; }

clean:
	rm -rf $(VENV) db.sqlite3 .pytest_cache .mypy_cache .ruff_cache .coverage mutants .hypothesis
