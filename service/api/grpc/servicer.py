"""gRPC API (``pose.v1.PoseService``, grpc.aio): a thin adapter over the request layer.

Beside it on the same server: ``grpc.health.v1`` health (NOT_SERVING until the models
are warm and again while draining) and server reflection. Every call of the pose
service gets a request id (``x-request-id`` metadata in, initial metadata out), the
bearer check (an interceptor, from the metadata, before any message is read), the
client's deadline carried into the model queues, request metrics with
``protocol="grpc"`` and one access line; errors abort with the error class's
``grpc_code`` and put its ``code`` in the trailing metadata key ``pose-error-code``.

The methods are registered without deserializers (:meth:`PoseServicer.handler`): each
reads its request bytes itself, so that

- a unary call's message is read only once the call holds room for it in the message
  budget (POSE_GRPC_MESSAGE_BUDGET_BYTES; RESOURCE_EXHAUSTED ``message_budget`` at once
  when there is none), and the room shrinks to the message's size once it is in;
- bytes that are not the method's message are INVALID_ARGUMENT ``bad_request``, counted and
  logged in one line, never an exception inside gRPC;
- a stream is driven by the transport-free :func:`~service.requests.streams.serve_stream`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from service import metrics
from service.api.grpc import messages
from service.api.grpc.intake import (
    ExecuteBatchError,
    IntakeInterceptor,
    ReadFailedError,
    read_message,
    watch_failed_reads,
)
from service.api.observe import internal_message, record_request, request_id_from, unhandled
from service.config import MAX_TIMEOUT_S, MIN_TIMEOUT_S, Settings
from service.errors import (
    BadRequestError,
    CallEndedError,
    DeadlineExceededError,
    MalformedMessageError,
    MessageBudgetError,
    PoseError,
)
from service.inflight import InFlight
from service.logs import request_id
from service.requests import PoseRequests
from service.requests.budget import ByteBudget, Charge, message_budget_bytes
from service.requests.streams import FrameOut, Incoming, StreamRegistry, serve_stream
from service.wire import protobuf
from service.wire._proto.pose.v1 import pose_pb2 as pb
from service.wire.protobuf import ERROR_CODE_KEY

logger = logging.getLogger(__name__)
R = TypeVar("R")

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["PoseService"].full_name  # "pose.v1.PoseService"
ANNOUNCE_S = 0.2  # on SIGTERM, health watchers get NOT_SERVING this long before the server stops taking calls


class _NoMessageError(BadRequestError):
    """The call's request message never came (the client half-closed without it, or gRPC ended the call first)."""


@dataclass
class _Outcome:
    """How a call ended, for its metrics and its access line."""

    status: str = grpc.StatusCode.OK.name
    level: int = logging.INFO
    detail: str = ""


@dataclass(frozen=True)
class _Refusal:
    """What a failed call answers: plain values, so that nothing of the failed work outlives the call."""

    grpc_code: grpc.StatusCode
    code: str
    message: str
    no_message: bool = False  # the request message never came, or gRPC failed its read

    @classmethod
    def of(cls, error: PoseError, outcome: _Outcome) -> _Refusal:
        """The answer to ``error``; ``outcome`` is updated (INTERNAL is logged as an error, garbled bytes warned)."""
        message = error.message
        outcome.status, outcome.detail = error.grpc_code.name, f"{error.code}: {message}"
        if error.grpc_code is grpc.StatusCode.INTERNAL:
            logger.error("answering INTERNAL %s: %s", error.code, message)
            message = internal_message(message)
        elif isinstance(error, MalformedMessageError):
            outcome.level = logging.WARNING  # a client sending bytes that are not the method's message
        return cls(error.grpc_code, error.code, message, isinstance(error, _NoMessageError | ReadFailedError))


class Call:
    """One RPC of the pose service as the servicer sees it: its metadata, request id and start time."""

    def __init__(self, context: grpc.aio.ServicerContext) -> None:
        self.context = context
        self.metadata = {key: value for key, value in context.invocation_metadata() or () if isinstance(value, str)}
        self.request_id = request_id_from(self.metadata.get("x-request-id"))
        self.started = time.perf_counter()
        self.arrived = time.monotonic()
        self.hold: Charge | None = None  # the call's room in the message budget

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

    def past_deadline(self) -> bool:
        remaining = self.context.time_remaining()
        return remaining is not None and remaining <= 0


