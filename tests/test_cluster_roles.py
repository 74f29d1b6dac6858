"""Real-cluster roles run by real Ansible against this machine in check mode (a dry run:
no VM or cluster can exist here, and the build machine must not be reconfigured)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml
from ansible_cli import ansible_playbook

ROOT = Path(__file__).resolve().parent.parent
PINS = yaml.safe_load((ROOT / "versions" / "kubernetes.yml").read_text())


def _inventory(tmp_path: Path) -> Path:
    path = tmp_path / "hosts.yml"
    path.write_text(yaml.safe_dump({"all": {"children": {
        "control_plane": {"hosts": {"localhost": {
            "ansible_connection": "local", "node_ip": "192.0.2.10",
            "ansible_python_interpreter": sys.executable}}},
        "workers": {"hosts": {}}}}}))
    return path


def _dry_run(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return ansible_playbook(
        "--check", "--diff",
        "-i", str(_inventory(tmp_path)), "playbooks/cluster.yml",
        "-e", f"os_prep_modules_file={tmp_path / 'modules.conf'}",
        "-e", f"os_prep_sysctl_file={tmp_path / 'sysctl.conf'}",
        "-e", "os_prep_time_service=''", *extra)


def test_os_prep_dry_run_plans_the_expected_changes(tmp_path: Path) -> None:
    modules = tmp_path / "modules.conf"
    sysctls = tmp_path / "sysctl.conf"
    proc = _dry_run(tmp_path)
    out = proc.stdout
    # os_prep ran through (the runtime's downloads come next; offline they fail here)
    assert "PLAY RECAP" in out
    # the diff shows exactly the files the role persists, and nothing was written
    assert "+overlay" in out and "+br_netfilter" in out
    assert "+net.bridge.bridge-nf-call-iptables = 1" in out and "+net.ipv4.ip_forward = 1" in out
    assert not modules.exists() and not sysctls.exists()
    assert "OS prep | Require a Debian-family system" in out
    assert "fatal" not in out.split("Runtime | Require a recorded sha256")[0]


def test_every_download_has_a_recorded_sha256() -> None:
    for profile, sums in PINS["checksums"].items():
        assert set(sums) == {"containerd", "runc", "crictl", "cni_plugins", "kubeadm", "kubelet",
                             "kubectl", "helm"}, profile
        for name, value in sums.items():
            assert re.fullmatch(r"[0-9a-f]{64}", str(value)), (profile, name, value)
    raw = (ROOT / "versions" / "kubernetes.yml").read_text()
    assert raw.count("kubespray") >= 4        # where each group of values came from


def test_runtime_refuses_downloads_without_a_recorded_sha256(tmp_path: Path) -> None:
    proc = _dry_run(tmp_path, "-e", '{"container_runtime_checksums": {"runc": ""}}')
    assert proc.returncode == 2
    version = PINS["profiles"]["current"]["containerd"]
    assert f"no sha256 recorded for containerd {version} in versions/kubernetes.yml" in \
        proc.stdout
    assert "cnilab does not download unverified binaries" in proc.stdout


def test_unknown_profile_refused(tmp_path: Path) -> None:
    proc = _dry_run(tmp_path, "-e", "cnilab_profile=k8s-1.10")
    assert proc.returncode == 2
    assert "cnilab_profile=k8s-1.10: not in versions/kubernetes.yml (current, paper-2020)" in \
        proc.stdout


def test_paper_stack_binaries_refused_without_recorded_sha256(tmp_path: Path) -> None:
    proc = _dry_run(tmp_path, "-e", "cnilab_profile=paper-2020", "--tags", "kube_packages",
                    "-e", '{"kube_packages_checksums": {}}')
    assert proc.returncode == 2, proc.stdout[-2000:]
    # Kubernetes 1.18 is not in the per-minor apt repositories: release binaries it is
    assert "Kube packages | Require a recorded sha256 for every binary" in proc.stdout
    version = PINS["profiles"]["paper-2020"]["kubernetes"]
    assert f"no sha256 recorded for kubeadm {version} in versions/kubernetes.yml" in proc.stdout
    assert "OS prep" not in proc.stdout   # tags select one role


def test_kubeadm_init_dry_run_renders_the_configuration_from_the_inventory(
        tmp_path: Path) -> None:
    config = tmp_path / "kubeadm-init.yaml"
    proc = _dry_run(tmp_path, "--tags", "kubeadm_init",
                    "-e", f"kubeadm_init_config_file={config}",
                    "-e", f"kubeadm_init_user_kubeconfig={tmp_path / 'kube' / 'config'}")
    out = proc.stdout
    assert proc.returncode == 0, out[-3000:] + proc.stderr[-2000:]
    # the diff of the configuration file kubeadm would be given (current profile: v1beta4)
    assert "+apiVersion: kubeadm.k8s.io/v1beta4" in out
    assert "+  advertiseAddress: 192.0.2.10" in out        # the inventory's node_ip
    assert "+  - name: node-ip" in out and "+    value: 192.0.2.10" in out
    assert "+  podSubnet: 10.244.0.0/16" in out
    assert f"+kubernetesVersion: v{PINS['profiles']['current']['kubernetes']}" in out
    assert "+mode: iptables" in out
    assert "+imageRepository: registry.k8s.io" in out
    assert not config.exists()
    # a dry run neither initialises nor mints a join token
    assert "Kubeadm init | Create a join token for the workers" in out
    assert "abcdef" not in out


def test_both_install_methods_install_the_pinned_cni_plugins() -> None:
    """The pkgs.k8s.io kubelet package brings CNI plugins only through its dependency on
    kubernetes-cni, at the repository's version (kubernetes/release#4156 proposes
    dropping it): both methods unpack the pinned, sha256-verified tarball themselves,
    after the packages (whose files it overwrites), and the check reads its version."""
    tasks = ROOT / "roles" / "kube_packages" / "tasks"
    for method in ("apt", "binaries"):
        steps = yaml.safe_load((tasks / f"{method}.yml").read_text())
        names = [t["name"] for t in steps]
        include = [i for i, t in enumerate(steps)
                   if t.get("ansible.builtin.include_tasks") == "cni_plugins.yml"]
        assert len(include) == 1, method
        installs = [i for i, n in enumerate(names) if "Install the pinned versions" in n or
                    "Install the release binaries" in n]
        assert installs and installs[0] < include[0], method
    plugins = yaml.safe_load((tasks / "cni_plugins.yml").read_text())
    download = next(t for t in plugins if "ansible.builtin.get_url" in t)
    assert download["ansible.builtin.get_url"]["checksum"] == \
        "sha256:{{ kube_packages_checksums['cni_plugins'] }}"
    for profile, sums in PINS["checksums"].items():
        assert len(sums["cni_plugins"]) == 64, profile
    check = (tasks / "check.yml").read_text()
    assert "host-local" in check and "cni_plugins" in check


def test_paper_profile_pulls_from_registry_k8s_io(tmp_path: Path) -> None:
    """Kubernetes 1.18's kubeadm defaults to k8s.gcr.io, which is frozen (since
    2023-04-03) and only redirects to registry.k8s.io "as a stopgap" (kubernetes.io blog,
    2023-03-10): every image the paper profile names comes from registry.k8s.io."""
    config = tmp_path / "kubeadm-init.yaml"
    proc = _dry_run(tmp_path, "--tags", "kubeadm_init", "-e", "cnilab_profile=paper-2020",
                    "-e", f"kubeadm_init_config_file={config}",
                    "-e", f"kubeadm_init_user_kubeconfig={tmp_path / 'kube' / 'config'}")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "+apiVersion: kubeadm.k8s.io/v1beta2" in proc.stdout
    assert "+imageRepository: registry.k8s.io" in proc.stdout
    for name, profile in PINS["profiles"].items():
        assert "k8s.gcr.io" not in str(profile), name


def test_a_cni_replacing_kube_proxy_makes_kubeadm_skip_its_addon(tmp_path: Path) -> None:
    config = tmp_path / "kubeadm-init.yaml"
    common = ["--tags", "kubeadm_init", "-e", f"kubeadm_init_config_file={config}",
              "-e", f"kubeadm_init_user_kubeconfig={tmp_path / 'kube' / 'config'}",
              "-e", "cnilab_cni=cilium", "-e", "cnilab_cni_mode=native"]
    replaced = _dry_run(tmp_path, *common, "-e", "cnilab_cni_replace_kube_proxy=true")
    assert replaced.returncode == 0, replaced.stdout[-3000:]
    # kubeadm v1beta4 (current profile) says it in ClusterConfiguration.proxy.disabled
    assert "+proxy:\n+  disabled: true" in replaced.stdout
    assert "+mode: iptables" not in replaced.stdout          # no KubeProxyConfiguration
    kept = _dry_run(tmp_path, *common)
    assert kept.returncode == 0 and "+mode: iptables" in kept.stdout
    assert "disabled: true" not in kept.stdout
