"""The transport-neutral request layer: what every way in (HTTP, gRPC, streams, the CLI) does the same way.

- ``layer.py``: :class:`PoseRequests`, one per process: auth, the one admission and
  shutdown gate (``admit``), the deadline, one-shot ``estimate``;
- ``admission.py``: :class:`Admission`, one admitted unit of work: its queue room, its
  decode within the budget, its Pipeline call;
- ``images.py``: the image inputs (encoded bytes, raw pixels) and their decode on one thread hop;
- ``budget.py``: the decode memory budget;
- ``streams.py``: a camera stream's session (buffer, order, tracking, smoothing), transport-free.

Transports (``service/api``) parse their wire format into these calls and write the
answer back; nothing here knows HTTP or gRPC.
"""

from service.requests.admission import Admission, Estimate
from service.requests.images import EncodedImage, ImageInput, RawPixels
from service.requests.layer import PoseRequests

__all__ = ["Admission", "EncodedImage", "Estimate", "ImageInput", "PoseRequests", "RawPixels"]
