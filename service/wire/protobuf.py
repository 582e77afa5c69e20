"""``pose.v1`` messages <-> options and results, both ways: what the server and ``service.client`` share.

Imports no runtime (no ONNX Runtime, no engine): a camera machine runs the client on it.
The server's own mappings (images and stream messages into the request layer's types)
are in ``service/api/grpc/messages.py``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from service.wire._proto.pose.v1 import pose_pb2 as pb
from service.wire.results import PoseResult

__all__ = [
    "ERROR_CODE_KEY",
    "estimate_response",
    "model_info",
    "models_response",
    "options_message",
    "people",
    "pb",
    "result_from",
]

F32 = npt.NDArray[np.float32]
ERROR_CODE_KEY = "pose-error-code"  # trailing metadata of a failed call: the HTTP API's error.code


def options_message(values: Mapping[str, Any]) -> pb.Options:
    """Option values (``Options`` field names; ``boxes`` as a list or as JSON text) as an ``Options`` message.

    Not validated here: the service checks every bound and answers INVALID_ARGUMENT.

    Raises:
        ValueError: ``boxes`` that are not a list of [x1, y1, x2, y2].
    """
    values = dict(values)
    boxes = values.pop("boxes", None)
    if isinstance(boxes, str | bytes):
        try:
            boxes = json.loads(boxes)
        except json.JSONDecodeError as exc:
            raise ValueError(f"boxes must be JSON like [[x1,y1,x2,y2]]: {exc.msg}") from None
    message = pb.Options(**{name: value for name, value in values.items() if value is not None})
    try:
        message.boxes.extend(pb.Box(x1=x1, y1=y1, x2=x2, y2=y2) for x1, y1, x2, y2 in boxes or ())
    except (TypeError, ValueError):
        raise ValueError("boxes must be a list of [x1, y1, x2, y2]") from None
    return message


def people(
    result: PoseResult, shown: npt.NDArray[np.bool_], track_ids: npt.NDArray[np.int64] | Sequence[int] | None = None
) -> list[pb.Person]:
    """Every person of ``result`` as ``Person`` messages.

    Args:
        shown: (N, K) which keypoints are visible (:func:`~service.wire.results.visible`).
        track_ids: one per person (streams only).
    """
    out = []
    boxes = result.boxes.tolist()
    bbox_scores = result.bbox_scores.tolist()
    scores = result.scores.tolist()
    visible = shown.tolist()
    keypoints = result.keypoints.tolist()
    ids = [0] * len(boxes) if track_ids is None else [int(t) for t in track_ids]
    for i, (x1, y1, x2, y2) in enumerate(boxes):
        person = pb.Person(bbox=pb.Box(x1=x1, y1=y1, x2=x2, y2=y2), bbox_score=bbox_scores[i], score=scores[i],
                           track_id=ids[i])  # fmt: skip
        person.keypoints.extend(
            pb.Keypoint(x=x, y=y, score=s, visible=v) for (x, y, s), v in zip(keypoints[i], visible[i], strict=True)
        )
        out.append(person)
    return out


def model_info(result: PoseResult) -> pb.ModelInfo:
    return pb.ModelInfo(pose=result.pose_model, detector=result.detector or "", keypoints=result.keypoint_set,
                        weights=result.weights)  # fmt: skip


def estimate_response(result: PoseResult, shown: npt.NDArray[np.bool_]) -> pb.EstimateResponse:
    return pb.EstimateResponse(width=result.width, height=result.height, model=model_info(result),
                               people=people(result, shown), timing_ms=result.timing_ms)  # fmt: skip


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
