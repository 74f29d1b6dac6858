"""Placements: where the two ends of a measurement sit.

The names are the study's vocabulary; each target (netns lab, Kubernetes)
maps them onto concrete endpoints.
"""

from __future__ import annotations

PLACEMENTS: dict[str, str] = {
    "intra-host": "pod to pod on the same host (bridge / veth path, no underlay)",
    "inter-host": "pod to pod on different hosts (the CNI's overlay or routes over the underlay)",
    "service": "pod to a ClusterIP whose backend is a pod on another host (kube-proxy iptables "
               "DNAT on the client's host)",
    "host-network": "hostNetwork pods: both ends in the hosts' network namespaces, over the "
                    "underlay (in the netns lab the same path as 'underlay')",
    "underlay": "host to host over the underlay, no CNI on the path: the bare-metal baseline",
}

BASELINE = "underlay"
