"""Camera streams, transport-free: the stream slots (POSE_MAX_STREAMS) and the driver every transport runs.

:func:`serve_stream` is a stream from the moment its call opens to its end. A transport
(gRPC ``Stream``, a WebSocket) only parses its messages into :data:`Incoming` items, writes
each :class:`FrameOut` back, and turns the error :func:`serve_stream` raises into its own
status; everything else is here, so no two transports can differ:

- the stream holds a POSE_MAX_STREAMS slot from the moment it opens (``too_many_streams``
  at once beyond), and is refused at once while the service does not serve;
- its first message must be the config, within POSE_STREAM_IDLE_TIMEOUT_S (``stream_idle``);
- frames are read in a task of their own as fast as they come and offered to the
  :class:`StreamSession` (which drops, never blocks); a message that could not be read, a
  frame first or a second config end the stream at once (``bad_request``);
- shutdown (:meth:`StreamRegistry.drain`): every stream stops reading, drops what waits
  (reported), answers what is in flight, then ends with ShuttingDownError;
- how each stream ended is counted in ``pose_stream_ends_total{protocol, reason}``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from service import metrics
from service.errors import BadRequestError, PoseError, ShuttingDownError, StreamIdleError, TooManyStreamsError
from service.requests.layer import PoseRequests
from service.requests.stream_session import FrameIn, FrameOut, StreamParams, StreamSession

__all__ = [
    "FrameIn",
    "FrameOut",
    "Incoming",
    "StreamParams",
    "StreamRegistry",
    "StreamSession",
    "StreamSlot",
    "serve_stream",
]

Incoming = StreamParams | FrameIn | PoseError
"""One message of a stream as its transport parsed it: the config, a frame, or the error of a message it could not
read (a garbled message: ``BadRequestError``)."""


class StreamSlot:
    """One open stream's place among POSE_MAX_STREAMS, from the moment its call opens until it ends."""

    def __init__(self, registry: StreamRegistry) -> None:
        self.registry = registry
        self.draining = False
        self.session: StreamSession | None = None
        self._reader: asyncio.Task[None] | None = None
        self._drained = asyncio.Event()

    async def first(self, incoming: AsyncIterator[Incoming]) -> StreamParams:
        """The stream's config: its first message, awaited within POSE_STREAM_IDLE_TIMEOUT_S.

        Raises:
            StreamIdleError: no message in time.
            ShuttingDownError: the service began to shut down meanwhile.
            BadRequestError: the stream ended, or sent a frame, before its config; a message that could not be read.
            PoseError: the config's own error (out of range: InvalidOptionsError).
        """
        idle_s = self.registry.requests.settings.stream_idle_timeout_s
        read = asyncio.ensure_future(anext(aiter(incoming), None))
        drained = asyncio.ensure_future(self._drained.wait())
        try:
            await asyncio.wait({read, drained}, timeout=idle_s, return_when=asyncio.FIRST_COMPLETED)
            came = read.done()
        finally:
            drained.cancel()
            if not read.done():
                read.cancel()
                with contextlib.suppress(BaseException):
                    await read
        if self.draining:
            raise ShuttingDownError("the service is shutting down: reconnect to another instance")
        if not came:
            raise StreamIdleError(f"no config within {idle_s:g} s: the stream is closed")
        first = read.result()
        if isinstance(first, PoseError):
            raise first
        if not isinstance(first, StreamParams):
            raise BadRequestError("the first message of a stream must carry its config")
        return first

    @asynccontextmanager
    async def run(self, params: StreamParams, *, deadline: float | None = None) -> AsyncIterator[StreamSession]:
        """The stream's session; leaving cancels what is still in flight and frees its buffered frames.

        Raises:
            UnknownModelError: the config names a model that is not served.
        """
        session = StreamSession(self.registry.requests, params, deadline=deadline)
        self.session = session
        if self.draining:
            session.drain()
        try:
            yield session
        finally:
            self.session = None
            await self.stop_reading()
            await session.aclose()

    def read_frames(self, incoming: AsyncIterator[Incoming], session: StreamSession) -> None:
        """Read the stream's messages in a task of their own, offering each frame to ``session``.

        The reader never waits for the session (it drops), so the transport's flow control
        never stalls the client. A protocol error ends the stream at once; the end of the
        input closes the session's input; a reader that fails ends the stream with its error.
        """

        async def read() -> None:
            async for item in incoming:
                if isinstance(item, FrameIn):
                    session.offer(item)
                    continue
                session.fail(item if isinstance(item, PoseError) else
                             BadRequestError("only the first message of a stream may carry a config"))  # fmt: skip
                return
            session.close_input()

        def done(task: asyncio.Task[None]) -> None:
            error = None if task.cancelled() else task.exception()
            if error is not None:
                session.fail(error)  # never silently: the stream ends with it

        if self.draining:
            return  # shutting down already: nothing more is taken
        self._reader = asyncio.create_task(read(), name="stream reader")
        self._reader.add_done_callback(done)

    async def stop_reading(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None and not reader.done():
            reader.cancel()
            with contextlib.suppress(BaseException):
                await reader

    def drain(self) -> None:
        """Shutdown: stop reading, drop what waits, answer what is in flight, then end (ShuttingDownError)."""
        self.draining = True
        self._drained.set()
        if self._reader is not None:
            self._reader.cancel()  # no frame is taken from now on
        if self.session is not None:
            self.session.drain()


class StreamRegistry:
    """The open streams of every transport: bounded by POSE_MAX_STREAMS, drained together at shutdown."""

    def __init__(self, requests: PoseRequests) -> None:
        self.requests = requests
        self._slots: set[StreamSlot] = set()
        self._draining = False

    @property
    def open(self) -> int:
        """Streams open now (waiting for their config included)."""
        return len(self._slots)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[StreamSlot]:
        """A stream slot, taken at once or refused at once; leaving frees it.

        Raises:
            ShuttingDownError, NotReadyError: the service does not serve (the request layer's gate).
            TooManyStreamsError: every slot is taken.
        """
        if self._draining:
            raise ShuttingDownError("the service is shutting down and takes no new streams")
        self.requests.check_open()
        limit = self.requests.settings.max_streams
        if len(self._slots) >= limit:
            raise TooManyStreamsError(f"{len(self._slots)} of {limit} streams are open (POSE_MAX_STREAMS)")
        slot = StreamSlot(self)
        self._slots.add(slot)
        metrics.STREAM_ACTIVE.inc()
        try:
            yield slot
        finally:
            self._slots.discard(slot)
            metrics.STREAM_ACTIVE.dec()
            await slot.stop_reading()

    @asynccontextmanager
    async def session(self, params: StreamParams, *, deadline: float | None = None) -> AsyncIterator[StreamSession]:
        """A slot and a session at once, for callers that feed frames themselves (tests, tools).

        Raises:
            TooManyStreamsError, ShuttingDownError, NotReadyError, UnknownModelError.
        """
        async with self.slot() as slot, slot.run(params, deadline=deadline) as session:
            yield session

    def drain(self) -> None:
        """Shutdown: every open stream stops taking frames and ends once it has answered what it took."""
        self._draining = True
        for slot in list(self._slots):
            slot.drain()


async def serve_stream(
    registry: StreamRegistry,
    incoming: AsyncIterator[Incoming],
    send: Callable[[FrameOut], Awaitable[None]],
    *,
    deadline: float | None = None,
    protocol: str,
) -> None:
    """One stream, from the moment its call opens to its end; returns when the client ended it and all is answered.

    Args:
        registry: the process's streams (POSE_MAX_STREAMS, shutdown).
        incoming: the stream's messages, parsed by the transport, in order; it ends when the client half-closes.
        send: writes one answer (a frame's result or error, or the report of drops) to the client.
        deadline: the call's own ``time.monotonic()`` deadline, if any: no frame outlives it.
        protocol: the transport, a metrics label ("grpc", "websocket").

    Raises:
        ShuttingDownError, NotReadyError, TooManyStreamsError: at once, before any message is read; or
            ShuttingDownError after the shutdown drain (what was taken was answered or reported dropped).
        StreamIdleError: no config, or no frame, within POSE_STREAM_IDLE_TIMEOUT_S.
        BadRequestError: a protocol error (a frame before the config, a second config, a message the
            transport could not read); the stream ends at once.
        InvalidOptionsError, UnknownModelError: the config.
        PoseError: any error item ``incoming`` yields ends the stream at once with it (a transport yields
            CallEndedError when its call ended under it: a cancel, a disconnect, a refused message).
        Exception: whatever ``send`` raises (the transport's own failure; counted ``internal``).
    """
    reason = "cancelled"
    try:
        async with registry.slot() as slot:
            params = await slot.first(incoming)
            async with slot.run(params, deadline=deadline) as session:
                slot.read_frames(incoming, session)
                async for out in session.results():
                    await send(out)
            if slot.draining:
                raise ShuttingDownError("the service is shutting down: reconnect to another instance")
        reason = "ok"
    except PoseError as error:
        reason = error.code
        raise
    except Exception:
        reason = "internal"
        raise
    finally:
        metrics.STREAM_ENDS.labels(protocol, reason).inc()
