"""``python -m service.eval``: score a deployment on a keypoint benchmark, beside the published figures.

A top-level client of the request layer, as ``service.cli`` is: in process (the same
``POSE_*`` settings and model repository), or through a running service over HTTP or
gRPC. Modules:

- ``dataset``: the annotations -> what to send (images, boxes), as MMPose's datasets do
- ``transport``, ``in_process``, ``http_transport``, ``grpc_transport``: one request per image
- ``runner``: concurrent requests with a progress bar
- ``predictions``: answers -> COCO results entries (MMPose's rescoring and OKS-NMS)
- ``scoring``, ``pckh``: COCO, Human-Art, COCO-WholeBody, CrowdPose, MPII metrics
- ``report``: the summary JSON, the printed table, ``--expect-within``
"""
