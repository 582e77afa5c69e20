"""Dynamic batching: one bounded queue per model, drained in batches by the model's instances.

Each instance is a thread with its own runner (one ORT session). A free instance
waits for the first item, then collects until the batch holds ``max_batch_size``
rows, a preferred size is reachable, or the oldest item has waited
``max_queue_delay_ms`` (Triton's dynamic batcher, LitServe's ``collate_requests``).
Batches are counted in rows: a crop is one row, two with flip test. Items whose
deadline passed are failed with :class:`DeadlineExceededError` and never run; a full
queue fails fast with :class:`QueueFullError`; a runner that raises fails exactly the
items of its batch and the instance keeps serving.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from service import metrics
from service.errors import DeadlineExceededError, InferenceError, PoseError, QueueFullError, ShuttingDownError

logger = logging.getLogger(__name__)

RUNNING_BATCH_WAIT_S = 60.0  # at close, the longest wait for a batch already running

T = TypeVar("T")
R = TypeVar("R")

Runner = Callable[[Sequence[T]], Sequence[R]]  # one output per input, in order


@dataclass(frozen=True)
class BatchPolicy:
    """When to cut a batch. Sizes count rows; ``max_queue_size`` counts items."""

    max_batch_size: int = 32
    max_queue_delay_s: float = 0.002
    preferred_batch_sizes: tuple[int, ...] = ()
    max_queue_size: int = 1024

    def __post_init__(self) -> None:
        if self.max_batch_size < 1:
            raise ValueError(f"max_batch_size must be >= 1, e.g. 32; got {self.max_batch_size}")
        if self.max_queue_delay_s < 0:
            raise ValueError(f"max_queue_delay_s must be >= 0, e.g. 0.002; got {self.max_queue_delay_s}")
        if self.max_queue_size < 1:
            raise ValueError(f"max_queue_size must be >= 1, e.g. 1024; got {self.max_queue_size}")


@dataclass(eq=False)
class Item(Generic[T, R]):
    data: T
    deadline: float  # time.monotonic() after which the item is failed instead of run
    rows: int = 1
    future: Future[R] = field(default_factory=Future)
    enqueued: float = field(default_factory=time.monotonic)


class Batcher(Generic[T, R]):
    """A bounded queue of items served in batches by one thread per runner."""

    def __init__(
        self,
        name: str,
        runners: Sequence[Runner[T, R]],
        policy: BatchPolicy,
        *,
        more_expected: Callable[[], bool] | None = None,
    ) -> None:
        """
        Args:
            name: model name (metric label, thread names, messages).
            runners: one per instance; each is called on its own thread.
            policy: when to cut a batch.
            more_expected: optional hint from upstream; when it returns False no item can arrive
                soon, so a partial batch runs at once instead of waiting out ``max_queue_delay``.
        """
        if not runners:
            raise ValueError(f"{name}: a Batcher needs at least one runner (model instance)")
        self.name = name
        self.policy = policy
        self._more_expected = more_expected
        self._runners = list(runners)
        self._queue: deque[Item[T, R]] = deque()
        self._rows = 0  # rows waiting in the queue
        self._cond = threading.Condition()
        self._closing = False
        self._threads = [
            threading.Thread(target=self._serve, args=(runner,), name=f"{name}-instance-{i}", daemon=True)
            for i, runner in enumerate(self._runners)
        ]
        self._depth = metrics.QUEUE_DEPTH.labels(name)
        self._depth.set(0)

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    @property
    def queued(self) -> int:
        return len(self._queue)

    @property
    def closing(self) -> bool:
        """True once :meth:`close` has begun: new work is refused, what is queued drains within the grace period."""
        return self._closing

    def submit(self, data: T, *, deadline: float, rows: int = 1) -> Future[R]:
        """Queue one item; see :meth:`submit_many`."""
        return self.submit_many([data], deadline=deadline, rows=[rows])[0]

    def submit_many(self, datas: Sequence[T], *, deadline: float, rows: Sequence[int] | None = None) -> list[Future[R]]:
        """Queue several items at once, all or none (the crops of one image).

        An item of more rows than ``max_batch_size`` is served alone.

        Raises:
            ShuttingDownError: the batcher is closing.
            QueueFullError: the queue cannot take all of them.
            ValueError: an item of less than one row.
        """
        rows = list(rows) if rows is not None else [1] * len(datas)
        if any(r < 1 for r in rows):
            raise ValueError(f"{self.name}: an item takes at least 1 row, got {rows}")
        items = [Item[T, R](data=d, deadline=deadline, rows=r) for d, r in zip(datas, rows, strict=True)]
        with self._cond:
            if self._closing:
                metrics.REJECTED.labels("shutdown").inc(len(items))
                raise ShuttingDownError(f"{self.name} is shutting down and takes no new work")
            if len(self._queue) + len(items) > self.policy.max_queue_size:
                metrics.REJECTED.labels("queue_full").inc(len(items))
                raise QueueFullError(
                    f"{self.name}: queue full ({len(self._queue)} of {self.policy.max_queue_size} items waiting)"
                )
            self._queue.extend(items)
            self._rows += sum(rows)
            self._depth.set(len(self._queue))
            self._cond.notify(len(items))
        return [item.future for item in items]

    # -- instance side -------------------------------------------------------------------------------------------

    def _target_rows(self) -> int | None:
        """Rows to take now, or None to keep waiting (called with the lock held)."""
        policy = self.policy
        if self._rows >= policy.max_batch_size:
            return policy.max_batch_size
        reachable = [s for s in policy.preferred_batch_sizes if s <= self._rows]
        if reachable:
            return reachable[-1]
        if self._closing or time.monotonic() >= self._queue[0].enqueued + policy.max_queue_delay_s:
            return policy.max_batch_size
        if self._more_expected is not None and not self._more_expected():
            return policy.max_batch_size  # waiting cannot grow the batch
        return None

    def _next_batch(self) -> list[Item[T, R]] | None:
        """Block until a batch is due; None once closing with nothing left."""
        with self._cond:
            while True:
                while not self._queue:
                    if self._closing:
                        return None
                    self._cond.wait()
                target = self._target_rows()
                if target is None:
                    self._cond.wait(self._queue[0].enqueued + self.policy.max_queue_delay_s - time.monotonic())
                    continue
                batch = self._take(target)
                if batch:
                    return batch

    def _take(self, target: int) -> list[Item[T, R]]:
        """Pop up to ``target`` rows in FIFO order; expired and cancelled items are dropped (lock held)."""
        batch: list[Item[T, R]] = []
        taken = 0
        now = time.monotonic()
        # the first live item always goes (even one larger than the target), the rest while they fit
        while self._queue and (taken == 0 or taken + self._queue[0].rows <= target):
            item = self._queue.popleft()
            self._rows -= item.rows
            if item.deadline <= now:
                metrics.REJECTED.labels("deadline").inc()
                if item.future.set_running_or_notify_cancel():
                    waited = now - item.enqueued
                    item.future.set_exception(
                        DeadlineExceededError(f"{self.name}: deadline passed after {waited:.3f} s in the queue")
                    )
                continue
            if not item.future.set_running_or_notify_cancel():  # the caller went away
                metrics.REJECTED.labels("cancelled").inc()
                continue
            batch.append(item)
            taken += item.rows
        self._depth.set(len(self._queue))
        return batch

    def _serve(self, runner: Runner[T, R]) -> None:
        while (batch := self._next_batch()) is not None:
            self._run(runner, batch)
            del batch  # not held while waiting for the next one: its items hold their images (a 4K frame: 25 MB)

    def _run(self, runner: Runner[T, R], batch: list[Item[T, R]]) -> None:
        start = time.monotonic()
        for item in batch:
            metrics.QUEUE_DURATION.labels(self.name).observe(start - item.enqueued)
        metrics.BATCH_SIZE.labels(self.name).observe(sum(item.rows for item in batch))
        metrics.ITEMS.labels(self.name).inc(len(batch))
        try:
            outputs = runner([item.data for item in batch])
            if len(outputs) != len(batch):
                raise InferenceError(f"{self.name}: runner returned {len(outputs)} outputs for {len(batch)} items")
        except PoseError as exc:
            self._fail(batch, exc)
        except Exception as exc:
            logger.exception("%s: inference failed on a batch of %d items", self.name, len(batch))
            self._fail(batch, InferenceError(f"{self.name}: inference failed ({type(exc).__name__})"))
        else:
            for item, output in zip(batch, outputs, strict=True):
                item.future.set_result(output)

    @staticmethod
    def _fail(batch: list[Item[T, R]], exc: PoseError) -> None:
        metrics.REJECTED.labels("inference").inc(len(batch))
        for item in batch:
            item.future.set_exception(exc)

    # -- shutdown ------------------------------------------------------------------------------------------------

    def close(self, grace_s: float) -> int:
        """Stop taking work, let the instances finish what is queued within ``grace_s``, fail the rest.

        Returns:
            How many queued items were failed because the grace period ran out.
        """
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        end = time.monotonic() + grace_s
        for thread in self._threads:
            if thread.is_alive():
                thread.join(max(0.0, end - time.monotonic()))
        with self._cond:
            left = list(self._queue)
            self._queue.clear()
            self._rows = 0
            self._depth.set(0)
        for item in left:
            if item.future.set_running_or_notify_cancel():
                item.future.set_exception(ShuttingDownError(f"{self.name}: shut down before this item ran"))
        if left:
            metrics.REJECTED.labels("shutdown").inc(len(left))
            logger.warning("%s: grace period over, %d queued items failed", self.name, len(left))
        # a batch already in the runtime cannot be interrupted, and a process that exits under a running
        # ONNX Runtime call aborts: let the instances finish the batch they hold (they take no other)
        for thread in self._threads:
            if thread.is_alive():
                thread.join(RUNNING_BATCH_WAIT_S)
            if thread.is_alive():
                logger.warning("%s: %s still runs a batch after %.0f s", self.name, thread.name, RUNNING_BATCH_WAIT_S)
        return len(left)
