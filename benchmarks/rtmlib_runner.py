"""Runs inside the separate rtmlib environment (.bench-venv): rtmlib on the same files, as users run it.

Standalone on purpose (rtmlib pulls opencv-python and opencv-contrib-python, which clash
with the service's opencv-python-headless). Prints one JSON object.

    python rtmlib_runner.py DET.onnx POSE.onnx SECONDS MAX_PEOPLE IMAGE... [--backend openvino] [--boxes BOXES.json]
        [--serve] [--ort-spinning on|off] [--device cpu|cuda]

Without ``--boxes``: RTMDet then RTMPose on every image (decoded once). With ``--boxes``
(one list of [x1, y1, x2, y2] per image): RTMPose alone on those boxes, the JPEG decoded
on every call, as a server that is handed an image and its boxes would. With ``--serve``:
load once, answer "ready PROVIDER", then one measurement (one JSON line) per line of stdin giving
its length in seconds (for measurements taken in turns with other configurations).

``--ort-spinning off`` gives every ONNX Runtime session rtmlib opens the session option
``session.intra_op.allow_spinning = 0`` (rtmlib passes no session options; ORT's default is
on): the one change that shows what spinning costs its detector + pose loop.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import onnxruntime
from rtmlib import RTMDet, RTMPose


def _spinning_off() -> None:
    """Every InferenceSession opened from now on (rtmlib's included) has intra-op spinning off."""
    base = onnxruntime.InferenceSession

    class NoSpinSession(base):  # type: ignore[misc, valid-type]
        def __init__(self, *args, sess_options=None, **kwargs):  # noqa: ANN001, ANN002, ANN003
            options = sess_options or onnxruntime.SessionOptions()
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            super().__init__(*args, sess_options=options, **kwargs)

    onnxruntime.InferenceSession = NoSpinSession


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("det")
    parser.add_argument("pose")
    parser.add_argument("seconds", type=float)
    parser.add_argument("max_people", type=int)
    parser.add_argument("images", nargs="+")
    parser.add_argument("--backend", default="onnxruntime", choices=["onnxruntime", "openvino"])
    parser.add_argument("--boxes", type=Path, help="JSON: one list of boxes per image; runs the pose model alone")
    parser.add_argument("--serve", action="store_true", help="load once, then measure SECONDS per line of stdin")
    parser.add_argument("--ort-spinning", choices=["on", "off"], default="on", help="ONNX Runtime intra-op spinning")
    parser.add_argument("--device", default="cpu", help="rtmlib's device: cpu, cuda (ONNX Runtime's CUDA EP)")
    args = parser.parse_args()
    if args.ort_spinning == "off":
        _spinning_off()
    pose = RTMPose(args.pose, model_input_size=(192, 256), backend=args.backend, device=args.device)
    if args.boxes:
        jpegs = [Path(p).read_bytes() for p in args.images]
        given = [np.asarray(b, np.float32) for b in json.loads(args.boxes.read_text())]

        def one(i: int) -> int:
            image = cv2.imdecode(np.frombuffer(jpegs[i], np.uint8), cv2.IMREAD_COLOR)
            pose(image, bboxes=given[i])
            return len(given[i])

    else:
        images = [cv2.imread(p) for p in args.images]
        detector = RTMDet(args.det, model_input_size=(320, 320), backend=args.backend, device=args.device)

        def one(i: int) -> int:
            image = images[i]
            boxes = detector(image)[: args.max_people]  # rtmlib returns boxes sorted by score (NMS order)
            if len(boxes):
                pose(image, bboxes=boxes)
            return len(boxes)

    count = len(args.images)
    # what really runs (ONNX Runtime falls back to CPU when the CUDA provider cannot be had)
    provider = pose.session.get_providers()[0] if args.backend == "onnxruntime" else f"OpenVINO:{args.device.upper()}"
    for i in range(count):
        one(i)

    def measure(seconds: float) -> str:
        latencies, crops, i = [], 0, 0
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            t0 = time.perf_counter()
            crops += one(i % count)
            latencies.append(time.perf_counter() - t0)
            i += 1
        wall = time.perf_counter() - start
        return json.dumps(
            {"images": len(latencies), "crops": crops, "wall_s": wall, "latencies_s": latencies, "provider": provider}
        )

    if not args.serve:
        print(measure(args.seconds))
        return
    print(f"ready {provider}", flush=True)
    for line in sys.stdin:  # one measurement per line: its length in seconds
        print(measure(float(line)), flush=True)


if __name__ == "__main__":
    main()
