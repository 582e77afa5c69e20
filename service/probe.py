"""``python -m service.probe [PATH]``: exit 0 when the local service answers 200 on PATH (default ``/readyz``).

The container health check: the image carries no curl, and the probe reads the port
from the same settings as the service, so it follows ``POSE_HTTP_PORT``.
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request

from service.config import Settings

TIMEOUT_S = 3.0


def probe_url(settings: Settings, path: str) -> str:
    """The service's own address as seen from inside its host (a wildcard bind is asked on loopback)."""
    host = settings.host
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.http_port}{path}"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    path = args[0] if args else "/readyz"
    url = probe_url(Settings(), path)
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except OSError as exc:  # refused, timed out, unreachable
        print(f"{url}: {exc}", file=sys.stderr)
        return 1
    if status != 200:
        print(f"{url}: HTTP {status}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
