"""``pose.v1.PoseService/Estimate`` of a running service, as ``service.client estimate`` calls it."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import grpc

from service.client.estimate import image_message
from service.eval.transport import F32, Ask, RequestFailedError, RetryLaterError
from service.wire import protobuf
from service.wire._proto.pose.v1 import pose_pb2 as pb
from service.wire._proto.pose.v1 import pose_pb2_grpc
from service.wire.protobuf import ERROR_CODE_KEY
from service.wire.results import PoseResult

logger = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 64 * 1024 * 1024  # as service.client: the answers of 133-keypoint crowds are large


def _failure(exc: grpc.aio.AioRpcError) -> str:
    code = dict(exc.trailing_metadata() or ()).get(ERROR_CODE_KEY, "")
    return f"{exc.code().name} {code}: {exc.details()}"


class GrpcTransport:
    """One ``Estimate`` call per image (the file's bytes, options and boxes in the ``Options`` message)."""

    def __init__(self, target: str, ask: Ask, *, api_key: str | None = None) -> None:
        self.name = f"grpc://{target}"
        self.ask = ask
        self.metadata = (("authorization", f"Bearer {api_key}"),) if api_key else ()
        options = [("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                   ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES)]  # fmt: skip
        self.channel = grpc.aio.insecure_channel(target, options=options)
        self.stub = pose_pb2_grpc.PoseServiceStub(self.channel)

    async def start(self) -> None:
        await self.models()

    async def estimate(self, image: Path, boxes: F32 | None) -> PoseResult:
        try:
            options = protobuf.options_message(self.ask.options(boxes))
        except ValueError as exc:
            raise RequestFailedError(f"{image}: {exc}") from exc
        message = await asyncio.to_thread(image_message, image, raw=False)
        request = pb.EstimateRequest(image=message, options=options)
        try:
            response = await self.stub.Estimate(request, timeout=self.ask.timeout_s, metadata=self.metadata)
        except grpc.aio.AioRpcError as exc:
            if exc.code() is grpc.StatusCode.RESOURCE_EXHAUSTED and "queue_full" in _failure(exc):
                raise RetryLaterError(1.0) from exc
            raise RequestFailedError(f"{image}: {_failure(exc)}") from exc
        return protobuf.result_from(response)[0]

    async def models(self) -> list[dict[str, Any]]:
        """ListModels as ``GET /v1/models`` names its fields (the published rows are HTTP's only)."""
        try:
            response = await self.stub.ListModels(pb.ListModelsRequest(), timeout=30.0, metadata=self.metadata)
        except grpc.aio.AioRpcError as exc:
            raise RequestFailedError(f"{self.name}: {_failure(exc)}") from exc
        return [
            {"name": m.name, "task": m.task, "keypoints": m.keypoints or None, "input_size": [m.input_width,
             m.input_height], "weights": m.weights, "backend": m.backend, "precision": m.precision,
             "default": m.default}
            for m in response.models
        ]  # fmt: skip

    async def aclose(self) -> None:
        await self.channel.close()
