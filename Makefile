# AltPref: `make run` serves the app on the embedded defaults, `make test` runs the whole suite.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: setup run test lint format clean browser wordnet gpu-check

setup: $(STAMP)

# torch first, pinned to the local CPU wheel: installing transformers/trl/peft before it
# would pull a multi-GB CUDA build from the index.
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "torch==2.13.0"
	$(PY) -m pip install --quiet -e ".[test]"
	@touch $(STAMP)

# `run` never installs system packages: it uses what is there and says what is missing.
# WordNet is only needed to score training rounds (METEOR); the app runs without it. Jobs run
# eagerly on a runner thread (starting one never blocks the page) and a sweeper thread stands in
# for Celery beat (core.jobs). The demo accounts come last, in a box, after all install and
# migrate output (demo_accounts seeds the demo first).
# ALTPREF_LOCAL_DEV: the development SECRET_KEY is accepted (only) on this local server.
run: export ALTPREF_LOCAL_DEV = true
run: setup
	$(PY) manage.py migrate --noinput
	$(PY) manage.py collectstatic --noinput -v0
	@test -f /usr/share/wordnet/data.noun || echo "note: WordNet is not installed, so round scoring (METEOR) will say so; to add it: sudo apt-get install wordnet-base"
	@$(PY) manage.py demo_accounts --url http://$(HOST):$(PORT)/
	CELERY_TASK_ALWAYS_EAGER=true ALTPREF_JOB_RUNNER=thread $(PY) manage.py runserver $(HOST):$(PORT)

test: setup browser wordnet
	HF_HUB_OFFLINE=1 $(PY) -m pytest $(PYTEST_ARGS)

# The e2e tests drive Debian's Chromium; browsers cannot be downloaded (never `playwright install`).
browser:
	command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium)

# METEOR needs WordNet 3.0: Debian's dict files, read in place (never downloaded at run time).
wordnet:
	test -f /usr/share/wordnet/data.noun || (apt-get update && apt-get install -y wordnet-base)

# GPU acceptance checks (doctor, 7B bench against trl DPO, 2-GPU FSDP step), < 8 min on one
# H100/H200. Without a CUDA device it says "no CUDA device: nothing measured" and exits 0. In the
# GPU image (no venv) it runs with the image's python: make gpu-check PY=python.
gpu-check:
	HF_HUB_OFFLINE=1 $(PY) -m modeltrain.mcmdpo.gpu_check $(GPU_CHECK_ARGS)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

format: setup
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache
