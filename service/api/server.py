"""The process: one engine, the request layer over it, HTTP (uvicorn) and gRPC (grpc.aio) on one event loop.

Lifecycle (``serve``):

1. bind both transports (a port in use fails the start at once), then load and warm up
   the models off the loop; /readyz and gRPC health say NOT_SERVING meanwhile;
2. ready: /readyz 200, health SERVING;
3. SIGTERM or SIGINT: readiness and health turn NOT_SERVING, the request layer's gate
   closes (what arrives from then on is refused ``shutting_down``), every camera stream
   (gRPC's and WebSocket's) stops taking frames, answers what it took and ends
   ``shutting_down`` (``StreamRegistry.drain``), both transports stop taking new calls
   (uvicorn would cut WebSockets at once, so they end before it shuts down), in-flight HTTP
   requests and gRPC calls finish within ``POSE_SHUTDOWN_GRACE_S``; what still runs then
   is ended by the request layer with ``shutting_down`` (JSON 503 / UNAVAILABLE),
   answered within ``ANSWER_WINDOW_S``; then the engine closes its queues.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import uvicorn
from fastapi import FastAPI

from service.api.grpc.servicer import GrpcServer
from service.api.http.app import create_app
from service.api.http.protocol import QuietWebSocketProtocol, http_protocol
from service.api.http.websocket import WebSocketStreams
from service.api.memory import HeapTrimmer
from service.config import Settings
from service.engine.engine import Engine
from service.requests import PoseRequests
from service.requests.streams import StreamRegistry

logger = logging.getLogger("service")

ANSWER_WINDOW_S = 2.0  # after the grace period: time to write the answers of the work it ended


class _HttpServer(uvicorn.Server):
    """uvicorn without its own signal handling (the process handles signals for both transports), whose
    WebSocket streams drain before it shuts down (uvicorn closes open WebSockets at once, with 1012)."""

    def __init__(self, config: uvicorn.Config, streams: WebSocketStreams, drain_s: float) -> None:
        super().__init__(config)
        self.streams = streams
        self.drain_s = drain_s

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()  # no new connections, as uvicorn's own shutdown does first
        self.streams.drain()
        if not await self.streams.in_flight.wait_idle(self.drain_s):
            logger.warning("shutdown: WebSocket streams still open after the %.1f s grace period", self.drain_s)
        await super().shutdown(sockets)


def _http_server(app: FastAPI, settings: Settings) -> _HttpServer:
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.http_port,
        log_config=None,
        access_log=False,  # the service writes its own access line (with request id and timing)
        http=http_protocol(settings),  # read timeouts; protocol errors as JSON
        # uvicorn annotates it int but only uses it as a call_later delay, where a float works
        timeout_keep_alive=settings.http_keepalive_timeout_s,  # type: ignore[arg-type]  # a float delay: see above
        # uvicorn cancels what is left only after the request layer has ended it with 503 (serve's shutdown)
        timeout_graceful_shutdown=math.ceil(settings.shutdown_grace_s + ANSWER_WINDOW_S),
        server_header=False,
        lifespan="off",  # the engine's start and stop belong to serve(), not to the app
        ws=QuietWebSocketProtocol,  # the key never reaches a debug log
        ws_max_size=settings.grpc_max_message_bytes,  # a stream message's limit, whichever the transport
        # frames are JPEG/PNG/WebP already: deflating them costs both sides CPU for nothing
        ws_per_message_deflate=False,
    )
    streams: WebSocketStreams = app.state.websocket_streams
    return _HttpServer(config, streams, settings.shutdown_grace_s + ANSWER_WINDOW_S)


async def serve(settings: Settings) -> int:
    """Run the service until SIGTERM/SIGINT; returns the process exit code (1: the models failed to load)."""
    engine = Engine(settings)
    try:
        requests = PoseRequests(engine, settings)
    except ValueError as exc:  # settings that cannot work
        logger.error("exiting: %s", exc)
        return 2
    streams = StreamRegistry(requests)  # every transport's streams: POSE_MAX_STREAMS counts them all, drained together
    http = _http_server(create_app(requests, streams), settings)
    grpc = GrpcServer(requests, settings, streams) if settings.grpc_port else None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    if grpc is not None:
        await grpc.start()
    http_task = asyncio.create_task(http.serve(), name="http")
    logger.info("starting: HTTP on %s:%d, gRPC %s, models %s", settings.host, settings.http_port,
                f"on {settings.host}:{grpc.port}" if grpc else "off", engine.model_names())  # fmt: skip
    budgets = [requests.budget] + ([grpc.servicer.messages, grpc.intake.side] if grpc is not None else [])
    trimmer = asyncio.create_task(HeapTrimmer(budgets).run(), name="trim the heap after bursts")
    loading = asyncio.create_task(_start_engine(engine, settings.inference_nice), name="load models")
    stopping = asyncio.create_task(stop.wait(), name="signal")
    done, _ = await asyncio.wait({loading, stopping, http_task}, return_when=asyncio.FIRST_COMPLETED)
    code = 0
    if loading in done and loading.exception() is None:
        if grpc is not None:
            await grpc.set_serving(True)
        logger.info("ready: every model is loaded and warmed up")
        done, _ = await asyncio.wait({stopping, http_task}, return_when=asyncio.FIRST_COMPLETED)
    elif loading in done:
        logger.error("exiting: the models could not be loaded (%s)", loading.exception())
        code = 1
    if http_task in done and http_task.exception() is not None:
        logger.error("the HTTP server failed: %s", http_task.exception())
        code = 1
    await _shutdown(settings, engine, requests, streams, http, http_task, grpc, loading)
    stopping.cancel()
    trimmer.cancel()
    requests.close()
    return code


async def _start_engine(engine: Engine, nice: int) -> None:
    """``engine.start`` on a thread of its own, made ``nice`` first.

    The threads started from it (the model instances, ONNX Runtime's thread pools) inherit
    its priority, so when inference saturates the cores the event loop still gets them
    first: admission, refusals and health probes stay fast, and inference takes the rest.
    """

    def start() -> None:
        if nice:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
        engine.start()

    with ThreadPoolExecutor(1, thread_name_prefix="load") as loader:
        await asyncio.get_running_loop().run_in_executor(loader, start)


async def _shutdown(
    settings: Settings,
    engine: Engine,
    requests: PoseRequests,
    streams: StreamRegistry,
    http: _HttpServer,
    http_task: asyncio.Task[None],
    grpc: GrpcServer | None,
    loading: asyncio.Task[None],
) -> None:
    """Stop taking calls, let in-flight ones finish within the grace period (then end them), close the engine."""
    grace = settings.shutdown_grace_s
    end = time.monotonic() + grace
    logger.info("shutting down: draining in-flight requests (grace %.1f s)", grace)
    engine.begin_shutdown()  # /readyz 503 from here on
    requests.close_gate()  # work that arrives from now on is refused (503 / UNAVAILABLE); admitted work goes on
    streams.drain()  # streams take no more frames, answer what they took and end shutting_down
    http.should_exit = True
    drains = [http_task]
    if grpc is not None:
        drains.append(asyncio.create_task(grpc.stop(grace + ANSWER_WINDOW_S)))
    _, running = await asyncio.wait(drains, timeout=grace)
    if running:
        ended = requests.end_admitted()
        if ended:
            logger.warning("shutdown: grace period over, %d requests still running end with 503 shutting_down", ended)
        await asyncio.wait(running)
    if not loading.done():
        await asyncio.wait([loading])  # the loader thread cannot be interrupted: let it finish, then close
    await asyncio.to_thread(engine.close, max(0.0, end - time.monotonic()))
    logger.info("shutdown complete")
