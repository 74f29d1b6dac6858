"""kube-router's node datapath with BGP routing (no overlay, no service proxy).

Pods hang off the ``kube-bridge`` bridge (CNI bridge + host-local plugins with
the node's pod CIDR, kube-router's CNI configuration). Each host runs GoBGP
(``gobgpd``, iBGP full mesh, AS 64512) announcing its pod CIDR, plus a route
sync (``cnilab.lab.gobgp_sync``) that installs the learned paths as kernel
routes (``proto bgp``), because GoBGP never writes kernel routes itself and
kube-router does that step in-process.

Policy on: kube-router's network-policy shape: KUBE-ROUTER-FORWARD jumping
to one KUBE-POD-FW chain per local pod, which accepts established traffic,
walks an ingress policy chain matching ipsets of allowed sources and
selected pods, drops what no policy marked, and marks the rest for accept.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, ClassVar

from cnilab.errors import CnilabError
from cnilab.lab import cni, sh
from cnilab.lab.datapaths.base import Datapath, register
from cnilab.lab.overlay import chain_exists, iptables_restore, wait_peer_routes
from cnilab.lab.plan import HostPlan, PodPlan

BRIDGE = "kube-bridge"
AS_NUMBER = 64512
# GoBGP's first connect waits a random 5-10 s that its configuration cannot shorten.
CONVERGENCE_TIMEOUT_S = 30.0
# GoBGP's API numbers the BGP FSM states (RFC 4271 order, 1-based).
BGP_STATES = {1: "Idle", 2: "Connect", 3: "Active", 4: "OpenSent", 5: "OpenConfirm",
              6: "Established"}
ALLOWED_SOURCES = "KUBE-SRC-BENCHALLOW"
SELECTED_PODS = "KUBE-DST-BENCHALLOW"


def gobgp_config(host: HostPlan, peers: list[HostPlan]) -> str:
    """gobgpd TOML configuration: the iBGP mesh with short timers."""
    lines = ["[global.config]", f"  as = {AS_NUMBER}", f'  router-id = "{host.underlay_ip}"',
             f'  local-address-list = ["{host.underlay_ip}"]', "  port = 179"]
    for peer in peers:
        lines += [
            "[[neighbors]]",
            "  [neighbors.config]",
            f'    neighbor-address = "{peer.underlay_ip}"',
            f"    peer-as = {AS_NUMBER}",
            "  [neighbors.timers.config]",
            "    connect-retry = 1",
            "    hold-time = 3",
            "    keepalive-interval = 1",
            "  [neighbors.transport.config]",
            f'    local-address = "{host.underlay_ip}"',
        ]
    return "\n".join(lines) + "\n"


def _pod_chain(pod_name: str) -> str:
    return "KUBE-POD-FW-" + hashlib.sha256(pod_name.encode()).hexdigest()[:16].upper()


def _pod_firewall(name: str, ip: str, op: str) -> list[str]:
    """The policy controller's rules for one local pod: jumps from KUBE-ROUTER-FORWARD
    (appended with ``-A``, inserted at the top with ``-I`` for a pod added later, or
    deleted with ``-D``) and the pod's own chain (always appended)."""
    chain = _pod_chain(name)
    jump = "-I KUBE-ROUTER-FORWARD 1" if op == "-I" else f"{op} KUBE-ROUTER-FORWARD"
    return [
        f'{jump} -d {ip}/32 -m comment --comment "rule to jump traffic '
        f'destined to POD name:{name} to chain {chain}" -j {chain}',
        f"{jump} -s {ip}/32 -j {chain}",
        f"-A {chain} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
        f"-A {chain} -d {ip}/32 -j KUBE-NWPLCY-BENCHALLOW",
        f"-A {chain} -s {ip}/32 -j KUBE-NWPLCY-DEFAULT",
        f'-A {chain} -m comment --comment "rule to REJECT traffic destined for POD '
        f'name:{name}" -m mark ! --mark 0x10000/0x10000 -j DROP',
        f"-A {chain} -j MARK --set-xmark 0x0/0x10000",
        f"-A {chain} -j MARK --set-xmark 0x20000/0x20000",
    ]


