"""Runs inside the separate rtmlib environment (.bench-venv): rtmlib's RTMDet + RTMPose loop on the same files.

Standalone on purpose (rtmlib pulls opencv-python and opencv-contrib-python, which clash
with the service's opencv-python-headless). Prints one JSON object.

    python rtmlib_runner.py DET.onnx POSE.onnx SECONDS MAX_PEOPLE IMAGE...
"""

import json
import sys
import time

import cv2
import numpy as np
from rtmlib import RTMDet, RTMPose


def main() -> None:
    det_path, pose_path, seconds, max_people = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
    images = [cv2.imread(p) for p in sys.argv[5:]]
    detector = RTMDet(det_path, model_input_size=(320, 320), backend="onnxruntime", device="cpu")
    pose = RTMPose(pose_path, model_input_size=(192, 256), backend="onnxruntime", device="cpu")

    def one(image: np.ndarray) -> int:
        boxes = detector(image)[:max_people]  # rtmlib returns boxes sorted by score (NMS order)
        if len(boxes):
            pose(image, bboxes=boxes)
        return len(boxes)

    for image in images:
        one(image)
    latencies, crops, i = [], 0, 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        t0 = time.perf_counter()
        crops += one(images[i % len(images)])
        latencies.append(time.perf_counter() - t0)
        i += 1
    wall = time.perf_counter() - start
    print(json.dumps({"images": len(latencies), "crops": crops, "wall_s": wall, "latencies_s": latencies}))


if __name__ == "__main__":
    main()
