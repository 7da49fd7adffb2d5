"""Timing helpers shared by the benchmarks."""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import django


def setup_django() -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def machine() -> str:
    return (
        f"Python {platform.python_version()}, Django {django.get_version()}, "
        f"{os.cpu_count()} CPUs, {platform.machine()}"
    )


@dataclass
class Timing:
    label: str
    median_us: float
    spread_us: float


def time_per_call(label: str, call: Callable[[], object], n: int, rounds: int = 5) -> Timing:
    """Median over ``rounds`` of the mean time per call across ``n`` calls, in µs."""
    return time_interleaved({label: call}, n, rounds)[label]


def time_interleaved(
    calls: dict[str, Callable[[], object]], n: int, rounds: int
) -> dict[str, Timing]:
    """Per label, the median over ``rounds`` of the mean time per call across ``n`` calls, the
    labels taking turns within each round: a machine whose speed drifts during the sitting
    slows every label alike instead of whichever ran last."""
    for call in calls.values():
        for _ in range(max(50, n // 10)):
            call()
    samples: dict[str, list[float]] = {label: [] for label in calls}
    for _ in range(rounds):
        for label, call in calls.items():
            start = time.perf_counter_ns()
            for _ in range(n):
                call()
            samples[label].append((time.perf_counter_ns() - start) / n / 1000)
    return {
        label: Timing(label, statistics.median(times), max(times) - min(times))
        for label, times in samples.items()
    }


def print_table(headers: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    print(line)
    print("-" * len(line))
    for row in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))
    sys.stdout.flush()
