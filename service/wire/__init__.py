"""What a client shares with the server, importable without the server's runtime (no ONNX Runtime, no engine).

The pose options and their bounds (``options.py``), the result of one image
(``results.py``), its JSON and rendered forms (``formats.py``), the ``pose.v1`` messages
(``_proto``, generated) and their mapping to and from these types (``protobuf.py``).
Imports only numpy, OpenCV, pydantic, protobuf and grpc; ``service.client`` runs on it.
"""
