"""Kube-router on real clusters: daemonset/kubeadm-kuberouter.yaml patched per mode.

Where its knobs live (v1.0.1 and v2.11.1): flags of the ``kube-router`` container —
``--enable-overlay`` / ``--overlay-type`` choose pure BGP routing (overlay off) or IP-in-IP
tunnels to nodes in other subnets (``subnet``) or to every node (``full``);
``--run-firewall`` is network-policy enforcement; ``--run-service-proxy`` (IPVS) serves
Services in place of kube-proxy (cnilab's "replace kube-proxy" option). The pod CIDR is
not in the file: each node's subnet comes from node.spec.podCIDR, i.e. kubeadm's
podSubnet, which cnilab sets. Node addresses come from the Node objects (InternalIP =
node_ip, checked by verify_cluster), so there is no interface setting. The MTU lives in
the bridge plugin of ``cni-conf.json``; v2.11.1 derives it itself unless ``--auto-mtu=false``.

Upstream references the image without a tag (latest, pulled Always): cnilab pins the
release tag and pulls IfNotPresent.
"""

from __future__ import annotations

import json
from typing import Any

from cnilab.cni.base import (
    DEFAULT_OPTIONS,
    ClusterNetwork,
    Document,
    ModeOptions,
    Plugin,
    containers,
    find,
    set_flag,
)
from cnilab.errors import InputError

OVERLAY = {"bgp": None, "overlay-subnet": "subnet", "overlay-full": "full"}
IMAGE = "docker.io/cloudnativelabs/kube-router"
KUBECONFIG_MAP = "cnilab-kube-router-kubeconfig"
KUBECONFIG_DIR = "/var/lib/kube-router"
API_SERVER_PORT = 6443
IPIP_OVERHEAD = 20


def _auto_mtu_flag(version: str) -> bool:
    """--auto-mtu exists from v1.1.0 on."""
    major, minor = (int(p) for p in version.lstrip("v").split(".")[:2])
    return (major, minor) >= (1, 1)


def _serve_services(documents: list[Document], daemonset: Document, args: list[str],
                    network: ClusterNetwork, where: str) -> list[str]:
    """kube-router as the service proxy (IPVS), on a cluster without kube-proxy.

    Without kube-proxy the in-cluster API address (a Service) is unreachable until
    kube-router itself programs it, so kube-router needs the API server's own address:
    upstream's all-features file borrows kube-proxy's kubeconfig ConfigMap, which kubeadm
    does not create when it skips kube-proxy. cnilab adds a kubeconfig of the same shape
    (the pod's service-account token and CA, the control plane's node_ip:6443) as a
    ConfigMap of its own and mounts it where the file names it.
    """
    spec = daemonset["spec"]["template"]["spec"]
    volume = next((v for v in spec.get("volumes", []) if v.get("name") == "kubeconfig"), None)
    agent = next(c for c in spec["containers"] if c.get("name") == "kube-router")
    mount = next((m for m in agent.get("volumeMounts", []) if m.get("name") == "kubeconfig"),
                 None)
    if volume is None or mount is None:
        raise InputError(f"{where}: no 'kubeconfig' volume mounted in kube-router; update "
                         "the patcher")
    volume.clear()
    volume.update(name="kubeconfig", configMap={
        "name": KUBECONFIG_MAP, "items": [{"key": "kubeconfig", "path": "kubeconfig"}]})
    mount.update(mountPath=KUBECONFIG_DIR, readOnly=True)
    secrets = "/var/run/secrets/kubernetes.io/serviceaccount"
    kubeconfig = {
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "default", "cluster": {
            "certificate-authority": f"{secrets}/ca.crt",
            "server": f"https://{network.node_ips[0]}:{API_SERVER_PORT}"}}],
        "contexts": [{"name": "default", "context": {"cluster": "default",
                                                     "user": "default"}}],
        "current-context": "default",
        "users": [{"name": "default", "user": {"tokenFile": f"{secrets}/token"}}],
    }
    documents.append({"apiVersion": "v1", "kind": "ConfigMap",
                      "metadata": {"name": KUBECONFIG_MAP, "namespace": "kube-system"},
                      "data": {"kubeconfig": json.dumps(kubeconfig, indent=2) + "\n"}})
    return set_flag(args, "--kubeconfig", f"{KUBECONFIG_DIR}/kubeconfig")


