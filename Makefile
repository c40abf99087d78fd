# imagepipe: the two commands a fresh machine needs are `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
MODELS_STAMP := .models/.ready
PORT ?= 7071
STATE ?= .state

.PHONY: run test check install models package lint typecheck infra-check bench clean chromium

install: $(STAMP)

# requirements.txt (the app's locked closure, with hashes) goes in a pip call of its own: hashes put pip in
# --require-hashes mode for every requirement of a call. Then the local extras of pyproject.toml, then the
# packages whose declared dependencies must not be installed.
$(STAMP): requirements.txt requirements-nodeps.txt package.json package-lock.json pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.11 or run 'make PYTHON=/path/to/python3.11 ...'"; exit 1; }
	@command -v npm >/dev/null || { echo "error: npm not found; install Node.js 20+ (Debian: apt-get install nodejs npm)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q --require-hashes -r requirements.txt
	$(PY) -m pip install -q -e ".[local,devhost,dev]"
	@if [ -s requirements-nodeps.txt ]; then $(PY) -m pip install -q --no-deps -r requirements-nodeps.txt; fi
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

models: $(MODELS_STAMP)

$(MODELS_STAMP): $(STAMP) requirements-convert.txt imagepipe/vision/prepare.py imagepipe/vision/convert_efficientnet.py imagepipe/vision/convert_yolo.py
	$(PY) -m imagepipe.vision.prepare

# Before `func azure functionapp publish`: the custom labels' model into the package (docs/deploy.md).
package: $(MODELS_STAMP)
	$(PY) -m imagepipe.vision.package_model

local.settings.json:
	cp local.settings.example.json local.settings.json

run: $(STAMP) $(MODELS_STAMP) local.settings.json
	$(PY) -m imagepipe.localstack --port $(PORT) --state $(STATE) --samples samples

# The dashboard tests drive Debian's Chromium (CHROMIUM or /usr/bin/chromium); nothing is downloaded or
# installed here: without it those tests skip, and this says how to install it.
CHROMIUM ?= /usr/bin/chromium

chromium:
	@test -x "$(CHROMIUM)" || echo "note: the dashboard tests will skip: Chromium not found at $(CHROMIUM): install \
	Debian's Chromium with 'sudo apt-get install chromium' (or set CHROMIUM=/path/to/chromium)"

test: $(STAMP) $(MODELS_STAMP) infra-check chromium
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/pytest -q tests

# check: the fast inner loop (lint, format, types, the unit tier wherever it lives), no services started.
check: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/pytest -q -m "unit and not slow" tests

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy

# infra-check: owned by the Terraform work (checkov over infra/terraform).
infra-check: $(STAMP)
	@if [ ! -f .venv-infra/.installed ] || [ requirements-infra.txt -nt .venv-infra/.installed ]; then \
		$(PYTHON) -m venv .venv-infra && .venv-infra/bin/pip install -q -r requirements-infra.txt && touch .venv-infra/.installed; \
	fi
	.venv-infra/bin/checkov -d infra/terraform --framework terraform --quiet --compact --skip-download

bench: $(STAMP) $(MODELS_STAMP)
	$(PY) -m bench

clean:
	rm -rf $(VENV) node_modules .models .state .pytest_cache .mypy_cache .ruff_cache