class PoseServicer:
    """``pose.v1.PoseService`` over the request layer."""

    def __init__(self, requests: PoseRequests, streams: StreamRegistry, messages_budget: ByteBudget) -> None:
        self.requests = requests
        self.service_name = SERVICE_NAME
        self.streams = streams
        self.messages = messages_budget
        self.max_message = requests.settings.grpc_max_message_bytes
        self.in_flight = InFlight(metrics.REQUESTS_IN_PROGRESS.labels("grpc"))

    def handler(self) -> grpc.GenericRpcHandler:
        """The service's methods, reading their own request bytes (see the module docstring)."""
        return grpc.method_handlers_generic_handler(
            SERVICE_NAME,
            {
                "Estimate": grpc.stream_unary_rpc_method_handler(
                    self.Estimate, response_serializer=pb.EstimateResponse.SerializeToString
                ),
                "ListModels": grpc.stream_unary_rpc_method_handler(
                    self.ListModels, response_serializer=pb.ListModelsResponse.SerializeToString
                ),
                "Stream": grpc.stream_stream_rpc_method_handler(
                    self.Stream, response_serializer=pb.StreamResponse.SerializeToString
                ),
            },
        )

    def refusal(self, method: str, error: PoseError) -> grpc.RpcMethodHandler:
        """A handler that answers ``error`` at once, without reading any message (counted and logged as any call)."""

        async def refuse(_: object, context: grpc.aio.ServicerContext) -> None:
            async def fail(call: Call) -> None:
                raise error

            await self.serve(context, method, fail)

        return grpc.stream_unary_rpc_method_handler(refuse)

    async def serve(self, context: grpc.aio.ServicerContext, method: str, work: Callable[[Call], Awaitable[R]]) -> R:
        """The frame of every call around ``work``: request id, metrics and access line, errors to codes."""
        call = Call(context)
        token = request_id.set(call.request_id)
        outcome = _Outcome()
        try:
            with self.in_flight.entered():
                return await self._answer(call, work, outcome)
        finally:
            if call.hold is not None:
                call.hold.release()
            record_request("grpc", method, outcome.status, time.perf_counter() - call.started,
                           f"gRPC /{SERVICE_NAME}/{method}", level=outcome.level, detail=outcome.detail)  # fmt: skip
            request_id.reset(token)

    async def _answer(self, call: Call, work: Callable[[Call], Awaitable[R]], outcome: _Outcome) -> R:
        """``work``'s answer, or its error as the call's status and ``pose-error-code`` (``outcome`` says which)."""
        context = call.context
        await context.send_initial_metadata((("x-request-id", call.request_id),))
        try:
            return await work(call)
        except PoseError as exc:
            refusal = _Refusal.of(exc, outcome)
        except asyncio.CancelledError:
            outcome.status = "DEADLINE_EXCEEDED" if call.past_deadline() else "CANCELLED"  # the client went away
            raise
        except Exception as exc:
            outcome.status = grpc.StatusCode.INTERNAL.name
            refusal = _Refusal(grpc.StatusCode.INTERNAL, "internal", unhandled(exc))
        # aborted outside the except clauses: gRPC keeps the AbortError it raises (in a reference cycle with the
        # call), which would otherwise keep our error, its frames and the request's image alive until a full GC
        context.set_trailing_metadata(((ERROR_CODE_KEY, refusal.code),))
        try:
            await context.abort(refusal.grpc_code, refusal.message)
        except ExecuteBatchError:  # gRPC had ended the call already: the client saw gRPC's status, not ours
            _ended_by_grpc(call, refusal, outcome)
        return None  # type: ignore[return-value]  # (abort raises; nothing can be sent after gRPC's end)

    async def _read_one(self, call: Call) -> bytes:
        """The call's one request message, read once the message budget holds room for the largest one.

        The call keeps the message's size in the budget until it ends.

        Raises:
            ShuttingDownError, NotReadyError: the service does not serve (nothing is read).
            MessageBudgetError: no room for one more message now (nothing is read).
            BadRequestError: no message came (the client closed its side without one, or gRPC ended the call).
        """
        self.requests.check_open()
        hold = self.messages.try_charge(self.max_message)
        if hold is None:
            metrics.REJECTED.labels("message_budget").inc()
            raise MessageBudgetError(
                f"{self.messages.used} bytes of request messages are in flight (POSE_GRPC_MESSAGE_BUDGET_BYTES = "
                f"{self.messages.limit}; each call holds POSE_GRPC_MAX_MESSAGE_BYTES = {self.max_message} until its "
                "message is in): retry later"
            )
        call.hold = hold
        try:
            raw = await read_message(call.context)
        except CallEndedError:
            raw = None  # answered as no message: gRPC ended the call (see _ended_by_grpc)
        if raw is None:
            raise _NoMessageError("the call ended without its request message")
        hold.shrink(len(raw))
        return raw

    async def Estimate(self, _: object, context: grpc.aio.ServicerContext) -> pb.EstimateResponse:  # noqa: N802 (the proto's name)
        async def estimate(call: Call) -> pb.EstimateResponse:
            image, options = messages.estimate_from(await self._read_one(call))
            async with self.requests.admit(call.timeout(), started=call.started, arrived=call.arrived) as admission:
                done = await admission.estimate(image, options)
            return protobuf.estimate_response(done.result, done.visible)

        return await self.serve(context, "Estimate", estimate)

    async def ListModels(self, _: object, context: grpc.aio.ServicerContext) -> pb.ListModelsResponse:  # noqa: N802 (the proto's name)
        async def list_models(call: Call) -> pb.ListModelsResponse:
            messages.parse(pb.ListModelsRequest, await self._read_one(call))
            return protobuf.models_response(self.requests.engine.describe())

        return await self.serve(context, "ListModels", list_models)

    async def Stream(self, _: object, context: grpc.aio.ServicerContext) -> None:  # noqa: N802 (the proto's name)
        """A camera stream: a StreamConfig, then Frames; answers in frame order as they are ready."""

        async def stream(call: Call) -> None:
            timeout = call.timeout()
            deadline = None if timeout is None else self.requests.deadline(timeout)

            async def send(out: FrameOut) -> None:
                try:
                    await context.write(messages.stream_response(out))
                except ExecuteBatchError:  # gRPC has ended the call (the client went away)
                    raise CallEndedError("gRPC ended the call before an answer could be written") from None

            await serve_stream(self.streams, _incoming(context), send, deadline=deadline, protocol="grpc")

        await self.serve(context, "Stream", stream)


