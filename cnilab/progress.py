"""What long commands show while they work: a live bar on a terminal, plain lines else.

One ``Display`` per command writes everything that goes to the terminal during the
work, so that the bar and the lines never interleave: on a terminal, lines go above a
live rich bar (done/total, what is being measured, elapsed time, time left); without a
terminal (CI, a pipe, a log file) they are the plain lines they always were, plus a
line with the time left every ``every`` steps. ``close()`` (or leaving the ``with``)
takes the bar down before anything else is printed, so an error block (a failed
Ansible task, a Ctrl-C) is never drawn over.

The time left comes from what was measured in this command: the wall time per step so
far times the steps left. Playbooks, whose number of tasks is known only after they
ran, take it from the last run of the same playbook on the same inventory, kept in a
small file (``PlaybookTimings``); the first run shows no estimate rather than a guess.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

from rich.console import Console, RenderableType
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn
from rich.text import Text

from cnilab.rundir import atomic_write_json

# steps between the plain "progress:" lines without a terminal
EVERY = 10


def clock(seconds: float) -> str:
    """``1:05`` or ``1:02:05``."""
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else \
        f"{rest // 60}:{rest % 60:02d}"


def is_terminal(stream: TextIO) -> bool:
    return bool(getattr(stream, "isatty", lambda: False)()) and \
        os.environ.get("TERM", "") != "dumb"


class _BarAndActivity(Progress):
    """The bar, with the current activity (an Ansible task) on a plain line under it."""

    activity = ""

    def get_renderables(self) -> Iterable[RenderableType]:
        yield self.make_tasks_table(self.tasks)
        if self.activity:
            yield Text(self.activity, no_wrap=True, overflow="ellipsis")


class Display:
    """The terminal of one long command."""

    def __init__(self, stream: TextIO | None = None, quiet: bool = False,
                 every: int = EVERY) -> None:
        self.stream = stream or sys.stderr
        self.tty = is_terminal(self.stream)
        self.quiet = quiet
        self.every = every
        self._progress: _BarAndActivity | None = None
        self._bar: TaskID | None = None
        self._started = 0.0
        self._done_here = 0
        self._total: int | None = None
        self._done = 0

    # -- lines --------------------------------------------------------------------------
    def line(self, text: str, progress: bool = False) -> None:
        """A line kept on screen: a finding (a skipped mode) always, a ``progress`` line
        (one measurement done) unless quiet."""
        if progress and self.quiet:
            return
        if self._progress is not None:
            self._progress.console.print(text, markup=False, highlight=False,
                                         soft_wrap=True)
        else:
            self.stream.write(text + "\n")
            self.stream.flush()

    def activity(self, text: str) -> None:
        """What is happening now (an Ansible task): one line that is replaced, on a
        terminal; dropped without one, where the caller prints its own lines."""
        if self.quiet or not self.tty:
            return
        live = self._live()
        live.activity = text
        live.refresh()

    def activity_done(self) -> None:
        """The current activity ended: its line comes down."""
        if self._progress is not None:
            self._progress.activity = ""

    # -- the bar ------------------------------------------------------------------------
    def start(self, total: int, done: int = 0, what: str = "") -> None:
        """A bar of ``total`` steps of which ``done`` were done before this command."""
        self._total, self._done, self._done_here = total, done, 0
        self._started = time.monotonic()
        if self.tty and not self.quiet:
            progress = self._live()
            self._bar = progress.add_task(what or "starting", total=total, completed=done,
                                          eta="")

    def advance(self, current: str, total: int | None = None) -> None:
        """One step done; ``current`` names it; ``total`` may grow (adaptive rounds)."""
        self._done += 1
        self._done_here += 1
        if total is not None:
            self._total = max(total, self._done)
        left = self.seconds_left()
        eta = f"{clock(left)} left" if left is not None else ""
        elapsed = time.monotonic() - self._started
        if self._progress is not None and self._bar is not None:
            self._progress.update(self._bar, completed=self._done, total=self._total,
                                  description=current[:80],
                                  eta=f"{clock(elapsed)} elapsed, {eta or 'time left: -'}")
        elif not self.tty and self._done_here % self.every == 0:
            share = f" ({100 * self._done / self._total:.0f} %)" if self._total else ""
            self.line(f"progress: {self._done}/{self._total or '?'}{share}, "
                      f"{clock(elapsed)} elapsed{', about ' + eta if eta else ''}",
                      progress=True)

    def seconds_left(self) -> float | None:
        """Steps left times the wall time per step measured in this command."""
        if not self._done_here or self._total is None:
            return None
        per_step = (time.monotonic() - self._started) / self._done_here
        return per_step * max(0, self._total - self._done)

    # -- lifetime -----------------------------------------------------------------------
    def _live(self) -> _BarAndActivity:
        if self._progress is None:
            self._progress = _BarAndActivity(
                TextColumn("{task.description}"), BarColumn(bar_width=30),
                MofNCompleteColumn(), TextColumn("{task.fields[eta]}"),
                console=Console(file=self.stream, force_terminal=True), transient=False,
                redirect_stdout=False, redirect_stderr=False)
            self._progress.start()
        return self._progress

    def close(self) -> None:
        """Take the bar down (its last state stays on screen), before any error block."""
        if self._progress is not None:
            self._progress.activity = ""
            self._progress.stop()
            self._progress = None
            self._bar = None

    def __enter__(self) -> Display:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class PlaybookTimings:
    """How long each playbook took last time, and in how many tasks, per inventory: the
    only honest source of a playbook's time left."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    @staticmethod
    def key(playbook: str, where: str) -> str:
        return f"{Path(playbook).name}@{where}"

    def last(self, playbook: str, where: str) -> tuple[int, float] | None:
        """(tasks, seconds) of the last successful run on the inventory ``where``."""
        entry = self._read().get(self.key(playbook, where))
        if isinstance(entry, dict) and isinstance(entry.get("tasks"), int) and \
                isinstance(entry.get("seconds"), int | float):
            return int(entry["tasks"]), float(entry["seconds"])
        return None

    def remember(self, playbook: str, where: str, tasks: int, seconds: float) -> None:
        data = self._read()
        data[self.key(playbook, where)] = {"tasks": tasks, "seconds": round(seconds, 1)}
        atomic_write_json(self.path, data)
