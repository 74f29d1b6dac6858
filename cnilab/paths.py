"""Where cnilab finds its own tree and keeps lab state.

cnilab runs from a checkout (the playbooks, roles and pin files are part of
it), so the project root is the parent of this package unless ``CNILAB_HOME``
says otherwise.
"""

from __future__ import annotations

import os
from pathlib import Path


def project_root() -> Path:
    """The cnilab checkout: holds ``versions/``, ``playbooks/`` and ``roles/``."""
    override = os.environ.get("CNILAB_HOME")
    return Path(override).resolve() if override else Path(__file__).resolve().parent.parent


def versions_dir() -> Path:
    return project_root() / "versions"


def playbooks_dir() -> Path:
    return project_root() / "playbooks"


def ansible_cfg() -> Path:
    return project_root() / "ansible.cfg"


def lab_state_dir() -> Path:
    """Runtime state of the netns lab (plan, pid files, IPAM leases): tmpfs, gone at reboot."""
    return Path(os.environ.get("CNILAB_STATE_DIR", "/run/cnilab"))


def cni_plugin_dir() -> Path:
    """Directory of the CNI reference plugin binaries (Debian: /usr/lib/cni)."""
    return Path(os.environ.get("CNILAB_CNI_PATH", "/usr/lib/cni"))


def default_runs_dir() -> Path:
    return Path(os.environ.get("CNILAB_RUNS_DIR", str(project_root() / "runs")))


def timings_file() -> Path:
    """How long each playbook took last time (cnilab.progress.PlaybookTimings): the source
    of a playbook's time left. Kept per user, across runs."""
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(os.environ.get("CNILAB_TIMINGS", str(Path(state) / "cnilab" /
                                                     "playbook-timings.json")))
