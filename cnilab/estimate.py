"""How long a spec takes: the figure `validate`, the report's next step and the bundle
README give.

A measurement costs what its tools take (its test, an omitted ramp-up, what netserver
holds past the end, a background load's whole run: cnilab/bench/suites.py) plus what
surrounds it (starting the tools, pinning, CPU sampling, the lab's build and teardown
spread over its measurements). That overhead is taken from a run when there is one: its
wall time (manifest ``created_at`` to the state's last update) less the test time of its
records, per record. Without a run it is ``DEFAULT_OVERHEAD_S``, measured here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cnilab.bench.suites import measurement_seconds
from cnilab.spec import Spec

# lanman2020 on the 2-core build machine (netns lab), beyond what the tools take: quick,
# 216 measurements in 285 s (0.21 s each); standard, 471 in 960 s (0.24 s each)
DEFAULT_OVERHEAD_S = 0.25


@dataclass(frozen=True)
class Estimate:
    measurements: int          # at the minimum repetitions
    minutes_low: float         # every cell its minimum repetitions
    minutes_high: float        # undecided claims' cells up to the repetition cap

    def text(self) -> str:
        if self.minutes_high - self.minutes_low < 1:
            return f"about {_duration(self.minutes_low)}"
        return f"{_duration(self.minutes_low)} to {_duration(self.minutes_high)}"


def _duration(minutes: float) -> str:
    if minutes < 90:
        return f"{max(1.0, minutes):.0f} min"
    return f"{minutes / 60:.1f} h"


def _record_test_s(record: dict[str, Any]) -> float:
    cell = record.get("cell") or {}
    return measurement_seconds(str(cell.get("suite", "")), record.get("params") or {},
                               cell.get("condition") or {})


def wall_s(manifest: dict[str, Any], state: dict[str, Any]) -> float | None:
    """A run's wall time: from its manifest's creation to its state's last update."""
    try:
        return (datetime.fromisoformat(str(state["updated_at"]))
                - datetime.fromisoformat(str(manifest["created_at"]))).total_seconds()
    except (KeyError, ValueError):
        return None


def overhead_s(manifest: dict[str, Any], state: dict[str, Any],
               records: list[dict[str, Any]]) -> float:
    """Seconds per measurement beyond its test, as a run spent them."""
    if not records:
        return DEFAULT_OVERHEAD_S
    wall = wall_s(manifest, state)
    if wall is None:
        elapsed = [float(r["elapsed_s"]) - _record_test_s(r) for r in records
                   if isinstance(r.get("elapsed_s"), int | float)]
        return max(0.0, sum(elapsed) / len(elapsed)) if elapsed else DEFAULT_OVERHEAD_S
    return max(0.0, (wall - sum(_record_test_s(r) for r in records)) / len(records))


def estimate(spec: Spec, overhead: float = DEFAULT_OVERHEAD_S,
             skipped: set[str] | None = None) -> Estimate:
    """The time ``spec`` takes at ``overhead`` seconds per measurement beyond its test,
    leaving out the modes in ``skipped`` (those a target cannot build)."""
    cells = [c for c in spec.cells() if c.mode_key not in (skipped or set())]
    rounds = spec.repetitions + spec.warmup
    low = sum((measurement_seconds(c.suite, c.params_dict(), dict(c.condition)) + overhead)
              * rounds for c in cells)
    high = low * spec.repetition_cap / spec.repetitions if spec.sequential else low
    return Estimate(len(cells) * spec.repetitions, low / 60, high / 60)
