"""Queue room promised to admitted work: nothing is admitted that the model queues could not take.

Every unit of work (a request's image, a stream frame) reserves, when it is admitted,
the queue items it may need: one detector item (unless it brings its own boxes) and up
to ``crops`` pose items (its boxes, or its people cap). A model's reservations never
exceed its ``max_queue_size``, so admitted work never finds a queue full later (after
its body was read, its image decoded, its detector run): the refusal comes first, at
once. The Batchers keep their own check for callers that do not reserve (benchmarks).

Thread-safe (one lock); every call is O(models of the reservation).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable

from service.engine.served_model import ServedModel
from service.errors import QueueFullError


class QueueRoom:
    """The reservation ledger of every served model's queue."""

    def __init__(self) -> None:
        self._reserved: Counter[str] = Counter()
        self._lock = threading.Lock()

    def reserved(self, model: str) -> int:
        return self._reserved[model]

    def full(self, models: Iterable[ServedModel]) -> bool:
        """Whether none of ``models`` has room for one more item (read without the lock: a hint)."""
        return all(self._reserved[m.name] >= m.batcher.policy.max_queue_size for m in models)

    def reserve(self, needs: Iterable[tuple[ServedModel, int]]) -> Reservation:
        """Reserve ``items`` in each model's queue, all or none.

        Raises:
            QueueFullError: some queue has not that much unreserved room now.
        """
        wanted = Counter[str]()
        limits: dict[str, int] = {}
        for served, items in needs:
            wanted[served.name] += items
            limits[served.name] = served.batcher.policy.max_queue_size
        with self._lock:
            for name, items in wanted.items():
                if self._reserved[name] + items > limits[name]:
                    raise QueueFullError(
                        f"{name}: queue full ({self._reserved[name]} of {limits[name]} items promised to admitted "
                        f"work, this needs {items})"
                    )
            self._reserved.update(wanted)
        return Reservation(self, wanted)

    def _release(self, items: Counter[str]) -> None:
        with self._lock:
            self._reserved.subtract(items)


class Reservation:
    """Room held in some queues until :meth:`release` (idempotent)."""

    def __init__(self, room: QueueRoom, items: Counter[str]) -> None:
        self._room = room
        self.items = items

    def release(self) -> None:
        items, self.items = self.items, Counter()
        if items:
            self._room._release(items)

    def shrink_to(self, model: str, items: int) -> None:
        """Hold at most ``items`` of ``model``'s queue and nothing of the others' from now on.

        What the work turned out to need once its boxes are known: the detector has answered
        (or will not run), the crops are counted.
        """
        surplus = Counter({name: held - (max(0, items) if name == model else 0) for name, held in self.items.items()})
        surplus = +surplus  # only what is really given back
        if surplus:
            self.items.subtract(surplus)
            self._room._release(surplus)
