"""``python -m service.models {list,pull,import,synth,validate,ensure}``: manage the model repository."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from service.config import Settings, WeightsPolicy
from service.models.fetch import sha256_file
from service.models.install import InstallError, ensure, import_file, pull, synthesize
from service.models.registry import ENTRIES, UnknownModelError
from service.models.repository import ModelNotInstalledError, ModelRepository
from service.models.schema import ModelConfigError

logger = logging.getLogger("service.models")


def _fmt(value: float | None, unit: str) -> str:
    return "-" if value is None else f"{value:g}{unit}"


def markdown_table() -> str:
    """The README's model table: published figures next to those measured on the synthesized graph."""
    from service.models.synth.__main__ import rows  # heavy graph code: only for this table

    measured = {row[0]: row for row in rows()[1:]}
    lines = [
        "| name | task | keypoints | input WxH | params M published / synthetic | GFLOPs published / synthetic "
        "| published accuracy | source |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for e in ENTRIES:
        source = "PyTorch only: export required" if e.export_required else f"[{e.format.value}]({e.url})"
        row = measured[e.name]
        synth_params, synth_flops = row[3], row[6] or "-"  # row[3] reads "not synthesized" where so
        lines.append(
            f"| `{e.name}` | {e.task.value} | {e.keypoints or '-'} | {e.input_size[0]}x{e.input_size[1]} | "
            f"{_fmt(e.params_m, '')} / {synth_params} | {_fmt(e.flops_g, '')} / {synth_flops} | "
            f"{e.accuracy or '-'} | {source} |"
        )
    return "\n".join(lines)


def cmd_list(repo: ModelRepository, args: argparse.Namespace) -> int:
    if args.markdown:
        print(markdown_table())
        return 0
    installed = {name: repo.existing_config(name) for name in repo.names()}
    rows = [("NAME", "TASK", "KEYPOINTS", "INPUT WxH", "PARAMS", "FLOPS", "SOURCE", "INSTALLED")]
    for e in ENTRIES:
        if args.task and e.task != args.task:
            continue
        config = installed.get(e.name)
        state = config.weights.value if config else "-"
        source = "export required (pth)" if e.export_required else e.format.value
        rows.append((e.name, e.task.value, e.keypoints or "-",
                     f"{e.input_size[0]}x{e.input_size[1]}", _fmt(e.params_m, "M"), _fmt(e.flops_g, "G"),
                     source, state))  # fmt: skip
    extra = sorted(set(installed) - {e.name for e in ENTRIES})
    for name in extra:
        config = installed[name]
        if config is not None:
            size = f"{config.input_size[0]}x{config.input_size[1]}"
            keypoints = config.keypoints or ""
            rows.append((name, config.task.value, keypoints, size, "-", "-", "local", config.weights.value))
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    print(f"\nrepository: {repo.root.resolve()}")
    return 0


def cmd_pull(repo: ModelRepository, args: argparse.Namespace, settings: Settings) -> int:
    if args.url and len(args.names) != 1:
        raise InstallError("--url takes exactly one model name")
    for name in args.names:
        result = pull(repo, name, url=args.url, sha256=args.sha256, timeout_s=settings.download_timeout_s)
        m = result.model
        print(f"{name}: official weights installed at {m.onnx_path} (sha256 {m.config.source.sha256})")
    return 0


def cmd_import(repo: ModelRepository, args: argparse.Namespace) -> int:
    model = import_file(repo, args.name, Path(args.file))
    print(f"{args.name}: imported {args.file} -> {model.onnx_path} (sha256 {model.config.source.sha256})")
    return 0


def cmd_synth(repo: ModelRepository, args: argparse.Namespace) -> int:
    for name in args.names:
        model = synthesize(repo, name, seed=args.seed)
        print(f"{name}: SYNTHETIC weights (seed {args.seed}) installed at {model.onnx_path}")
    return 0


def cmd_ensure(repo: ModelRepository, args: argparse.Namespace, settings: Settings) -> int:
    policy = WeightsPolicy(args.weights) if args.weights else settings.weights
    names = args.names or [name for name in settings.served_models() if name != "*"]
    for name in names:
        model = ensure(repo, name, policy, timeout_s=settings.download_timeout_s)
        print(f"{name}: ready, weights {model.config.weights.value} ({model.onnx_path})")
    return 0


def cmd_validate(repo: ModelRepository, args: argparse.Namespace) -> int:
    names = args.names or repo.names()
    failed = 0
    for name in names:
        try:
            model = repo.load(name)
            recorded = model.config.source.sha256
            if recorded and sha256_file(model.onnx_path) != recorded:
                raise ModelConfigError(f"{model.onnx_path}: sha256 differs from the one recorded in config.toml")
        except (ModelConfigError, ModelNotInstalledError) as exc:
            failed += 1
            print(f"FAIL {name}: {exc}")
            continue
        batch = model.io.static_batch or "dynamic"
        print(f"ok   {name}: {model.config.task.value}, weights {model.config.weights.value}, version "
              f"{model.version}, batch {batch}")  # fmt: skip
    if not names:
        print(f"no models in {repo.root}")
    return 1 if failed else 0


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--repository", type=Path, help="model repository (default: POSE_MODEL_REPOSITORY)")
    parser = argparse.ArgumentParser(prog="python -m service.models", description=__doc__, parents=[common])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("list", parents=[common], help="the registry of published models, with what is installed")
    p.add_argument("--task", choices=["pose", "detect"])
    p.add_argument("--markdown", action="store_true", help="print the README's model table")
    p = sub.add_parser("pull", parents=[common], help="download official weights (with a progress bar)")
    p.add_argument("names", nargs="+")
    p.add_argument("--url", help="download from this URL (a mirror) instead of the registry's")
    p.add_argument("--sha256", help="expected sha256 of the downloaded file")
    p = sub.add_parser("import", parents=[common], help="register a local ONNX export under a registry name")
    p.add_argument("name")
    p.add_argument("file")
    p = sub.add_parser("synth", parents=[common], help="write architecture-exact models with seeded random weights")
    p.add_argument("names", nargs="+")
    p.add_argument("--seed", type=int, default=0)
    p = sub.add_parser("ensure", parents=[common], help="install what is missing, following the weights policy")
    p.add_argument("names", nargs="*", help="default: the served models (POSE_MODEL, POSE_DETECTOR, POSE_EXTRA_MODELS)")
    p.add_argument("--weights", choices=[w.value for w in WeightsPolicy], help="default: POSE_WEIGHTS")
    p = sub.add_parser("validate", parents=[common], help="check installed models against their configs and hashes")
    p.add_argument("names", nargs="*")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = Settings()
    logging.basicConfig(level=settings.log_level, format="%(levelname)s %(name)s: %(message)s")
    repo = ModelRepository(args.repository or settings.model_repository)
    try:
        if args.command == "list":
            return cmd_list(repo, args)
        if args.command == "pull":
            return cmd_pull(repo, args, settings)
        if args.command == "import":
            return cmd_import(repo, args)
        if args.command == "synth":
            return cmd_synth(repo, args)
        if args.command == "ensure":
            return cmd_ensure(repo, args, settings)
        return cmd_validate(repo, args)
    except (InstallError, UnknownModelError, ModelConfigError, ModelNotInstalledError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
