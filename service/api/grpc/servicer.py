"""gRPC API (``pose.v1.PoseService``, grpc.aio): a thin adapter over the request layer.

Beside it on the same server: ``grpc.health.v1`` health (NOT_SERVING until the models
are warm and again while draining) and server reflection. Every call of the pose
service gets a request id (``x-request-id`` metadata in, initial metadata out), the
bearer check, the client's deadline carried into the model queues, request metrics with
``protocol="grpc"`` and one access line; errors abort with the error class's
``grpc_code`` and put its ``code`` in the trailing metadata key ``pose-error-code``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from service import metrics
from service.api.grpc import messages
from service.api.observe import internal_message, record_request, request_id_from, unhandled
from service.config import MAX_TIMEOUT_S, MIN_TIMEOUT_S, Settings
from service.errors import BadRequestError, DeadlineExceededError, PoseError, ShuttingDownError
from service.logs import request_id
from service.requests import PoseRequests
from service.requests.streams import StreamRegistry, StreamSession
from service.wire import protobuf
from service.wire._proto.pose.v1 import pose_pb2 as pb
from service.wire._proto.pose.v1 import pose_pb2_grpc
from service.wire.protobuf import ERROR_CODE_KEY

logger = logging.getLogger(__name__)
R = TypeVar("R")

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["PoseService"].full_name  # "pose.v1.PoseService"
ANNOUNCE_S = 0.2  # on SIGTERM, health watchers get NOT_SERVING this long before the server stops taking calls


class Call:
    """One RPC of the pose service as the servicer sees it: its metadata, request id and start time."""

    def __init__(self, context: grpc.aio.ServicerContext) -> None:
        self.context = context
        self.metadata = {key: value for key, value in context.invocation_metadata() or () if isinstance(value, str)}
        self.request_id = request_id_from(self.metadata.get("x-request-id"))
        self.started = time.perf_counter()

    def timeout(self) -> float | None:
        """Seconds left of the client's gRPC deadline (None: none set, the service's default applies).

        Raises:
            DeadlineExceededError: the deadline had (all but) passed when the call arrived.
        """
        remaining = self.context.time_remaining()
        if remaining is None:
            return None
        if remaining < MIN_TIMEOUT_S:
            raise DeadlineExceededError("the call's deadline had (all but) passed when it arrived")
        return min(remaining, MAX_TIMEOUT_S)


class PoseServicer(pose_pb2_grpc.PoseServiceServicer):
    """``pose.v1.PoseService`` over the request layer."""

    def __init__(self, requests: PoseRequests, streams: StreamRegistry | None = None) -> None:
        self.requests = requests
        self.streams = streams or StreamRegistry(requests)  # the process's: POSE_MAX_STREAMS counts every transport
        self._sessions: set[StreamSession] = set()
        self._draining = False
        self._active = 0
        self._idle = asyncio.Condition()

    async def wait_idle(self, timeout_s: float) -> bool:
        """Wait until no call of this service is running; False if ``timeout_s`` ran out first."""
        async with self._idle:
            try:
                async with asyncio.timeout(timeout_s):
                    await self._idle.wait_for(lambda: self._active == 0)
            except TimeoutError:
                return False
        return True

    async def serve(self, context: grpc.aio.ServicerContext, method: str, work: Callable[[Call], Awaitable[R]]) -> R:
        """The frame of every call around ``work``: request id, auth, metrics and access line, errors to codes."""
        call = Call(context)
        token = request_id.set(call.request_id)
        status = grpc.StatusCode.OK
        async with self._idle:
            self._active += 1
        metrics.REQUESTS_IN_PROGRESS.labels("grpc").inc()
        try:
            await context.send_initial_metadata((("x-request-id", call.request_id),))
            self.requests.authorize(call.metadata.get("authorization"))
            return await work(call)
        except PoseError as exc:
            status = exc.grpc_code
            message = exc.message
            if status is grpc.StatusCode.INTERNAL:
                logger.error("answering INTERNAL %s: %s", exc.code, message)
                message = internal_message(message)
            context.set_trailing_metadata(((ERROR_CODE_KEY, exc.code),))
            await context.abort(status, message)
        except asyncio.CancelledError:
            status = grpc.StatusCode.CANCELLED  # the client went away or its deadline passed
            raise
        except Exception as exc:
            status = grpc.StatusCode.INTERNAL
            message = unhandled(exc)
            context.set_trailing_metadata(((ERROR_CODE_KEY, "internal"),))
            await context.abort(status, message)
        finally:
            metrics.REQUESTS_IN_PROGRESS.labels("grpc").dec()
            record_request("grpc", method, status.name, time.perf_counter() - call.started,
                           f"gRPC /{SERVICE_NAME}/{method}")  # fmt: skip
            async with self._idle:
                self._active -= 1
                self._idle.notify_all()
            request_id.reset(token)

    async def Estimate(self, request: pb.EstimateRequest, context: grpc.aio.ServicerContext) -> pb.EstimateResponse:  # noqa: N802 (the proto's name)
        async def estimate(call: Call) -> pb.EstimateResponse:
            async with self.requests.admit(call.timeout(), started=call.started) as admission:
                options = messages.options_from(request.options)
                done = await admission.estimate(messages.image_from(request.image), options)
            return protobuf.estimate_response(done.result, done.visible)

        return await self.serve(context, "Estimate", estimate)

    async def Stream(  # noqa: N802 (the proto's name)
        self, requests: AsyncIterator[pb.StreamRequest], context: grpc.aio.ServicerContext
    ) -> None:
        """A camera stream: a StreamConfig, then Frames; answers in frame order as they are ready."""

        async def stream(call: Call) -> None:
            self.requests.check_open()
            first = await anext(aiter(requests), None)
            if first is None or first.WhichOneof("msg") != "config":
                raise BadRequestError("the first message of a stream must carry its config (StreamRequest.config)")
            params = messages.stream_params_from(first.config)
            timeout = call.timeout()
            deadline = None if timeout is None else self.requests.deadline(timeout)
            async with self.streams.session(params, deadline=deadline) as session:
                self._sessions.add(session)
                reader = asyncio.create_task(_read_frames(requests, session))
                try:
                    async for out in session.results():
                        await context.write(messages.stream_response(out))
                finally:
                    reader.cancel()
                    self._sessions.discard(session)
            if self._draining:
                raise ShuttingDownError("the service is shutting down: reconnect to another instance")

        await self.serve(context, "Stream", stream)

    def drain_streams(self) -> None:
        """Shutdown: every stream stops taking frames, answers what it took, then ends (UNAVAILABLE)."""
        self._draining = True
        for session in list(self._sessions):
            session.close_input()

    async def ListModels(  # noqa: N802 (the proto's name)
        self, request: pb.ListModelsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListModelsResponse:
        async def list_models(call: Call) -> pb.ListModelsResponse:
            return protobuf.models_response(self.requests.engine.describe())

        return await self.serve(context, "ListModels", list_models)


async def _read_frames(requests: AsyncIterator[pb.StreamRequest], session: StreamSession) -> None:
    """Read frames as fast as they come (so gRPC flow control never stalls the client); the session drops."""
    try:
        async for message in requests:
            if message.WhichOneof("msg") != "frame":
                session.fail(BadRequestError("only the first message of a stream may carry a config"))
                return
            session.offer(messages.frame_from(message.frame))
    except grpc.aio.AioRpcError:
        return  # the client went away: the handler is cancelled too
    session.close_input()


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class GrpcServer:
    """The grpc.aio server: the pose service, health and reflection on ``POSE_GRPC_PORT``."""

    def __init__(self, requests: PoseRequests, settings: Settings, streams: StreamRegistry | None = None) -> None:
        size = settings.grpc_max_message_bytes
        self._server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", size),
                ("grpc.max_send_message_length", size),
                ("grpc.so_reuseport", 0),  # a port in use is an error, not a second listener
            ]
        )
        self.servicer = PoseServicer(requests, streams)
        pose_pb2_grpc.add_PoseServiceServicer_to_server(self.servicer, self._server)
        self._health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self._health, self._server)
        names = (SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME)
        reflection.enable_server_reflection(names, self._server)
        self.port = self._server.add_insecure_port(_address(settings.host, settings.grpc_port))

    async def start(self) -> None:
        await self.set_serving(False)
        await self._server.start()

    async def set_serving(self, serving: bool) -> None:
        """Health of the server ("") and of ``pose.v1.PoseService``."""
        status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        for name in ("", SERVICE_NAME):
            await self._health.set(name, status)

    async def stop(self, grace_s: float) -> None:
        """Health NOT_SERVING, no new calls; pose calls finish within ``grace_s``; then the rest is cut."""
        await self._health.enter_graceful_shutdown()
        # let the watchers' NOT_SERVING go out before the server stops taking calls and, later, cuts them
        await asyncio.sleep(min(ANNOUNCE_S, grace_s))
        stopping = asyncio.create_task(self._server.stop(grace_s))
        self.servicer.drain_streams()
        if not await self.servicer.wait_idle(grace_s):
            logger.warning("shutdown: gRPC calls still running after the %.1f s grace period", grace_s)
        # what is left (health watchers, reflection streams) would hold the server to the end of the grace period
        await self._server.stop(None)
        await stopping
