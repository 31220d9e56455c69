# AltPref: `make run` serves the app on the embedded defaults, `make test` runs the whole suite.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: setup run test lint format clean

setup: $(STAMP)

# torch first, pinned to the local CPU wheel: installing transformers/trl/peft before it
# would pull a multi-GB CUDA build from the index.
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "torch==2.13.0"
	$(PY) -m pip install --quiet -e ".[test]"
	@touch $(STAMP)

run: setup
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo
	CELERY_TASK_ALWAYS_EAGER=true $(PY) manage.py runserver $(HOST):$(PORT)

test: setup
	HF_HUB_OFFLINE=1 $(PY) -m pytest $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: setup
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache
