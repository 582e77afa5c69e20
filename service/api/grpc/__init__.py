"""The gRPC transport (grpc.aio): the ``pose.v1.PoseService`` servicer, health, reflection, the server."""
