"""Hardware cycle counts with ``perf stat`` where the machine exposes a PMU.

The paper's cycles per packet comes from ``perf`` counting cycles over the
transfer. Virtual machines often expose no hardware counters: perf then prints
``<not supported>`` for ``cycles``. ``probe`` finds out once per process; the
engine counts cycles with perf where it works and otherwise derives cycles from
/proc/stat busy time x clock (see cpu.py), and every record names its source.
"""

from __future__ import annotations

import functools
import os
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

EVENT = "cycles"


@dataclass(frozen=True)
class PerfSupport:
    usable: bool
    reason: str   # why not, or the command used


def parse_csv(text: str) -> dict[str, float | None]:
    """Event -> count from ``perf stat -x,`` output (None for <not supported>/<not counted>)."""
    out: dict[str, float | None] = {}
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split(",")
        if len(fields) < 3:
            continue
        value, event = fields[0], fields[2]
        try:
            out[event] = float(value)
        except ValueError:
            out[event] = None
    return out


@functools.cache
def probe() -> PerfSupport:
    """Can this machine count hardware cycles system-wide?"""
    if shutil.which("perf") is None:
        return PerfSupport(False, "perf is not installed")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "perf.csv"
        proc = subprocess.run(["perf", "stat", "-a", "-e", EVENT, "-x", ",", "-o", str(out),
                               "--", "sleep", "0.05"], capture_output=True, text=True,
                              check=False, timeout=20)
        text = out.read_text(encoding="utf-8") if out.is_file() else ""
    if proc.returncode != 0:
        return PerfSupport(False, f"perf stat failed: {proc.stderr.strip()[-200:]}")
    if parse_csv(text).get(EVENT) is None:
        return PerfSupport(False, "perf reports cycles <not supported> (no hardware PMU "
                           "exposed, typical of virtual machines)")
    return PerfSupport(True, f"perf stat -a -e {EVENT}")


class CycleCounter:
    """``perf stat -a -e cycles`` around a window; a no-op where perf cannot count."""

    def __init__(self, output: Path, enabled: bool = True) -> None:
        self.output = output
        self.enabled = enabled
        self.proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> CycleCounter:
        if self.enabled and probe().usable:
            self.proc = subprocess.Popen(
                ["perf", "stat", "-a", "-e", EVENT, "-x", ",", "-o", str(self.output)],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                start_new_session=True)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def cycles(self) -> float | None:
        if self.proc is None or not self.output.is_file():
            return None
        return parse_csv(self.output.read_text(encoding="utf-8")).get(EVENT)
