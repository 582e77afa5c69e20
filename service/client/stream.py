"""``stream SOURCE``: a camera, a video file or a folder of images through one ``Stream`` call.

Frames go out at the source's rate (or ``--fps``) from their own thread, so a slow
service shows as dropped frames, as with a real camera; answers print as JSON lines
(``--render out.mp4`` also writes the video with boxes, skeletons and track ids).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import grpc
import numpy as np
import numpy.typing as npt

from service.client.estimate import metadata
from service.vision.keypoints import KEYPOINT_SETS
from service.vision.render import draw_people
from service.wire import formats, protobuf
from service.wire._proto.pose.v1 import pose_pb2 as pb
from service.wire._proto.pose.v1 import pose_pb2_grpc
from service.wire.options import option_values

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
U8 = npt.NDArray[np.uint8]


def frames(source: str, fps: float | None) -> tuple[Iterator[tuple[float, U8]], float]:
    """(timestamp in seconds, BGR frame) pairs from a camera index, a video file or a folder; and the rate."""
    path = Path(source)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise ValueError(f"{source}: no images in this folder")
        rate = fps or 30.0
        return ((i / rate, _read(p)) for i, p in enumerate(files)), rate
    capture = cv2.VideoCapture(int(source) if source.isdigit() else source)
    if not capture.isOpened():
        raise ValueError(f"{source}: OpenCV cannot open this camera or video")
    rate = fps or capture.get(cv2.CAP_PROP_FPS) or 30.0

    def read() -> Iterator[tuple[float, U8]]:
        index = 0
        try:
            while True:
                ok, image = capture.read()
                if not ok:
                    return
                yield index / rate, np.asarray(image, np.uint8)  # 8-bit frames; OpenCV's stubs say any depth
                index += 1
        finally:
            capture.release()

    return read(), rate


def _read(path: Path) -> U8:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"{path}: OpenCV cannot decode this file")
    return np.asarray(image, np.uint8)  # IMREAD_COLOR is 8-bit; OpenCV's stubs say any depth


def _image(frame: U8, raw: bool) -> pb.Image:
    if raw:
        height, width = frame.shape[:2]
        return pb.Image(raw=pb.RawImage(pixels=frame.tobytes(), width=width, height=height, format=pb.BGR8))
    ok, data = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 90])
    if not ok:
        raise ValueError("could not encode a frame as JPEG")
    return pb.Image(encoded=data.tobytes())


def config(args: argparse.Namespace) -> pb.StreamConfig:
    options = protobuf.options_message(option_values(args))
    message = pb.StreamConfig(options=options, det_interval=args.det_interval,
                              max_in_flight=args.max_in_flight, smooth=args.smooth)  # fmt: skip
    if args.max_buffered is not None:
        message.max_buffered = args.max_buffered
    return message


def as_json(answer: pb.StreamResponse) -> dict[str, Any]:
    """One answer as a JSON line: the frame's ids and flags, then the people as POST /v1/pose shows them."""
    if answer.drops_only:
        return {"dropped": list(answer.dropped_frame_ids)}
    out: dict[str, Any] = {"frame_id": answer.frame_id, "detected": answer.detected,
                           "dropped": list(answer.dropped_frame_ids)}  # fmt: skip
    if answer.HasField("error"):
        return out | {"error": {"code": answer.error.code, "message": answer.error.message}}
    result, visible = protobuf.result_from(answer)
    body = formats.native(result, visible)
    for person, message in zip(body["people"], answer.people, strict=True):
        person["track_id"] = message.track_id
    return out | body


def render(frame: U8, answer: pb.StreamResponse) -> U8:
    if not answer.people:
        return frame
    boxes = [(p.bbox.x1, p.bbox.y1, p.bbox.x2, p.bbox.y2) for p in answer.people]
    keypoints = [[(k.x, k.y, k.score) for k in p.keypoints] for p in answer.people]
    shown = [[k.visible for k in p.keypoints] for p in answer.people]
    labels = [f"#{p.track_id} {p.score:.2f}" for p in answer.people]
    return draw_people(frame, boxes, keypoints, KEYPOINT_SETS[answer.model.keypoints], shown, labels=labels)


def run(args: argparse.Namespace, channel: grpc.Channel) -> None:
    source, rate = frames(args.source, args.fps)
    sent: dict[int, U8] = {}  # frames kept for --render until answered
    done = threading.Event()

    def requests() -> Iterator[pb.StreamRequest]:
        yield pb.StreamRequest(config=config(args))
        start = time.monotonic()
        for frame_id, (timestamp, frame) in enumerate(source):
            if done.is_set() or (args.max_frames and frame_id >= args.max_frames):
                return
            delay = start + timestamp - time.monotonic()
            if delay > 0:
                time.sleep(delay)  # the source's pace: a service slower than it drops frames
            if args.render:
                sent[frame_id] = frame
            yield pb.StreamRequest(
                frame=pb.Frame(frame_id=frame_id, timestamp=timestamp, image=_image(frame, args.raw))
            )

    writer = None
    try:
        for answer in pose_pb2_grpc.PoseServiceStub(channel).Stream(requests(), metadata=metadata(args)):
            sys.stdout.write(json.dumps(as_json(answer)) + "\n")
            sys.stdout.flush()
            for dropped in answer.dropped_frame_ids:
                sent.pop(dropped, None)
            if args.render and not answer.drops_only and answer.frame_id in sent:
                frame = sent.pop(answer.frame_id)
                if writer is None:
                    fourcc = cv2.VideoWriter.fourcc(*"mp4v")
                    writer = cv2.VideoWriter(str(args.render), fourcc, rate, (frame.shape[1], frame.shape[0]))
                writer.write(render(frame, answer))
    finally:
        done.set()
        if writer is not None:
            writer.release()
