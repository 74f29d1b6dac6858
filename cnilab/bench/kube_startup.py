"""Pod start-up on Kubernetes: from the API's acceptance of K pods to each pod's first
reply, for 1 and K pods on one node.

What is timed, and on which clock:

- **created**: the control plane's clock read immediately before ``kubectl create``
  of the whole batch (one request, so K pods start together as in the netns lab);
- **started**: the first instruction of each pod's container stamps the node's clock
  (sandbox, CNI ADD with IP allocation, the plugin's endpoint programming and the
  container start are all behind it). Without readiness probes this is when the pod
  becomes Ready; the API's Ready condition only has second resolution, so it is
  recorded beside, not used;
- **first reply**: the pod pings a pod already running on the node until one echo
  comes back and stamps the node's clock again.

``ready_ms`` = started - created, across two clocks: both are put on this machine's
clock with offsets measured over SSH (quickest of three round trips), and the record
keeps the offsets and their uncertainty. ``first_packet_ms`` = first reply - started
is on one clock. The metrics are the netns lab's (``cnilab.bench.parsers.startup``);
the lab's step split (namespace, CNI ADD, programming) is not observable from outside
a real kubelet and is left out rather than guessed.
"""

from __future__ import annotations

import json
import shlex
import time
from dataclasses import dataclass
from typing import Any

from cnilab.bench.kube import NAMESPACE, STARTUP_LABEL, KubectlApi, KubectlError, startup_pod
from cnilab.bench.suites import check_startup_pods
from cnilab.errors import CnilabError
from cnilab.kube_objects import waiting

POLL_S = 0.5


@dataclass(frozen=True)
class Clocks:
    """Offsets (remote minus this machine) of the control plane and the pods' node."""

    control_plane_s: float
    node_s: float
    uncertainty_s: float   # half the round trips of both readings, summed

    def as_record(self) -> dict[str, float]:
        return {"control_plane_offset_s": round(self.control_plane_s, 6),
                "node_offset_s": round(self.node_s, 6),
                "uncertainty_s": round(self.uncertainty_s, 6)}


def _ms(seconds: float) -> float:
    return round(seconds * 1000.0, 3)


def parse_log(text: str) -> tuple[float | None, float | None, bool]:
    """(started, first reply, gave up) stamps from a start-up pod's log."""
    started = first = None
    gave_up = False
    for line in text.splitlines():
        word, _, value = line.strip().partition(" ")
        try:
            if word == "started":
                started = float(value)
            elif word == "first-reply":
                first = float(value)
        except ValueError:
            continue
        if word == "no-reply":
            gave_up = True
    return started, first, gave_up


def outcome(count: int, created_cp: float, stamps: dict[str, dict[str, Any]],
            clocks: Clocks) -> dict[str, Any]:
    """The raw record (``parsers.startup`` input) from per-pod stamps on node clocks."""
    created = created_cp - clocks.control_plane_s   # on this machine's clock
    pods, errors, last = [], [], created
    for name in sorted(stamps):
        pod = stamps[name]
        entry: dict[str, Any] = {"pod": name, "address": pod.get("address", ""),
                                 "image_id": pod.get("image_id", ""), "error": pod.get("error")}
        started, first = pod.get("started"), pod.get("first_reply")
        if started is not None:
            ready = started - clocks.node_s - created
            entry.update(ready_ms=_ms(ready), ready_offset_ms=_ms(ready))
        if started is not None and first is not None:
            entry["first_packet_ms"] = _ms(first - started)
            last = max(last, first - clocks.node_s)
        elif not entry["error"]:
            entry["error"] = "no first reply" if started is not None else "never started"
        if entry["error"]:
            errors.append(f"{name}: {entry['error']}")
        pods.append(entry)
    return {"requested": count, "all_reachable_ms": _ms(last - created), "pods": pods,
            "errors": errors, "clocks": clocks.as_record()}


def _failure(pod: dict[str, Any]) -> str | None:
    """Why a pod cannot start (image, sandbox/CNI, container errors), if it cannot."""
    status = pod.get("status", {})
    if status.get("phase") == "Failed":
        return f"pod failed: {status.get('reason') or status.get('message') or 'no reason'}"
    state = waiting(pod) or {}
    reason = state.get("reason", "")
    if reason in ("ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull",
                  "CreateContainerError", "CreateContainerConfigError", "InvalidImageName"):
        return f"{reason}: {state.get('message', '')}".strip()
    return None


def measure(api: KubectlApi, node: str, image: str, reference_ip: str, count: int,
            attempt: int, clocks: Clocks, *, namespace: str = NAMESPACE,
            timeout_s: float = 180.0) -> dict[str, Any]:
    """Create ``count`` pods on ``node`` in one request, wait for every pod's first
    reply (or failure), delete them (waiting until they are gone, CNI DEL included) and
    return the raw record."""
    check_startup_pods(count)
    batch = f"a{attempt}"
    selector = f"{STARTUP_LABEL}={batch}"
    names = [f"startup-{batch}-{i}" for i in range(1, count + 1)]
    listing = {"apiVersion": "v1", "kind": "List", "items": [
        startup_pod(n, node, image, reference_ip, batch, namespace) for n in names]}
    api.delete("pods", namespace, selector=selector)   # a failed attempt's leftovers
    create = ["sh", "-c", f"date +%s.%N; exec {shlex.join(api.create_argv())}"]
    done = api.run(create, 60.0, json.dumps(listing))
    if done.returncode != 0:
        raise CnilabError(f"pod start-up: kubectl create failed: {done.stderr.strip()[-400:]}")
    created_cp = float(done.stdout.splitlines()[0])
    stamps: dict[str, dict[str, Any]] = {n: {} for n in names}
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            pods = {p["metadata"]["name"]: p
                    for p in api.get("pods", namespace, selector=selector).get("items", [])}
            for name in names:
                entry, pod = stamps[name], pods.get(name)
                if pod is None or "first_reply" in entry or entry.get("error"):
                    continue
                entry["address"] = pod.get("status", {}).get("podIP", "")
                statuses = pod.get("status", {}).get("containerStatuses") or [{}]
                entry["image_id"] = statuses[0].get("imageID", "")
                failure = _failure(pod)
                if failure:
                    entry["error"] = failure
                    continue
                if "running" not in (statuses[0].get("state") or {}):
                    continue
                started, first, gave_up = parse_log(api.logs(namespace, name).stdout)
                if started is not None:
                    entry["started"] = started
                if first is not None:
                    entry["first_reply"] = first
                elif gave_up:
                    entry["error"] = f"no reply from {reference_ip}"
            if all("first_reply" in e or e.get("error") for e in stamps.values()):
                break
            time.sleep(POLL_S)
        for entry in stamps.values():
            if "first_reply" not in entry and not entry.get("error"):
                entry["error"] = f"not reachable within {timeout_s:g} s"
    finally:
        try:
            api.delete("pods", namespace, selector=selector)
        except KubectlError as exc:
            raise CnilabError(f"pod start-up: could not remove batch {batch}: {exc}") from None
    return outcome(count, created_cp, stamps, clocks)
