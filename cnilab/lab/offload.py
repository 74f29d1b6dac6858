"""Tunnel segmentation offload on the lab hosts' underlay devices (claim C4).

Why: the paper measured Flannel's VXLAN overlay with the NIC's tunnel offload on and off
("Flannel-off") and found inter-host throughput far lower without it. A NIC with VXLAN
offload segments encapsulated TCP itself; without it the kernel segments each
encapsulated super-packet in software before the driver (validate_xmit_skb ->
skb_gso_segment), one UDP datagram per wire packet. The lab's underlay devices are veth,
which advertise tx-udp_tnl-segmentation and tx-udp_tnl-csum-segmentation and let them be
switched off. Off, the kernel's software path is the one a host without the offload
takes, for real. On, a veth carries the whole super-packet to the other host without
segmenting it at all, which is cheaper than any NIC: the lab shows the direction and
the CPU cost of software segmentation, not the numbers of a ConnectX-4.
GRO is left as veth has it (off), on both settings.
"""

from __future__ import annotations

from cnilab.lab import sh
from cnilab.lab.plan import LabPlan

FEATURES = ("tx-udp_tnl-segmentation", "tx-udp_tnl-csum-segmentation")


def features(netns: str, device: str) -> dict[str, str]:
    """The tunnel offload features of ``device`` as ethtool shows them ("on", "off",
    "off [fixed]", ...)."""
    out = sh.run(sh.in_netns(netns, ["ethtool", "-k", device])).stdout
    found: dict[str, str] = {}
    for line in out.splitlines():
        name, _, value = line.strip().partition(":")
        if name in FEATURES:
            found[name] = value.strip()
    return found


def apply(plan: LabPlan) -> bool:
    """Set every host's underlay device as the plan says; True if anything changed."""
    wanted = "on" if plan.tunnel_offload else "off"
    changed = False
    for host in plan.hosts:
        now = features(host.netns, host.underlay_if)
        todo = [name for name in FEATURES if now.get(name, "").split()[:1] != [wanted]]
        if not todo:
            continue
        args = [word for name in todo for word in (name, wanted)]
        sh.run(sh.in_netns(host.netns, ["ethtool", "-K", host.underlay_if, *args]))
        changed = True
    return changed


def note(plan: LabPlan) -> list[str]:
    """The fidelity note of a lab with the offload switched off."""
    if plan.tunnel_offload:
        return []
    return ["Tunnel offload off: tx-udp_tnl-segmentation and tx-udp_tnl-csum-segmentation "
            "are off on each host's underlay device, so the kernel segments encapsulated "
            "packets in software before they leave, as on a host whose NIC lacks VXLAN "
            "offload. With offload on, the lab's veth underlay carries whole "
            "encapsulated super-packets unsegmented, cheaper than any NIC: the comparison "
            "shows the direction and the CPU cost of software segmentation, not a NIC's "
            "numbers."]
