"""Download a published export: stream to a temp file, check it, unzip the ONNX member.

Nothing is written where the model lives until everything checked out: the
download goes to a temporary folder inside the repository and the finished
``model.onnx`` is moved into place with one ``os.replace`` (rtmlib's
``file.py`` does the same so that a broken download never replaces a good file).
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

import httpx
from tqdm import tqdm

logger = logging.getLogger(__name__)

_CHUNK = 1 << 20


class FetchError(RuntimeError):
    """A download or its checks failed; the message says what to do next."""


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


@contextmanager
def staging_dir(parent: Path) -> Iterator[Path]:
    """A temporary folder inside ``parent`` (same filesystem, so the final rename is atomic); always removed."""
    parent.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=".staging-", dir=parent))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def download(url: str, dest: Path, *, timeout_s: float, progress: bool = True) -> str:
    """Stream ``url`` into ``dest``; return the sha256 of what was received.

    Raises:
        FetchError: connection failure, HTTP error status, or a transfer cut short.
    """
    timeout = httpx.Timeout(timeout_s, connect=min(timeout_s, 5.0))
    digest = hashlib.sha256()
    received = 0
    try:
        with httpx.stream("GET", url, timeout=timeout, follow_redirects=True) as response:
            if response.status_code != 200:
                raise FetchError(f"download failed: {url} answered HTTP {response.status_code}")
            expected = int(response.headers.get("content-length") or 0) or None
            bar = tqdm(
                total=expected, unit="B", unit_scale=True, unit_divisor=1024,
                desc=PurePosixPath(httpx.URL(url).path).name or url, disable=not progress, leave=False,
            )  # fmt: skip
            with bar, dest.open("wb") as f:
                for chunk in response.iter_bytes(_CHUNK):
                    f.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
    except httpx.HTTPError as exc:
        raise FetchError(f"download failed: {url}: {type(exc).__name__}: {exc or 'connection closed'}") from None
    if expected is not None and received != expected:
        raise FetchError(f"download failed: {url}: transfer cut short ({received} of {expected} bytes)")
    return digest.hexdigest()


def _find_member(archive: zipfile.ZipFile, member: str) -> zipfile.ZipInfo:
    """The entry named ``member`` exactly, else the only entry whose path ends with ``/member``."""
    infos = [i for i in archive.infolist() if not i.is_dir()]
    exact = [i for i in infos if i.filename == member]
    if exact:
        return exact[0]
    suffix = [i for i in infos if i.filename.endswith("/" + member)]
    if len(suffix) == 1:
        return suffix[0]
    names = ", ".join(i.filename for i in infos[:20])
    if not suffix:
        raise FetchError(f"the zip holds no '{member}' (it holds: {names})")
    raise FetchError(f"the zip holds several '{member}': {', '.join(i.filename for i in suffix)}")


def extract_member(zip_path: Path, member: str, dest: Path) -> None:
    """Copy one member of a zip to ``dest``; CRC is verified while reading.

    Raises:
        FetchError: not a zip, member missing or ambiguous, or corrupt data.
    """
    try:
        with zipfile.ZipFile(zip_path) as archive:
            info = _find_member(archive, member)
            with archive.open(info) as src, dest.open("wb") as out:
                shutil.copyfileobj(src, out, _CHUNK)
    except zipfile.BadZipFile as exc:
        raise FetchError(f"the download is not a valid zip archive or is corrupt ({exc})") from None
    except (zipfile.LargeZipFile, OSError, EOFError, ValueError) as exc:
        raise FetchError(f"the zip archive is corrupt ({type(exc).__name__}: {exc})") from None
