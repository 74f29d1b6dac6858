"""Running cnilab's playbooks from tests as a user would: the venv's ansible-playbook,
from the project root, with cnilab's ansible.cfg."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def ansible_playbook(*args: str, timeout: float = 600,
                     env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``ansible-playbook ARGS`` (never raises on a failed play: tests read the result)."""
    return subprocess.run(
        [str(Path(sys.executable).with_name("ansible-playbook")), *args],
        cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False,
        env={**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), **(env or {})})
