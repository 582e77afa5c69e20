"""One camera stream's state machine, transport-free, over the request layer and the Pipeline.

A :class:`StreamSession` takes frames (:meth:`~StreamSession.offer`, never blocking) and
yields one :class:`FrameOut` per frame, in frame order (:meth:`~StreamSession.results`):

- at most ``max_in_flight`` frames are processed at once; newer ones wait in a buffer of
  ``max_buffered`` frames whose bytes are held in the decode budget: when the buffer is
  full, or the budget has no room for a frame, the oldest waiting frame is dropped (of any
  stream, for the budget) and its id rides on the next answer (``dropped``): every frame
  taken is answered once, as a result or a drop;
- decoding runs ahead for the frames in flight; detection, pose and tracking run one
  frame at a time in frame order (a frame's boxes come from the tracks of the previous);
- the detector runs every ``det_interval`` frames, and whenever no track has a box;
- a bad frame (an unreadable image, a non-finite timestamp) is answered with its error and
  the stream goes on; no answer carries a non-finite number;
- no frame for ``idle_timeout_s`` (with nothing in flight) ends the stream with StreamIdleError;
- :meth:`~StreamSession.drain` (shutdown) takes no more frames, drops the waiting ones and
  ends once the frames in flight are answered.

:func:`service.requests.streams.serve_stream` drives a session from a transport's messages.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, field_validator

from service import metrics
from service.engine.pipeline import Detections, EstimateOptions
from service.engine.smoothing import OneEuroFilter, OneEuroParams
from service.engine.tracker import Plan, Tracker, TrackerParams
from service.errors import BadRequestError, PoseError, StreamIdleError
from service.models.schema import Task
from service.requests.admission import Admission, checked_finite, keypoint_threshold
from service.requests.budget import Charge
from service.requests.images import EncodedImage, ImageInput
from service.requests.layer import PoseRequests
from service.requests.options import PoseOptions
from service.vision.image import DecodedImage
from service.wire.results import PoseResult, visible

I64 = npt.NDArray[np.int64]


class StreamParams(BaseModel):
    """A stream's configuration (gRPC's StreamConfig, the WebSocket's first message validate into it).

    The tracker's and the filter's own bounds are theirs (:class:`TrackerParams`, :class:`OneEuroParams`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())

    options: PoseOptions = Field(default_factory=PoseOptions)
    det_interval: int = Field(1, ge=1, le=10_000, description="Run the detector every N frames.")
    max_in_flight: int = Field(2, ge=1, le=16, description="Frames processed at once (decoding runs ahead).")
    max_buffered: int = Field(2, ge=0, le=256, description="Frames waiting beyond those in flight.")
    smooth: bool = Field(False, description="One-Euro smoothing of each track's keypoints and box.")
    tracker: TrackerParams = Field(default_factory=TrackerParams)
    smoothing: OneEuroParams = Field(default_factory=OneEuroParams)

    @field_validator("options")
    @classmethod
    def _no_boxes(cls, options: PoseOptions) -> PoseOptions:
        if options.boxes is not None:
            raise ValueError(
                "boxes are not taken by a stream: it finds people with the detector and tracks them "
                "(send known boxes with single images instead)"
            )
        return options


@dataclass(frozen=True)
class FrameIn:
    frame_id: int
    timestamp: float  # seconds, the client's clock (0: use the arrival time)
    image: ImageInput | PoseError  # an error when the frame could not even be read
    arrived: float = field(default_factory=time.monotonic)

    @property
    def nbytes(self) -> int:
        """The bytes the frame holds while it waits (its image's)."""
        image = self.image
        if isinstance(image, EncodedImage):
            return len(image.data)
        return 0 if isinstance(image, PoseError) else len(image.pixels)


@dataclass(eq=False)
class _Waiting:
    """A frame in the buffer, with its bytes held in the decode budget (None: the frame holds none)."""

    frame: FrameIn
    charge: Charge | None


@dataclass(frozen=True)
class FrameOut:
    """The answer to one frame (or, with ``drops_only``, only the report of dropped frames)."""

    frame_id: int
    result: PoseResult | None = None  # the people, each with track_ids[i]
    track_ids: I64 | None = None
    detected: bool = False
    error: PoseError | None = None
    dropped: tuple[int, ...] = ()
    keypoint_threshold: float = 0.0
    drops_only: bool = False

    @property
    def visible(self) -> npt.NDArray[np.bool_]:
        """(N, K) which keypoints count as visible (none without a result)."""
        if self.result is None:
            return np.zeros((0, 0), bool)
        return visible(self.result.keypoints[..., 2], self.keypoint_threshold)