@register
class KubeRouterBgp(Datapath):
    cni: ClassVar[str] = "kube-router"
    mode: ClassVar[str] = "bgp"

    def _dir(self) -> Path:
        return self.plan.state_dir() / "gobgp"

    def _pidfile(self, what: str, host: HostPlan) -> Path:
        return self.plan.state_dir() / "pids" / f"{what}-{host.name}.pid"

    def pod_conflist(self, host: HostPlan) -> dict[str, Any]:
        return cni.bridge_conflist("mynet", BRIDGE, self.pod_mtu(), {
            "type": "host-local",
            "ranges": [[{"subnet": host.pod_subnet}]],
            "dataDir": str(self.plan.state_dir() / "ipam" / host.name),
        })

    def build_host(self, host: HostPlan) -> bool:
        if chain_exists(host.netns, "KUBE-ROUTER-FORWARD"):
            return False
        net = self.plan.pod_cidr
        iptables_restore(host.netns, [
            "*filter", ":KUBE-ROUTER-FORWARD - [0:0]",
            '-I FORWARD 1 -m comment --comment "kube-router netpol - TEMCG2JMHZYE7H7T" '
            "-j KUBE-ROUTER-FORWARD",
            "COMMIT",
            "*nat", ":KUBE-ROUTER-POSTROUTING - [0:0]",
            "-A POSTROUTING -j KUBE-ROUTER-POSTROUTING",
            f"-A KUBE-ROUTER-POSTROUTING -s {host.pod_subnet} ! -d {net} "
            "-j MASQUERADE --random-fully",
            "COMMIT"])
        return True

    def _start(self, host: HostPlan, what: str, argv: list[str], log: Path) -> None:
        pidfile = self._pidfile(what, host)
        pidfile.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as out:
            # gobgpd and the sync loop do not daemonize: a new session keeps
            # them alive after the Ansible module returns; lab down ends them by pid.
            proc = subprocess.Popen(sh.in_netns(host.netns, argv), stdout=out, stderr=out,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
        pidfile.write_text(f"{proc.pid}\n", encoding="utf-8")

    def connect_peers(self, host: HostPlan) -> bool:
        if self._pidfile("gobgpd", host).is_file():
            changed = False
        else:
            self._dir().mkdir(parents=True, exist_ok=True)
            conf = self._dir() / f"{host.name}.toml"
            conf.write_text(gobgp_config(host, self.plan.peers(host)), encoding="utf-8")
            log = self._dir() / f"{host.name}.log"
            self._start(host, "gobgpd", ["gobgpd", "-f", str(conf), "-t", "toml", "-p",
                                         "--api-hosts=127.0.0.1:50051", "--pprof-disable"], log)
            self._announce(host)
            self._start(host, "gobgp-sync", [sys.executable, "-m", "cnilab.lab.gobgp_sync"], log)
            changed = True
        if host is self.plan.hosts[-1]:
            self.wait_converged()
        return changed

    def _announce(self, host: HostPlan) -> None:
        """Originate this host's pod CIDR (kube-router advertises the node's podCIDR)."""
        deadline = time.monotonic() + 10
        argv = sh.in_netns(host.netns, ["gobgp", "global", "rib", "add", "-a", "ipv4",
                                        host.pod_subnet, "nexthop", host.underlay_ip])
        while True:
            proc = sh.run(argv, check=False)
            if proc.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise CnilabError(f"gobgpd on {host.name} did not accept the pod CIDR "
                                  f"announcement: {proc.stderr.strip()}")
            time.sleep(0.05)

    def wait_converged(self) -> None:
        """Until every host has every peer's subnet as a route the sync installed."""
        wait_peer_routes(self.plan, proto="bgp", daemon="GoBGP",
                         timeout_s=CONVERGENCE_TIMEOUT_S, interval_s=0.1)

    def host_details(self, host: HostPlan) -> dict[str, Any]:
        proc = sh.run(sh.in_netns(host.netns, ["gobgp", "neighbor", "-j"]), check=False)
        sessions = []
        try:
            for n in json.loads(proc.stdout) if proc.stdout.strip() else []:
                state = n.get("state", {})
                code = state.get("session_state", 0)
                sessions.append({"name": state.get("neighbor_address", "?"),
                                 "state": BGP_STATES.get(code, str(code)),
                                 "info": f"AS {state.get('peer_asn', '?')}"})
        except json.JSONDecodeError:
            pass
        return {"bgp_daemon": "gobgpd", "bgp_sessions": sessions}

    def after_pods(self, host: HostPlan, addresses: dict[str, str]) -> bool:
        if not self.plan.policy or chain_exists(host.netns, "KUBE-NWPLCY-DEFAULT"):
            return False
        every_pod = [addresses[p.name] for h in self.plan.hosts for p in h.pods]
        local = {p.name: addresses[p.name] for p in host.pods}
        sets = [f"create {ALLOWED_SOURCES} hash:ip", f"create {SELECTED_PODS} hash:ip",
                *[f"add {ALLOWED_SOURCES} {ip}" for ip in every_pod],
                *[f"add {SELECTED_PODS} {ip}" for ip in local.values()]]
        sh.run(sh.in_netns(host.netns, ["ipset", "restore"]), input_text="\n".join(sets) + "\n")
        rules = ["*filter", ":KUBE-NWPLCY-DEFAULT - [0:0]", ":KUBE-NWPLCY-BENCHALLOW - [0:0]"]
        rules += [f":{_pod_chain(name)} - [0:0]" for name in local]
        for name, ip in local.items():
            rules += _pod_firewall(name, ip, "-A")
        rules += [
            f"-A KUBE-NWPLCY-BENCHALLOW -m set --match-set {ALLOWED_SOURCES} src -m set "
            f"--match-set {SELECTED_PODS} dst -j MARK --set-xmark 0x10000/0x10000",
            "-A KUBE-NWPLCY-DEFAULT -j MARK --set-xmark 0x10000/0x10000",
            "-A KUBE-ROUTER-FORWARD -m mark --mark 0x20000/0x20000 -j ACCEPT",
            "COMMIT",
        ]
        iptables_restore(host.netns, rules)
        return True

    def add_endpoint(self, host: HostPlan, pod: PodPlan, address: str) -> None:
        """kube-router's policy controller on a new local pod: set members, its pod
        firewall chain and the jumps to it (ahead of the final ACCEPT)."""
        if not self.plan.policy:
            return
        sh.run(sh.in_netns(host.netns, ["ipset", "-exist", "restore"]),
               input_text=f"add {ALLOWED_SOURCES} {address}\nadd {SELECTED_PODS} {address}\n")
        iptables_restore(host.netns, ["*filter", f":{_pod_chain(pod.name)} - [0:0]",
                                      *_pod_firewall(pod.name, address, "-I"), "COMMIT"])

    def remove_endpoint(self, host: HostPlan, pod: PodPlan, address: str) -> None:
        if not self.plan.policy:
            return
        chain = _pod_chain(pod.name)
        jumps = [r for r in _pod_firewall(pod.name, address, "-D")
                 if r.startswith("-D KUBE-ROUTER-FORWARD")]
        iptables_restore(host.netns, ["*filter", *jumps, f"-F {chain}", f"-X {chain}", "COMMIT"])
        sh.run(sh.in_netns(host.netns, ["ipset", "-exist", "restore"]),
               input_text=f"del {ALLOWED_SOURCES} {address}\ndel {SELECTED_PODS} {address}\n")

    def notes(self) -> list[str]:
        return ["kube-router: GoBGP timers shortened (connect-retry 1 s, hold 3 s); its first "
                "connect still waits a random 5-10 s. Routes are synced from GoBGP's RIB by "
                "cnilab.lab.gobgp_sync, not by kube-router's own code."]
