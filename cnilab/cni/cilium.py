"""Cilium on real clusters: Helm values for the pinned chart, per mode.

Cilium is installed with Helm (chart ``cilium`` at the pinned version, archive verified
against versions/manifests.lock). The "manifest" cnilab renders is therefore the values
file: only the settings the study fixes, on top of the chart's defaults.

Where its knobs live:
- 1.20 (flat values, values.schema.json): ``routingMode`` tunnel|native,
  ``tunnelProtocol`` vxlan, ``ipv4NativeRoutingCIDR`` + ``autoDirectNodeRoutes`` for
  native routing on one L2, ``ipam.mode: kubernetes`` (pod subnets from
  node.spec.podCIDR, i.e. kubeadm's podSubnet — the default cluster-pool 10.0.0.0/8
  ignores it), ``MTU`` (0: derived), ``kubeProxyReplacement`` with ``k8sServiceHost`` /
  ``k8sServicePort`` (the API server without kube-proxy), ``policyEnforcementMode``.
- 1.8 (umbrella chart, settings under ``global``): ``global.tunnel`` vxlan|disabled,
  ``global.nativeRoutingCIDR``, ``global.autoDirectNodeRoutes``,
  ``global.kubeProxyReplacement`` strict|disabled, ``global.k8sServiceHost/Port``, and
  the config sub-chart's ``config.ipam``. The 1.8 chart has no MTU value.

Devices are left to Cilium's detection, which follows the Node's InternalIP (node_ip).

Policy: the paper ran Cilium with its default enforcement and no policies loaded, and
that is "policy off" here: enforcement ``default`` (endpoints unrestricted until a
policy selects them; the policy engine still runs and fills each endpoint's BPF policy
map with allow-all entries). "Policy on" is the same enforcement with the benchmark's
NetworkPolicies applied. Switching the engine off (``policyEnforcementMode: never``) is
a setting of its own, ``--policy never``, labelled so wherever the mode is named. The 1.8
chart has no enforcement value: its agents run the default, and ``never`` is refused.
"""

from __future__ import annotations

from typing import Any

from cnilab.cni.base import DEFAULT_OPTIONS, ClusterNetwork, Document, ModeOptions, Plugin
from cnilab.errors import InputError

API_SERVER_PORT = 6443


def _major_minor(version: str) -> tuple[int, int]:
    major, minor = (int(p) for p in version.lstrip("v").split(".")[:2])
    return major, minor


def overrides(mode: str, network: ClusterNetwork, version: str,
              options: ModeOptions) -> dict[str, Any]:
    """The values cnilab sets, in the chart version's layout."""
    CILIUM.require(mode, options)
    api_server = network.node_ips[0]        # the control plane is the inventory's first
    if _major_minor(version) >= (1, 15):
        values: dict[str, Any] = {
            "routingMode": "tunnel" if mode == "vxlan" else "native",
            "ipam": {"mode": "kubernetes"},
            "MTU": network.mtu or 0,
            "kubeProxyReplacement": "true" if options.replace_kube_proxy else "false",
            "policyEnforcementMode": "default" if options.policy_engine else "never",
        }
        if mode == "vxlan":
            values["tunnelProtocol"] = "vxlan"
        else:
            values.update(ipv4NativeRoutingCIDR=network.pod_cidr, autoDirectNodeRoutes=True)
        if options.replace_kube_proxy:
            values.update(k8sServiceHost=api_server, k8sServicePort=API_SERVER_PORT)
        return values
    if _major_minor(version) < (1, 8):
        raise InputError(f"cilium {version}: cnilab knows the chart layouts of 1.8 and 1.15+")
    if network.mtu is not None:
        raise InputError(f"cilium {version}'s chart has no MTU value: leave the MTU to Cilium")
    if not options.policy_engine:
        raise InputError(f"cilium {version}: the 1.8 chart has no policyEnforcementMode "
                         "value (its agents run the default enforcement); --policy never "
                         "needs a 1.15+ chart")
    glob: dict[str, Any] = {
        "tunnel": "vxlan" if mode == "vxlan" else "disabled",
        "kubeProxyReplacement": "strict" if options.replace_kube_proxy else "disabled",
    }
    if mode == "native":
        glob.update(nativeRoutingCIDR=network.pod_cidr, autoDirectNodeRoutes=True)
    if options.replace_kube_proxy:
        glob.update(k8sServiceHost=api_server, k8sServicePort=API_SERVER_PORT)
    return {"global": glob, "config": {"ipam": "kubernetes"}}


def merged(defaults: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """Helm's merge of user values over chart defaults (maps merge, the rest replaces)."""
    out = dict(defaults)
    for key, value in values.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out


class Cilium(Plugin):
    name = "cilium"

    def patch(self, documents: list[Document], mode: str, network: ClusterNetwork,
              version: str, options: ModeOptions = DEFAULT_OPTIONS) -> list[Document]:
        """``documents`` is the chart's values.yaml; the result is the values file to pass
        to ``helm install -f`` (only cnilab's settings)."""
        if len(documents) != 1:
            raise InputError(f"cilium {version}: expected the chart's values.yaml (one document)")
        return [overrides(mode, network, version, options)]

    def mode_problems(self, mode: str, links: list[dict[str, Any]], routes: list[dict[str, Any]],
                      peers: dict[str, tuple[str, str]], pod_cidr: str) -> list[str]:
        """Whether this node's datapath is ``mode``'s, from ``ip -j -d link`` and
        ``ip -j route``: Cilium's ``cilium_host`` always; ``cilium_vxlan`` in tunnel mode
        and not in native routing, where each peer's pod subnet must instead be routed via
        the peer's node_ip (autoDirectNodeRoutes)."""
        problems = []
        names = {link.get("ifname") for link in links}
        if "cilium_host" not in names:
            problems.append("no cilium_host device: the Cilium agent has not set up this node")
        if mode == "vxlan" and "cilium_vxlan" not in names:
            problems.append("no cilium_vxlan device: not Cilium's VXLAN tunnel mode")
        if mode == "native":
            if "cilium_vxlan" in names:
                problems.append("cilium_vxlan exists: tunnel mode is (or was) running, not native")
            for peer, (node_ip, pod_cidr) in sorted(peers.items()):
                route = next((r for r in routes if r.get("dst") == pod_cidr), None)
                if route is None or route.get("gateway") != node_ip:
                    problems.append(f"{pod_cidr} ({peer}) is not routed via {peer}'s node_ip "
                                    f"{node_ip}: not native routing with direct node routes")
        return problems

    def config_problems(self, mode: str, version: str, options: ModeOptions,
                        config: dict[str, str]) -> list[str]:
        """Whether the agent's own configuration (ConfigMap ``cilium-config``, what the chart
        rendered from cnilab's values) is the intended mode: routing mode and tunnel
        protocol, kube-proxy replacement, policy enforcement. Read from the cluster after
        install, beside the datapath check on every node."""
        if _major_minor(version) >= (1, 15):
            wanted = {"routing-mode": "tunnel" if mode == "vxlan" else "native",
                      "kube-proxy-replacement": "true" if options.replace_kube_proxy else "false",
                      "enable-policy": "default" if options.policy_engine else "never"}
            if mode == "vxlan":
                wanted["tunnel-protocol"] = "vxlan"
            else:
                wanted["auto-direct-node-routes"] = "true"
        else:
            wanted = {"tunnel": "vxlan" if mode == "vxlan" else "disabled",
                      "kube-proxy-replacement": "strict" if options.replace_kube_proxy
                      else "disabled"}
        return [f"cilium-config {key} is {config.get(key, '(unset)')!r}, the mode needs {value!r}"
                for key, value in wanted.items() if config.get(key) != value]


CILIUM = Cilium()
