"""Weave Net on real clusters: weave-daemonset-k8s-1.11.yaml patched for fast datapath
or sleeve.

Where its knobs live (v2.6.5, v2.8.1 and the community fork's 2.9.0; the file is a
``kind: List``): env of the
``weave`` container, read by launch.sh — ``IPALLOC_RANGE`` (absent upstream; default
10.32.0.0/12), ``WEAVE_NO_FASTDP`` (any value: sleeve, the user-space UDP encapsulation,
instead of the kernel OVS fast datapath) and ``WEAVE_MTU`` (absent: 1376, a fixed
default, not derived from the node). Peers come from the API server (``KUBE_PEERS``),
i.e. from the Node objects whose InternalIP is node_ip; there is no interface setting.

The repository file is a template: upstream's release script replaces ``:latest`` with
the release version and drops ``imagePullPolicy: Always``; cnilab does the same,
structurally.

Policy off is ``EXPECT_NPC=0`` on the ``weave`` container (and on ``weave-init``, which
loads br_netfilter/xt_set for the policy controller from 2.8.1 on) and no ``weave-npc``
container. ``EXPECT_NPC`` is read by launch.sh/init.sh and defaults to 1 there: weaver
then puts ``-o weave -j WEAVE-NPC``, an NFLOG rule and ``-o weave -j DROP`` at the head
of FORWARD (net/bridge.go ConfigureIPTables, 2.6.5 to 2.9.0), which only weave-npc
fills, so without weave-npc every packet to a pod would be dropped. With 0 it puts
``-i weave -o weave -j ACCEPT`` there instead (site/kubernetes/kube-addon.md: "set to 0
to disable Network Policy Controller").
"""

from __future__ import annotations

from typing import Any

from cnilab.cni.base import (
    DEFAULT_OPTIONS,
    ClusterNetwork,
    Document,
    ModeOptions,
    Plugin,
    containers,
    find,
    set_env,
)
from cnilab.errors import InputError

# Weaveworks' images, and the community fork's (rajch/weave, 2.8.2 on; the last
# Weaveworks release, 2.8.1, breaks on iptables-nft >= 1.8.8)
IMAGES = ("weaveworks/weave-kube", "weaveworks/weave-npc",
          "rajchaudhuri/weave-kube", "rajchaudhuri/weave-npc")




class Weave(Plugin):
    name = "weave"

    def patch(self, documents: list[Document], mode: str, network: ClusterNetwork,
              version: str, options: ModeOptions = DEFAULT_OPTIONS) -> list[Document]:
        self.require(mode, options)
        where = f"weave-daemonset-k8s-1.11.yaml {version}"
        daemonset = find(documents, "DaemonSet", "weave-net", where)
        weave = [c for c in containers(daemonset, "weave")]
        if len(weave) != 1:
            raise InputError(f"{where}: expected one weave container, found {len(weave)}")
        router = weave[0]
        set_env(router, "IPALLOC_RANGE", network.pod_cidr)
        router["env"] = [e for e in router["env"] if e.get("name") != "WEAVE_NO_FASTDP"]
        if mode == "sleeve":
            set_env(router, "WEAVE_NO_FASTDP", "1")
        if network.mtu is not None:
            set_env(router, "WEAVE_MTU", str(network.mtu))
        spec = daemonset["spec"]["template"]["spec"]
        if not options.policy:
            spec["containers"] = [c for c in spec["containers"] if c.get("name") != "weave-npc"]
            for container in [router, *containers(daemonset, "weave-init")]:
                set_env(container, "EXPECT_NPC", "0")
        release = version.lstrip("v")
        for container in (spec.get("initContainers") or []) + spec["containers"]:
            image = str(container.get("image", ""))
            repository, _, tag = image.partition(":")
            if repository in IMAGES:
                if tag not in ("latest", release):
                    raise InputError(f"{where}: image {image} is neither the template's :latest "
                                     f"nor {release}")
                container["image"] = f"{repository}:{release}"
                container.pop("imagePullPolicy", None)
        return documents

    def mode_problems(self, mode: str, links: list[dict[str, Any]], routes: list[dict[str, Any]],
                      peers: dict[str, tuple[str, str]], pod_cidr: str) -> list[str]:
        """Whether this node's datapath is ``mode``'s, from ``ip -j -d link`` and
        ``ip -j route``. Weave is one L2 network: the pod CIDR is routed onto the ``weave``
        bridge; fast datapath adds the ``vxlan-6784`` VXLAN vport (UDP 6784) next to the OVS
        ``datapath``, sleeve has no VXLAN device (encapsulation happens in the router)."""
        problems = []
        by_name = {link.get("ifname"): link for link in links}
        if "weave" not in by_name:
            problems.append("no weave bridge: weave is not running on this node")
        vxlan = by_name.get("vxlan-6784")
        if mode == "fastdp":
            port = (((vxlan or {}).get("linkinfo") or {}).get("info_data") or {}).get("port")
            if vxlan is None:
                problems.append("no vxlan-6784 device: weave fell back to sleeve (fast datapath "
                                "needs the kernel's openvswitch module)")
            elif port != self.mode("fastdp").udp_port:
                problems.append(f"vxlan-6784 uses UDP {port}, fast datapath uses "
                                f"{self.mode('fastdp').udp_port}")
        elif vxlan is not None:
            problems.append("vxlan-6784 exists: fast datapath is (or was) running, not sleeve")
        route = next((r for r in routes if r.get("dst") == pod_cidr), None)
        if route is None or route.get("dev") != "weave":
            problems.append(f"the pod CIDR {pod_cidr} is not routed onto the weave bridge")
        return problems
