"""CNI roles run by real Ansible on this machine in check mode (no cluster can exist
here): the role renders the pinned manifest through the cnilab.cluster.cni_manifest
filter on the controller, shows the file it would place, and would apply it; the
readiness rule it waits on is tested on kubectl's JSON shape."""

from __future__ import annotations

import sys
from pathlib import Path

import yaml
from ansible_cli import ansible_playbook

from cnilab.cluster.verify import daemonset_problems

ROOT = Path(__file__).resolve().parent.parent
MINI = ROOT / "tests" / "data" / "manifests" / "flannel-mini.yml"


def _inventory(tmp_path: Path) -> Path:
    path = tmp_path / "hosts.yml"
    path.write_text(yaml.safe_dump({"all": {"children": {
        "control_plane": {"hosts": {"localhost": {
            "ansible_connection": "local", "node_ip": "192.0.2.10",
            "ansible_python_interpreter": sys.executable}}},
        "workers": {"hosts": {"w1": {"ansible_host": "192.0.2.11", "node_ip": "192.0.2.11"}}},
    }}}))
    return path


def test_flannel_role_dry_run_renders_and_would_apply(tmp_path: Path) -> None:
    manifest = tmp_path / "etc" / "flannel.yaml"
    artifacts = tmp_path / "run"
    proc = ansible_playbook(
        "--check", "--diff",
        "-i", str(_inventory(tmp_path)), "playbooks/cni.yml",
        "-e", "cnilab_cni=flannel", "-e", "cnilab_cni_mode=host-gw",
        "-e", f"cnilab_artifact_dir={artifacts}",
        "-e", f"cni_manifest_from_file={MINI}", "-e", f"cni_manifest_path={manifest}",
        timeout=300)
    out = proc.stdout
    assert proc.returncode == 0, out[-3000:] + proc.stderr[-2000:]
    # the diff of the file the role would place: patched for host-gw, both node IPs
    assert '+        "Type": "host-gw"' in out
    assert r"+        - --iface-regex=^(192\.0\.2\.10|192\.0\.2\.11)$" in out
    assert "+# cnilab manifest: flannel v0.28.9, mode host-gw, policy off" in out
    assert "CNI manifest | Apply the manifest" in out
    assert not manifest.exists() and not artifacts.exists()       # a dry run writes nothing


def test_cni_playbook_needs_a_plugin_and_a_mode(tmp_path: Path) -> None:
    proc = ansible_playbook(
        "--check",
        "-i", str(_inventory(tmp_path)), "playbooks/cni.yml", "-e", "cnilab_cni=flannel",
        timeout=300)
    assert proc.returncode == 2
    assert "give -e cnilab_cni=<plugin> -e cnilab_cni_mode=<mode>" in proc.stdout


def test_daemonset_readiness_rule() -> None:
    def ds(name: str, desired: int, ready: int, updated: int) -> dict[str, object]:
        return {"metadata": {"name": name, "namespace": "kube-flannel"},
                "status": {"desiredNumberScheduled": desired, "numberReady": ready,
                           "updatedNumberScheduled": updated}}

    assert daemonset_problems({"items": [ds("kube-flannel-ds", 3, 3, 3)]}, 3) == []
    assert daemonset_problems({"items": [ds("kube-flannel-ds", 3, 2, 3)]}, 3) == [
        "kube-flannel/kube-flannel-ds: 2/3 ready, 3 updated"]
    # flannel v0.12.0: one DaemonSet per architecture, the others select no amd64 node
    per_arch = [ds("kube-flannel-ds-amd64", 3, 3, 3), ds("kube-flannel-ds-arm", 0, 0, 0)]
    assert daemonset_problems({"items": per_arch}, 3) == []
    assert daemonset_problems({"items": per_arch}, 4) == [
        "kube-flannel-ds-amd64, kube-flannel-ds-arm: scheduled on 3 of the 4 nodes"]
    assert daemonset_problems({"items": [ds("kube-flannel-ds-arm", 0, 0, 0)]}, 3) == [
        "kube-flannel-ds-arm: scheduled on 0 of the 3 nodes"]
    assert daemonset_problems({"items": []}, 3) == ["no DaemonSet matched"]


def test_node_peers_pairs_inventory_ips_with_pod_subnets() -> None:
    from cnilab.cluster.verify import node_peers

    nodes = {"items": [{"metadata": {"name": "cp1"}, "spec": {"podCIDR": "10.244.0.0/24"}},
                       {"metadata": {"name": "w1"}, "spec": {"podCIDR": "10.244.1.0/24"}},
                       {"metadata": {"name": "w2"}, "spec": {}}]}
    ips = {"cp1": "192.0.2.10", "w1": "192.0.2.11", "w2": "192.0.2.12"}
    assert node_peers(nodes, ips, "cp1") == {"w1": ["192.0.2.11", "10.244.1.0/24"],
                                             "w2": ["192.0.2.12", ""]}


def test_calico_role_dry_run_renders_the_mode(tmp_path: Path) -> None:
    import pytest

    upstream = ROOT.parent / "shared" / "fixtures" / "upstream" / "calico" / "v3.32.1" / \
        "calico.yaml"
    if not upstream.exists():
        pytest.skip("upstream fixture calico/v3.32.1/calico.yaml absent (../shared)")
    manifest = tmp_path / "etc" / "calico.yaml"
    proc = ansible_playbook(
        "--check", "--diff",
        "-i", str(_inventory(tmp_path)), "playbooks/cni.yml",
        "-e", "cnilab_cni=calico", "-e", "cnilab_cni_mode=vxlan",
        "-e", f"cni_manifest_from_file={upstream}", "-e", f"cni_manifest_path={manifest}",
        timeout=300,
        # calico.yaml is 350 kB: show its whole diff
        env={"ANSIBLE_MAX_DIFF_SIZE": "2000000"})
    out = proc.stdout
    assert proc.returncode == 0, out[-3000:] + proc.stderr[-2000:]
    assert "+  calico_backend: vxlan" in out
    assert "+          value: cidr=192.0.2.10/32,192.0.2.11/32" in out
    assert "CNI manifest | Apply the manifest" in out and not manifest.exists()


def test_kube_router_and_weave_roles_dry_run(tmp_path: Path) -> None:
    import pytest

    upstream = ROOT.parent / "shared" / "fixtures" / "upstream"
    cases = [("kube-router", "bgp", "current", "kube-router/v2.11.1/kubeadm-kuberouter.yaml",
              ["+        - --run-firewall=true", "+        - --enable-overlay=false"]),
             ("weave", "sleeve", "paper-2020", "weave/v2.6.5/weave-daemonset-k8s-1.11.yaml",
              ["+        - name: WEAVE_NO_FASTDP", "+        image: weaveworks/weave-npc:2.6.5"])]
    for cni, mode, profile, relative, expected in cases:
        if not (upstream / relative).exists():
            pytest.skip(f"upstream fixture {relative} absent (../shared)")
        proc = ansible_playbook(
            "--check", "--diff",
            "-i", str(_inventory(tmp_path)), "playbooks/cni.yml",
            "-e", f"cnilab_cni={cni}", "-e", f"cnilab_cni_mode={mode}",
            "-e", "cnilab_cni_policy=true", "-e", f"cnilab_profile={profile}",
            "-e", f"cni_manifest_from_file={upstream / relative}",
            "-e", f"cni_manifest_path={tmp_path / (cni + '.yaml')}",
            timeout=300)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
        for line in expected:
            assert line in proc.stdout, (cni, line, proc.stdout[-4000:])


def test_one_filter_dispatches_to_each_plugins_mode_check() -> None:
    """The cni_manifest role's mode step calls cnilab.cluster.cni_mode_problems, which
    must reach the named plugin's own check with Ansible's list-shaped peers."""
    sys.path.insert(0, str(ROOT / "collections"))
    from ansible_collections.cnilab.cluster.plugins.filter.cni import cni_mode_problems

    links = [{"ifname": "weave"}, {"ifname": "vxlan-6784",
                                   "linkinfo": {"info_kind": "vxlan",
                                                "info_data": {"id": 1, "port": 6784}}}]
    routes = [{"dst": "10.244.0.0/16", "dev": "weave"}]
    assert cni_mode_problems("weave", "fastdp", links, routes, {}) == []
    assert cni_mode_problems("weave", "sleeve", links, routes, {}) == [
        "vxlan-6784 exists: fast datapath is (or was) running, not sleeve"]
    assert cni_mode_problems("flannel", "host-gw", [], [], {"w1": ["192.0.2.11",
                                                                   "10.244.1.0/24"]}) == [
        "no route to w1's pod subnet 10.244.1.0/24"]


def test_cilium_configuration_check_reads_the_agents_config_map() -> None:
    """cni_cilium's check compares the cilium-config ConfigMap (what the chart rendered)
    with the mode: routing, tunnel protocol, kube-proxy replacement, policy. Keys as the
    1.20 chart's cilium-configmap.yaml renders them."""
    sys.path.insert(0, str(ROOT / "collections"))
    from ansible_collections.cnilab.cluster.plugins.filter.cni import cni_config_problems

    native = {"routing-mode": "native", "tunnel-protocol": "vxlan",
              "auto-direct-node-routes": "true", "kube-proxy-replacement": "true",
              "enable-policy": "default"}
    assert cni_config_problems("cilium", "native", "current", native,
                               replace_kube_proxy=True) == []
    assert cni_config_problems("cilium", "vxlan", "current", native,
                               replace_kube_proxy=True) == [
        "cilium-config routing-mode is 'native', the mode needs 'tunnel'"]
    assert cni_config_problems("cilium", "native", "current", native) == [
        "cilium-config kube-proxy-replacement is 'true', the mode needs 'false'"]
    # policy off and on both run the default enforcement (on adds policies); only
    # --policy never switches the engine off
    assert cni_config_problems("cilium", "native", "current", native, policy=True,
                               replace_kube_proxy=True) == []
    assert cni_config_problems("cilium", "native", "current", native, replace_kube_proxy=True,
                               policy_engine=False) == [
        "cilium-config enable-policy is 'default', the mode needs 'never'"]
    paper = {"tunnel": "vxlan", "kube-proxy-replacement": "disabled"}
    assert cni_config_problems("cilium", "vxlan", "paper-2020", paper, policy=True) == []
    assert cni_config_problems("cilium", "native", "paper-2020", paper, policy=True) == [
        "cilium-config tunnel is 'vxlan', the mode needs 'disabled'"]
    # plugins without an agent-config check have nothing to say here
    assert cni_config_problems("flannel", "vxlan", "current", {}) == []


def test_argument_spec_choices_are_the_catalogs() -> None:
    """Every role option that names a plugin or a mode offers exactly what the catalog
    (cnilab/catalog/modes.yml) has: plugins installed by that role, a plugin's modes."""
    from cnilab.modes import catalog, plugin_facts

    specs = {p.parent.parent.name: yaml.safe_load(p.read_text())["argument_specs"]["main"]
             ["options"] for p in (ROOT / "roles").glob("cni_*/meta/argument_specs.yml")}
    assert sorted(specs) == ["cni_cilium", "cni_manifest"]
    installed_by = {"cni_manifest": "manifest", "cni_cilium": "helm"}
    for role, options in specs.items():
        plugins = sorted(c for c, f in plugin_facts().items()
                         if f.install == installed_by[role])
        if f"{role}_cni" in options:
            assert sorted(options[f"{role}_cni"]["choices"]) == plugins, role
        mode = options.get(f"{role}_mode", {})
        if "choices" in mode:
            assert len(plugins) == 1, role      # one plugin: its modes are the choices
            assert sorted(mode["choices"]) == sorted(catalog()[plugins[0]]), role
    assert "choices" in specs["cni_cilium"]["cni_cilium_mode"]
