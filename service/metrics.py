"""Every Prometheus metric of the service, defined once (prefix ``pose_``).

Labels are bounded: protocol, route name, model name, stage name, reason; never raw paths.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import Counter, Gauge, Histogram

# request latencies: 1 ms (cached tiny images) .. 30 s (deadline ceiling)
REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# one stage of one batch: 0.1 ms (decode of a small PNG) .. 10 s (a huge batch on a slow CPU)
STAGE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
# time an item waits in a queue: 0.1 ms (idle) .. 5 s (overload)
QUEUE_BUCKETS = (0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0)
# items per batch: every size up to 8, then the usual preferred sizes
BATCH_BUCKETS = (1, 2, 3, 4, 5, 6, 7, 8, 12, 16, 24, 32, 48, 64, 128)

REQUESTS = Counter(
    "pose_requests_total", "Requests answered, by protocol, endpoint and status code.", ["protocol", "endpoint", "code"]
)
REQUEST_DURATION = Histogram(
    "pose_request_duration_seconds", "Request latency, end to end.", ["protocol", "endpoint"], buckets=REQUEST_BUCKETS
)
REQUESTS_IN_PROGRESS = Gauge("pose_requests_in_progress", "Requests being served.", ["protocol"])
STAGE_DURATION = Histogram(
    "pose_stage_duration_seconds",
    "Time spent per stage: decode, detect_pre/infer/post, pose_pre/infer/post, encode (per batch for model stages).",
    ["stage", "model"],
    buckets=STAGE_BUCKETS,
)
QUEUE_DURATION = Histogram(
    "pose_queue_duration_seconds", "Time an item waited in its model's queue.", ["model"], buckets=QUEUE_BUCKETS
)
BATCH_SIZE = Histogram("pose_batch_size", "Items per batch run by a model instance.", ["model"], buckets=BATCH_BUCKETS)
QUEUE_DEPTH = Gauge("pose_queue_depth", "Items waiting in a model's queue.", ["model"])
ITEMS = Counter("pose_items_total", "Items (images or crops) run by a model.", ["model"])
REJECTED = Counter(
    "pose_rejected_total",
    "Work refused or failed, by reason: queue_full, deadline, shutdown, inference (per queue item); cancelled (queued "
    "items of a caller that went away); admission (requests refused before their body was read); message_budget "
    "(gRPC calls refused before their message was read); side_reads (health and reflection calls refused while "
    "4 of their messages were being read).",
    ["reason"],
)
DECODE_BUDGET_BYTES = Gauge("pose_decode_budget_bytes", "The decode memory budget (POSE_DECODE_BUDGET_BYTES resolved).")
DECODE_BYTES_IN_FLIGHT = Gauge(
    "pose_decode_bytes_in_flight",
    "Decode memory held now: decoded pixels and decoder copies of requests, and the frames streams have buffered.",
)
GRPC_MESSAGE_BUDGET_BYTES = Gauge(
    "pose_grpc_message_budget_bytes", "The gRPC request message budget (POSE_GRPC_MESSAGE_BUDGET_BYTES resolved)."
)
GRPC_MESSAGE_BYTES_IN_FLIGHT = Gauge(
    "pose_grpc_message_bytes_in_flight",
    "gRPC request message bytes held now: the largest message for each call whose message is being read, the "
    "message's size once read.",
)
MODEL_INFO = Gauge(
    "pose_model_info",
    "1 per served model; labels say its version, weights (official|synthetic|custom), provider, device fallback, "
    "backend (onnxruntime|openvino), the precision that runs (fp32|bf16|fp16) and whether precision auto fell back "
    "to fp32.",
    ["model", "version", "weights", "provider", "fallback", "backend", "precision", "precision_fallback"],
)
# one stream frame, arrival to answer: 5 ms (tiny frame, idle) .. 10 s (deep overload)
FRAME_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

STREAM_ACTIVE = Gauge("pose_stream_active", "Open camera streams (waiting for their config included).")
STREAM_ENDS = Counter(
    "pose_stream_ends_total",
    "Camera streams ended, by protocol and reason: ok, cancelled, internal, or the error code that ended them "
    "(stream_idle, bad_request, shutting_down, too_many_streams, ...).",
    ["protocol", "reason"],
)
STREAM_FRAMES_RECEIVED = Counter("pose_stream_frames_received_total", "Stream frames received.")
STREAM_FRAMES_ANSWERED = Counter(
    "pose_stream_frames_answered_total", "Stream frames answered with a result or an error.", ["outcome"]
)
STREAM_FRAMES_DROPPED = Counter("pose_stream_frames_dropped_total", "Stream frames dropped under backpressure.")
STREAM_FRAMES_DETECTED = Counter("pose_stream_frames_detected_total", "Stream frames on which the detector ran.")
STREAM_FRAME_LATENCY = Histogram(
    "pose_stream_frame_latency_seconds", "Stream frame latency, arrival to answer.", buckets=FRAME_BUCKETS
)
STREAM_TRACKS_CREATED = Counter("pose_stream_tracks_created_total", "Person tracks started in streams.")


@contextmanager
def stage_timer(stage: str, model: str) -> Iterator[None]:
    """Observe the duration of the block in ``pose_stage_duration_seconds{stage, model}``."""
    start = time.perf_counter()
    try:
        yield
    finally:
        STAGE_DURATION.labels(stage, model).observe(time.perf_counter() - start)
