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
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

import grpc
from grpc._cython import cygrpc  # type: ignore[attr-defined]  # grpc's stubs do not declare its Cython core

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


def watch_failed_reads() -> None:
    """Install the filter that lets :func:`read_message` see failed reads (once per process)."""
    grpc_logger = logging.getLogger("grpc._cython.cygrpc")
    if not any(isinstance(f, _FailedReads) for f in grpc_logger.filters):
        grpc_logger.addFilter(_FailedReads())
        grpc_logger.setLevel(logging.DEBUG)


async def read_message(context: grpc.aio.ServicerContext) -> bytes | None:
    """The call's next request message; None when the client has half-closed.

    Raises:
        CallEndedError: gRPC ended the call (the client cancelled or went away, or sent a message over
            POSE_GRPC_MAX_MESSAGE_BYTES).
    """
    _READ_FAILED.set(False)
    raw = await context.read()
    if isinstance(raw, bytes):
        return raw
    if _READ_FAILED.get():
        raise CallEndedError("gRPC ended the call while its next message was awaited")
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
        return None if handler is None else self._bounded(handler)

    # -- health and reflection -------------------------------------------------------------------------------------

    async def _read_side(self, context: grpc.aio.ServicerContext) -> bytes | None:
        """A health or reflection message, read while fewer than SIDE_READS are (RESOURCE_EXHAUSTED otherwise)."""
        hold = self.side.try_charge(self._largest)
        if hold is None:
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, f"{SIDE_READS} messages are being read: retry")
        try:
            return await read_message(context)
        finally:
            hold.release()

    def _bounded(self, handler: grpc.RpcMethodHandler[Req, Resp]) -> grpc.RpcMethodHandler[Req, Resp]:
        """``handler`` reading its messages through :meth:`_read_side` (async handlers; others are left as they are)."""
        behavior = handler.unary_unary or handler.unary_stream or handler.stream_unary or handler.stream_stream
        if not (inspect.iscoroutinefunction(behavior) or inspect.isasyncgenfunction(behavior)):
            return handler
        reader = _SideReader(self, handler.request_deserializer)

        async def call(_: object, context: grpc.aio.ServicerContext) -> Any:
            request = reader.every(context) if handler.request_streaming else await reader.one(context)
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
    """A health or reflection method's messages, read through :meth:`IntakeInterceptor._read_side` and parsed.

    The raw bytes are never kept in a frame that an abort's traceback would hold: grpc.aio
    keeps its AbortError in a reference cycle with the call, which would keep them until a
    full garbage collection.
    """

    def __init__(self, intake: IntakeInterceptor, deserialize: Callable[[bytes], Any] | None) -> None:
        self.intake = intake
        self.deserialize = deserialize or (lambda raw: raw)

    async def one(self, context: grpc.aio.ServicerContext) -> Any:
        try:
            request = self._parse(await self.intake._read_side(context))
        except CallEndedError:
            request = None
        if request is None:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the call ended without its request message")
        return await self._checked(request, context)

    async def every(self, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        while (request := self._parse(await self.intake._read_side(context))) is not None:
            yield await self._checked(request, context)

    def _parse(self, raw: bytes | None) -> Any:
        if raw is None:
            return None
        try:
            return self.deserialize(raw)
        except Exception:  # protobuf raises DecodeError; anything else is the same client mistake
            return _INVALID

    @staticmethod
    async def _checked(request: Any, context: grpc.aio.ServicerContext) -> Any:
        if request is _INVALID:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the request is not this method's message")
        return request