class KubeRouter(Plugin):
    name = "kube-router"

    def patch(self, documents: list[Document], mode: str, network: ClusterNetwork,
              version: str, options: ModeOptions = DEFAULT_OPTIONS) -> list[Document]:
        self.require(mode, options)
        where = f"kubeadm-kuberouter.yaml {version}"
        daemonset = find(documents, "DaemonSet", "kube-router", where)
        agents = [c for c in containers(daemonset, "kube-router") if "args" in c]
        if len(agents) != 1:
            raise InputError(f"{where}: expected one kube-router container with args, found "
                             f"{len(agents)}: the upstream file changed shape; update the patcher")
        agent = agents[0]
        args = list(agent["args"])
        args = set_flag(args, "--run-router", "true")
        args = set_flag(args, "--run-firewall", "true" if options.policy else "false")
        args = set_flag(args, "--run-service-proxy",
                        "true" if options.replace_kube_proxy else "false")
        if options.replace_kube_proxy:
            args = _serve_services(documents, daemonset, args, network, where)
        overlay = OVERLAY[mode]
        args = set_flag(args, "--enable-overlay", "false" if overlay is None else "true")
        if overlay is not None:
            args = set_flag(args, "--overlay-type", overlay)
        else:
            args = [a for a in args if not a.startswith("--overlay-type")]
        config = find(documents, "ConfigMap", "kube-router-cfg", where)
        cni_conf = json.loads(config["data"]["cni-conf.json"])
        bridge = next((p for p in cni_conf.get("plugins", []) if p.get("type") == "bridge"), None)
        if bridge is None:
            raise InputError(f"{where}: cni-conf.json has no bridge plugin; update the patcher")
        if options.replace_kube_proxy:
            bridge["hairpinMode"] = True   # a pod reaching itself through its own Service
        if network.mtu is not None:
            bridge["mtu"] = network.mtu
            if _auto_mtu_flag(version):
                args = set_flag(args, "--auto-mtu", "false")
        elif not _auto_mtu_flag(version):
            if network.node_mtu is None:
                raise InputError(f"kube-router {version} cannot derive the pod MTU (no "
                                 "--auto-mtu): give the MTU (node MTU, minus 20 with the IP-in-IP "
                                 "overlay), or deploy on nodes whose MTU cnilab reads")
            # what --auto-mtu computes in later releases: the node's, less the IP-in-IP header
            bridge["mtu"] = network.node_mtu - (IPIP_OVERHEAD if overlay is not None else 0)
        config["data"]["cni-conf.json"] = json.dumps(cni_conf, indent=2) + "\n"
        agent["args"] = args
        for container in daemonset["spec"]["template"]["spec"].get("initContainers", []) + \
                daemonset["spec"]["template"]["spec"]["containers"]:
            if container.get("image", "").split(":")[0] == IMAGE:
                container["image"] = f"{IMAGE}:{version}"
                container["imagePullPolicy"] = "IfNotPresent"
        return documents

    def mode_problems(self, mode: str, links: list[dict[str, Any]], routes: list[dict[str, Any]],
                      peers: dict[str, tuple[str, str]], pod_cidr: str) -> list[str]:
        """Whether this node's datapath is ``mode``'s, from ``ip -j -d link`` and
        ``ip -j route``; ``peers`` maps every other node to (node_ip, podCIDR). Pods hang on
        the kube-bridge bridge; each peer's pod subnet is routed via the peer's node_ip
        (BGP, no overlay), through an IP-in-IP ``tun-*`` device (overlay full), or either
        (overlay subnet: tunnels only to nodes in other subnets)."""
        problems = []
        names = {link.get("ifname") for link in links}
        if "kube-bridge" not in names:
            problems.append("no kube-bridge bridge: pods are not attached by kube-router")
        for peer, (node_ip, pod_cidr) in sorted(peers.items()):
            route = next((r for r in routes if r.get("dst") == pod_cidr), None)
            if route is None:
                problems.append(f"no route to {peer}'s pod subnet {pod_cidr}")
                continue
            direct = route.get("gateway") == node_ip and not str(route.get("dev", "")).startswith(
                "tun-")
            tunnel = str(route.get("dev", "")).startswith("tun-")
            allowed = {"bgp": direct, "overlay-full": tunnel, "overlay-subnet": direct or tunnel}
            if not allowed[mode]:
                problems.append(f"{pod_cidr} ({peer}) goes via {route.get('gateway') or '-'} dev "
                                f"{route.get('dev')}: not kube-router {mode}")
        return problems
