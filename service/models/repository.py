"""The model repository: ``<root>/<name>/config.toml`` + ``<root>/<name>/<version>/model.onnx``.

Triton's layout. Loading reads and validates the config, picks the version and
checks the ONNX file against the I/O contract, once.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import tomli_w

from service.models.contract import ModelIO, validate
from service.models.schema import CONFIG_FILE, ModelConfig, ModelConfigError, load_config

logger = logging.getLogger(__name__)

MODEL_FILE = "model.onnx"


class ModelNotInstalledError(LookupError):
    """The repository has no folder (or no ONNX file) for this model name."""

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class InstalledModel:
    """A model folder that passed every check."""

    config: ModelConfig
    folder: Path
    version: int
    onnx_path: Path
    io: ModelIO

    @property
    def name(self) -> str:
        return self.config.name


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temp file + rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class ModelRepository:
    """Model folders under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def folder(self, name: str) -> Path:
        return self.root / name

    def names(self) -> list[str]:
        """Folder names that hold a ``config.toml``, sorted."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if (p / CONFIG_FILE).is_file())

    def read_config(self, name: str) -> ModelConfig:
        path = self.folder(name) / CONFIG_FILE
        if not path.is_file():
            raise ModelNotInstalledError(
                f"model {name!r} is not installed in {self.root} (no {path}). "
                f"Install it with `python -m service.models ensure {name}` (or pull / import / synth)."
            )
        return load_config(path)

    def versions(self, name: str) -> list[int]:
        """Numeric version folders that contain a model file, ascending."""
        folder = self.folder(name)
        if not folder.is_dir():
            return []
        return sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit() and (p / MODEL_FILE).is_file())

    def load(self, name: str) -> InstalledModel:
        """Read the config, pick the version, validate the ONNX file.

        Raises:
            ModelNotInstalledError: no such folder or no model file.
            ModelConfigError: the config or the ONNX file breaks the contract.
        """
        config = self.read_config(name)
        versions = self.versions(name)
        version = config.version if config.version is not None else (versions[-1] if versions else 1)
        path = self.folder(name) / str(version) / MODEL_FILE
        if not path.is_file():
            raise ModelNotInstalledError(
                f"model {name!r} has a config but no {path}"
                + (f" (versions present: {versions})" if versions else "")
                + f". Install weights with `python -m service.models ensure {name}`."
            )
        io = validate(path, config)
        return InstalledModel(config=config, folder=self.folder(name), version=version, onnx_path=path, io=io)

    def install(self, config: ModelConfig, onnx_file: Path) -> InstalledModel:
        """Validate ``onnx_file`` against ``config``, then move it into place and write the config.

        ``onnx_file`` must be on the repository's filesystem (e.g. in a staging folder under
        ``root``) so the move is one atomic rename.

        Raises:
            ModelConfigError: the file breaks the contract (nothing is changed then).
        """
        validate(onnx_file, config)
        folder = self.folder(config.name)
        version = config.version or 1
        target = folder / str(version) / MODEL_FILE
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(onnx_file, target)
        write_atomic(folder / CONFIG_FILE, tomli_w.dumps(config.to_toml_dict()).encode())
        logger.info("installed %s (weights %s) at %s", config.name, config.weights, target)
        return self.load(config.name)

    def existing_config(self, name: str) -> ModelConfig | None:
        """The installed config if it parses, else None (a broken one is replaced on install)."""
        try:
            return self.read_config(name)
        except (ModelNotInstalledError, ModelConfigError):
            return None
