# RTMPose Service images (deploy/README.md: building, running, sizes).
#
#   docker build --target cpu -t rtmpose-service:cpu .
#   docker build --target gpu -t rtmpose-service:gpu .
#   docker build --target cpu --build-arg MODELS="rtmpose-m rtmdet-nano" -t rtmpose-service:cpu-models .
#
# Both run as a non-root user and with a read-only root filesystem: mount volumes on the model
# repository (/models, POSE_MODEL_REPOSITORY) and the TensorRT engine cache (/cache/trt,
# POSE_TRT_CACHE), a tmpfs on /tmp. No VOLUME instruction: the orchestrator names the volumes
# (compose, Kubernetes), none are made anonymously; both folders belong to the service's user,
# so a new named volume mounted there starts writable for it. The default command installs the served models that are
# missing (`python -m service.models ensure`, POSE_WEIGHTS decides which weights) and serves.
# The GPU image brings CUDA 13 and cuDNN 9 as NVIDIA's pip wheels: the host needs an NVIDIA
# driver >= 580 and the NVIDIA container toolkit; nothing CUDA is installed on the host.

ARG BASE_IMAGE=debian:bookworm-slim

# ---- Debian's Python 3.11 and nothing else: the base of every stage ----
FROM ${BASE_IMAGE} AS python
ENV LANG=C.UTF-8 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# Debian pins its packages per release; exact versions here would break at each point release.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 \
    && rm -rf /var/lib/apt/lists/*

# ---- a virtual environment with the service, built apart so pip never reaches the image ----
FROM python AS build
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3-venv \
    && rm -rf /var/lib/apt/lists/*
# PIP_CONFIG_FILE: a build where TLS to the package index passes a proxy with its own CA hands
# pip a config as a build secret (--secret id=pip.conf,src=... --secret id=ca.crt,src=...);
# secrets live under /run/secrets for one RUN only and never reach a layer. Without them pip
# finds no such file and runs on its defaults.
ENV PATH=/opt/venv/bin:$PATH \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_CONFIG_FILE=/run/secrets/pip.conf
RUN python3 -m venv /opt/venv
WORKDIR /src
# dependencies first, from pyproject.toml alone (an empty package; its build folder is removed so
# the real package is built afresh): this layer outlives code changes
COPY pyproject.toml README.md ./
RUN mkdir service && touch service/__init__.py
COPY deploy/image/slim-venv.sh /usr/local/bin/slim-venv

FROM build AS venv-cpu
# versions: the ranges of pyproject.toml, as `make install` resolves them (the project keeps no lock file).
# The openvino extra is in, for POSE_BACKEND=openvino (slim-venv drops its GPU/NPU plugins).
# hadolint ignore=DL3013
RUN --mount=type=secret,id=pip.conf --mount=type=secret,id=ca.crt \
    pip install ".[cpu,openvino]" && rm -rf build ./*.egg-info
COPY service ./service
RUN --mount=type=secret,id=pip.conf --mount=type=secret,id=ca.crt \
    pip install --no-deps --force-reinstall . && slim-venv

FROM build AS venv-gpu
# onnxruntime-gpu >= 1.27 links CUDA 13; its cuda and cudnn extras bring the CUDA runtime,
# cuBLAS, cuFFT, cuRAND and cuDNN 9 as wheels (ONNX_RUNTIME_GPU picks another release).
ARG ONNX_RUNTIME_GPU="onnxruntime-gpu[cuda,cudnn]>=1.27"
# hadolint ignore=DL3013
RUN --mount=type=secret,id=pip.conf --mount=type=secret,id=ca.crt \
    pip install ".[gpu]" "${ONNX_RUNTIME_GPU}" && rm -rf build ./*.egg-info
COPY service ./service
RUN --mount=type=secret,id=pip.conf --mount=type=secret,id=ca.crt \
    pip install --no-deps --force-reinstall . && slim-venv

# ---- what both images share: user, folders, settings, health check ----
FROM python AS runtime
RUN groupadd --system --gid 10001 pose \
    && useradd --system --uid 10001 --gid pose --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin pose \
    && mkdir -p /models /cache/trt \
    && chown pose:pose /models /cache/trt
ENV PATH=/opt/venv/bin:$PATH \
    POSE_MODEL_REPOSITORY=/models \
    POSE_TRT_CACHE=/cache/trt \
    POSE_HTTP_PORT=8000 \
    POSE_GRPC_PORT=50051
EXPOSE 8000 50051
# /readyz: 200 once every model is loaded and warmed up; 503 while warming or draining
HEALTHCHECK --interval=10s --timeout=5s --start-period=120s --retries=3 CMD ["python", "-m", "service.probe", "/readyz"]
CMD ["sh", "-c", "python -m service.models ensure && exec python -m service"]

FROM runtime AS gpu
COPY --from=venv-gpu /opt/venv /opt/venv
# the CUDA and cuDNN libraries of the nvidia-* wheels (onnxruntime loads them by soname)
ENV LD_LIBRARY_PATH=/opt/venv/lib/python3.11/site-packages/nvidia/cu13/lib:/opt/venv/lib/python3.11/site-packages/nvidia/cudnn/lib \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility
USER 10001:10001
ARG MODELS=""
ARG WEIGHTS=auto
RUN if [ -n "$MODELS" ]; then POSE_WEIGHTS="$WEIGHTS" python -m service.models ensure $MODELS; fi

# ---- the default target comes last ----
FROM runtime AS cpu
COPY --from=venv-cpu /opt/venv /opt/venv
# no GPU provider in this image: CPU on purpose, not as a fallback (pose_model_info{fallback="false"})
# Exact by default: ONNX Runtime fp32. The fast path is one setting away, on CPUs with AVX512-BF16 or AMX:
#   -e POSE_BACKEND=openvino -e POSE_PRECISION=bf16
# (on a CPU without bf16 the start fails and says so; speed and what bf16 changes: deploy/README.md)
ENV POSE_DEVICE=cpu
USER 10001:10001
ARG MODELS=""
ARG WEIGHTS=auto
RUN if [ -n "$MODELS" ]; then POSE_WEIGHTS="$WEIGHTS" python -m service.models ensure $MODELS; fi
