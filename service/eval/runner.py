"""The requests of a run: ``concurrency`` at a time (so the service's Batchers batch them), a progress bar.

A full queue (429, RESOURCE_EXHAUSTED) is not a failure: the image is sent again, backing
off, within its timeout. Any other refusal stops the run. Ctrl-C cancels the requests in
flight (their queued work is dropped by the service) and the caller closes the transport.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Iterator

from tqdm import tqdm

from service.eval.dataset import ImageTask
from service.eval.predictions import concat, with_box_scores
from service.eval.transport import F32, RequestFailedError, RetryLaterError, Transport
from service.wire.results import PoseResult

logger = logging.getLogger(__name__)

MAX_BOXES = 100  # boxes per request (POSE_MAX_PEOPLE's default): an image with more goes in several requests


async def _estimate(transport: Transport, task: ImageTask, boxes: F32 | None, timeout_s: float) -> PoseResult:
    """One request, sent again while the service has no queue room for it."""
    end = time.monotonic() + timeout_s
    backoff = 0.05
    while True:
        try:
            return await transport.estimate(task.path, boxes)
        except RetryLaterError as exc:
            wait = min(exc.seconds, backoff)
            if time.monotonic() + wait > end:
                raise RequestFailedError(f"{task.path}: the service's queues stayed full for {timeout_s:g} s") from exc
            await asyncio.sleep(wait)
            backoff = min(backoff * 2, 1.0)


async def estimate_image(transport: Transport, task: ImageTask, *, timeout_s: float,
                         max_boxes: int = MAX_BOXES) -> PoseResult:  # fmt: skip
    """Every person of one image: the detector's, or the task's boxes (in requests of ``max_boxes``) rescored."""
    if task.boxes is None:
        return await _estimate(transport, task, None, timeout_s)
    parts = [await _estimate(transport, task, task.boxes[i : i + max_boxes], timeout_s)
             for i in range(0, len(task.boxes), max_boxes)]  # fmt: skip
    return with_box_scores(concat(parts), task.box_scores)


async def run_tasks(transport: Transport, tasks: list[ImageTask], *, concurrency: int, timeout_s: float,
                    max_boxes: int = MAX_BOXES, progress: bool = True) -> dict[int, PoseResult]:  # fmt: skip
    """Send every task, ``concurrency`` at a time; the answers by image id.

    Raises:
        RequestFailedError: the first image the service refused or failed (the others are cancelled).
    """
    answers: dict[int, PoseResult] = {}
    queue: Iterator[ImageTask] = iter(tasks)
    bar = tqdm(total=len(tasks), unit="img", file=sys.stderr, disable=not progress, dynamic_ncols=True,
               desc="evaluating")  # fmt: skip

    async def worker() -> None:
        for task in queue:  # one shared iterator: each task goes to exactly one worker
            answers[task.image_id] = await estimate_image(transport, task, timeout_s=timeout_s, max_boxes=max_boxes)
            bar.update()

    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(max(1, concurrency)):
                group.create_task(worker())
    except* RequestFailedError as failed:
        raise failed.exceptions[0] from None
    finally:
        bar.close()
    return answers
