"""Throughput and p99 latency against concurrency, from one ``make bench`` result (its ``series``).

Runs in the benchmark environment (.bench-venv has matplotlib; the service's does not need it)::

    .bench-venv/bin/python benchmarks/plot.py benchmarks/results/bench-TIME.json [OUT.png]

Standalone on purpose: reads only the JSON.
"""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402

STYLE = {  # series name -> (marker, line style)
    "HTTP /v1/pose": ("o", "-"),
    "gRPC Estimate": ("s", "-"),
    "gRPC Stream, det_interval 1": ("^", "--"),
    "gRPC Stream, det_interval 5": ("v", "--"),
    "WebSocket stream, det_interval 1": ("<", ":"),
    "WebSocket stream, det_interval 5": (">", ":"),
    "pipeline in process": ("D", ":"),
}


def plot(record: dict, out: Path) -> None:  # type: ignore[type-arg]
    fig, (rate_ax, p99_ax) = plt.subplots(1, 2, figsize=(11, 4.6), dpi=80)
    for name, points in record["series"].items():
        levels = [p["concurrency"] for p in points]
        marker, line = STYLE.get(name, ("x", "-."))
        if len(points) == 1:  # one loop (rtmlib): no concurrency to vary; a line at its rate, a point at its p99
            rate_ax.axhline(points[0]["rate"], linestyle="-.", color="grey" if "off" in name else "black",
                            linewidth=1, label=f"{name} (one loop)")  # fmt: skip
            p99_ax.plot(levels, [points[0]["p99_ms"]], marker="*", markersize=10, linestyle="none",
                        color="grey" if "off" in name else "black", label=name)  # fmt: skip
            continue
        rate_ax.plot(levels, [p["rate"] for p in points], marker=marker, linestyle=line, label=name)
        p99_ax.plot(levels, [p["p99_ms"] for p in points], marker=marker, linestyle=line, label=name)
    for ax in (rate_ax, p99_ax):
        ax.set_xscale("log", base=2)
        ax.set_xticks([1, 2, 4, 8, 16, 32])
        ax.set_xticklabels(["1", "2", "4", "8", "16", "32"])
        ax.set_xlabel("concurrency (streams: open streams, 2 frames in flight each)")
        ax.grid(True, which="both", alpha=0.3)
    rate_ax.set_ylabel("images/s (streams: frames/s)")
    rate_ax.set_ylim(bottom=0)
    p99_ax.set_ylabel("p99 latency, ms")
    p99_ax.set_yscale("log")
    p99s = [p["p99_ms"] for points in record["series"].values() for p in points]
    p99_ax.set_yticks([t for t in (10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000)
                       if min(p99s) / 2 <= t <= max(p99s) * 2])  # fmt: skip
    p99_ax.set_ylim(min(p99s) / 1.3, max(p99s) * 1.3)
    p99_ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    p99_ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    rate_ax.legend(fontsize=7, loc="lower right")
    title = f"make bench {record['when']}: {record['machine_line']}; {record['models_line']}"
    fig.suptitle("\n".join(textwrap.wrap(title, 150)), fontsize=8)
    fig.tight_layout()
    fig.savefig(out)


def main() -> None:
    source = Path(sys.argv[1])
    out = Path(sys.argv[2]) if len(sys.argv) > 2 else source.with_suffix(".png")
    plot(json.loads(source.read_text()), out)
    print(f"written: {out}")


if __name__ == "__main__":
    main()
