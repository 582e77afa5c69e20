"""``python -m service.client``: a gRPC client of the service (``pose.v1``), for scripts and for trying it out."""
