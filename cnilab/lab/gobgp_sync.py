"""Kernel route sync for GoBGP, as kube-router does in-process.

GoBGP keeps routes in its RIB and never writes them to the kernel. kube-router
watches the RIB (in-process, through GoBGP's API) and installs a route for every path
learned from a peer; this small daemon does the same for one emulated host. It follows
GoBGP's streaming ``gobgp monitor global rib`` and, on every change it reports, makes the
kernel's ``proto bgp`` routes equal to the learned paths (installing new ones, removing
withdrawn ones). Between changes it sleeps in a blocking read, so an idle lab's route
sync costs no CPU: polling every 0.2 s, spawning ``gobgp`` and ``ip`` each time, kept
15 % of a 2-core machine busy and was charged to kube-router's measurements.

Run inside the host's namespace: ``python -m cnilab.lab.gobgp_sync``. It is
ended by pid like every lab process.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

PROTO = "bgp"  # iproute2's name for route protocol 186
RETRY_S = 0.5  # while gobgpd is not answering yet (it starts with the lab)


def learned_routes(rib: dict[str, list[dict[str, Any]]]) -> dict[str, str]:
    """prefix -> next hop, for best paths learned from a peer (not originated here)."""
    routes: dict[str, str] = {}
    for prefix, paths in rib.items():
        for path in paths:
            if not path.get("best", False):
                continue
            neighbor = str(path.get("neighbor-ip", ""))
            if neighbor in ("", "<nil>", "0.0.0.0"):
                continue  # our own announcement
            hops = [a.get("nexthop") for a in path.get("attrs", []) if a.get("type") == 3]
            if hops and hops[0]:
                routes[prefix] = str(hops[0])
    return routes


def kernel_routes() -> dict[str, str]:
    out = subprocess.run(["ip", "-j", "route", "show", "proto", PROTO], capture_output=True,
                         text=True, check=False).stdout
    data: list[dict[str, Any]] = json.loads(out) if out.strip() else []
    return {str(r["dst"]): str(r.get("gateway", "")) for r in data}


def sync_once() -> None:
    proc = subprocess.run(["gobgp", "global", "rib", "-a", "ipv4", "-j"], capture_output=True,
                          text=True, check=False)
    if proc.returncode != 0 or not proc.stdout.strip():
        return  # gobgpd not answering yet
    wanted = learned_routes(json.loads(proc.stdout))
    present = kernel_routes()
    for prefix, hop in wanted.items():
        if present.get(prefix) != hop:
            subprocess.run(["ip", "route", "replace", prefix, "via", hop, "proto", PROTO],
                           check=False)
    for prefix in present.keys() - wanted.keys():
        subprocess.run(["ip", "route", "del", prefix, "proto", PROTO], check=False)


def follow() -> None:
    """Sync once per line GoBGP's monitor prints, until its stream ends: ``--current``
    makes it print the RIB as it is first, so nothing learned before the subscription
    is missed."""
    with subprocess.Popen(["gobgp", "monitor", "global", "rib", "--current", "-a", "ipv4",
                           "-j"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                          text=True) as monitor:
        assert monitor.stdout is not None
        for _ in monitor.stdout:
            sync_once()


def main() -> int:
    while True:
        follow()
        time.sleep(RETRY_S)


if __name__ == "__main__":
    sys.exit(main())
