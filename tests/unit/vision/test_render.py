"""draw_people: boxes, links and keypoints in the set's colours, only the visible ones."""

from __future__ import annotations

import numpy as np

from service.vision.keypoints import KEYPOINT_SETS
from service.vision.render import BOX_COLOR_BGR, draw_people

COCO = KEYPOINT_SETS["coco17"]
ALL = np.ones((1, 17), bool)


def _person() -> np.ndarray:
    keypoints = np.zeros((1, 17, 3), np.float32)
    keypoints[0, :, 0] = np.linspace(100, 500, 17)
    keypoints[0, :, 1] = 240
    keypoints[0, :, 2] = 0.9
    return keypoints


def test_keypoints_are_drawn_in_their_bgr_colour_only_when_visible() -> None:
    image = np.full((480, 640, 3), 40, np.uint8)
    keypoints = _person()
    keypoints[0, 3] = (600, 40, 0.1)  # not visible, away from every link: not drawn
    result = draw_people(image, np.zeros((0, 4)), keypoints, COCO, visible=keypoints[..., 2] > 0.3)
    for k in (0, 5, 6, 16):
        x, y = keypoints[0, k, :2].astype(int)
        assert tuple(result[y, x]) == tuple(reversed(COCO.keypoint_colors_rgb[k]))
    x, y = keypoints[0, 3, :2].astype(int)
    assert tuple(result[y, x]) == (40, 40, 40)
    assert (image == 40).all()  # the input is left alone


def test_links_join_visible_keypoints_and_boxes_are_drawn() -> None:
    image = np.zeros((480, 640, 3), np.uint8)
    keypoints = np.zeros((1, 17, 3), np.float32)
    keypoints[0, 5] = (100, 100, 0.9)  # left shoulder
    keypoints[0, 7] = (100, 300, 0.9)  # left elbow: link (5, 7)
    keypoints[0, 6] = (400, 100, 0.9)  # right shoulder, its elbow invisible: no link
    keypoints[0, 8] = (400, 300, 0.0)
    result = draw_people(image, [[50, 50, 450, 400]], keypoints, COCO, keypoints[..., 2] > 0.3, bbox_scores=[0.87])
    link = COCO.skeleton.index((5, 7))
    assert tuple(result[200, 100]) == tuple(reversed(COCO.link_colors_rgb[link]))
    assert (result[200, 400] == 0).all()
    assert tuple(result[200, 50]) == BOX_COLOR_BGR
    assert tuple(result[50, 300]) == BOX_COLOR_BGR


def test_line_width_grows_with_the_image_and_bad_values_do_not_crash() -> None:
    small = draw_people(np.zeros((200, 300, 3), np.uint8), [[10, 10, 100, 100]], np.zeros((1, 17, 3)), COCO, ALL)
    large = draw_people(np.zeros((2000, 3000, 3), np.uint8), [[100, 100, 1000, 1000]], np.zeros((1, 17, 3)), COCO, ALL)
    assert (large[500, 95:106] > 0).sum() > (small[50, 5:16] > 0).sum()
    wild = _person()
    wild[0, 0] = (np.nan, 5, 0.9)
    wild[0, 1] = (1e12, -1e12, 0.9)
    boxes = [[np.nan, 0, 1e12, 5]]
    result = draw_people(np.zeros((100, 100, 3), np.uint8), boxes, wild, COCO, ALL, bbox_scores=[np.nan])
    assert result.shape == (100, 100, 3)
