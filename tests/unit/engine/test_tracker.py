"""The stream tracker's state machine on hand-made poses (no model, no threads)."""

from __future__ import annotations

import numpy as np

from service.engine.smoothing import OneEuroFilter, OneEuroParams
from service.engine.tracker import Tracker, TrackerParams

W, H = 640, 480


def person_pose(cx: float, cy: float, score: float = 0.9) -> np.ndarray:
    """17 keypoints spread over a 60x200 person centred at (cx, cy)."""
    offsets = np.stack([np.linspace(-30, 30, 17), np.linspace(-100, 100, 17)], axis=1)
    points = np.array([cx, cy]) + offsets
    return np.concatenate([points, np.full((17, 1), score)], axis=1).astype(np.float32)


def box_of(cx: float, cy: float) -> list[float]:
    return [cx - 40, cy - 120, cx + 40, cy + 120]


def step(tracker: Tracker, centres: list[tuple[float, float]], detect: bool, score: float = 0.9):
    """One frame: the detector (when due) finds everybody at ``centres``; the pose of every box is exact."""
    detections = None
    if detect:
        detections = (np.array([box_of(*c) for c in centres], np.float32), np.full(len(centres), 0.9, np.float32))
    plan = tracker.plan(W, H, detections, max_boxes=100)
    poses = []
    for box in plan.boxes:  # the person whose centre lies in the box
        mid = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
        nearest = min(centres, key=lambda c: (c[0] - mid[0]) ** 2 + (c[1] - mid[1]) ** 2) if centres else None
        inside = nearest is not None and box[0] <= nearest[0] <= box[2] and box[1] <= nearest[1] <= box[3]
        poses.append(person_pose(*nearest, score) if inside else person_pose(*mid, 0.0))
    keypoints = np.stack(poses) if poses else np.zeros((0, 17, 3), np.float32)
    update = tracker.update(plan, keypoints, np.full(len(plan.boxes), 0.9, np.float32))
    return plan, update


def test_ids_follow_people_and_are_never_reused() -> None:
    tracker = Tracker(TrackerParams(track_max_missing=2), num_keypoints=17, det_interval=3)
    ids_seen = []
    for t in range(9):  # two people walking right
        plan, update = step(tracker, [(100 + 4 * t, 240), (400 + 4 * t, 240)], tracker.needs_detection(W, H))
        assert plan.detect == (t % 3 == 0)
        ids_seen.append(update.track_ids.tolist())
    assert all(ids == [1, 2] for ids in ids_seen)
    for _ in range(4):  # person 2 leaves: missing for more than 2 frames ends the track
        step(tracker, [(140, 240)], tracker.needs_detection(W, H))
    assert [t.id for t in tracker.tracks] == [1]
    _, update = step(tracker, [(140, 240), (420, 240)], True)  # someone (re)appears: a new id, never 2
    assert update.track_ids.tolist() == [1, 3]
    assert update.created == 1


def test_detector_runs_at_once_when_every_track_is_lost() -> None:
    tracker = Tracker(TrackerParams(), num_keypoints=17, det_interval=100)
    step(tracker, [(200, 240)], tracker.needs_detection(W, H))
    assert not tracker.needs_detection(W, H)
    step(tracker, [(200, 240)], False, score=0.1)  # the pose is not confident: the track is not seen
    assert tracker.needs_detection(W, H), "no track has a box: detect now, not in 98 frames"


def test_a_detection_takes_over_its_lost_track_by_oks() -> None:
    tracker = Tracker(TrackerParams(track_max_missing=5), num_keypoints=17, det_interval=100)
    step(tracker, [(200, 240)], True)
    step(tracker, [(200, 240)], False, score=0.1)  # lost for a frame
    _, update = step(tracker, [(204, 240)], True)
    assert update.track_ids.tolist() == [1]
    assert update.created == 0


def test_one_euro_smooths_a_still_point_and_follows_a_moving_one() -> None:
    rng = np.random.default_rng(1)
    still = OneEuroFilter(OneEuroParams())
    noisy = 100 + rng.normal(0, 2, 90)
    out = [float(still(np.array([v], np.float32), t / 30)[0]) for t, v in enumerate(noisy)]
    assert np.std(np.diff(out[30:])) < 0.3 * np.std(np.diff(noisy[30:]))
    moving = OneEuroFilter(OneEuroParams())
    track = [float(moving(np.array([10.0 * t], np.float32), t / 30)[0]) for t in range(90)]
    assert abs(track[-1] - 890) < 15, "a fast point is followed with little lag (beta)"
    assert moving(np.array([5.0], np.float32), 0.0)[0] == 5.0  # time going back: pass through, start over


def test_one_euro_never_answers_a_non_finite_number_for_finite_timestamps() -> None:
    """Timestamps 1e-300 s apart made the speed infinite, then every later value of the track NaN."""
    smooth = OneEuroFilter(OneEuroParams())
    out = [smooth(np.array([100.0 + t, 50.0], np.float32), stamp) for t, stamp in enumerate([1e-300, 2e-300, 0.5])]
    assert all(np.isfinite(value).all() for value in out)
    np.testing.assert_array_equal(out[1], [101.0, 50.0])  # too close to the last: passed through, the filter restarts
    later = smooth(np.array([102.0, 50.0], np.float32), 0.5 + 1 / 30)
    assert np.isfinite(later).all()
    assert 101.0 < later[0] <= 102.0
