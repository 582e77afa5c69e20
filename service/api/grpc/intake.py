"""What happens to a gRPC call before its first message is read: auth, and bounded reads for every service.

grpc.aio reads a unary call's message before its handler runs, whole (a 32 MiB message
cost 3x its size on the way into Python), so everything that must come before the read
is either an interceptor (:class:`IntakeInterceptor`) or a method handler that reads its
request bytes itself:

- the pose service's calls are authorised from their metadata here, and read by the
  servicer under the message budget (``servicer.py``);
- health and reflection (open without a token) are wrapped so that their messages are
  read the same way, at most :data:`SIDE_READS` at once, and bytes that are not their
  message are INVALID_ARGUMENT instead of an exception inside gRPC.

:func:`read_message` tells the client's half-close from a call gRPC ended (a message over
POSE_GRPC_MAX_MESSAGE_BYTES, a cancel), which grpc.aio both return as EOF.
"""

from __future__ import annotations

import contextvars
import inspect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar, cast

import grpc
from grpc._cython import cygrpc  # type: ignore[attr-defined]  # grpc's stubs do not declare its Cython core

from service import metrics
from service.api.observe import record_request
from service.errors import CallEndedError, UnauthorizedError
from service.requests.budget import ByteBudget

if TYPE_CHECKING:
    from service.api.grpc.servicer import PoseServicer

logger = logging.getLogger(__name__)

# a batch on a call gRPC has already ended (a message over the limit, a cancel) fails with this (grpc's own type)
ExecuteBatchError: type[Exception] = cygrpc.ExecuteBatchError
Req = TypeVar("Req")
Resp = TypeVar("Resp")
SIDE_READS = 4  # health and reflection messages being read at once (each up to POSE_GRPC_MAX_MESSAGE_BYTES)

_READ_FAILED: contextvars.ContextVar[bool] = contextvars.ContextVar("pose_grpc_read_failed", default=False)


class _FailedReads(logging.Filter):
    """Tells a read that failed (gRPC ended the call) from the client's half-close, which grpc.aio both return as EOF.

    grpc.aio says which it was only in a DEBUG line of its own logger; this filter notes it
    for the task that read (a context variable) and drops the line, as it drops every DEBUG
    line the root logger would not show (the logger is set to DEBUG for this one line).
    """

    MESSAGE = "Failed to receive any message from Core"

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and record.msg.startswith(self.MESSAGE):
            _READ_FAILED.set(True)
            return False
        return record.levelno >= logging.getLogger().getEffectiveLevel()


class ReadFailedError(CallEndedError):
    """gRPC failed the read of the call's next message: a message over POSE_GRPC_MAX_MESSAGE_BYTES, which gRPC has
    answered RESOURCE_EXHAUSTED (a client's cancel or disconnect while the call waits shows as a plain EOF followed by
    the handler's cancellation, not as a failed read: measured with grpcio 1.85). Counted as what the client saw."""

    grpc_code = grpc.StatusCode.RESOURCE_EXHAUSTED
    code = "too_large"


def watch_failed_reads() -> None:
    """Install the filter that lets :func:`read_message` see failed reads (once per process)."""
    grpc_logger = logging.getLogger("grpc._cython.cygrpc")
    if not any(isinstance(f, _FailedReads) for f in grpc_logger.filters):
        grpc_logger.addFilter(_FailedReads())
        grpc_logger.setLevel(logging.DEBUG)


async def read_message(context: grpc.aio.ServicerContext) -> bytes | None:
    """The call's next request message; None when the client has half-closed.

    Raises:
        ReadFailedError: gRPC failed the read (a message over POSE_GRPC_MAX_MESSAGE_BYTES).
    """
    _READ_FAILED.set(False)
    raw = await context.read()
    if isinstance(raw, bytes):
        return raw
    if _READ_FAILED.get():
        raise ReadFailedError("gRPC ended the call while its next message was read (a message over the size limit)")
    return None


