"""Install models into the repository: pull official exports, import local files, synthesize.

``ensure`` applies the weights policy (``POSE_WEIGHTS``): ``auto`` takes official
weights when they are installed or downloadable and falls back to synthesized
ones with a loud warning; ``official`` never synthesizes; ``synthetic`` always does.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import httpx
import onnx

from service.config import WeightsPolicy
from service.models.fetch import FetchError, download, extract_member, sha256_file, staging_dir
from service.models.registry import RegistryEntry, SourceFormat, get_entry
from service.models.repository import InstalledModel, ModelRepository
from service.models.schema import BatchingConfig, ModelConfig, ModelConfigError, SourceConfig, Task, Weights

logger = logging.getLogger(__name__)

OFFLINE_HINT = (
    "If this machine is offline: download it elsewhere and run "
    "`python -m service.models import {name} FILE.onnx`, or run `python -m service.models synth {name}` "
    "for architecture-exact synthetic weights (outputs are then meaningless)."
)


class InstallError(RuntimeError):
    """A model could not be installed; the message says why and what to do."""


def default_batching(entry: RegistryEntry) -> BatchingConfig:
    if entry.task is Task.POSE:
        return BatchingConfig(max_batch_size=32, max_queue_delay_ms=2.0, preferred_batch_sizes=(8, 16, 32))
    return BatchingConfig(max_batch_size=8, max_queue_delay_ms=2.0, preferred_batch_sizes=(1, 2, 4, 8))


def config_from_entry(
    entry: RegistryEntry, weights: Weights, sha256: str, *, url: str | None = None, existing: ModelConfig | None = None
) -> ModelConfig:
    """The config.toml for a registry model; keeps ``batching``/``instances`` a user already set."""
    fields: dict[str, object] = {
        "name": entry.name,
        "task": entry.task,
        "family": entry.family,
        "weights": weights,
        "input_size": entry.input_size,
        "mean": entry.mean,
        "std": entry.std,
        "to_rgb": entry.to_rgb,
        "batching": existing.batching if existing else default_batching(entry),
        "source": SourceConfig(registry=entry.name, url=url or entry.url, member=entry.member, sha256=sha256),
    }
    if existing:
        fields["instances"] = existing.instances
    if entry.task is Task.POSE:
        fields["keypoints"] = entry.keypoints
    else:
        fields["output_format"] = entry.output_format
        fields["score_threshold"] = entry.score_threshold
        fields["nms_iou_threshold"] = entry.nms_iou_threshold
    return ModelConfig.model_validate(fields)


@dataclass(frozen=True)
class PullResult:
    model: InstalledModel
    download_sha256: str


def pull(
    repo: ModelRepository,
    name: str,
    *,
    url: str | None = None,
    sha256: str | None = None,
    timeout_s: float = 20.0,
    progress: bool = True,
) -> PullResult:
    """Download the official export of ``name``, check it and install it.

    Args:
        url: download from here instead of the registry URL (a mirror).
        sha256: expected sha256 of the downloaded file (zip or onnx).

    Raises:
        InstallError: export-only model, download failure, bad archive, hash mismatch or contract
            violation; nothing is left behind in the repository.
    """
    entry = get_entry(name)
    if entry.format is SourceFormat.PTH and url is None:
        raise InstallError(
            f"{name} is published only as a PyTorch checkpoint ({entry.url}): export it to ONNX with MMDeploy "
            "(README: 'Exporting a checkpoint with MMDeploy'), "
            f"then `python -m service.models import {name} FILE.onnx`."
        )
    source = url or entry.url
    with staging_dir(repo.root) as staging:
        fetched = staging / "download"
        try:
            got = download(source, fetched, timeout_s=timeout_s, progress=progress)
        except FetchError as exc:
            raise InstallError(f"{exc}. {OFFLINE_HINT.format(name=name)}") from None
        if sha256 is not None and got != sha256.lower():
            raise InstallError(f"sha256 mismatch for {source}: expected {sha256.lower()}, got {got}")
        onnx_file = staging / "model.onnx"
        path = httpx.URL(source).path.lower()
        expect_zip = path.endswith(".zip") or (entry.format is SourceFormat.SDK_ZIP and not path.endswith(".onnx"))
        if expect_zip:
            try:
                extract_member(fetched, entry.member or "end2end.onnx", onnx_file)
            except FetchError as exc:
                raise InstallError(f"{source}: {exc}") from None
        else:
            fetched.rename(onnx_file)
        config = config_from_entry(
            entry, Weights.OFFICIAL, sha256_file(onnx_file), url=source, existing=repo.existing_config(name)
        )
        model = _install(repo, config, onnx_file, source)
    return PullResult(model=model, download_sha256=got)


def _install(repo: ModelRepository, config: ModelConfig, staged: Path, origin: str | Path) -> InstalledModel:
    """``repo.install`` with contract errors reported against where the file came from, not the staging path."""
    try:
        return repo.install(config, staged)
    except ModelConfigError as exc:
        raise InstallError(str(exc).replace(str(staged), str(origin))) from None


def import_file(repo: ModelRepository, name: str, onnx_path: Path) -> InstalledModel:
    """Register a local ONNX export of a registry model (air-gapped sites): validated, sha256 recorded."""
    entry = get_entry(name)
    if not onnx_path.is_file():
        raise InstallError(f"{onnx_path}: no such file")
    with staging_dir(repo.root) as staging:
        copy = staging / "model.onnx"
        shutil.copyfile(onnx_path, copy)
        config = config_from_entry(entry, Weights.OFFICIAL, sha256_file(copy), url=entry.url,
                                   existing=repo.existing_config(name))  # fmt: skip
        return _install(repo, config, copy, onnx_path)


def synthesize(repo: ModelRepository, name: str, *, seed: int = 0) -> InstalledModel:
    """Write an architecture-exact model with seeded random weights, marked synthetic."""
    from service.models.synth import synthesize as build  # heavy graph code: imported on demand

    entry = get_entry(name)
    model = build(entry, seed=seed)
    with staging_dir(repo.root) as staging:
        path = staging / "model.onnx"
        onnx.save(model, str(path))
        config = config_from_entry(entry, Weights.SYNTHETIC, sha256_file(path), existing=repo.existing_config(name))
        installed = repo.install(config, path)
    logger.warning(
        "%s: installed SYNTHETIC weights (architecture-exact, random): its outputs are meaningless. "
        "Use `python -m service.models pull %s` where the network allows.",
        name,
        name,
    )
    return installed


def _satisfies(installed: ModelConfig | None, policy: WeightsPolicy) -> bool:
    if installed is None:
        return False
    if policy is WeightsPolicy.OFFICIAL:
        return installed.weights is not Weights.SYNTHETIC
    if policy is WeightsPolicy.SYNTHETIC:
        return installed.weights is Weights.SYNTHETIC
    return True


def ensure(
    repo: ModelRepository,
    name: str,
    policy: WeightsPolicy,
    *,
    url: str | None = None,
    timeout_s: float = 20.0,
    progress: bool = True,
) -> InstalledModel:
    """Make ``name`` servable under ``policy``; installed models that satisfy it are kept as they are.

    Args:
        url: where official weights are downloaded from (default: the registry URL).

    Raises:
        InstallError: official weights required but not obtainable.
    """
    existing = repo.existing_config(name)
    if _satisfies(existing, policy) and repo.versions(name):
        return repo.load(name)
    if policy is WeightsPolicy.SYNTHETIC:
        if existing is not None and existing.weights is not Weights.SYNTHETIC:
            logger.warning("%s: POSE_WEIGHTS=synthetic replaces the installed %s weights", name, existing.weights)
        return synthesize(repo, name)
    entry = get_entry(name)
    try:
        return pull(repo, name, url=url, timeout_s=timeout_s, progress=progress).model
    except InstallError as exc:
        if policy is WeightsPolicy.OFFICIAL:
            raise
        reason = str(exc)
    logger.warning(
        "!!! %s: official weights cannot be had (%s). Falling back to SYNTHETIC weights of the same architecture "
        "(%s): the service runs and costs the same, but this model's outputs are meaningless. !!!",
        name,
        reason,
        entry.arch,
    )
    return synthesize(repo, name)
