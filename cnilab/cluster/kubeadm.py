"""kubeadm configuration built from data, per pin profile's kubeadm API version.

The kubeadm_init / kubeadm_join roles render these documents (through the
``cnilab.cluster.kubeadm_*`` filters) instead of templating YAML text, because
the API versions differ in ways a template gets wrong silently:

- v1beta4 (Kubernetes >= 1.31): ``extraArgs`` / ``kubeletExtraArgs`` are lists of
  ``{name, value}``; ``ClusterConfiguration.proxy.disabled`` skips kube-proxy;
- v1beta3: maps of strings; ``InitConfiguration.skipPhases``;
- v1beta2 (the paper-2020 stack, 1.18): maps of strings, no ``skipPhases`` (the
  role passes ``--skip-phases=addon/kube-proxy`` on the command line instead).

Every node gets ``node-ip`` from the inventory's ``node_ip`` (never the Vagrant
NAT address), the API server advertises the control plane's ``node_ip``, one pod
CIDR is forced for every CNI, and the kube-proxy mode is explicit.
"""

from __future__ import annotations

from typing import Any

import yaml

API_VERSIONS = ("kubeadm.k8s.io/v1beta2", "kubeadm.k8s.io/v1beta3", "kubeadm.k8s.io/v1beta4")
KUBE_PROXY_MODES = ("iptables", "ipvs", "nftables")


def _check(api: str, kube_proxy_mode: str) -> None:
    if api not in API_VERSIONS:
        raise ValueError(f"kubeadm API {api!r} not supported (supported: "
                         f"{', '.join(API_VERSIONS)})")
    if kube_proxy_mode not in KUBE_PROXY_MODES:
        raise ValueError(f"kube-proxy mode {kube_proxy_mode!r} not one of "
                         f"{', '.join(KUBE_PROXY_MODES)}")


def _args(api: str, values: dict[str, str]) -> Any:
    """Extra arguments in the shape the API version wants."""
    if api.endswith("v1beta4"):
        return [{"name": k, "value": v} for k, v in sorted(values.items())]
    return dict(sorted(values.items()))


def _registration(api: str, node_name: str, node_ip: str, cri_socket: str) -> dict[str, Any]:
    return {"name": node_name, "criSocket": cri_socket,
            "kubeletExtraArgs": _args(api, {"node-ip": node_ip})}


def init_documents(*, api: str, kubernetes_version: str, node_name: str, node_ip: str,
                   pod_cidr: str, service_cidr: str, kube_proxy_mode: str,
                   skip_kube_proxy: bool, cri_socket: str, image_repository: str,
                   cluster_name: str = "cnilab") -> list[dict[str, Any]]:
    """InitConfiguration, ClusterConfiguration, KubeletConfiguration and (unless a CNI
    mode replaces it) KubeProxyConfiguration for ``kubeadm init --config``."""
    _check(api, kube_proxy_mode)
    init: dict[str, Any] = {
        "apiVersion": api, "kind": "InitConfiguration",
        "localAPIEndpoint": {"advertiseAddress": node_ip, "bindPort": 6443},
        "nodeRegistration": _registration(api, node_name, node_ip, cri_socket),
    }
    cluster: dict[str, Any] = {
        "apiVersion": api, "kind": "ClusterConfiguration",
        "clusterName": cluster_name,
        "kubernetesVersion": f"v{kubernetes_version.lstrip('v')}",
        # the profile's registry for every kubeadm image (1.18's default k8s.gcr.io is
        # frozen and only redirects)
        "imageRepository": image_repository,
        "controlPlaneEndpoint": f"{node_ip}:6443",
        "networking": {"podSubnet": pod_cidr, "serviceSubnet": service_cidr},
        "apiServer": {"certSANs": [node_ip, node_name]},
        # allocate-node-cidrs is on because podSubnet is set; kube-router and flannel
        # read each node's podCIDR from it
    }
    if skip_kube_proxy:
        if api.endswith("v1beta4"):
            cluster["proxy"] = {"disabled": True}
        elif api.endswith("v1beta3"):
            init["skipPhases"] = ["addon/kube-proxy"]
        # v1beta2: the role adds --skip-phases=addon/kube-proxy (see skip_phases_flag)
    docs = [init, cluster, {
        "apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
        "cgroupDriver": "systemd",
    }]
    if not skip_kube_proxy:
        docs.append({"apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
                     "kind": "KubeProxyConfiguration", "mode": kube_proxy_mode})
    return docs


def skip_phases_flag(api: str, skip_kube_proxy: bool) -> list[str]:
    """Command-line flags for what the configuration file cannot say (v1beta2)."""
    if skip_kube_proxy and api.endswith("v1beta2"):
        return ["--skip-phases=addon/kube-proxy"]
    return []


def join_documents(*, api: str, node_name: str, node_ip: str, api_endpoint: str, token: str,
                   ca_cert_hash: str, cri_socket: str) -> list[dict[str, Any]]:
    """JoinConfiguration for a worker. Holds the bootstrap token: the role renders it
    with no_log and removes the file after the join."""
    _check(api, "iptables")
    return [{
        "apiVersion": api, "kind": "JoinConfiguration",
        "discovery": {"bootstrapToken": {"apiServerEndpoint": api_endpoint, "token": token,
                                         "caCertHashes": [ca_cert_hash]}},
        "nodeRegistration": _registration(api, node_name, node_ip, cri_socket),
    }]


def render(docs: list[dict[str, Any]]) -> str:
    return yaml.safe_dump_all(docs, sort_keys=False, explicit_start=True)
