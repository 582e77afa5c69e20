"""``python -m service``: the HTTP API (and, when enabled, gRPC) in one process over one engine."""

from __future__ import annotations

import logging
import sys

import uvicorn

from service.api.http import create_app
from service.config import Settings
from service.engine.engine import Engine
from service.logs import configure_logging

logger = logging.getLogger("service")


def main() -> int:
    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    engine = Engine(settings)
    failed: list[BaseException] = []
    server: uvicorn.Server | None = None

    def stop(exc: BaseException) -> None:
        failed.append(exc)
        if server is not None:
            server.should_exit = True

    app = create_app(settings, engine, on_load_failure=stop)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.http_port,
        log_config=None,
        access_log=False,  # the service writes its own access line (with request id and timing)
        timeout_graceful_shutdown=int(settings.shutdown_grace_s) or None,
        server_header=False,
    )
    server = uvicorn.Server(config)
    logger.info("starting: HTTP on %s:%d, models %s", settings.host, settings.http_port, engine.model_names())
    server.run()
    if failed:
        logger.error("exiting: the models could not be loaded (%s)", failed[0])
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
