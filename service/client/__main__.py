"""``python -m service.client``: call the service over gRPC.

Examples::

    python -m service.client estimate people.jpg                     # JSON as POST /v1/pose answers
    python -m service.client estimate a.jpg b.jpg --format coco       # COCO results entries
    python -m service.client estimate frame.png --raw --target gpu-box:50051 --api-key s3cret
    python -m service.client stream 0                                 # camera 0; JSON lines per frame
    python -m service.client stream clip.mp4 --det-interval 5 --smooth --render tracked.mp4
    python -m service.client stream frames/ --fps 15                  # a folder of images at 15 fps
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import grpc

from service.client import estimate, stream
from service.errors import PoseError
from service.wire.formats import OutputFormat
from service.wire.options import add_option_arguments
from service.wire.protobuf import ERROR_CODE_KEY

MAX_MESSAGE_BYTES = 64 * 1024 * 1024


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m service.client", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--target", default="localhost:50051", help="host:port of the gRPC API")
    parser.add_argument("--api-key", help="bearer token (when the service sets POSE_API_KEYS)")
    parser.add_argument("--request-id", help="x-request-id to send (the service logs it)")
    parser.add_argument("--timeout", type=float, default=30.0, help="deadline per call, seconds")
    commands = parser.add_subparsers(dest="command", required=True)
    one = commands.add_parser("estimate", help="one Estimate call per image; prints what HTTP would answer")
    one.add_argument("images", nargs="+", type=Path, help="image files")
    one.add_argument("--raw", action="store_true", help="decode here and send raw BGR pixels (as a camera would)")
    one.add_argument("--format", type=OutputFormat, choices=list(OutputFormat), default=OutputFormat.NATIVE)
    add_option_arguments(one)
    video = commands.add_parser("stream", help="a camera, video or image folder through one Stream call")
    video.add_argument("source", help="camera index (0), video file, or folder of images")
    video.add_argument("--fps", type=float, help="send rate (default: the video's, 30 for a folder)")
    video.add_argument("--det-interval", type=int, default=1, help="run the detector every N frames")
    video.add_argument("--max-in-flight", type=int, default=0, help="frames processed at once (0: the service's 2)")
    video.add_argument("--max-buffered", type=int, help="frames waiting beyond those (the service's default: 2)")
    video.add_argument("--smooth", action="store_true", help="One-Euro smoothing of keypoints and boxes")
    video.add_argument("--raw", action="store_true", help="send raw BGR pixels instead of JPEG")
    video.add_argument("--max-frames", type=int, default=0, help="stop after this many frames (0: all)")
    video.add_argument("--render", type=Path, help="write an MP4 with boxes, skeletons and track ids")
    add_option_arguments(video)
    return parser


def _error_code(exc: grpc.RpcError) -> str:
    """The service's error code (the HTTP API's ``error.code``) in a failed call's trailing metadata, or ''."""
    for item in exc.trailing_metadata() or ():  # (key, value) namedtuples with these names
        if item.key == ERROR_CODE_KEY:
            # a text key's value is a str; types-grpcio types every value as bytes (those of "-bin" keys)
            return item.value.decode() if isinstance(item.value, bytes) else str(item.value)
    return ""


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    options = [("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
               ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES)]  # fmt: skip
    try:
        with grpc.insecure_channel(args.target, options=options) as channel:
            (stream if args.command == "stream" else estimate).run(args, channel)
    except grpc.RpcError as exc:
        print(f"error: {exc.code().name} {_error_code(exc)}: {exc.details()}", file=sys.stderr)
        return 1
    except (PoseError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
