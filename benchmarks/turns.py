"""Configurations measured in turns: each gets a slice, then the next, for a few rounds.

The machine's speed drifts (this 2-vCPU VM shares its host: the same raw ONNX Runtime
loop moves by 20 % from one 3 s window to the next). Measured one after the other, a
slow minute falls on one configuration and not on the one it is compared with; in turns,
it weighs on every configuration alike, so their ratios stay fair.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from benchmarks.load import Samples
from benchmarks.resources import Meter
from benchmarks.stats import Rate, summarize

FIRST_RAMP_S = 2.0  # the first slice of a configuration warms its caches and queues
RAMP_S = 0.5  # later slices: the window still opens only once every submitter has had an answer


@dataclass
class Turn:
    """One configuration: how to measure one slice of it, and the process whose CPU and memory it costs."""

    name: str  # the row's name
    unit: str  # "crops/s" (people counted), "images/s" or "frames/s" (calls counted)
    notes: str
    measure: Callable[[float, float], Samples]  # (seconds, ramp) -> the window's samples
    meter: Meter


def summary(turn: Turn, samples: Samples, extra: str = "") -> Rate:
    items = samples.people if turn.unit == "crops/s" else samples.calls
    per = "frame" if turn.unit == "frames/s" else "image"
    counts = f"{samples.people / max(1, samples.calls):.2f} {'crops' if turn.unit == 'crops/s' else 'people'}/{per}"
    if turn.unit == "frames/s":
        counts += f", {samples.dropped} dropped"
    rate = summarize(turn.name, samples.latencies_s, samples.wall_s, items, turn.unit,
                     ", ".join(filter(None, (counts, turn.notes, extra))))  # fmt: skip
    return dataclasses.replace(rate, usage=turn.meter.usage())


def in_turns(turns: dict[str, Turn], seconds: float, rounds: int) -> dict[str, Rate]:
    """Each configuration ``rounds`` times for a window of ``seconds / rounds``, in turns; a row per key."""
    total: dict[str, Samples] = {}
    for turn in range(rounds):
        for key, config in turns.items():
            with config.meter:
                got = config.measure(seconds / rounds, FIRST_RAMP_S if turn == 0 else RAMP_S)
            total[key] = total[key] + got if key in total else got
    extra = f"{rounds} windows in turns" if rounds > 1 else ""
    return {key: summary(config, total[key], extra) for key, config in turns.items()}


def one(turn: Turn, seconds: float) -> Rate:
    """One configuration alone, one window."""
    return in_turns({"": turn}, seconds, 1)[""]