def _ended_by_grpc(call: Call, refusal: _Refusal, outcome: _Outcome) -> None:
    """How a call ended that gRPC had ended before the service's answer could be sent.

    What the client saw was gRPC's own status: DEADLINE_EXCEEDED past its deadline; for a call
    whose message never came or whose read gRPC failed (a unary call's one message, a stream's
    next frame), RESOURCE_EXHAUSTED (how gRPC refuses a message over POSE_GRPC_MAX_MESSAGE_BYTES,
    before any of it is buffered; a client that loses its connection in the middle of sending a
    message ends the same way here, and cannot be told apart); else CANCELLED.
    """
    if call.past_deadline():
        outcome.status, outcome.level, outcome.detail = "DEADLINE_EXCEEDED", logging.INFO, "the deadline passed"
    elif refusal.no_message:
        outcome.status, outcome.level = "RESOURCE_EXHAUSTED", logging.WARNING
        outcome.detail = ("a request message did not come: gRPC ended the call while it was read (a message over "
                          "POSE_GRPC_MAX_MESSAGE_BYTES, or a connection lost while sending it)")  # fmt: skip
    else:
        outcome.status, outcome.level = "CANCELLED", logging.INFO
        outcome.detail = f"the client went away before the answer ({refusal.code})"


async def _incoming(context: grpc.aio.ServicerContext) -> AsyncIterator[Incoming]:
    """A stream's messages as the driver takes them, read one at a time as the driver asks (a message that is not a
    StreamRequest is the error it is, and ends the stream)."""
    while True:
        try:
            raw = await read_message(context)
        except CallEndedError as error:
            yield error  # the stream ends at once: nobody is left to answer
            return
        if raw is None:
            return  # the client half-closed: what was taken is answered, then the stream ends OK
        yield messages.stream_item(raw)


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class GrpcServer:
    """The grpc.aio server: the pose service, health and reflection on ``POSE_GRPC_PORT``."""

    def __init__(self, requests: PoseRequests, settings: Settings, streams: StreamRegistry | None = None) -> None:
        """
        Args:
            streams: the process's open streams (shared with the WebSocket, so POSE_MAX_STREAMS counts both);
                a new registry if None.
        """
        watch_failed_reads()
        streams = streams or StreamRegistry(requests)
        size = settings.grpc_max_message_bytes
        budget = ByteBudget(message_budget_bytes(settings, requests.budget.limit),
                            capacity=metrics.GRPC_MESSAGE_BUDGET_BYTES,
                            in_flight=metrics.GRPC_MESSAGE_BYTES_IN_FLIGHT)  # fmt: skip
        self.servicer = PoseServicer(requests, streams, budget)
        self.intake = IntakeInterceptor(self.servicer)
        self._server = grpc.aio.server(
            interceptors=[self.intake],
            options=[
                ("grpc.max_receive_message_length", size),
                ("grpc.max_send_message_length", size),
                ("grpc.so_reuseport", 0),  # a port in use is an error, not a second listener
            ],
        )
        self._server.add_generic_rpc_handlers([self.servicer.handler()])
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
        """Health NOT_SERVING, no new calls; pose calls finish within ``grace_s``; then the rest is cut.

        Streams are drained by the process (``StreamRegistry.drain``) at SIGTERM, before this.
        """
        await self._health.enter_graceful_shutdown()
        # let the watchers' NOT_SERVING go out before the server stops taking calls and, later, cuts them
        await asyncio.sleep(min(ANNOUNCE_S, grace_s))
        stopping = asyncio.create_task(self._server.stop(grace_s))
        if not await self.servicer.in_flight.wait_idle(grace_s):
            logger.warning("shutdown: gRPC calls still running after the %.1f s grace period", grace_s)
        # what is left (health watchers, reflection streams) would hold the server to the end of the grace period
        await self._server.stop(None)
        await stopping
