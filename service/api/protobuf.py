"""``pose.v1`` messages <-> the request layer's types, both ways (the server and ``service.client`` share it)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from service.api._proto.pose.v1 import pose_pb2 as pb
from service.api.options import PoseOptions, check_box_count, parse_options
from service.api.requests import EncodedImage, ImageInput, RawPixels
from service.api.streams import FrameIn, FrameOut, StreamParams
from service.engine.results import PoseResult
from service.errors import BadRequestError, PoseError

__all__ = [
    "estimate_response",
    "image_from",
    "models_response",
    "options_from",
    "options_message",
    "people",
    "pb",
    "result_from",
]

F32 = npt.NDArray[np.float32]


def options_from(message: pb.Options) -> PoseOptions:
    """The ``Options`` message as validated options (unset fields stay None: the service's defaults).

    Raises:
        InvalidOptionsError: a value out of range (the bounds are PoseOptions').
    """
    values: dict[str, Any] = {}
    if message.model:
        values["model"] = message.model
    if message.detector:
        values["detector"] = message.detector
    if message.boxes:
        check_box_count(len(message.boxes))  # before a million boxes become Python lists
        values["boxes"] = [[b.x1, b.y1, b.x2, b.y2] for b in message.boxes]
    if message.max_people:
        values["max_people"] = message.max_people
    for name in ("bbox_threshold", "keypoint_threshold", "flip_test"):
        if message.HasField(name):
            values[name] = getattr(message, name)
    return parse_options(PoseOptions, values)


def options_message(options: PoseOptions) -> pb.Options:
    """Validated options as an ``Options`` message (the inverse of :func:`options_from`)."""
    message = pb.Options(model=options.model or "", detector=options.detector or "",
                         max_people=options.max_people or 0)  # fmt: skip
    message.boxes.extend(pb.Box(x1=x1, y1=y1, x2=x2, y2=y2) for x1, y1, x2, y2 in options.boxes or ())
    for name in ("bbox_threshold", "keypoint_threshold", "flip_test"):
        if getattr(options, name) is not None:
            setattr(message, name, getattr(options, name))
    return message


def image_from(message: pb.Image) -> ImageInput:
    """The ``Image`` message as the request layer's input (no copy of the bytes).

    Raises:
        BadRequestError: neither ``encoded`` nor ``raw`` is set.
    """
    kind = message.WhichOneof("data")
    if kind == "encoded":
        return EncodedImage(message.encoded)
    if kind == "raw":
        raw = message.raw
        return RawPixels(raw.pixels, raw.width, raw.height, rgb=raw.format == pb.RGB8)
    raise BadRequestError("the request has no image: set image.encoded (file bytes) or image.raw (pixels)")


def people(result: PoseResult, keypoint_threshold: float, track_ids: Sequence[int] | None = None) -> list[pb.Person]:
    """Every person of ``result`` as ``Person`` messages (``track_ids``: one per person, streams only)."""
    out = []
    boxes = result.boxes.tolist()
    bbox_scores = result.bbox_scores.tolist()
    scores = result.scores.tolist()
    visible = (result.keypoints[..., 2] > keypoint_threshold).tolist()
    keypoints = result.keypoints.tolist()
    for i, (x1, y1, x2, y2) in enumerate(boxes):
        person = pb.Person(bbox=pb.Box(x1=x1, y1=y1, x2=x2, y2=y2), bbox_score=bbox_scores[i], score=scores[i],
                           track_id=track_ids[i] if track_ids is not None else 0)  # fmt: skip
        person.keypoints.extend(
            pb.Keypoint(x=x, y=y, score=s, visible=v) for (x, y, s), v in zip(keypoints[i], visible[i], strict=True)
        )
        out.append(person)
    return out


def model_info(result: PoseResult) -> pb.ModelInfo:
    return pb.ModelInfo(pose=result.pose_model, detector=result.detector or "", keypoints=result.keypoint_set,
                        weights=result.weights)  # fmt: skip


def estimate_response(result: PoseResult, keypoint_threshold: float) -> pb.EstimateResponse:
    return pb.EstimateResponse(width=result.width, height=result.height, model=model_info(result),
                               people=people(result, keypoint_threshold), timing_ms=result.timing_ms)  # fmt: skip


def result_from(response: pb.EstimateResponse | pb.StreamResponse) -> tuple[PoseResult, npt.NDArray[np.bool_]]:
    """An ``EstimateResponse`` (or a stream's frame answer) as a PoseResult, and the server's ``visible`` (N, K)."""
    n = len(response.people)
    k = max((len(p.keypoints) for p in response.people), default=0)
    keypoints = np.array([[(kp.x, kp.y, kp.score) for kp in p.keypoints] for p in response.people], np.float32)
    visible = np.array([[kp.visible for kp in p.keypoints] for p in response.people], bool)
    boxes = np.array([(p.bbox.x1, p.bbox.y1, p.bbox.x2, p.bbox.y2) for p in response.people], np.float32)
    result = PoseResult(
        width=response.width,
        height=response.height,
        pose_model=response.model.pose,
        detector=response.model.detector or None,
        keypoint_set=response.model.keypoints,
        weights=response.model.weights,
        boxes=boxes.reshape(n, 4),
        bbox_scores=np.array([p.bbox_score for p in response.people], np.float32),
        scores=np.array([p.score for p in response.people], np.float32),
        keypoints=keypoints.reshape(n, k, 3),
        timing_ms=dict(response.timing_ms),
    )
    return result, visible.reshape(n, k)


def models_response(described: list[dict[str, Any]]) -> pb.ListModelsResponse:
    """``Engine.describe()`` (what GET /v1/models shows) as a ``ListModelsResponse``."""
    models = []
    for d in described:
        batching = d["batching"]
        width, height = d["input_size"]
        models.append(
            pb.ModelDescription(
                name=d["name"], task=d["task"], family=d["family"], keypoints=d["keypoints"] or "",
                num_keypoints=d["num_keypoints"] or 0, input_width=width, input_height=height, weights=d["weights"],
                version=d["version"], provider=d["provider"], device=d["device"],
                device_warning=d["device_warning"] or "", instances=d["instances"],
                threads_per_instance=d["threads_per_instance"], static_batch=d["static_batch"] or 0,
                default=d["default"], backend=d["backend"], precision=d["precision"],
                precision_warning=d["precision_warning"] or "",
                batching=pb.Batching(
                    max_batch_size=batching["max_batch_size"], max_queue_delay_ms=batching["max_queue_delay_ms"],
                    preferred_batch_sizes=batching["preferred_batch_sizes"],
                    max_queue_size=batching["max_queue_size"], queued=batching["queued"],
                ),
            )
        )  # fmt: skip
    return pb.ListModelsResponse(models=models)


def stream_params_from(config: pb.StreamConfig) -> StreamParams:
    """The first ``StreamRequest``'s config, validated (zero and unset fields take the defaults).

    Raises:
        InvalidOptionsError: a value out of range.
    """
    values: dict[str, Any] = {"options": options_from(config.options), "smooth": config.smooth}
    if config.det_interval:
        values["det_interval"] = config.det_interval
    if config.max_in_flight:
        values["max_in_flight"] = config.max_in_flight
    if config.HasField("max_buffered"):
        values["max_buffered"] = config.max_buffered
    for message, prefix in ((config.tracker, ""), (config.smoothing, "smooth_")):
        for descriptor in message.DESCRIPTOR.fields:
            if message.HasField(descriptor.name):
                values[prefix + descriptor.name] = getattr(message, descriptor.name)
    return parse_options(StreamParams, values)


def frame_from(message: pb.Frame) -> FrameIn:
    """A ``Frame`` as the stream's input; a frame without an image carries its error (answered in-band)."""
    try:
        image: ImageInput | PoseError = image_from(message.image)
    except PoseError as error:
        image = error
    return FrameIn(frame_id=message.frame_id, timestamp=message.timestamp, image=image)


def stream_response(out: FrameOut) -> pb.StreamResponse:
    response = pb.StreamResponse(frame_id=out.frame_id, dropped_frame_ids=out.dropped, detected=out.detected,
                                 drops_only=out.drops_only)  # fmt: skip
    if out.error is not None:
        response.error.CopyFrom(pb.Error(code=out.error.code, message=out.error.message))
    if out.result is not None:
        result = out.result
        response.width, response.height = result.width, result.height
        response.model.CopyFrom(model_info(result))
        response.people.extend(people(result, out.keypoint_threshold, out.track_ids))
        response.timing_ms.update(result.timing_ms)
    return response
