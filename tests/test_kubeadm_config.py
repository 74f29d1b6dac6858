"""kubeadm configuration from data, per kubeadm API version, and through the Ansible filter."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible_cli import ansible_playbook

from cnilab.cluster import kubeadm

ROOT = Path(__file__).resolve().parent.parent
COMMON: dict[str, Any] = dict(kubernetes_version="1.35.0", node_name="cp1",
                              node_ip="192.168.56.10", pod_cidr="10.244.0.0/16",
                              service_cidr="10.96.0.0/12", kube_proxy_mode="iptables",
                              cri_socket="unix:///run/containerd/containerd.sock",
                              image_repository="registry.k8s.io")


def _by_kind(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {d["kind"]: d for d in docs}


def test_v1beta4_uses_structured_args_and_disables_the_proxy_addon() -> None:
    docs = _by_kind(kubeadm.init_documents(api="kubeadm.k8s.io/v1beta4", skip_kube_proxy=True,
                                           **COMMON))
    init, cluster = docs["InitConfiguration"], docs["ClusterConfiguration"]
    assert init["nodeRegistration"]["kubeletExtraArgs"] == [
        {"name": "node-ip", "value": "192.168.56.10"}]
    assert init["localAPIEndpoint"]["advertiseAddress"] == "192.168.56.10"
    assert cluster["networking"] == {"podSubnet": "10.244.0.0/16",
                                     "serviceSubnet": "10.96.0.0/12"}
    assert cluster["kubernetesVersion"] == "v1.35.0"
    assert cluster["imageRepository"] == "registry.k8s.io"
    assert cluster["proxy"] == {"disabled": True} and "KubeProxyConfiguration" not in docs
    assert docs["KubeletConfiguration"]["cgroupDriver"] == "systemd"
    assert kubeadm.skip_phases_flag("kubeadm.k8s.io/v1beta4", True) == []


def test_v1beta3_skips_the_phase_in_the_file() -> None:
    docs = _by_kind(kubeadm.init_documents(api="kubeadm.k8s.io/v1beta3", skip_kube_proxy=True,
                                           **COMMON))
    assert docs["InitConfiguration"]["skipPhases"] == ["addon/kube-proxy"]
    assert docs["InitConfiguration"]["nodeRegistration"]["kubeletExtraArgs"] == {
        "node-ip": "192.168.56.10"}


def test_v1beta2_paper_stack_uses_maps_and_the_command_line_flag() -> None:
    docs = _by_kind(kubeadm.init_documents(api="kubeadm.k8s.io/v1beta2", skip_kube_proxy=True,
                                           **{**COMMON, "kubernetes_version": "1.18.20"}))
    assert "skipPhases" not in docs["InitConfiguration"]
    assert "proxy" not in docs["ClusterConfiguration"]
    assert kubeadm.skip_phases_flag("kubeadm.k8s.io/v1beta2", True) == [
        "--skip-phases=addon/kube-proxy"]
    with_proxy = _by_kind(kubeadm.init_documents(api="kubeadm.k8s.io/v1beta2",
                                                 skip_kube_proxy=False, **COMMON))
    assert with_proxy["KubeProxyConfiguration"]["mode"] == "iptables"


def test_bad_values_refused() -> None:
    with pytest.raises(ValueError, match=r"kubeadm API 'kubeadm\.k8s\.io/v1beta1' not supported"):
        kubeadm.init_documents(api="kubeadm.k8s.io/v1beta1", skip_kube_proxy=False, **COMMON)
    with pytest.raises(ValueError, match="kube-proxy mode 'userspace'"):
        kubeadm.init_documents(api="kubeadm.k8s.io/v1beta4", skip_kube_proxy=False,
                               **{**COMMON, "kube_proxy_mode": "userspace"})


def test_profiles_name_supported_apis() -> None:
    pins = yaml.safe_load((ROOT / "versions" / "kubernetes.yml").read_text())
    for name, profile in pins["profiles"].items():
        assert profile["kubeadm_api"] in kubeadm.API_VERSIONS, name


def test_filters_through_ansible_with_the_token_kept_out_of_the_output(tmp_path: Path) -> None:
    token = "abcdef.0123456789abcdef"
    proc = ansible_playbook(
        "-i", "localhost,",
        "-c", "local", "-e", f"out_dir={tmp_path}", "-e", f"join_token={token}",
        "-e", f"ansible_python_interpreter={sys.executable}",
        str(ROOT / "tests" / "data" / "playbooks" / "kubeadm-filter.yml"),
        timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert token not in proc.stdout + proc.stderr
    init = _by_kind(list(yaml.safe_load_all((tmp_path / "init.yaml").read_text())))
    assert init["InitConfiguration"]["nodeRegistration"]["kubeletExtraArgs"][0]["value"] == \
        "192.168.56.10"
    join = next(iter(yaml.safe_load_all((tmp_path / "join.yaml").read_text())))
    assert join["discovery"]["bootstrapToken"]["token"] == token
    assert join["nodeRegistration"]["kubeletExtraArgs"] == {"node-ip": "192.168.56.11"}
    assert (tmp_path / "join.yaml").stat().st_mode & 0o777 == 0o600
    assert json.loads((tmp_path / "problems.json").read_text()) == [
        "node cp1: InternalIP 10.0.2.15, inventory node_ip 192.168.56.10",
        "node w1 from the inventory has not joined"]


def test_containerd_config_per_major_version() -> None:
    import tomllib

    from cnilab.cluster import containerd

    v2 = tomllib.loads(containerd.config_toml("2.1.4", "registry.k8s.io/pause:3.10"))
    assert v2["version"] == 3
    runtime = v2["plugins"]["io.containerd.cri.v1.runtime"]["containerd"]["runtimes"]["runc"]
    assert runtime["options"]["SystemdCgroup"] is True
    assert v2["plugins"]["io.containerd.cri.v1.images"]["pinned_images"]["sandbox"] == \
        "registry.k8s.io/pause:3.10"
    v1 = tomllib.loads(containerd.config_toml("1.4.13", "k8s.gcr.io/pause:3.2"))
    assert v1["version"] == 2
    cri = v1["plugins"]["io.containerd.grpc.v1.cri"]
    assert cri["sandbox_image"] == "k8s.gcr.io/pause:3.2"
    assert cri["containerd"]["runtimes"]["runc"]["options"]["SystemdCgroup"] is True
    with pytest.raises(ValueError, match=r"only 1\.x and 2\.x"):
        containerd.config_toml("3.0.0", "x")
