"""``python -m service``: HTTP and gRPC in one process over one engine (see ``service/api/server.py``)."""

from __future__ import annotations

import asyncio
import sys

from pydantic import ValidationError

from service.api.server import serve
from service.config import Settings
from service.logs import configure_logging


def main() -> int:
    try:
        settings = Settings()
    except ValidationError as exc:
        print(f"error: the POSE_* settings cannot work: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)
    return asyncio.run(serve(settings))


if __name__ == "__main__":
    sys.exit(main())
