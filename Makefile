# iEvents checkout. `make run` for a working demo, `make test` for the whole suite.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PORT   ?= 8000

.PHONY: run test lint bench venv deps deps-dev migrate messages worker clean

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

# The attendee pages' translations (locale/*/LC_MESSAGES/django.po → .mo); needs GNU gettext's msgfmt.
messages: deps
	$(PY) manage.py compilemessages --ignore '$(VENV)' -v0

migrate: deps messages
	$(PY) manage.py migrate --noinput -v0
	$(PY) manage.py createcachetable

## run: set up everything and serve the demo on http://127.0.0.1:$(PORT) with a worker
run: migrate
	$(PY) manage.py seed_demo
	@echo "Open http://127.0.0.1:$(PORT)/  (admin: http://127.0.0.1:$(PORT)/admin/)"
	@PUBLIC_BASE_URL=http://127.0.0.1:$(PORT) ; export PUBLIC_BASE_URL ; \
	$(VENV)/bin/celery -A ievents worker -B --loglevel=INFO --concurrency=2 \
	  --schedule=var/celerybeat-schedule & WORKER=$$! ; \
	trap 'kill $$WORKER 2>/dev/null; wait $$WORKER 2>/dev/null' EXIT INT TERM ; \
	$(PY) manage.py runserver 127.0.0.1:$(PORT)

## test: set up and run the whole suite (uses DATABASE_URL / CELERY_BROKER_URL when set)
test: deps-dev messages
	$(VENV)/bin/ruff check .
	$(PY) manage.py makemigrations --check --dry-run -v0
	$(VENV)/bin/pytest $(PYTEST_ARGS)

lint: deps-dev
	$(VENV)/bin/ruff check .

## bench: run every benchmark and rewrite docs/benchmarks.md
bench: deps-dev
	$(PY) -m bench.run_all

clean:
	rm -rf $(VENV) var db.sqlite3* staticfiles locale/*/LC_MESSAGES/*.mo
