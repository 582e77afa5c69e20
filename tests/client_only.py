"""Run ``python -m service.client`` as a camera machine would, with only the client's packages importable.

``python tests/client_only.py ARGS...`` is ``python -m service.client ARGS...``, except that
importing anything outside the standard library, grpcio, protobuf, numpy,
opencv-python-headless, httpx (and the service's own modules) fails: the client must run
where only those are installed (README, "A client machine").
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.metadata
import re
import runpy
import sys
from collections.abc import Sequence
from types import ModuleType

CLIENT_DISTRIBUTIONS = ("grpcio", "protobuf", "numpy", "opencv-python-headless", "httpx")
# what the service's own modules may not pull in on a client machine
SERVER_ONLY = ("service.engine", "service.requests", "service.api", "service.models", "service.config")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def client_modules() -> frozenset[str]:
    """Top-level modules of the client's distributions and of everything they require (pip would install it)."""
    wanted, seen = [*CLIENT_DISTRIBUTIONS], set()
    while wanted:
        name = _canonical(wanted.pop())
        if name in seen:
            continue
        try:
            requirements = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:  # a requirement of other Pythons (its marker says so)
            continue
        seen.add(name)
        for requirement in requirements:
            if "extra ==" not in requirement:  # an optional extra: not installed with the package
                wanted.append(re.match(r"[A-Za-z0-9._-]+", requirement).group())  # type: ignore[union-attr]
    modules = {top for top, dists in importlib.metadata.packages_distributions().items()
               if any(_canonical(d) in seen for d in dists)}  # fmt: skip
    return frozenset(modules | {"service"})


class ClientOnly(importlib.abc.MetaPathFinder):
    """Refuse every import a client machine could not satisfy."""

    def __init__(self) -> None:
        self.allowed = client_modules()

    def find_spec(
        self, name: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        top = name.partition(".")[0]
        if name.startswith(SERVER_ONLY) or not (
            top in sys.stdlib_module_names or top in self.allowed or top.startswith("_")
        ):
            raise ImportError(f"the client imported {name}, which a client machine does not have")
        return None  # the usual finders find it


if __name__ == "__main__":
    sys.meta_path.insert(0, ClientOnly())
    sys.argv = ["python -m service.client", *sys.argv[1:]]
    runpy.run_module("service.client", run_name="__main__", alter_sys=True)
