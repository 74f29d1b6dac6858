"""Running the commands that build the lab, with errors that say what failed.

Every kernel object is created with iproute2, iptables and friends run as
subprocesses: they are the tools a reader can rerun by hand, and the command
line of a failure tells exactly which object could not be built.
"""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Sequence

from cnilab.errors import CnilabError


class CommandError(CnilabError):
    """A lab command exited non-zero."""

    def __init__(self, argv: Sequence[str], returncode: int, stderr: str) -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.stderr = stderr.strip()
        super().__init__(f"'{shlex.join(argv)}' failed (exit {returncode}): {self.stderr}")


def run(
    argv: Sequence[str],
    *,
    input_text: str | None = None,
    check: bool = True,
    env: dict[str, str] | None = None,
    timeout: float = 30.0,
) -> subprocess.CompletedProcess[str]:
    """Run a command, capture its output, raise CommandError on failure when ``check``."""
    proc = subprocess.run(
        list(argv), input=input_text, capture_output=True, text=True, env=env,
        timeout=timeout, check=False,
    )
    if check and proc.returncode != 0:
        raise CommandError(argv, proc.returncode, proc.stderr or proc.stdout)
    return proc


def in_netns(netns: str, argv: Sequence[str]) -> list[str]:
    """Prefix a command so that it runs inside a named network namespace."""
    return ["ip", "netns", "exec", netns, *argv]


def ip(netns: str | None, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """``ip [-n NETNS] ARGS``: iproute2 acting inside a namespace without entering it."""
    prefix = ["ip", "-n", netns] if netns else ["ip"]
    return run([*prefix, *args], check=check)


def ip_batch(netns: str | None, lines: Sequence[str]) -> None:
    """Apply many iproute2 commands in one process (``ip -batch``); an error names the line."""
    if not lines:
        return
    prefix = ["ip", "-n", netns] if netns else ["ip"]
    run([*prefix, "-batch", "-"], input_text="\n".join(lines) + "\n")
