# RTMPose Service. Every target sets itself up on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
REPO ?= model_repository
MODELS ?= rtmpose-m rtmdet-nano

.PHONY: help install models run test lint format unit integration bench clean docs

help:
	@echo "make run     start the service (HTTP :8000, gRPC :50051) with the default models"
	@echo "make test    lint + the whole test suite"
	@echo "make models  install the default models (official weights if downloadable, else synthetic)"
	@echo "make bench   benchmark raw ORT, the pipeline, HTTP and rtmlib; writes benchmarks/results/"

# (re)install only when pyproject.toml changed
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[cpu,dev]"
	touch $(STAMP)

install: $(STAMP)

models: $(STAMP)
	$(PY) -m service.models ensure $(MODELS)

run: models
	$(PY) -m service

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: $(STAMP)
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

unit: $(STAMP)
	$(PY) -m pytest tests/unit -q

integration: $(STAMP)
	$(PY) -m pytest tests/integration -q

test: lint
	$(PY) -m pytest -q

docs: $(STAMP)
	$(PY) scripts/render_docs.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
