"""Errors that end a command with a clear one-line message.

Every user-facing failure is one of these so that the CLI can print exactly one
line and pick the exit status: 2 for bad input (nothing was written), 1 for a
failure while doing the work.
"""

from __future__ import annotations


class CnilabError(Exception):
    """A failure while doing the work (exit status 1)."""

    exit_status = 1


class InputError(CnilabError):
    """Bad input from the user: spec, inventory, flags or files (exit status 2)."""

    exit_status = 2


class SpecError(InputError):
    """A problem at a known place in an input file, printed as ``FILE:LINE: message``."""

    MAX_MESSAGE = 400   # a message may quote a value from the file: never all of it

    def __init__(self, path: str, line: int | None, message: str) -> None:
        if len(message) > self.MAX_MESSAGE:
            message = message[:self.MAX_MESSAGE] + "…"
        self.path = path
        self.line = line
        self.message = message
        where = f"{path}:{line}" if line is not None else path
        super().__init__(f"{where}: {message}")


class CapabilityError(InputError):
    """The machine cannot build what was asked (missing kernel feature or tool)."""


class Interrupted(CnilabError):
    """A signal (Ctrl-C, SIGTERM, SIGHUP) cancelled the work in progress (a playbook, a
    run); the exit status is the shell's for that signal, 128 + its number."""

    def __init__(self, message: str, signum: int = 2) -> None:
        super().__init__(message)
        self.signum = signum
        self.exit_status = 128 + signum


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised where Ctrl-C would raise KeyboardInterrupt, so that
    every signal stops the work the same way: measurement stopped, lab brought down, the
    run recorded as interrupted."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum
