"""Kernel route sync for GoBGP, as kube-router does in-process.

GoBGP keeps routes in its RIB and never writes them to the kernel. kube-router
watches the RIB and installs a route for every path learned from a peer; this
small daemon does the same for one emulated host: every INTERVAL seconds it
reads ``gobgp global rib -j`` and makes the kernel's ``proto bgp`` routes
equal to the learned paths (installing new ones, removing withdrawn ones).

Run inside the host's namespace: ``python -m cnilab.lab.gobgp_sync``. It is
ended by pid like every lab process.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

INTERVAL_S = 0.2
PROTO = "bgp"  # iproute2's name for route protocol 186


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


def main() -> int:
    while True:
        sync_once()
        time.sleep(INTERVAL_S)


if __name__ == "__main__":
    sys.exit(main())
