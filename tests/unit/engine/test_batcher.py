"""The Batcher on real threads with a plain function as runner (the model runners are tested elsewhere)."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor

import pytest
from prometheus_client import REGISTRY

from service.engine.batcher import Batcher, BatchPolicy
from service.errors import DeadlineExceededError, InferenceError, QueueFullError, ShuttingDownError
from tests.helpers import metric, wait_for

FAR = 1e12  # a deadline that never comes
_names = itertools.count()


class Recorder:
    """Runner that answers data * 10, records batches, and can be held at a gate."""

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.batches: list[list[int]] = []
        self.gate = gate
        self.entered = threading.Event()

    def __call__(self, items: Sequence[int]) -> list[int]:
        self.entered.set()
        if self.gate is not None:
            assert self.gate.wait(10), "test gate never opened"
        self.batches.append(list(items))
        return [x * 10 for x in items]


def make(runner: Recorder, **policy: object) -> Batcher[int, int]:
    name = f"test-{next(_names)}"
    batcher: Batcher[int, int] = Batcher(name, [runner], BatchPolicy(**policy))  # type: ignore[arg-type]
    batcher.start()
    return batcher


@pytest.mark.parametrize(("max_batch_size", "delay_ms"), [(1, 0), (4, 1), (8, 5), (32, 2)])
def test_200_concurrent_submitters_each_get_their_own_answer(max_batch_size: int, delay_ms: float) -> None:
    runner = Recorder()
    batcher = make(runner, max_batch_size=max_batch_size, max_queue_delay_s=delay_ms / 1000)
    with ThreadPoolExecutor(32) as pool:
        answers = list(pool.map(lambda x: batcher.submit(x, deadline=FAR).result(10), range(200)))
    assert answers == [x * 10 for x in range(200)]
    assert max(len(b) for b in runner.batches) <= max_batch_size
    assert sorted(x for b in runner.batches for x in b) == list(range(200))
    batcher.close(1)


def test_items_waiting_together_share_one_batch() -> None:
    gate = threading.Event()
    runner = Recorder(gate)
    batcher = make(runner, max_batch_size=8, max_queue_delay_s=0.0)
    first = batcher.submit(0, deadline=FAR)
    assert runner.entered.wait(5)  # the instance is busy with item 0 ...
    rest = batcher.submit_many(list(range(1, 6)), deadline=FAR)  # ... while five more arrive
    gate.set()
    assert [f.result(5) for f in [first, *rest]] == [0, 10, 20, 30, 40, 50]
    assert runner.batches == [[0], [1, 2, 3, 4, 5]]
    batcher.close(1)


def test_max_batch_size_splits_and_keeps_order() -> None:
    gate = threading.Event()
    runner = Recorder(gate)
    batcher = make(runner, max_batch_size=4, max_queue_delay_s=0.0)
    first = batcher.submit(-1, deadline=FAR)
    assert runner.entered.wait(5)
    futures = batcher.submit_many(list(range(10)), deadline=FAR)
    gate.set()
    assert [f.result(5) for f in futures] == [x * 10 for x in range(10)]
    assert first.result(5) == -10
    assert runner.batches == [[-1], [0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    batcher.close(1)


def test_lone_item_waits_for_the_queue_delay_then_runs() -> None:
    runner = Recorder()
    batcher = make(runner, max_batch_size=8, max_queue_delay_s=0.05)
    start = time.monotonic()
    assert batcher.submit(3, deadline=FAR).result(5) == 30
    assert time.monotonic() - start >= 0.05
    batcher.close(1)


def test_full_batch_does_not_wait_for_the_delay() -> None:
    runner = Recorder()
    batcher = make(runner, max_batch_size=4, max_queue_delay_s=30.0)
    futures = batcher.submit_many([1, 2, 3, 4], deadline=FAR)
    assert [f.result(5) for f in futures] == [10, 20, 30, 40]  # would time out if it waited 30 s
    batcher.close(1)


def test_preferred_batch_size_is_cut_without_waiting() -> None:
    runner = Recorder()
    batcher = make(runner, max_batch_size=16, max_queue_delay_s=30.0, preferred_batch_sizes=(2, 4))
    futures = batcher.submit_many([1, 2, 3, 4, 5, 6], deadline=FAR)
    assert [f.result(5) for f in futures[:4]] == [10, 20, 30, 40]
    assert futures[4].result(5) == 50  # 2 left: the preferred size 2 is reachable, no 30 s wait
    assert runner.batches == [[1, 2, 3, 4], [5, 6]]
    batcher.close(1)


def test_rows_count_towards_the_batch() -> None:
    gate = threading.Event()
    runner = Recorder(gate)
    batcher = make(runner, max_batch_size=4, max_queue_delay_s=0.0)
    first = batcher.submit(0, deadline=FAR)
    assert runner.entered.wait(5)
    futures = batcher.submit_many([1, 2, 3, 4, 5, 6], deadline=FAR, rows=[2, 2, 1, 2, 5, 1])
    gate.set()
    [f.result(5) for f in [first, *futures]]
    assert runner.batches == [[0], [1, 2], [3, 4], [5], [6]]  # an item over max_batch_size runs alone
    with pytest.raises(ValueError, match="at least 1 row"):
        batcher.submit(9, deadline=FAR, rows=0)
    batcher.close(1)


def test_full_queue_fails_fast() -> None:
    gate = threading.Event()
    runner = Recorder(gate)
    batcher = make(runner, max_batch_size=1, max_queue_delay_s=0.0, max_queue_size=3)
    running = batcher.submit(0, deadline=FAR)
    assert runner.entered.wait(5)
    queued = batcher.submit_many([1, 2, 3], deadline=FAR)
    before = metric(REGISTRY, "pose_rejected_total", reason="queue_full")
    with pytest.raises(QueueFullError, match="queue full"):
        batcher.submit(4, deadline=FAR)
    with pytest.raises(QueueFullError):
        batcher.submit_many([5, 6], deadline=FAR)  # all or none
    assert batcher.queued == 3
    assert metric(REGISTRY, "pose_rejected_total", reason="queue_full") == before + 3
    gate.set()
    assert [f.result(5) for f in [running, *queued]] == [0, 10, 20, 30]
    batcher.close(1)


def test_expired_items_fail_and_never_run() -> None:
    gate = threading.Event()
    runner = Recorder(gate)
    batcher = make(runner, max_batch_size=8, max_queue_delay_s=0.0)
    running = batcher.submit(0, deadline=FAR)
    assert runner.entered.wait(5)
    expiry = time.monotonic() + 0.01
    doomed = batcher.submit(1, deadline=expiry)
    alive = batcher.submit(2, deadline=FAR)
    wait_for(lambda: time.monotonic() > expiry, "the clock never passed the deadline")  # while item 0 holds the gate
    gate.set()
    with pytest.raises(DeadlineExceededError, match="deadline passed"):
        doomed.result(5)
    assert alive.result(5) == 20
    assert running.result(5) == 0
    assert 1 not in [x for b in runner.batches for x in b]
    batcher.close(1)


def test_cancelled_items_are_skipped() -> None:
    gate = threading.Event()
    runner = Recorder(gate)
    batcher = make(runner, max_batch_size=8, max_queue_delay_s=0.0)
    batcher.submit(0, deadline=FAR)
    assert runner.entered.wait(5)
    gone, kept = batcher.submit_many([1, 2], deadline=FAR)
    assert gone.cancel()
    gate.set()
    assert kept.result(5) == 20
    assert [x for b in runner.batches for x in b] == [0, 2]
    batcher.close(1)


def test_a_failing_batch_fails_only_its_items_and_the_instance_recovers() -> None:
    calls: list[list[int]] = []

    def flaky(items: Sequence[int]) -> list[int]:
        calls.append(list(items))
        if 13 in items:
            raise RuntimeError("ORT exploded")
        return [x + 1 for x in items]

    batcher: Batcher[int, int] = Batcher("test-flaky", [flaky], BatchPolicy(max_batch_size=2, max_queue_delay_s=0))
    batcher.start()
    before = metric(REGISTRY, "pose_rejected_total", reason="inference")
    bad = batcher.submit_many([12, 13], deadline=FAR)
    for future in bad:
        with pytest.raises(InferenceError, match=r"test-flaky: inference failed \(RuntimeError\)"):
            future.result(5)
    assert batcher.submit(5, deadline=FAR).result(5) == 6
    assert metric(REGISTRY, "pose_rejected_total", reason="inference") == before + 2
    batcher.close(1)


def test_runner_with_the_wrong_number_of_outputs() -> None:
    batcher: Batcher[int, int] = Batcher("test-short", [lambda items: [1]], BatchPolicy(max_batch_size=4))
    batcher.start()
    futures = batcher.submit_many([1, 2], deadline=FAR)
    for future in futures:
        with pytest.raises(InferenceError, match="1 outputs for 2 items"):
            future.result(5)
    batcher.close(1)


def test_several_instances_serve_in_parallel() -> None:
    barrier = threading.Barrier(3, timeout=5)

    def runner(items: Sequence[int]) -> list[int]:
        barrier.wait()  # passes only when three instances run at the same time
        return list(items)

    batcher: Batcher[int, int] = Batcher("test-pool", [runner] * 3, BatchPolicy(max_batch_size=1, max_queue_delay_s=0))
    batcher.start()
    futures = batcher.submit_many([1, 2, 3], deadline=FAR)
    assert sorted(f.result(5) for f in futures) == [1, 2, 3]
    batcher.close(1)


def test_shutdown_drains_the_queue_then_refuses() -> None:
    gate = threading.Event()
    runner = Recorder(gate)
    batcher = make(runner, max_batch_size=2, max_queue_delay_s=0.0)
    futures: list[Future[int]] = [batcher.submit(0, deadline=FAR)]
    assert runner.entered.wait(5)
    futures += batcher.submit_many([1, 2, 3, 4, 5], deadline=FAR)
    closer = threading.Thread(target=batcher.close, args=(10,))
    closer.start()
    wait_for(lambda: batcher.closing, "close() never began")
    with pytest.raises(ShuttingDownError):
        batcher.submit(9, deadline=FAR)
    gate.set()
    closer.join(10)
    assert [f.result(0) for f in futures] == [0, 10, 20, 30, 40, 50]


def test_shutdown_fails_what_the_grace_period_cannot_finish() -> None:
    gate = threading.Event()
    runner = Recorder(gate)
    batcher = make(runner, max_batch_size=1, max_queue_delay_s=0.0)
    running = batcher.submit(0, deadline=FAR)
    assert runner.entered.wait(5)
    queued = batcher.submit_many([1, 2], deadline=FAR)
    queued[-1].add_done_callback(lambda _: gate.set())  # the running batch ends only once the grace period is over
    assert batcher.close(0.05) == 2
    for future in queued:
        with pytest.raises(ShuttingDownError):
            future.result(0)
    # close returned only once the batch already running had completed: a process must not exit under it
    assert running.result(0) == 0


def test_metrics_move_as_work_flows() -> None:
    runner = Recorder()
    batcher = make(runner, max_batch_size=4, max_queue_delay_s=0.0)
    name = batcher.name
    [f.result(5) for f in batcher.submit_many([1, 2, 3], deadline=FAR)]
    batcher.close(1)
    assert metric(REGISTRY, "pose_items_total", model=name) == 3
    assert metric(REGISTRY, "pose_batch_size_count", model=name) == len(runner.batches)
    assert metric(REGISTRY, "pose_batch_size_sum", model=name) == 3
    assert metric(REGISTRY, "pose_queue_duration_seconds_count", model=name) == 3
    assert metric(REGISTRY, "pose_queue_depth", model=name) == 0


def test_policy_is_checked_when_built() -> None:
    with pytest.raises(ValueError, match="max_batch_size must be >= 1"):
        BatchPolicy(max_batch_size=0)
    with pytest.raises(ValueError, match="max_queue_delay_s"):
        BatchPolicy(max_queue_delay_s=-1)


def test_no_wait_when_upstream_says_nothing_more_is_coming() -> None:
    expected = threading.Event()  # set: more items may come; clear: nothing can arrive soon
    runner = Recorder()
    batcher: Batcher[int, int] = Batcher(
        "test-hint", [runner], BatchPolicy(max_batch_size=8, max_queue_delay_s=30.0), more_expected=expected.is_set
    )
    batcher.start()
    start = time.monotonic()
    assert batcher.submit(1, deadline=FAR).result(5) == 10  # would wait 30 s without the hint
    assert time.monotonic() - start < 5
    expected.set()
    waiting = batcher.submit(2, deadline=FAR)
    time.sleep(0.1)
    assert not waiting.done(), "while more items may come, a partial batch waits for the delay"
    expected.clear()
    batcher.submit(3, deadline=FAR).result(5)  # the new item's arrival re-checks the hint: both run now
    assert waiting.result(5) == 20
    assert runner.batches[-1] == [2, 3]
    batcher.close(1)
