"""One owner per netns lab at a time, and a record of who built the lab that is up.

Why: two commands that change one lab corrupt each other (a second `run` rebuilds the
lab under the first, whose records then measure a datapath in flux), and a `run` must
not silently tear down a lab someone brought up with `lab up`. Every command that
changes the lab holds an exclusive lock on it for as long as it works (a second one is
refused in one line naming the holder), and the lab's builder is written down beside
it, so that a run can tell a lab it built (or that its own killed run built) from
someone else's.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cnilab import paths
from cnilab.errors import CnilabError
from cnilab.lab.plan import state_dir_of

LOCK_NAME = "lab.lock"         # the default lab's; instance NAME: lab.NAME.lock
OWNER_NAME = "owner.json"      # inside the lab's state directory: removed with the lab


class LabBusy(CnilabError):
    """Another command holds the lab."""


def lock_path(instance: str = "") -> Path:
    """Beside the state directories, not in one: it outlives the lab it guards."""
    return paths.lab_state_dir() / (LOCK_NAME if not instance else f"lab.{instance}.lock")


def owner_path(instance: str = "") -> Path:
    return state_dir_of(instance) / OWNER_NAME


def _describe(holder: dict[str, Any]) -> str:
    started = holder.get("started")
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)) \
        if isinstance(started, int | float) else "an unknown time"
    return f"pid {holder.get('pid', '?')} (`{holder.get('command', '?')}`, since {when})"


@contextlib.contextmanager
def holding(command: str, instance: str = "") -> Iterator[None]:
    """Hold the lab ``instance`` for ``command`` (a description of what runs); LabBusy
    when another process holds it. The lock dies with its process: a killed holder
    frees it. Other instances are not held."""
    path = lock_path(instance)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            try:
                holder = json.loads(handle.read() or "{}")
            except ValueError:
                holder = {}
            name = f"netns lab instance {instance!r}" if instance else "netns lab"
            raise LabBusy(f"the {name} is in use by {_describe(holder)}; wait for it to "
                          "finish or stop it") from None
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(json.dumps({"pid": os.getpid(), "command": command,
                                     "started": time.time()}))
            handle.flush()
            yield
        finally:
            with contextlib.suppress(OSError):
                handle.truncate(0)       # ours to clear: we hold the lock


def record_owner(owner: str, instance: str = "") -> None:
    """Write down who built the lab that is now up."""
    path = owner_path(instance)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"owner": owner, "pid": os.getpid(), "built": time.time()}),
                    encoding="utf-8")


def owner(instance: str = "") -> str | None:
    """Who built the lab that is up (None: nobody recorded, e.g. no lab)."""
    try:
        data = json.loads(owner_path(instance).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    value = data.get("owner") if isinstance(data, dict) else None
    return str(value) if value else None
