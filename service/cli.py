"""``python -m service.cli IMAGE...``: the pipeline in process, no server; JSON on stdout.

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
import re
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from service.api import formats
from service.config import LogFormat, Settings
from service.engine.engine import Engine
from service.engine.pipeline import EstimateOptions
from service.engine.session import DeviceUnavailableError
from service.errors import PoseError
from service.logs import configure_logging
from service.models.repository import ModelNotInstalledError
from service.vision.image import ImageError, decode_image

logger = logging.getLogger("service.cli")


def _image_id(path: Path, index: int) -> int:
    """COCO file names carry the id (000000000785.jpg -> 785); other files are numbered in order."""
    digits = re.fullmatch(r"0*(\d+)", path.stem)
    return int(digits.group(1)) if digits else index


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m service.cli", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("images", nargs="+", type=Path, help="image files (JPEG, PNG, WebP, BMP, TIFF)")
    parser.add_argument("--model", help="pose model (default: POSE_MODEL)")
    parser.add_argument("--detector", help="person detector (default: POSE_DETECTOR)")
    parser.add_argument("--boxes", help="person boxes as JSON [[x1,y1,x2,y2],...]: skips the detector (one image)")
    parser.add_argument("--format", choices=["native", "coco"], default="native")
    parser.add_argument("--render", type=Path, help="write the image with skeletons drawn (a folder for several)")
    parser.add_argument("--max-people", type=int)
    parser.add_argument("--bbox-threshold", type=float)
    parser.add_argument("--keypoint-threshold", type=float)
    parser.add_argument("--flip-test", action=argparse.BooleanOptionalAction, default=None)
    return parser


async def run(args: argparse.Namespace, engine: Engine, settings: Settings) -> list[Any]:
    boxes = None
    if args.boxes is not None:
        if len(args.images) != 1:
            raise PoseError("--boxes applies to one image")
        boxes = np.asarray(json.loads(args.boxes), np.float32).reshape(-1, 4)
    options = EstimateOptions(boxes=boxes, max_people=args.max_people, bbox_threshold=args.bbox_threshold,
                              flip_test=args.flip_test)  # fmt: skip
    threshold = settings.keypoint_threshold if args.keypoint_threshold is None else args.keypoint_threshold
    out: list[Any] = []
    for index, path in enumerate(args.images):
        image = decode_image(path.read_bytes(), max_pixels=settings.max_image_pixels,
                             min_long_side=None if args.render else settings.decode_min_side or None)  # fmt: skip
        result = await engine.pipeline.estimate(image, options, deadline=time.monotonic() + settings.request_timeout_s)
        if args.render:
            target = args.render / f"{path.stem}.jpg" if len(args.images) > 1 else args.render
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(formats.render_jpeg(image.bgr, result, keypoint_threshold=threshold))
        if args.format == "coco":
            out.extend(formats.coco(result, image_id=_image_id(path, index)))
        else:
            out.append({"file": str(path), **formats.native(result, keypoint_threshold=threshold)})
    return out


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    base = Settings()
    configure_logging(base.log_level if base.log_level != "INFO" else "WARNING", LogFormat.TEXT)  # a terminal
    settings = base.model_copy(update={
        "model": args.model or base.model, "detector": args.detector or base.detector, "extra_models": [],
        "warmup": False,
    })  # fmt: skip
    engine = Engine(settings)
    try:
        engine.start()
        results = asyncio.run(run(args, engine, settings))
    except (PoseError, ImageError, ModelNotInstalledError, DeviceUnavailableError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        engine.close(0)
    json.dump(results, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
