"""Reading Kubernetes objects as `kubectl get -o json` prints them.

Why a module of its own: the cluster checks (cnilab.cluster.verify), the benchmark's
cluster target and the pod start-up measurement all read pod and node conditions the
same way; none of them owns that reading.
"""

from __future__ import annotations

from typing import Any


def condition(obj: dict[str, Any], kind: str) -> str | None:
    """The status ("True", "False", ...) of a Node's or Pod's condition ``kind``."""
    for cond in obj.get("status", {}).get("conditions", []) or []:
        if cond.get("type") == kind:
            return str(cond.get("status"))
    return None


def waiting(pod: dict[str, Any]) -> dict[str, Any] | None:
    """The first container of a pod that is waiting: its ``state.waiting`` (reason,
    message), or None."""
    for status in pod.get("status", {}).get("containerStatuses", []) or []:
        state = (status.get("state") or {}).get("waiting")
        if state:
            return dict(state)
    return None