class IntakeInterceptor(grpc.aio.ServerInterceptor):
    """Before any message of a call is read: the pose service's bearer check; bounded reads for the other services.

    A pose call without a valid token (POSE_API_KEYS) gets UNAUTHENTICATED at once: its
    message is never read, so a flood of unauthenticated calls holds no memory. Health and
    reflection stay open, and read their messages at most :data:`SIDE_READS` at once.
    """

    def __init__(self, servicer: PoseServicer) -> None:
        self.servicer = servicer
        self._prefix = f"/{servicer.service_name}/"
        self._largest = servicer.max_message
        # the bytes of health and reflection messages being read, as a budget (the heap trimmer watches it too)
        self.side = ByteBudget(SIDE_READS * self._largest)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Req, Resp] | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Req, Resp] | None:
        method = handler_call_details.method
        if method.startswith(self._prefix):
            metadata = handler_call_details.invocation_metadata or ()
            given = next((v for k, v in metadata if k == "authorization" and isinstance(v, str)), None)
            try:
                self.servicer.requests.authorize(given)
            except UnauthorizedError as error:
                refusal = self.servicer.refusal(method.removeprefix(self._prefix), error)
                return cast("grpc.RpcMethodHandler[Req, Resp]", refusal)  # (grpc's class is not generic at run time)
            return await continuation(handler_call_details)
        handler = await continuation(handler_call_details)
        return None if handler is None else self._bounded(handler, method.removeprefix("/"))

    # -- health and reflection -------------------------------------------------------------------------------------

    def _bounded(self, handler: grpc.RpcMethodHandler[Req, Resp], method: str) -> grpc.RpcMethodHandler[Req, Resp]:
        """``handler`` reading its messages through a :class:`_SideReader` (async handlers; others are left as they
        are); ``method``: "grpc.health.v1.Health/Check" and the like."""
        behavior = handler.unary_unary or handler.unary_stream or handler.stream_unary or handler.stream_stream
        if not (inspect.iscoroutinefunction(behavior) or inspect.isasyncgenfunction(behavior)):
            return handler
        deserialize = handler.request_deserializer

        async def call(_: object, context: grpc.aio.ServicerContext) -> Any:
            reader = _SideReader(self, deserialize, method, context)
            request = reader.every() if handler.request_streaming else await reader.one()
            answers = behavior(request, context)
            if inspect.isasyncgen(answers):
                async for answer in answers:
                    await context.write(answer)
                return None
            answered = await cast(Awaitable[Any], answers)  # a response; or None from a handler that writes its own
            return None if handler.response_streaming else answered

        make = (
            grpc.stream_stream_rpc_method_handler
            if handler.response_streaming
            else grpc.stream_unary_rpc_method_handler
        )
        return make(call, response_serializer=handler.response_serializer)


_INVALID = object()  # a message that is not the method's


class _SideReader:
    """One health or reflection call's messages, each read while fewer than SIDE_READS are, and parsed.

    A refusal (RESOURCE_EXHAUSTED: too many reads at once; INVALID_ARGUMENT: bytes that are
    not the method's message, or no message) is counted in ``pose_requests_total`` with its
    code and logged in one WARNING access line; the calls answered are not (as HTTP's
    ``/healthz``). The raw bytes are never kept in a frame that an abort's traceback would
    hold: grpc.aio keeps its AbortError in a reference cycle with the call, which would keep
    them until a full garbage collection.
    """

    def __init__(
        self,
        intake: IntakeInterceptor,
        deserialize: Callable[[bytes], Any] | None,
        method: str,
        context: grpc.aio.ServicerContext,
    ) -> None:
        self.intake = intake
        self.deserialize = deserialize or (lambda raw: raw)
        self.method = method
        self.context = context
        self.started = time.perf_counter()

    async def one(self) -> Any:
        try:
            request = self._parse(await self._read())
        except CallEndedError:
            request = None
        if request is None:
            await self._refuse(grpc.StatusCode.INVALID_ARGUMENT, "the call ended without its request message")
        return await self._checked(request)

    async def every(self) -> AsyncIterator[Any]:
        while (request := self._parse(await self._read())) is not None:
            yield await self._checked(request)

    async def _read(self) -> bytes | None:
        hold = self.intake.side.try_charge(self.intake._largest)
        if hold is None:
            metrics.REJECTED.labels("side_reads").inc()
            await self._refuse(grpc.StatusCode.RESOURCE_EXHAUSTED, f"{SIDE_READS} messages are being read: retry")
        try:
            return await read_message(self.context)
        finally:
            hold.release()

    def _parse(self, raw: bytes | None) -> Any:
        if raw is None:
            return None
        try:
            return self.deserialize(raw)
        except Exception:  # protobuf raises DecodeError; anything else is the same client mistake
            return _INVALID

    async def _checked(self, request: Any) -> Any:
        if request is _INVALID:
            await self._refuse(grpc.StatusCode.INVALID_ARGUMENT, "the request is not this method's message")
        return request

    async def _refuse(self, code: grpc.StatusCode, message: str) -> NoReturn:
        record_request("grpc", self.method, code.name, time.perf_counter() - self.started, f"gRPC /{self.method}",
                       level=logging.WARNING, detail=message)  # fmt: skip
        await self.context.abort(code, message)
