"""``python -m service.cli IMAGE...``: the request layer in process, no server; JSON on stdout.

Same settings (``POSE_*``) and model repository as the service. Examples::

    python -m service.cli photo.jpg
    python -m service.cli a.jpg b.jpg --format coco > results.json
    python -m service.cli photo.jpg --boxes '[[10,20,200,400]]' --render out.jpg
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from pathlib import Path
from typing import Any

from service.config import LogFormat, Settings
from service.engine.engine import Engine
from service.engine.session import DeviceUnavailableError
from service.errors import InvalidOptionsError, PoseError
from service.logs import configure_logging
from service.models.repository import ModelNotInstalledError
from service.requests import EncodedImage, PoseRequests
from service.requests.options import PoseOptions, parse_options
from service.wire import formats
from service.wire.formats import OutputFormat
from service.wire.options import add_option_arguments, option_values

logger = logging.getLogger("service.cli")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m service.cli", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("images", nargs="+", type=Path, help="image files (JPEG, PNG, WebP, BMP, TIFF)")
    add_option_arguments(parser)
    parser.add_argument("--format", type=OutputFormat, choices=list(OutputFormat), default=OutputFormat.NATIVE)
    parser.add_argument("--render", type=Path, help="write the image with skeletons drawn (a folder for several)")
    return parser


async def run(args: argparse.Namespace, requests: PoseRequests) -> list[Any]:
    options: PoseOptions = parse_options(PoseOptions, option_values(args))
    if options.boxes is not None and len(args.images) != 1:
        raise InvalidOptionsError("--boxes applies to one image")
    out: list[Any] = []
    for index, path in enumerate(args.images):
        image = EncodedImage(path.read_bytes())
        done = await requests.estimate(image, options, full_size=bool(args.render))
        if args.render:
            target = args.render / f"{path.stem}.jpg" if len(args.images) > 1 else args.render
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(formats.render_jpeg(done.image.bgr, done.result,
                                                   keypoint_threshold=done.keypoint_threshold))  # fmt: skip
        if args.format is OutputFormat.COCO:
            out.extend(formats.coco(done.result, image_id=formats.image_id_from_path(path, index)))
        else:
            out.append({"file": str(path), **formats.native(done.result, done.visible)})
    return out


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    base = Settings()
    configure_logging(base.log_level if base.log_level != "INFO" else "WARNING", LogFormat.TEXT)  # a terminal
    settings = base.model_copy(update={
        "model": args.model or base.model, "detector": args.detector or base.detector, "extra_models": [],
        "warmup": False,
    })  # fmt: skip
    # boxes given: no detector runs, so none is loaded
    engine = Engine(settings, models=[settings.model] if args.boxes else [settings.model, settings.detector])
    requests = PoseRequests(engine, settings)
    try:
        engine.start()
        results = asyncio.run(run(args, requests))
    except (PoseError, ModelNotInstalledError, DeviceUnavailableError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        engine.close(0)
        requests.close()
    json.dump(results, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
