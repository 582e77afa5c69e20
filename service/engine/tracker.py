"""Per-stream person tracking (MMDeploy's PoseTracker, made explicit): which boxes to pose, which id each pose gets.

Pure state and numpy: no threads, no I/O, no models. One frame is two calls:

1. :meth:`Tracker.plan` -- the boxes to pose: on a detector frame the live tracks' boxes
   (from their last confident keypoints) merged with the detections by IoU-NMS, track
   boxes first; in between only the track boxes. ``owners`` says which track a box came
   from (-1: a detection).
2. :meth:`Tracker.update` -- with the poses of those boxes: OKS-NMS (two boxes collapsing
   onto one person keep the better pose), poses with too few confident keypoints are not
   people, each track-owned pose keeps its track, detection poses match lost tracks
   greedily by OKS then by IoU, the rest start new tracks (ids count up, never reused),
   tracks not seen for more than ``track_max_missing`` frames end.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from service.vision.postprocess import box_iou
from service.vision.tracking import boxes_from_keypoints, greedy_match, keypoint_sigmas, merge_boxes, oks, oks_nms

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]
MAX_KEYPOINTS = 1000  # more than any keypoint set has (RTMW's 133)


class TrackerParams(BaseModel):
    """MMDeploy PoseTracker's parameters and defaults, except where docs/streams.md says why not.

    Declared once, with their bounds: a stream's configuration validates into this.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    det_nms_thr: float = Field(
        0.7, gt=0, le=1, description="IoU above which a detection is dropped beside a track box or a better one."
    )
    pose_kpt_thr: float = Field(
        0.5, ge=0, le=1, description="Keypoints scoring at least this make the next box and count as confident."
    )
    pose_min_keypoints: int | None = Field(
        None, ge=1, le=MAX_KEYPOINTS, description="Confident keypoints a pose needs to be a person (null: half of K)."
    )
    pose_bbox_scale: float = Field(1.25, ge=1, le=4, description="The next box is the confident keypoints' box x this.")
    pose_nms_thr: float = Field(0.5, gt=0, le=1, description="OKS above which the weaker of two poses is dropped.")
    track_oks_thr: float = Field(0.3, gt=0, le=1, description="OKS a detection's pose needs to take over a lost track.")
    track_iou_thr: float = Field(0.4, gt=0, le=1, description="Or this IoU with the lost track's last box.")
    track_max_missing: int = Field(10, ge=0, le=100_000, description="Frames a track survives unseen.")

    def min_keypoints(self, num_keypoints: int) -> int:
        return self.pose_min_keypoints if self.pose_min_keypoints is not None else math.ceil(num_keypoints / 2)


@dataclass
class Track:
    id: int
    box: F32  # (4,) the box its pose was estimated in, last time it was seen
    keypoints: F32  # (K, 3) its last pose
    missing: int = 0  # frames since it was last seen


@dataclass(frozen=True)
class Plan:
    """The boxes to pose on one frame."""

    boxes: F32  # (N, 4)
    scores: F32  # (N,) the detector's score, or the track's last box score for track boxes
    owners: I64  # (N,) track id of each box, -1 for a detection
    detect: bool  # whether the detector ran (or must run) on this frame


@dataclass(frozen=True)
class Update:
    """The people of one frame after tracking."""

    keep: npt.NDArray[np.intp]  # indices into the posed boxes of the people reported, by track id
    track_ids: I64  # (len(keep),)
    created: int  # tracks started on this frame


