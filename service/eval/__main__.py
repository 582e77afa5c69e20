"""``python -m service.eval``: what this deployment scores on a keypoint benchmark, beside the published figure.

In process by default (the request layer, as ``service.cli``: same POSE_* settings and
model repository, no server); ``--target`` / ``--grpc`` send every image through a running
service. Writes the COCO results file (as ``format=coco``) and a summary, prints a table.

Examples::

    python -m service.eval --annotations person_keypoints_val2017.json --images val2017 \\
        --boxes COCO_val2017_detections_AP_H_56_person.json --flip-test --summary summary.json
    python -m service.eval --annotations ann.json --images imgs --boxes detector --target http://gpu-box:8000
    python -m service.eval --annotations ann.json --images imgs --grpc gpu-box:50051 --expect-within 0.01
    python -m service.eval --annotations ann.json --score results.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

from service.config import LogFormat, Settings
from service.eval import report
from service.eval.dataset import KEYPOINT_SET, EvalSet, Kind, detect_kind, load_set
from service.eval.pckh import score_mpii
from service.eval.predictions import collect
from service.eval.runner import MAX_BOXES, run_tasks
from service.eval.scoring import score_boxes, score_coco, score_crowdpose, score_wholebody, without_boxes
from service.eval.transport import Ask, RequestFailedError, Transport
from service.logs import configure_logging
from service.wire.results import PoseResult

logger = logging.getLogger("service.eval")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m service.eval", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--annotations", type=Path, required=True, help="COCO-format json, or MMPose's MPII json")
    parser.add_argument("--images", type=Path, help="the folder the annotations' file names are in")
    parser.add_argument("--score", type=Path, metavar="RESULTS.json", help="score this results file; run nothing")
    parser.add_argument("--dataset", choices=[k.value for k in Kind], help="the benchmark (default: from the file)")
    parser.add_argument("--boxes", default="detector", metavar="gt|detector|DETECTIONS.json",
                        help="person boxes: the annotations', the served detector's (default), or a COCO detection "
                        "results file (MMPose's bbox_file)")  # fmt: skip
    parser.add_argument("--model", help="pose model (default: POSE_MODEL / the service's default)")
    parser.add_argument("--detector", help="person detector (default: POSE_DETECTOR / the service's default)")
    flip_help = "also run the mirrored crop, as the published figures were (default: the model's)"
    parser.add_argument("--flip-test", action=argparse.BooleanOptionalAction, default=None, help=flip_help)
    parser.add_argument("--bbox-threshold", type=float, help="detector score threshold (default: the detector's)")
    parser.add_argument("--max-people", type=int, help="people kept per image from the detector")
    transport = parser.add_mutually_exclusive_group()
    transport.add_argument("--target", help="a running service's HTTP API, e.g. http://localhost:8000")
    transport.add_argument("--grpc", metavar="HOST:PORT", help="a running service's gRPC API")
    parser.add_argument("--api-key", help="bearer token (when the service sets POSE_API_KEYS)")
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight (so that batches form)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds each image may take")
    parser.add_argument("--max-boxes", type=int, default=MAX_BOXES, help="boxes per request (POSE_MAX_PEOPLE)")
    parser.add_argument("--limit", type=int, help="only the first N images (scored against those only)")
    parser.add_argument("--no-nms", action="store_true", help="skip MMPose CocoMetric's OKS-NMS (0.9) per image")
    parser.add_argument("--headboxes", type=Path, help="MPII: mpii_gt_val.mat (head boxes for PCKh)")
    parser.add_argument("--results", type=Path, help="write the COCO keypoint results here")
    parser.add_argument("--summary", type=Path, help="write the summary JSON here")
    parser.add_argument("--expect-within", type=float, metavar="D", help="exit 1 when |AP - published| > D")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def make_transport(args: argparse.Namespace, ask: Ask, *, detector_runs: bool) -> Transport:
    if args.target:
        from service.eval.http_transport import HttpTransport

        return HttpTransport(args.target, ask, api_key=args.api_key, concurrency=args.concurrency)
    if args.grpc:
        from service.eval.grpc_transport import GrpcTransport

        return GrpcTransport(args.grpc, ask, api_key=args.api_key)
    from service.eval.in_process import InProcess

    return InProcess(ask, detector_runs=detector_runs)


def _served(described: list[dict[str, Any]], name: str | None, task: str) -> dict[str, Any]:
    """The described model of that name, else the default model of that task."""
    for model in described:
        if (model["name"] == name) if name else (model["default"] and model["task"] == task):
            return model
    raise RequestFailedError(f"the service serves no {task} model {name or '(default)'!r}")


async def request_all(args: argparse.Namespace, evalset: EvalSet) -> dict[str, Any]:
    """Send every image; the answers and what served them."""
    ask = Ask(args.model, args.detector, args.flip_test, args.bbox_threshold, args.max_people, args.timeout)
    detector_runs = args.boxes == "detector"
    transport = make_transport(args, ask, detector_runs=detector_runs)
    try:
        await transport.start()
        described = await transport.models()
        pose = _served(described, args.model, "pose")
        detector = _served(described, args.detector, "detect") if detector_runs else None
        wanted = KEYPOINT_SET[evalset.kind]
        if pose["keypoints"] != wanted:
            raise RequestFailedError(f"{pose['name']} predicts {pose['keypoints']}; {evalset.kind} needs {wanted}")
        start = time.perf_counter()
        answers = await run_tasks(transport, evalset.tasks, concurrency=args.concurrency, timeout_s=args.timeout,
                                  max_boxes=args.max_boxes, progress=not args.quiet)  # fmt: skip
        seconds = time.perf_counter() - start
    finally:
        await transport.aclose()
    return {"answers": answers, "pose": pose, "detector": detector, "transport": transport.name, "seconds": seconds}


def score(kind: Kind, args: argparse.Namespace, entries: list[dict[str, Any]], evalset: EvalSet | None,
          image_ids: list[int] | None) -> dict[str, float]:  # fmt: skip
    """The keypoint metrics of ``entries`` for the benchmark."""
    if kind is Kind.MPII:
        if args.headboxes is None:
            raise ValueError("MPII needs --headboxes mpii_gt_val.mat (the head sizes PCKh is normalised by)")
        annotations = evalset.mpii if evalset else json.loads(args.annotations.read_text())
        positions = evalset.mpii_positions if evalset else None
        return score_mpii(annotations or [], entries, args.headboxes, positions)
    scorer = {Kind.WHOLEBODY: score_wholebody, Kind.CROWDPOSE: score_crowdpose}.get(kind, score_coco)
    return scorer(args.annotations, entries, image_ids)


def _weights(served: list[dict[str, Any] | None], answers: dict[int, PoseResult]) -> tuple[str, list[str]]:
    """The run's weights as a response's ``weights`` says them (synthetic if any is), and the synthetic models."""
    kinds = {m["weights"] for m in served if m} | {r.weights for r in answers.values()}
    synthetic = [m["name"] for m in served if m and m["weights"] == "synthetic"]
    return next((w for w in ("synthetic", "custom") if w in kinds), "official"), synthetic


def evaluate(args: argparse.Namespace) -> dict[str, Any]:
    evalset = load_set(args.annotations, args.images, args.boxes, kind=Kind(args.dataset) if args.dataset else None,
                       limit=args.limit)  # fmt: skip
    ran = asyncio.run(request_all(args, evalset))
    pose, detector = ran["pose"], ran["detector"]
    predictions = collect(evalset, ran["answers"], input_size=tuple(pose["input_size"]), nms=not args.no_nms)
    weights, synthetic = _weights([pose, detector], ran["answers"])
    summary: dict[str, Any] = {
        "dataset": evalset.kind.value, "annotations": str(args.annotations), "images": len(evalset.image_ids),
        "requests": len(evalset.tasks), "people": predictions.people,
        "keypoints": score(evalset.kind, args, predictions.keypoints, evalset, evalset.image_ids),
        "model": pose["name"], "detector": detector["name"] if detector else None, "weights": weights,
        "synthetic_models": synthetic or ([pose["name"]] if weights == "synthetic" else []),
        "backend": pose.get("backend"), "precision": pose.get("precision"), "boxes": args.boxes,
        "boxes_clipped": evalset.clipped, "flip_test": args.flip_test,
        "nms": "none" if args.no_nms else "oks 0.9",
        "transport": ran["transport"], "seconds": round(ran["seconds"], 3),
        "images_per_second": round(len(evalset.tasks) / ran["seconds"], 3) if ran["seconds"] > 0 else None,
    }  # fmt: skip
    if detector is not None:
        summary["bbox"] = score_boxes(args.annotations, predictions.boxes, evalset.image_ids)
        summary["detector_backend"], summary["detector_precision"] = detector.get("backend"), detector.get("precision")
    if args.results:
        # as scored: without format=coco's person box, as MMPose's results files, so that pycocotools on this file
        # (whose loadRes takes a detection's area from a box where there is one) gives the summary's figures
        args.results.write_text(json.dumps(without_boxes(predictions.keypoints)))
        summary["results"] = str(args.results)
    return summary


def score_file(args: argparse.Namespace) -> dict[str, Any]:
    """``--score``: the metrics of an existing results file, nothing run."""
    kind = (
        Kind(args.dataset) if args.dataset else detect_kind(json.loads(args.annotations.read_text()), args.annotations)
    )
    entries = json.loads(args.score.read_text())
    return {
        "dataset": kind.value, "annotations": str(args.annotations), "results": str(args.score),
        "images": len({e["image_id"] for e in entries}), "people": len(entries),
        "keypoints": score(kind, args, entries, None, None), "model": args.model, "detector": args.detector,
        "weights": None, "backend": None, "precision": None, "boxes": None, "flip_test": args.flip_test,
        "seconds": 0.0,
    }  # fmt: skip


def finish(args: argparse.Namespace, summary: dict[str, Any]) -> int:
    """Published figures, the warning, the summary file, the table; the exit code of ``--expect-within``."""
    kind = Kind(summary["dataset"])
    summary["published"] = report.pick_published(report.figures(summary["model"]), kind.value,
                                                 boxes=summary["boxes"] or "gt", flip_test=summary["flip_test"],
                                                 metric=report.primary_metric(kind),
                                                 detector=summary["detector"])  # fmt: skip
    if summary.get("bbox") is not None:
        rows = [r for r in report.figures(summary["detector"]) if r["dataset"] == report.PERSON_BOXES.get(kind)]
        summary["published_detector"] = rows[0] if rows else None
    synthetic = summary.get("synthetic_models") or []
    summary["warning"] = report.synthetic_warning(synthetic) if synthetic else None
    if summary["warning"]:
        logger.warning(summary["warning"])
    if args.summary:
        args.summary.write_text(json.dumps(summary, indent=2) + "\n")
    report.write_table(summary, sys.stdout)
    if args.expect_within is not None:
        failure = report.check_within(summary, args.expect_within)
        if failure:
            print(f"error: {failure}", file=sys.stderr)
            return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    base = Settings()
    configure_logging(base.log_level if base.log_level != "INFO" else "WARNING", LogFormat.TEXT)  # a terminal
    if args.score is None and args.images is None:
        print("error: --images is needed to run (or --score RESULTS.json to score a file)", file=sys.stderr)
        return 2
    try:
        summary = score_file(args) if args.score else evaluate(args)
    except KeyboardInterrupt:
        print("interrupted: nothing scored, nothing written", file=sys.stderr)
        return 130
    except (RequestFailedError, OSError, ValueError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return finish(args, summary)


if __name__ == "__main__":
    sys.exit(main())
