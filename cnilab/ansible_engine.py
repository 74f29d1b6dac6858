"""Running the project's playbooks through ansible-runner.

Why a module of its own: every command that changes machines (the netns lab,
real clusters) goes through here, so the rules are kept in one place:
absolute paths, ``ANSIBLE_CONFIG`` set explicitly, a private data directory per
invocation inside the run directory, no environment dumps left on disk, live
progress from the event stream, one readable block per failure, and Ctrl-C
that cancels the playbook cleanly.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

import ansible_runner

from cnilab import paths
from cnilab.errors import CnilabError, Interrupted
from cnilab.progress import Display, PlaybookTimings, clock


@dataclass
class TaskFailure:
    """One failed or unreachable task, as the user needs to see it."""

    host: str
    task: str
    task_path: str
    msg: str
    stderr: str
    stdout: str
    rc: int | None
    unreachable: bool = False

    def render(self) -> str:
        kind = "UNREACHABLE" if self.unreachable else "FAILED"
        lines = [f"{kind}: host {self.host}, task '{self.task}'",
                 f"  at: {self.task_path or 'unknown'}"]
        if self.rc is not None:
            lines.append(f"  rc: {self.rc}")
        lines.append(f"  msg: {self.msg.strip() or '(none)'}")
        for label, text in (("stderr", self.stderr), ("stdout", self.stdout)):
            if text.strip():
                body = "\n".join("    " + ln for ln in text.strip().splitlines()[-15:])
                lines.append(f"  {label}:\n{body}")
        return "\n".join(lines)


@dataclass
class PlaybookResult:
    playbook: str
    status: str                      # successful | failed | canceled | timeout
    rc: int
    failures: list[TaskFailure] = field(default_factory=list)
    stats: dict[str, dict[str, int]] = field(default_factory=dict)
    artifact_dir: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "successful" and self.rc == 0

    def changed_count(self) -> int:
        return sum(self.stats.get("changed", {}).values())


class PlaybookFailed(CnilabError):
    """A playbook ended unsuccessfully; the message is the failure block."""

    def __init__(self, result: PlaybookResult) -> None:
        self.result = result
        blocks = [f.render() for f in result.failures] or [
            f"playbook {result.playbook} ended '{result.status}' (rc {result.rc})"]
        super().__init__("\n".join(blocks))


class Progress:
    """A playbook's progress. On a terminal: the current task on one line under the run's
    bar (task k of about N and the time left, both from the last run of the playbook on
    the same inventory); otherwise plain lines, the same information on each task line.
    Every line goes through the command's ``Display``, so nothing is drawn over another."""

    def __init__(self, stream: TextIO | None = None, quiet: bool = False,
                 display: Display | None = None,
                 timings: PlaybookTimings | None = None) -> None:
        self.display = display or Display(stream, quiet)
        self._own_display = display is None
        self.quiet = quiet or self.display.quiet
        self.tty = self.display.tty
        self.timings = timings or PlaybookTimings(paths.timings_file())
        self.counts: dict[str, int] = {"ok": 0, "changed": 0, "failed": 0, "skipped": 0}
        self._playbook = ""
        self._started = 0.0
        self._tasks = 0
        self._last: tuple[int, float] | None = None

    def begin(self, playbook: str, where: str) -> None:
        self._playbook, self._where = playbook, where
        self._started = time.monotonic()
        self._tasks = 0
        self._last = self.timings.last(playbook, where)

    def finish(self, ok: bool) -> None:
        """Remember a successful run's tasks and time for the next one's estimate."""
        if ok and self._playbook and self._tasks:
            self.timings.remember(self._playbook, self._where, self._tasks,
                                  time.monotonic() - self._started)

    def _where_we_are(self) -> str:
        if self._last is None:
            return f"task {self._tasks}"
        tasks, seconds = self._last
        left = max(0.0, seconds - (time.monotonic() - self._started))
        return f"task {self._tasks} of ~{tasks}, ~{clock(left)} left"

    def _emit(self, text: str, final: bool = False) -> None:
        if self.quiet:
            return
        if self.tty and not final:
            self.display.activity(text)
        else:
            self.display.line(text, progress=True)

    def play(self, name: str) -> None:
        self.counts = dict.fromkeys(self.counts, 0)
        self._emit(f"PLAY {name}", final=True)

    def task(self, name: str) -> None:
        self._tasks += 1
        c = self.counts
        self._emit(f"  TASK {name}  [{self._where_we_are()}; ok={c['ok']} "
                   f"changed={c['changed']} failed={c['failed']}]")

    def host_result(self, host: str, outcome: str, task: str) -> None:
        self.counts[outcome] = self.counts.get(outcome, 0) + 1
        if not self.tty and outcome in ("changed", "failed"):
            self._emit(f"    {host}: {outcome}", final=True)
        elif self.tty:
            c = self.counts
            self._emit(f"  TASK {task}  [{self._where_we_are()}; ok={c['ok']} "
                       f"changed={c['changed']} failed={c['failed']}]")

    def close(self) -> None:
        """The playbook's line comes down; a display of its own goes with it."""
        if self._own_display:
            self.display.close()
        else:
            self.display.activity_done()