class StreamSession:
    """One camera stream's state: buffer, ordering, tracks, filters."""

    def __init__(self, requests: PoseRequests, params: StreamParams, *, deadline: float | None = None) -> None:
        """
        Raises:
            UnknownModelError: the options name a model that is not served (checked at open).
        """
        self.requests = requests
        self.params = params
        self.deadline = deadline  # the call's own deadline, if any: no frame outlives it
        pipeline = requests.engine.pipeline
        self.pose = pipeline.model(params.options.model, Task.POSE)
        self.detector = pipeline.model(params.options.detector, Task.DETECT)
        self.tracker = Tracker(params.tracker, self.pose.model.config.num_keypoints, det_interval=params.det_interval)
        self.max_boxes = pipeline.crops_cap(params.options.max_people)
        self.keypoint_threshold = keypoint_threshold(params.options, requests.settings)
        # each frame is admitted for the worst case (the detector, max_boxes crops), shrunk once planned
        self._admission_options = EstimateOptions(model=self.pose.name, detector=self.detector.name,
                                                  max_people=self.max_boxes)  # fmt: skip
        self._waiting: deque[_Waiting] = deque()
        self._running: set[asyncio.Task[None]] = set()
        self._next_seq = 0  # order of the frames taken in
        self._turn = 0  # the frame whose tracking step may run
        self._turns = asyncio.Condition()
        self._dropped: list[int] = []
        self._out: asyncio.Queue[FrameOut | BaseException | None] = asyncio.Queue()
        self._input_closed = False
        self._ended = False
        self._filters: dict[int, tuple[OneEuroFilter, OneEuroFilter]] = {}
        self._last_frame = time.monotonic()

    # -- frames in -----------------------------------------------------------------------------------------------

    def offer(self, frame: FrameIn) -> None:
        """Take a frame: start it, or buffer it. Never blocks.

        A buffered frame's bytes are held in the decode budget. When the buffer is full, the
        oldest waiting frame is dropped; when the budget is full, the oldest buffered frame of
        any stream is; when even that makes no room (or decodes are waiting for memory), this
        frame is. Frames offered once the input is closed are not taken.
        """
        metrics.STREAM_FRAMES_RECEIVED.inc()
        self._last_frame = time.monotonic()
        if self._ended or self._input_closed:
            return
        if len(self._running) < self.params.max_in_flight:
            self._start(frame)
            return
        if len(self._waiting) >= self.params.max_buffered:
            if not self._waiting:  # max_buffered 0: only frames in flight
                self._drop(frame)
                return
            self._drop_waiting(self._waiting[0])
        waiting = _Waiting(frame, None)
        if frame.nbytes:
            waiting.charge = self.requests.budget.hold(frame.nbytes, lambda: self._reclaimed(waiting))
            if waiting.charge is None:
                self._drop(frame)
                return
        self._waiting.append(waiting)

    def close_input(self) -> None:
        """No more frames (the client half-closed): answer what was taken, then end."""
        self._input_closed = True
        self._maybe_end()

    def drain(self) -> None:
        """Shutdown: take no more frames, drop the waiting ones (reported), end once those in flight are answered."""
        while self._waiting:
            self._drop_waiting(self._waiting[0])
        self.close_input()

    def fail(self, error: BaseException) -> None:
        """End the stream with ``error`` (a protocol violation seen by the transport)."""
        self._out.put_nowait(error)

    async def aclose(self) -> None:
        """Cancel everything (the client went away): queued crops are skipped by the Batchers."""
        self._ended = True
        for task in list(self._running):
            task.cancel()
        if self._running:
            await asyncio.wait(self._running)
        for waiting in self._waiting:
            if waiting.charge is not None:
                waiting.charge.release()
        self._waiting.clear()

    def _drop(self, frame: FrameIn) -> None:
        metrics.STREAM_FRAMES_DROPPED.inc()
        self._dropped.append(frame.frame_id)

    def _drop_waiting(self, waiting: _Waiting) -> None:
        self._waiting.remove(waiting)
        if waiting.charge is not None:
            waiting.charge.release()
        self._drop(waiting.frame)

    def _reclaimed(self, waiting: _Waiting) -> None:
        """The decode budget takes a buffered frame's bytes back (other work needs them): the frame is dropped."""
        self._waiting.remove(waiting)
        self._drop(waiting.frame)

    def _start(self, frame: FrameIn) -> None:
        task = asyncio.create_task(self._process(frame, self._next_seq))
        self._next_seq += 1
        self._running.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self._out.put_nowait(task.exception())  # a bug: end the stream with it
            return
        if self._waiting and not self._ended:
            waiting = self._waiting.popleft()
            if waiting.charge is not None:
                waiting.charge.release()  # in flight from now on: its decode holds the budget
            self._start(waiting.frame)
        self._maybe_end()

    def _maybe_end(self) -> None:
        if self._input_closed and not self._running and not self._waiting and not self._ended:
            self._ended = True
            if self._dropped:
                self._emit(FrameOut(frame_id=0, drops_only=True))
            self._out.put_nowait(None)

    # -- answers out ---------------------------------------------------------------------------------------------

    async def results(self) -> AsyncIterator[FrameOut]:
        """Answers in frame order until the input is closed and answered.

        Raises:
            StreamIdleError: no frame arrived for ``POSE_STREAM_IDLE_TIMEOUT_S`` while nothing was in flight.
        """
        idle_s = self.requests.settings.stream_idle_timeout_s
        while True:
            try:
                item = await asyncio.wait_for(self._out.get(), timeout=idle_s)
            except TimeoutError:
                if self._running or self._waiting or time.monotonic() - self._last_frame < idle_s:
                    continue
                raise StreamIdleError(f"no frame for {idle_s:g} s: the stream is closed") from None
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def _emit(self, out: FrameOut) -> None:
        if self._dropped:
            out = dataclasses.replace(out, dropped=tuple(self._dropped))
            self._dropped.clear()
        if not out.drops_only:
            metrics.STREAM_FRAMES_ANSWERED.labels("error" if out.error else "ok").inc()
        self._out.put_nowait(out)

    # -- one frame -----------------------------------------------------------------------------------------------

    async def _process(self, frame: FrameIn, seq: int) -> None:
        """One frame: admitted and decoded as soon as it is taken, tracked in its turn, answered in order.

        Each frame is a unit of work of the request layer (queue room for one image,
        the decode budget, its deadline, shutdown); a refusal (``queue_full``) or a bad
        image is this frame's answer.
        """
        deadline = frame.arrived + self.requests.settings.request_timeout_s
        if self.deadline is not None:
            deadline = min(deadline, self.deadline)
        out: FrameOut | None = None
        try:
            if not math.isfinite(frame.timestamp):  # it would turn the track's smoothed keypoints into NaN for good
                raise BadRequestError(f"Frame.timestamp must be a finite number of seconds; got {frame.timestamp}")
            async with self.requests.admit(deadline=deadline, arrived=frame.arrived) as admission:
                admission.reserve(self._admission_options)
                image = frame.image
                if isinstance(image, PoseError):
                    raise image
                decoded = await admission.decode(image)
                async with self._turn_of(seq):
                    out = await self._track(frame, decoded, admission)
                    self._emit(out)
        except PoseError as error:
            if out is None:
                async with self._turn_of(seq):
                    self._emit(FrameOut(frame.frame_id, error=error))
        metrics.STREAM_FRAME_LATENCY.observe(time.monotonic() - frame.arrived)

    @asynccontextmanager
    async def _turn_of(self, seq: int) -> AsyncIterator[None]:
        """Frame ``seq``'s turn: tracking and answers go one frame at a time, in frame order."""
        async with self._turns:
            await self._turns.wait_for(lambda: self._turn == seq)
        try:
            yield
        finally:
            async with self._turns:
                self._turn = max(self._turn, seq + 1)
                self._turns.notify_all()

    async def _track(self, frame: FrameIn, image: DecodedImage, admission: Admission) -> FrameOut:
        """Detect (when due), pose the planned boxes, update the tracks: this frame's answer."""
        options = self.params.options
        detect = self.tracker.needs_detection(image.width, image.height)

        def plan(found: Detections | None) -> Plan:
            detections = None if found is None else (found.boxes, found.scores)
            return self.tracker.plan(image.width, image.height, detections, max_boxes=self.max_boxes)

        try:
            result, planned = await self.requests.engine.pipeline.pose_step(
                image, plan, pose=self.pose, detector=self.detector if detect else None, deadline=admission.deadline,
                bbox_threshold=options.bbox_threshold, max_people=self.max_boxes, flip_test=options.flip_test,
                reservation=admission.reservation,
            )  # fmt: skip
        except PoseError as error:
            return FrameOut(frame.frame_id, error=error, detected=detect)
        if detect:
            metrics.STREAM_FRAMES_DETECTED.inc()
        update = self.tracker.update(planned, result.keypoints, result.scores)
        metrics.STREAM_TRACKS_CREATED.inc(update.created)
        people = _subset(result, update.keep)
        if self.params.smooth:
            people = self._smoothed(people, update.track_ids, frame.timestamp or frame.arrived)
        try:
            people = checked_finite(people)
        except PoseError as error:
            return FrameOut(frame.frame_id, error=error, detected=detect)
        return FrameOut(frame.frame_id, result=people, track_ids=update.track_ids, detected=detect,
                        keypoint_threshold=self.keypoint_threshold)  # fmt: skip

    def _smoothed(self, result: PoseResult, track_ids: I64, timestamp: float) -> PoseResult:
        live = {t.id for t in self.tracker.tracks}
        for gone in set(self._filters) - live:
            del self._filters[gone]
        keypoints, boxes = result.keypoints.copy(), result.boxes.copy()
        for i, track_id in enumerate(track_ids.tolist()):
            points, box = self._filters.setdefault(
                track_id, (OneEuroFilter(self.params.smoothing), OneEuroFilter(self.params.smoothing))
            )
            keypoints[i, :, :2] = points(keypoints[i, :, :2], timestamp)
            boxes[i] = box(boxes[i], timestamp)
        return dataclasses.replace(result, keypoints=keypoints, boxes=boxes)


def _subset(result: PoseResult, keep: npt.NDArray[np.intp]) -> PoseResult:
    return dataclasses.replace(result, boxes=result.boxes[keep], bbox_scores=result.bbox_scores[keep],
                               scores=result.scores[keep], keypoints=result.keypoints[keep])  # fmt: skip
