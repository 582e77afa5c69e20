"""``pose.v1`` request messages -> the request layer's types, and stream answers -> messages (the server's side).

Request messages arrive as bytes (the server's method handlers have no deserializer): a
message that is not the method's protobuf becomes a :class:`MalformedMessageError`
(INVALID_ARGUMENT ``bad_request``), never an exception inside gRPC. Only the image's bytes
outlive the parse: the raw message and the parsed one are dropped as soon as the image,
options or config are taken from them, so a call holds one copy of its image.

What the client shares with the server (options, results, models) is ``service/wire/protobuf.py``.
"""

from __future__ import annotations

from typing import Any, TypeVar

from google.protobuf.message import DecodeError, Message

from service.errors import BadRequestError, MalformedMessageError, PoseError
from service.requests.images import EncodedImage, ImageInput, RawPixels
from service.requests.options import PoseOptions, parse_options
from service.requests.streams import FrameIn, FrameOut, Incoming, StreamParams
from service.wire.options import check_box_count
from service.wire.protobuf import model_info, pb, people

M = TypeVar("M", bound=Message)


def parse(kind: type[M], raw: bytes) -> M:
    """``raw`` as a ``kind`` message.

    Raises:
        MalformedMessageError: the bytes are not a ``kind`` message.
    """
    try:
        return kind.FromString(raw)
    except (DecodeError, ValueError) as exc:
        raise MalformedMessageError(f"the request is not a valid {kind.DESCRIPTOR.full_name} message: {exc}") from None


def estimate_from(raw: bytes) -> tuple[ImageInput, PoseOptions]:
    """An ``EstimateRequest``'s image and options (the message itself is not kept).

    Raises:
        MalformedMessageError, BadRequestError, InvalidOptionsError.
    """
    request = parse(pb.EstimateRequest, raw)
    return image_from(request.image), options_from(request.options)


def stream_item(raw: bytes) -> Incoming:
    """One ``StreamRequest`` as what the stream driver takes: its config, its frame, or the error it is."""
    try:
        request = parse(pb.StreamRequest, raw)
        kind = request.WhichOneof("msg")
        if kind == "frame":
            return frame_from(request.frame)
        if kind == "config":
            return stream_params_from(request.config)
        raise BadRequestError("a StreamRequest carries a config or a frame; this one carries neither")
    except PoseError as error:
        return error


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
    for name, message in (("tracker", config.tracker), ("smoothing", config.smoothing)):
        values[name] = {f.name: getattr(message, f.name) for f in message.DESCRIPTOR.fields if message.HasField(f.name)}
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
        response.people.extend(people(result, out.visible, out.track_ids))
        response.timing_ms.update(result.timing_ms)
    return response