CANCELLING_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class _Interrupt:
    """Turns the first Ctrl-C, SIGTERM or SIGHUP into a cancellation request instead of a
    traceback: ansible-runner then kills the playbook's whole process group."""

    def __init__(self) -> None:
        self.requested = False
        self.signum = signal.SIGINT
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _Interrupt:
        if threading.current_thread() is threading.main_thread():
            for signum in CANCELLING_SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handler)
        return self

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        if not self.requested:
            self.signum = signal.Signals(signum)
        self.requested = True

    def __exit__(self, *exc: object) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)


def _scrub_artifacts(artifact_dir: Path) -> None:
    """ansible-runner writes the full process environment into ``command``: keep argv only."""
    command_file = artifact_dir / "command"
    if command_file.is_file():
        try:
            data = json.loads(command_file.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            data = {}
        data.pop("env", None)
        command_file.write_text(json.dumps(data), encoding="utf-8")


def run_playbook(
    playbook: str,
    *,
    private_data_dir: Path,
    extravars: dict[str, Any] | None = None,
    inventory: str | None = None,
    progress: Progress | None = None,
    check: bool = True,
    ident: str | None = None,
    on_event: Callable[[dict[str, Any]], None] | None = None,
    env: dict[str, str] | None = None,
) -> PlaybookResult:
    """Run ``playbooks/<playbook>`` and return its result; raise PlaybookFailed when ``check``."""
    # A bare name is one of the project's playbooks; an absolute path is used as is.
    playbook_path = (paths.playbooks_dir() / playbook).resolve()
    if not playbook_path.is_file():
        raise CnilabError(f"playbook not found: {playbook_path}")
    private_data_dir = private_data_dir.resolve()
    private_data_dir.mkdir(parents=True, exist_ok=True)
    progress = progress or Progress()
    # a playbook's work depends on its inventory and the desired state it is asked for
    # (up or down): the time of its last run with both the same is the estimate
    states = sorted(f"{k}={v}" for k, v in (extravars or {}).items() if k.endswith("_state"))
    progress.begin(playbook, ",".join([Path(inventory).name if inventory else "local",
                                       *states]))
    failures: list[TaskFailure] = []
    stats: dict[str, dict[str, int]] = {}
    current_task = {"name": ""}

    def handle(event: dict[str, Any]) -> bool:
        kind = event.get("event", "")
        data = event.get("event_data", {})
        if kind == "playbook_on_play_start":
            progress.play(data.get("play", ""))
        elif kind == "playbook_on_task_start":
            current_task["name"] = data.get("task", "")
            progress.task(current_task["name"])
        elif kind in ("runner_on_ok", "runner_on_failed", "runner_on_unreachable",
                      "runner_on_skipped"):
            host = data.get("host", "?")
            res = data.get("res", {}) or {}
            if kind == "runner_on_ok":
                outcome = "changed" if res.get("changed") else "ok"
            elif kind == "runner_on_skipped":
                outcome = "skipped"
            elif kind == "runner_on_failed" and data.get("ignore_errors"):
                outcome = "ok"
            else:
                outcome = "failed"
                failures.append(TaskFailure(
                    host=host, task=data.get("task", current_task["name"]),
                    task_path=data.get("task_path", ""), msg=str(res.get("msg", "")),
                    stderr=str(res.get("stderr", "") or res.get("module_stderr", "")),
                    stdout=str(res.get("stdout", "") or res.get("module_stdout", "")),
                    rc=res.get("rc"), unreachable=kind == "runner_on_unreachable"))
            progress.host_result(host, outcome, current_task["name"])
        elif kind == "playbook_on_stats":
            for key in ("ok", "changed", "failures", "dark", "skipped"):
                stats[key] = dict(data.get(key, {}) or {})
        if on_event is not None:
            on_event(event)
        return True

    # Ansible's own temporary files stay in the private data directory and go with the
    # run: a cancelled playbook is killed (its whole process group) and cannot clean
    # ~/.ansible/tmp; on this machine (the lab's local connection) so do the "remote" ones
    scratch = private_data_dir / "tmp"
    local_only = inventory is None
    # and so do the directories a module's AnsiballZ wrapper unpacks itself into (Python's
    # tempfile, /tmp by default): a killed module cannot remove its own
    (scratch / "modules").mkdir(parents=True, exist_ok=True)
    envvars = {
        "TMPDIR": str(scratch / "modules"),
        "ANSIBLE_LOCAL_TEMP": str(scratch / "local"),
        **({"ANSIBLE_REMOTE_TEMP": str(scratch / "remote")} if local_only else {}),
        "ANSIBLE_CONFIG": str(paths.ansible_cfg()),
        # The interpreter that runs cnilab also runs the lab modules (they import cnilab).
        "CNILAB_PYTHON": sys.executable,
        "ANSIBLE_NOCOLOR": "1",
        # The virtualenv's ansible-playbook first, whatever PATH the user has.
        "PATH": os.pathsep.join([str(Path(sys.executable).parent),
                                 os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")]),
        **(env or {}),
    }
    with _Interrupt() as interrupt:
        thread, runner = ansible_runner.run_async(
            private_data_dir=str(private_data_dir),
            project_dir=str(paths.project_root()),
            playbook=str(playbook_path),
            inventory=inventory or str(paths.project_root() / "inventories" / "local" /
                                        "hosts.yml"),
            extravars=extravars or {},
            envvars=envvars,
            ident=ident or f"{time.strftime('%Y%m%dT%H%M%S')}-{playbook_path.stem}",
            event_handler=handle,
            cancel_callback=lambda: interrupt.requested,
            suppress_env_files=True,
            quiet=True,
            rotate_artifacts=0,
            # how often ansible-runner looks at cancel_callback (default 5 s: a build
            # cancelled by a signal would go on for seconds)
            settings={"pexpect_timeout": 0.05},
        )
        thread.join()
    shutil.rmtree(scratch, ignore_errors=True)
    progress.finish(runner.status == "successful" and not interrupt.requested)
    progress.close()
    artifact_dir = Path(runner.config.artifact_dir)
    _scrub_artifacts(artifact_dir)
    result = PlaybookResult(playbook=playbook, status=str(runner.status), rc=int(runner.rc or 0),
                            failures=failures, stats=stats, artifact_dir=str(artifact_dir))
    if runner.status == "canceled" or interrupt.requested:
        raise Interrupted(f"interrupted ({signal.Signals(interrupt.signum).name}): playbook "
                          f"{playbook} cancelled", interrupt.signum)
    if check and not result.ok:
        raise PlaybookFailed(result)
    return result
