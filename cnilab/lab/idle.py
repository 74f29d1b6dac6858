"""What the lab's own machinery costs when nothing is measured.

Why: every "host" of the lab shares this machine's CPUs with the measurements, so a
daemon that keeps a core busy (a route sync that polls, a BGP speaker in a loop) is
charged to the mode's CPU cost and slows its cells. Right after a lab comes up, its
processes (everything running in its namespaces) are watched for a moment while idle;
their share of the machine is recorded with the lab, and a lab above ``LIMIT`` is
refused with the process that holds the CPU named, instead of being measured.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cnilab.lab import sh

LIMIT = 0.03          # share of the whole machine the idle lab may use
WINDOW_S = 1.0


def _machine_jiffies() -> tuple[int, int]:
    """(all, idle+iowait) jiffies of every CPU since boot (/proc/stat)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    values = [int(v) for v in fields[:8]]
    return sum(values), values[3] + values[4]


def _process_jiffies(pid: int) -> tuple[str, int] | None:
    """(command name, its CPU time and its reaped children's) of a process, or None once
    it is gone. The children count: a daemon that spawns short-lived tools (``ip``,
    ``gobgp``) spends its CPU in them, and they are gone before anyone samples them."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    name = stat[stat.index("(") + 1:stat.rindex(")")]
    rest = stat[stat.rindex(")") + 2:].split()
    return name, sum(int(v) for v in rest[11:15])     # utime, stime, cutime, cstime


def lab_pids(namespaces: list[str]) -> list[int]:
    found: set[int] = set()
    for netns in namespaces:
        out = sh.run(["ip", "netns", "pids", netns], check=False).stdout
        found.update(int(p) for p in out.split() if p.isdigit())
    return sorted(found - {os.getpid()})


@dataclass
class IdleCpu:
    """The lab's processes' CPU over a window with no measurement running."""

    window_s: float
    machine_busy: float                  # share of the machine busy, whoever used it
    lab_share: float                     # share used by the lab's processes
    top: list[dict[str, Any]] = field(default_factory=list)   # heaviest lab processes

    def as_record(self) -> dict[str, Any]:
        return {"window_s": self.window_s, "machine_busy_percent":
                round(100 * self.machine_busy, 2), "lab_percent": round(100 * self.lab_share, 2),
                "limit_percent": 100 * LIMIT, "top_processes": self.top}

    def problem(self) -> str | None:
        """Why the lab must not be measured (its machinery too busy), or None."""
        if self.lab_share <= LIMIT:
            return None
        heaviest = ", ".join(f"{p['command']} (pid {p['pid']}) {p['percent']:.1f} %"
                             for p in self.top[:3])
        return (f"the idle lab uses {100 * self.lab_share:.1f} % of the machine (limit "
                f"{100 * LIMIT:.0f} %): {heaviest}; its own machinery would be charged to "
                "every measurement")


def measure(namespaces: list[str], window_s: float = WINDOW_S) -> IdleCpu:
    return measure_many({"": namespaces}, window_s)[""]


def measure_many(groups: dict[str, list[str]],
                 window_s: float = WINDOW_S) -> dict[str, IdleCpu]:
    """Each group's (a lab instance's namespaces) idle CPU, all over one window: a study
    that builds its modes side by side checks them all in the time of one."""
    pids = {name: lab_pids(namespaces) for name, namespaces in groups.items()}
    before = {pid: _process_jiffies(pid) for group in pids.values() for pid in group}
    total0, idle0 = _machine_jiffies()
    time.sleep(window_s)
    total1, idle1 = _machine_jiffies()
    elapsed = max(total1 - total0, 1)
    busy = 1 - (idle1 - idle0) / elapsed
    found: dict[str, IdleCpu] = {}
    for name, group in pids.items():
        used: list[tuple[float, int, str]] = []        # (share, pid, command)
        for pid in group:
            start, end = before.get(pid), _process_jiffies(pid)
            if start is None or end is None:
                continue
            used.append(((end[1] - start[1]) / elapsed, pid, end[0]))
        used.sort(reverse=True)
        top = [{"pid": pid, "command": command, "percent": round(100 * share, 2)}
               for share, pid, command in used[:5] if share > 0]
        found[name] = IdleCpu(window_s, busy, sum(u[0] for u in used), top)
    return found
