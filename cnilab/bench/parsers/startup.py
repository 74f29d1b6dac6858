"""Pod start-up raw outcome (``raw/*-pods.json``) -> the metrics the engine stores.

The raw file holds every pod's step times; the statistics over pods are derived
here, so ``cnilab verify`` can recompute them from the raw file alone.
"""

from __future__ import annotations

import json
import statistics
from typing import Any

from cnilab.bench.parsers import ParseError

STEPS = ("netns_ms", "cni_add_ms", "programming_ms", "ready_ms")


def _stats(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {"mean": round(statistics.fmean(ordered), 3),
            "p50": round(statistics.median(ordered), 3), "max": round(ordered[-1], 3)}


def parse(text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
        pods = data["pods"]
        requested = int(data["requested"])
        reachable = float(data["all_reachable_ms"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ParseError(f"not a pod start-up outcome: {exc}") from None
    good = [p for p in pods if not p.get("error")]
    metrics: dict[str, Any] = {"pods": requested, "pods_failed": len(pods) - len(good),
                               "all_reachable_ms": reachable}
    if good:
        # all_ready: until the last pod is attached and programmed; all_reachable: until
        # the last pod has had its first reply (includes the echo round trips)
        metrics["all_ready_ms"] = max(float(p["ready_offset_ms"]) for p in good)
        for step in STEPS:   # a real cluster shows ready_ms only, not the lab's steps
            times = [float(p[step]) for p in good if p.get(step) is not None]
            for stat, value in (_stats(times).items() if times else ()):
                metrics[f"{step.removesuffix('_ms')}_{stat}_ms"] = value
        firsts = [float(p["first_packet_ms"]) for p in good if p["first_packet_ms"] is not None]
        if firsts:
            for stat, value in _stats(firsts).items():
                metrics[f"first_packet_{stat}_ms"] = value
    return metrics