@dataclass
class Tracker:
    params: TrackerParams
    num_keypoints: int
    det_interval: int = 1  # run the detector every N frames (and whenever no track has a box)
    tracks: list[Track] = field(default_factory=list)
    frames: int = 0  # frames planned so far
    next_id: int = 1
    _scores: dict[int, float] = field(default_factory=dict)  # last box score per track

    def __post_init__(self) -> None:
        self.sigmas = keypoint_sigmas(self.num_keypoints)

    def needs_detection(self, width: int, height: int) -> bool:
        """Whether the next frame is a detector frame: every ``det_interval`` frames, or no track has a box."""
        return self.frames % max(1, self.det_interval) == 0 or len(self._track_boxes(width, height)[0]) == 0

    def _track_boxes(self, width: int, height: int) -> tuple[F32, I64]:
        """Boxes of the tracks seen on the last frame, from their confident keypoints."""
        live = [t for t in self.tracks if t.missing == 0]
        if not live:
            return np.zeros((0, 4), np.float32), np.zeros(0, np.int64)
        p = self.params
        boxes, valid = boxes_from_keypoints(
            np.stack([t.keypoints for t in live]), score_threshold=p.pose_kpt_thr,
            min_keypoints=p.min_keypoints(self.num_keypoints), scale=p.pose_bbox_scale, width=width, height=height,
        )  # fmt: skip
        valid &= (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])  # keypoints on one line give no box
        return boxes[valid], np.array([t.id for t in live], np.int64)[valid]

    def plan(self, width: int, height: int, detections: tuple[F32, F32] | None, *, max_boxes: int) -> Plan:
        """The boxes to pose on this frame (track boxes first, at most ``max_boxes``).

        Args:
            detections: (boxes (M, 4), scores (M,)) best first, when the detector ran on this frame.
        """
        self.frames += 1
        boxes, owners = self._track_boxes(width, height)
        scores = np.array([self._scores.get(int(i), 1.0) for i in owners], np.float32)
        detect = detections is not None
        if detections is not None:
            det_boxes, det_scores = (np.asarray(a, np.float32) for a in detections)
            kept = merge_boxes(boxes, det_boxes, self.params.det_nms_thr)
            boxes = np.concatenate([boxes, det_boxes.reshape(-1, 4)[kept]]).astype(np.float32)
            scores = np.concatenate([scores, det_scores.reshape(-1)[kept]]).astype(np.float32)
            owners = np.concatenate([owners, np.full(len(kept), -1, np.int64)])
        return Plan(boxes[:max_boxes], scores[:max_boxes], owners[:max_boxes], detect)

    def update(self, plan: Plan, keypoints: F32, person_scores: F32) -> Update:
        """Assign the poses of ``plan.boxes`` to tracks.

        Args:
            keypoints: (N, K, 3) the pose of each planned box.
            person_scores: (N,) how good each pose is (ranks OKS-NMS).
        """
        p = self.params
        n = len(plan.boxes)
        keypoints = np.asarray(keypoints, np.float32).reshape(n, self.num_keypoints, 3)
        confident = (keypoints[..., 2] >= p.pose_kpt_thr).sum(axis=1) >= p.min_keypoints(self.num_keypoints)
        areas = (plan.boxes[:, 2] - plan.boxes[:, 0]) * (plan.boxes[:, 3] - plan.boxes[:, 1])
        # track boxes first among equals: they carry an identity the detector's do not
        rank = np.asarray(person_scores, np.float32) + np.where(plan.owners >= 0, 1e-3, 0.0).astype(np.float32)
        candidates = np.flatnonzero(confident)
        kept = candidates[oks_nms(keypoints[candidates], rank[candidates], areas[candidates], self.sigmas,
                                  p.pose_nms_thr)] if len(candidates) else candidates  # fmt: skip
        by_id = {t.id: t for t in self.tracks}
        assigned: dict[int, int] = {}  # pose index -> track id
        for i in kept:
            owner = int(plan.owners[i])
            if owner >= 0 and owner in by_id:
                assigned[int(i)] = owner
        free_tracks = [t for t in self.tracks if t.id not in assigned.values()]
        fresh = [int(i) for i in kept if int(i) not in assigned]
        for rows, columns in self._match(fresh, free_tracks, keypoints, plan.boxes):
            assigned[fresh[rows]] = free_tracks[columns].id
        created = 0
        for i in fresh:
            if i not in assigned:
                assigned[i] = self.next_id
                self.tracks.append(Track(self.next_id, plan.boxes[i], keypoints[i]))
                self.next_id += 1
                created += 1
        seen = set(assigned.values())
        for track in self.tracks:
            track.missing = 0 if track.id in seen else track.missing + 1
        for i, track_id in assigned.items():
            track = next(t for t in self.tracks if t.id == track_id)
            track.box, track.keypoints = plan.boxes[i].copy(), keypoints[i].copy()
            self._scores[track_id] = float(plan.scores[i])
        self.tracks = [t for t in self.tracks if t.missing <= p.track_max_missing]
        for gone in set(self._scores) - {t.id for t in self.tracks}:
            del self._scores[gone]
        order = sorted(assigned, key=lambda i: assigned[i])
        return Update(np.array(order, np.intp), np.array([assigned[i] for i in order], np.int64), created)

    def _match(self, poses: list[int], tracks: list[Track], keypoints: F32, boxes: F32) -> list[tuple[int, int]]:
        """Detection poses to unclaimed tracks: greedy by OKS, then greedy by IoU among what is left."""
        if not poses or not tracks:
            return []
        p = self.params
        track_kpts = np.stack([t.keypoints for t in tracks])
        track_boxes = np.stack([t.box for t in tracks])
        track_areas = (track_boxes[:, 2] - track_boxes[:, 0]) * (track_boxes[:, 3] - track_boxes[:, 1])
        similarity = oks(keypoints[poses], track_kpts, track_areas, self.sigmas, score_threshold=p.pose_kpt_thr)
        pairs = greedy_match(similarity, p.track_oks_thr)
        rows_left = [r for r in range(len(poses)) if r not in {a for a, _ in pairs}]
        cols_left = [c for c in range(len(tracks)) if c not in {b for _, b in pairs}]
        if rows_left and cols_left:
            iou = box_iou(boxes[[poses[r] for r in rows_left]], track_boxes[cols_left])
            pairs += [(rows_left[a], cols_left[b]) for a, b in greedy_match(iou, p.track_iou_thr)]
        return pairs
