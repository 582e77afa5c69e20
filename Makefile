# RTMPose Service. Every target sets itself up on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
REPO ?= model_repository
MODELS ?= rtmpose-m rtmdet-nano

BENCH_VENV := .bench-venv

.PHONY: help install models run test lint format unit integration bench clean docs proto

help:
	@echo "make run     start the service (HTTP :8000, gRPC :50051) with the default models"
	@echo "make test    lint + the whole test suite"
	@echo "make models  install the default models (official weights if downloadable, else synthetic)"
	@echo "make bench   benchmark raw ORT, the pipeline, HTTP, gRPC and rtmlib; writes benchmarks/results/"
	@echo "make docs    regenerate docs/openapi.json and the README tables;  make proto  the gRPC stubs"

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

# rtmlib pulls opencv-python + opencv-contrib-python, which clash with the service's headless OpenCV:
# it gets its own environment, with the same onnxruntime version as the service.
$(BENCH_VENV)/.installed: $(STAMP)
	test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install -q --upgrade pip
	$(BENCH_VENV)/bin/python -m pip install -q rtmlib==0.0.16 \
		onnxruntime==$$($(PY) -c "import onnxruntime; print(onnxruntime.__version__)")
	touch $@

bench: $(STAMP) $(BENCH_VENV)/.installed
	$(PY) -m benchmarks.bench

docs: $(STAMP)
	$(PY) scripts/render_docs.py

# Python stubs of proto/pose/v1/pose.proto (checked in; a test compares them with a fresh run)
proto: $(STAMP)
	$(PY) scripts/gen_proto.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
