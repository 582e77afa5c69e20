"""``python -m service.models.synth``: measured parameters and FLOPs of every synthesizable registry model.

Prints one row per registry entry: the synthesized graph's parameter count and
multiply-adds (``service.models.flops``) next to the published figures of
``shared/model_zoo.md`` (as carried by the registry), with the relative gap.
Graphs are built shape-only (``materialize=False``): the table takes seconds.
"""

from __future__ import annotations

import argparse
import sys

from service.models.flops import count_flops, count_params
from service.models.registry import ENTRIES, RegistryEntry
from service.models.synth import supported, synthesize


def _gap(measured: float, published: float | None) -> str:
    return "-" if published is None else f"{(measured - published) / published * 100:+.1f}%"


def rows(entries: tuple[RegistryEntry, ...] = ENTRIES) -> list[tuple[str, ...]]:
    """Table rows (header first) for ``entries``."""
    out: list[tuple[str, ...]] = [
        ("MODEL", "ARCH", "INPUT WxH", "PARAMS M", "PUBLISHED", "GAP", "FLOPS G", "PUBLISHED", "GAP")
    ]
    for e in entries:
        size = f"{e.input_size[0]}x{e.input_size[1]}"
        if not supported(e.arch):
            out.append((e.name, e.arch, size, "not synthesized", "", "", "", "", ""))
            continue
        model = synthesize(e, materialize=False)
        params = count_params(model) / 1e6
        flops = count_flops(model, (1, 3, e.input_size[1], e.input_size[0])) / 1e9
        out.append((
            e.name, e.arch, size,
            f"{params:.2f}", "-" if e.params_m is None else f"{e.params_m:g}", _gap(params, e.params_m),
            f"{flops:.3f}", "-" if e.flops_g is None else f"{e.flops_g:g}", _gap(flops, e.flops_g),
        ))  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m service.models.synth", description=__doc__.splitlines()[0])
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    parser.add_argument("names", nargs="*", help="registry names (default: all)")
    args = parser.parse_args(argv)
    entries = tuple(e for e in ENTRIES if not args.names or e.name in args.names)
    table = rows(entries)
    if args.markdown:
        print("| " + " | ".join(table[0]) + " |")
        print("|" + "---|" * len(table[0]))
        for row in table[1:]:
            print("| " + " | ".join(c or " " for c in row) + " |")
        return 0
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    for row in table:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
