"""``estimate IMAGE...``: one ``Estimate`` call per image; prints what ``POST /v1/pose`` would answer."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import grpc

from service.wire import formats, protobuf
from service.wire._proto.pose.v1 import pose_pb2 as pb
from service.wire._proto.pose.v1 import pose_pb2_grpc
from service.wire.formats import OutputFormat
from service.wire.options import option_values


def image_message(path: Path, *, raw: bool) -> pb.Image:
    """The file's bytes, or (``raw``) its pixels decoded here with OpenCV, as BGR8."""
    if not raw:
        return pb.Image(encoded=path.read_bytes())
    pixels = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if pixels is None:
        raise ValueError(f"{path}: OpenCV cannot decode this file (--raw decodes on the client)")
    height, width = pixels.shape[:2]
    return pb.Image(raw=pb.RawImage(pixels=pixels.tobytes(), width=width, height=height, format=pb.BGR8))


def metadata(args: argparse.Namespace) -> list[tuple[str, str]]:
    out = []
    if args.api_key:
        out.append(("authorization", f"Bearer {args.api_key}"))
    if args.request_id:
        out.append(("x-request-id", args.request_id))
    return out


def estimate(args: argparse.Namespace, channel: grpc.Channel) -> Iterator[Any]:
    """Native: one HTTP-shaped object per image. COCO: every image's entries, ids from the file names."""
    options = protobuf.options_message(option_values(args))
    stub = pose_pb2_grpc.PoseServiceStub(channel)
    for index, path in enumerate(args.images):
        request = pb.EstimateRequest(image=image_message(path, raw=args.raw), options=options)
        response = stub.Estimate(request, timeout=args.timeout, metadata=metadata(args))
        result, visible = protobuf.result_from(response)
        if args.format is OutputFormat.COCO:
            yield from formats.coco(result, image_id=formats.image_id_from_path(path, index))
        else:
            yield formats.native(result, visible)


def run(args: argparse.Namespace, channel: grpc.Channel) -> None:
    if args.format is OutputFormat.COCO:
        json.dump(list(estimate(args, channel)), sys.stdout)
        sys.stdout.write("\n")
        return
    for answer in estimate(args, channel):  # JSON Lines: one answer per image, as it arrives
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()
