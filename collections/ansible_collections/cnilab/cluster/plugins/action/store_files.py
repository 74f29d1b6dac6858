"""Write a set of files into a directory on the controller, in one task.

Why an action plugin: collect stores a dozen outputs per node; one ``copy`` task per
file costs a round trip each (seconds per node). This runs on the controller, writes
each file atomically (temporary file, then rename) and reports a change only for files
whose content differs.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase


def store(directory: str, files: dict[str, str], write: bool = True) -> list[str]:
    """Files of ``files`` whose content differs from what ``directory`` holds (written
    unless ``write`` is false)."""
    changed = []
    for name, content in sorted(files.items()):
        if os.sep in name or name in ("", ".", ".."):
            raise ValueError(f"file name {name!r}: a plain name is required")
        path = os.path.join(directory, name)
        data = str(content).encode()
        try:
            with open(path, "rb") as handle:
                if handle.read() == data:
                    continue
        except FileNotFoundError:
            pass
        changed.append(name)
        if write:
            os.makedirs(directory, exist_ok=True)
            handle_fd, temporary = tempfile.mkstemp(dir=directory, prefix=f".{name}.")
            with os.fdopen(handle_fd, "wb") as out:
                out.write(data)
            os.chmod(temporary, 0o644)
            os.replace(temporary, path)
    return changed


class ActionModule(ActionBase):
    """cnilab.cluster.store_files: dest (directory), files (name -> content)."""

    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("dest", "files"))

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        dest = self._task.args.get("dest")
        files = self._task.args.get("files")
        if not dest or not isinstance(files, dict):
            raise AnsibleActionFail("store_files needs dest (a directory) and files (a dict)")
        try:
            changed = store(str(dest), {str(k): v for k, v in files.items()},
                            write=not self._task.check_mode)
        except (OSError, ValueError) as exc:
            raise AnsibleActionFail(f"store_files {dest}: {exc}") from exc
        result.update(changed=bool(changed), written=changed, dest=str(dest))
        return result
