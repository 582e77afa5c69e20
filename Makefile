# RTMPose Service. Every target sets itself up on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
REPO ?= model_repository
MODELS ?= rtmpose-m rtmdet-nano

BENCH_VENV := .bench-venv
LOADTEST_VENV := .loadtest-venv
DEPLOY_VENV := .deploy-venv

.PHONY: help install models run test lint format unit integration bench overload clean docs proto loadtest loadtest-overload \
	deploy-tools browser-tools image image-gpu image-test

help:
	@echo "make run     start the service (HTTP :8000, gRPC :50051) with the default models"
	@echo "make test    lint + the whole test suite"
	@echo "make models  install the default models (official weights if downloadable, else synthetic)"
	@echo "make bench   raw ORT, the pipeline, HTTP, gRPC, streams, rtmlib, OpenVINO (GPU where present); JSON + plot in benchmarks/results/"
	@echo "make loadtest  Locust (HTTP, gRPC, streams) against the service on loopback; LOADTEST_DURATION, LOADTEST_USERS"
	@echo "make overload  200 concurrent clients against small queues (goodput, 429 latency, 5xx)"
	@echo "make docs    regenerate docs/openapi.json and the README tables;  make proto  the gRPC stubs"
	@echo "make image-test  build the CPU container image with buildah and run it (root)"

# (re)install only when pyproject.toml changed
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[cpu,openvino,dev]"
	# the eval extra's xtcocotools: built from source against the numpy just installed (its only wheel for
	# Python 3.11 was built against numpy 1 and fails to import under numpy 2)
	$(PY) -m pip install -q "cython>=3.0" "setuptools>=69"
	$(PY) -m pip install -q --force-reinstall --no-deps --no-build-isolation --no-binary xtcocotools "xtcocotools==1.14.3"
	$(PY) -m pip install -q -e ".[cpu,openvino,dev,eval]"
	touch $(STAMP)

install: $(STAMP)

models: $(STAMP)
	$(PY) -m service.models ensure $(MODELS)

run: models
	$(PY) -m service

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

format: $(STAMP)
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

unit: $(STAMP)
	$(PY) -m pytest tests/unit -q

integration: $(STAMP)
	$(PY) -m pytest tests/integration -q

test: lint $(DEPLOY_VENV)/.installed browser-tools
	$(PY) -m pytest -q

# Debian's chromium + chromium-driver for tests/browser (apt-get, as root; quick when there; never fails the run)
browser-tools:
	scripts/browser_tools.sh

# hadolint, kubectl (kustomize), kubernetes-validate, check-jsonschema, promtool for tests/deploy;
# the stamp is written only when every tool could be had, so a partial install is retried
$(DEPLOY_VENV)/.installed: scripts/deploy_tools.sh
	PYTHON=$(PYTHON) scripts/deploy_tools.sh

deploy-tools: $(DEPLOY_VENV)/.installed

# the container image, without a Docker engine: buildah + a debootstrapped local Debian base (root)
image:
	deploy/image/build.sh cpu

image-gpu:
	deploy/image/build.sh gpu

image-test: $(STAMP)
	PYTHON=$(PYTHON) scripts/deploy_tools.sh --image
	$(PY) -m pytest -q -m image tests/deploy

# rtmlib pulls opencv-python + opencv-contrib-python, which clash with the service's headless OpenCV:
# it gets its own environment, with the same onnxruntime and openvino versions as the service, and
# matplotlib for the plot (benchmarks/plot.py).
$(BENCH_VENV)/.installed: $(STAMP)
	test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install -q --upgrade pip
	$(BENCH_VENV)/bin/python -m pip install -q rtmlib==0.0.16 matplotlib==3.11.2 \
		onnxruntime==$$($(PY) -c "import onnxruntime; print(onnxruntime.__version__)") \
		openvino==$$($(PY) -c "from importlib.metadata import version; print(version('openvino'))")
	touch $@

bench: $(STAMP) $(BENCH_VENV)/.installed
	$(PY) -m benchmarks.bench

# Locust in its own environment (gevent and its pins stay out of the service's); the locustfile needs only the
# service's generated stubs, so grpcio and protobuf are the service's versions
$(LOADTEST_VENV)/.installed: $(STAMP)
	test -x $(LOADTEST_VENV)/bin/python || $(PYTHON) -m venv $(LOADTEST_VENV)
	$(LOADTEST_VENV)/bin/python -m pip install -q --upgrade pip
	$(LOADTEST_VENV)/bin/python -m pip install -q locust==2.47.0 \
		grpcio==$$($(PY) -c "import grpc; print(grpc.__version__)") \
		protobuf==$$($(PY) -c "import google.protobuf as p; print(p.__version__)")
	touch $@

# LOADTEST_DURATION (60 s), LOADTEST_USERS (10): exits 1 when an SLO fails (see loadtests/run.py)
loadtest: $(STAMP) $(LOADTEST_VENV)/.installed
	$(PY) loadtests/run.py

# far more users than the service can serve against small queues: only 429/503/504, no 5xx, healthy after
loadtest-overload: $(STAMP) $(LOADTEST_VENV)/.installed
	LOADTEST_USERS=$${LOADTEST_USERS:-60} LOADTEST_DURATION=$${LOADTEST_DURATION:-40} LOADTEST_SPAWN_RATE=20 \
		LOADTEST_QUEUE_SIZE=$${LOADTEST_QUEUE_SIZE:-16} $(PY) loadtests/run.py --shedding
# 200 concurrent clients against small queues (issue 12): goodput, 429 latency, 5xx, crossed answers
overload: $(STAMP)
	$(PY) -m benchmarks.overload

docs: $(STAMP)
	$(PY) scripts/render_docs.py

# Python stubs of proto/pose/v1/pose.proto (checked in; a test compares them with a fresh run)
proto: $(STAMP)
	$(PY) scripts/gen_proto.py

clean:
	rm -rf $(VENV) $(DEPLOY_VENV) .pytest_cache .ruff_cache .mypy_cache
