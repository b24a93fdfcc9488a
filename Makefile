# iEvents checkout. `make run` for a working demo, `make test` for the whole suite.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PORT   ?= 8000

.PHONY: run check-production test lint bench bench-smoke venv deps deps-dev migrate messages worker clean

$(VENV)/.deps: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	touch $@

$(VENV)/.deps-dev: $(VENV)/.deps requirements-dev.txt
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

deps: $(VENV)/.deps
deps-dev: $(VENV)/.deps-dev

# The translations (locale/*/LC_MESSAGES/django.po → .mo), compiled by Babel (a pinned
# dependency): no GNU gettext needed. Fuzzy entries are left out, as msgfmt does.
LOCALE_DIR ?= locale
messages: deps
	$(VENV)/bin/pybabel -q compile -d $(LOCALE_DIR) -D django

migrate: deps messages
	$(PY) manage.py migrate --noinput -v0
	$(PY) manage.py createcachetable

## run: set up everything and serve the demo on http://127.0.0.1:$(PORT) with a worker and beat
# run_demo starts runserver, a Celery worker and beat, prints where to click once they are
# up, and stops all three within seconds on Ctrl-C or SIGTERM (see its docstring).
# `make run CELERY_LOG_LEVEL=INFO` shows every task the worker runs.
CELERY_LOG_LEVEL ?= WARNING
run: migrate
	@PUBLIC_BASE_URL=http://127.0.0.1:$(PORT) ; export PUBLIC_BASE_URL ; \
	$(PY) manage.py seed_demo -v0 && \
	exec $(PY) manage.py run_demo --port $(PORT) --celery-loglevel $(CELERY_LOG_LEVEL)

## check-production: say what a production environment (DEBUG=0 …) still lacks, before it starts
check-production: deps
	$(PY) manage.py check --deploy --fail-level WARNING

## test: set up and run the whole suite (uses DATABASE_URL / CELERY_BROKER_URL when set)
test: deps-dev messages
	$(VENV)/bin/ruff check .
	$(PY) manage.py makemigrations --check --dry-run -v0
	$(VENV)/bin/pytest $(PYTEST_ARGS)

lint: deps-dev
	$(VENV)/bin/ruff check .

## bench: run every benchmark and rewrite docs/benchmarks.md
# Each benchmark makes its own databases and brokers; a DATABASE_URL or CELERY_BROKER_URL in
# the shell is not theirs (Celery prefers that variable to the broker a benchmark gives it).
bench: deps-dev
	env -u DATABASE_URL -u CELERY_BROKER_URL $(PY) -m bench.run_all

## bench-smoke: every benchmark at a small size (CI); fails on a failed benchmark or a missed goal
bench-smoke: deps-dev messages
	env -u DATABASE_URL -u CELERY_BROKER_URL $(PY) -m bench.run_all --smoke

clean:
	rm -rf $(VENV) var db.sqlite3* staticfiles locale/*/LC_MESSAGES/*.mo
