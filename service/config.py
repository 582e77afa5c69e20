"""Service settings: one pydantic-settings class, environment variables ``POSE_*``.

No other module reads ``os.environ``; a :class:`Settings` instance is built once at
start-up and passed down explicitly.
"""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from service.devices import Backend, Precision, parse_device
from service.wire.options import MAX_PEOPLE

MIN_TIMEOUT_S = 0.01  # the shortest deadline: no image is read, decoded and posed sooner (shorter is a mistake)
MAX_TIMEOUT_S = 3600.0  # the longest deadline a client may ask for


class WeightsPolicy(StrEnum):
    """Which weights ``make models`` / ``ensure`` installs for a registry model."""

    AUTO = "auto"  # official when present or downloadable, else synthetic (with a loud warning)
    OFFICIAL = "official"  # official only; fail when they cannot be had
    SYNTHETIC = "synthetic"  # always synthesize (architecture-exact, seeded random weights)


class LogFormat(StrEnum):
    JSON = "json"
    TEXT = "text"


def _split_csv(value: object) -> object:
    """Accept ``"a,b"`` (how env vars arrive) as well as a list."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    """Every setting of the service; each is documented in README.md (Configuration)."""

    model_config = SettingsConfigDict(env_prefix="POSE_", extra="ignore", frozen=True)

    # network
    host: str = Field("0.0.0.0", description="Bind address for HTTP and gRPC.")
    http_port: int = Field(8000, ge=0, le=65535, description="HTTP API port; /metrics is served on it too.")
    grpc_port: int = Field(50051, ge=0, le=65535, description="gRPC API port; 0 turns gRPC off.")
    grpc_max_message_bytes: int = Field(
        32 * 1024 * 1024,
        ge=1024 * 1024,
        description="Largest gRPC message, in and out (RESOURCE_EXHAUSTED above), and largest WebSocket stream "
        "message (close 1009 above): a raw 3840x2160 BGR frame is 24.9 MB.",
    )
    grpc_message_budget_bytes: int = Field(
        0,
        ge=0,
        description="Memory for gRPC request messages in flight, all calls together: a call holds "
        "POSE_GRPC_MAX_MESSAGE_BYTES until its message is read, then the message's size, until it ends; a call that "
        "does not fit is refused at once (RESOURCE_EXHAUSTED message_budget). 0 = half the decode budget's size. At "
        "least POSE_GRPC_MAX_MESSAGE_BYTES.",
    )

    # models
    model_repository: Path = Field(Path("./model_repository"), description="Folder of model folders.")
    trt_cache: Path | None = Field(
        None,
        description="TensorRT engine and timing cache folder; unset: <model_repository>/.trt_cache. Give it a "
        "writable volume of its own where the repository is read-only.",
    )
    model: str = Field("rtmpose-m", min_length=1, description="Default pose model.")
    detector: str = Field("rtmdet-nano", min_length=1, description="Default person detector.")
    extra_models: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Further models to serve beside the defaults (comma-separated); '*' serves every model found.",
    )
    weights: WeightsPolicy = Field(WeightsPolicy.AUTO, description="auto | official | synthetic.")
    device: str | None = Field(
        None, description="Overrides every model's [instances] device: cpu | cuda | cuda:N | auto."
    )
    backend: Backend | None = Field(
        None, description="Overrides every model's [instances] backend: onnxruntime | openvino (CPU)."
    )
    precision: Precision | None = Field(
        None,
        description="Overrides every model's [instances] precision: fp32 (exact) | bf16 | fp16 | auto (the fastest "
        "the backend and device have; logged).",
    )
    cpu_threads: int = Field(
        0,
        ge=0,
        le=256,
        description="Intra-op threads per CPU instance; 0 = the cores split among the model's instances.",
    )
    cpu_spinning: bool = Field(
        False,
        description="Let idle ONNX Runtime CPU threads spin (lower latency per run, but idle spinners steal cores "
        "from the other models).",
    )
    warmup: bool = Field(True, description="Run every preferred batch size once before /readyz turns ready.")
    inference_nice: int = Field(
        5,
        ge=0,
        le=19,
        description="Inference threads (model instances, ONNX Runtime pools) run this much nicer than the event loop, "
        "so admission, refusals and health probes stay fast while inference saturates the CPU; 0 turns it off.",
    )
    download_timeout_s: float = Field(20.0, gt=0, description="Connect/read timeout of model downloads.")

    # request limits
    max_body_bytes: int = Field(20 * 1024 * 1024, ge=1024, description="Largest request body accepted (413 above).")
    max_image_pixels: int = Field(
        50_000_000, ge=64, description="Largest decoded image, width x height (413 above); checked before decoding."
    )
    decode_min_side: int = Field(
        1920,
        ge=0,
        description="JPEGs at least twice this long are decoded at 1/2, 1/4 or 1/8 scale (DCT domain) down to this "
        "long side; keypoints still come back in original pixels. 0 decodes at full size.",
    )
    max_batch_images: int = Field(16, ge=1, le=256, description="Most images in one /v1/pose/batch request.")
    decode_budget_bytes: int = Field(
        0,
        ge=0,
        description="Memory for decoded pixels in flight, all requests together, and for the frames streams buffer; a "
        "request whose image would exceed it waits (within its deadline) for others to finish, a buffered frame is "
        "dropped (oldest first). 0 = an eighth of the memory the process may use (cgroup limit or RAM), at least "
        "what one image of POSE_MAX_IMAGE_PIXELS needs.",
    )
    request_timeout_s: float = Field(
        30.0,
        ge=MIN_TIMEOUT_S,
        le=MAX_TIMEOUT_S,
        description="Default deadline of a request and of each stream frame; X-Request-Timeout (HTTP) or the call's "
        "deadline (gRPC) overrides it, within the same bounds.",
    )
    max_people: int = Field(100, ge=1, le=MAX_PEOPLE, description="Default and upper cap of people per image.")
    keypoint_threshold: float = Field(
        0.3, ge=0.0, description="Default score under which a keypoint is reported as not visible."
    )

    # camera streams (gRPC Stream, WebSocket /v1/stream)
    max_streams: int = Field(
        64,
        ge=1,
        le=10_000,
        description="Most open streams, counted from the moment a call opens (RESOURCE_EXHAUSTED beyond).",
    )
    stream_idle_timeout_s: float = Field(
        30.0,
        gt=0,
        le=86_400,
        description="A stream that sends no config (after opening) or no frame for this long is closed and its state "
        "freed.",
    )

    # slow and idle HTTP clients
    http_header_timeout_s: float = Field(
        10.0,
        gt=0,
        le=600,
        description="Time a client has to send a request's headers (408, then the connection is closed).",
    )
    http_body_timeout_s: float = Field(
        60.0,
        gt=0,
        le=3600,
        description="Time a client has to send a request's whole body once its headers are "
        "in (408, then the connection is closed).",
    )
    http_keepalive_timeout_s: float = Field(
        5.0, gt=0, le=600, description="Idle keep-alive HTTP connections are closed after this long."
    )

    # operations
    api_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Bearer tokens (comma-separated); empty turns auth off."
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Origins allowed by CORS (comma-separated); empty turns CORS off."
    )
    log_level: str = Field("INFO", description="DEBUG | INFO | WARNING | ERROR.")
    log_format: LogFormat = Field(LogFormat.JSON, description="json (one object per line) | text.")
    shutdown_grace_s: float = Field(
        10.0, ge=0, le=600, description="On SIGTERM, how long queued and running work may take to finish."
    )

    @field_validator("extra_models", "api_keys", "cors_origins", mode="before")
    @classmethod
    def _csv(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError(f"POSE_LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, got {value!r}")
        return level

    @field_validator("device")
    @classmethod
    def _device(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        parse_device(value)  # raises ValueError with an example
        return value

    @field_validator("backend", "precision", mode="before")
    @classmethod
    def _unset_when_empty(cls, value: object) -> object:
        return None if value == "" else value

    @model_validator(mode="after")
    def _message_budget(self) -> Settings:
        budget, largest = self.grpc_message_budget_bytes, self.grpc_max_message_bytes
        if budget and budget < largest:
            raise ValueError(
                f"POSE_GRPC_MESSAGE_BUDGET_BYTES = {budget} cannot hold one message of POSE_GRPC_MAX_MESSAGE_BYTES = "
                f"{largest}: raise it (0: half the decode budget's size), or lower POSE_GRPC_MAX_MESSAGE_BYTES"
            )
        return self

    def trt_cache_dir(self) -> Path:
        """Where TensorRT engines and timing caches are kept."""
        return self.trt_cache or self.model_repository / ".trt_cache"

    def served_models(self) -> list[str]:
        """Names of the models to load: the defaults first, then ``extra_models`` (``*`` is resolved later)."""
        names = [self.model, self.detector, *self.extra_models]
        return list(dict.fromkeys(names))


def cpu_count() -> int:
    """CPUs this process may use (respects affinity and cgroup-limited sched masks)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def memory_limit() -> int:
    """Bytes of memory this process may use: the cgroup limit (v2 or v1) when one is set, else the RAM."""
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            value = Path(path).read_text().strip()
        except OSError:
            continue
        if value.isdigit() and int(value) < 1 << 60:  # "max" or a huge number: no limit
            return int(value)
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def settings_table() -> str:
    """The README's configuration table, from the field descriptions above."""
    rows = ["| env var | default | meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        default = field.get_default(call_default_factory=True)
        if isinstance(default, list):
            default = ",".join(default) or "(empty)"
        elif isinstance(default, StrEnum):
            default = default.value
        elif default is None:
            default = "(unset)"
        description = (field.description or "").replace("|", "\\|")
        rows.append(f"| `POSE_{name.upper()}` | `{default}` | {description} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(settings_table())
