"""node_reset over real SSH against emulated nodes: the clean baseline is recorded by the
cluster playbook, a test leaves the residue CNI plugins leave (bridges, VXLAN and veth
links, routes, rules, chains in both iptables backends, ipsets, nft tables, a clsact
qdisc, a BPF pin, CNI files, a changed sysctl), and the reset playbook must bring every
node back to its baseline, save what it did, and change nothing when run again."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from ansible_cli import ansible_playbook
from sshnodes import Node, SshNodes

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.root
NODE_NAMES = ["cp1", "w1"]   # the conftest's emulated nodes




def _playbook(nodes: SshNodes, tmp_path: Path, playbook: str,
              *extra: str) -> subprocess.CompletedProcess[str]:
    inventory = nodes.inventory(tmp_path / "hosts.yml")
    return ansible_playbook(
        "-i", str(inventory),
        f"playbooks/{playbook}", *extra,
        env={"ANSIBLE_PRIVATE_KEY_FILE": str(nodes.key)})


def _recap(out: str) -> dict[str, dict[str, int]]:
    recap = {}
    for line in out.split("PLAY RECAP", 1)[1].splitlines()[1:]:
        if ":" in line:
            host, _, counts = line.partition(":")
            recap[host.strip()] = {k: int(v) for k, v in
                                   (item.split("=") for item in counts.split())}
    return recap


def _leave_cni_residue(node: Node, peer_ip: str) -> None:
    """What a plugin leaves after kubeadm reset, in the shapes the five plugins use."""
    script = f"""
set -e
ip link add cni0 type bridge && ip addr add 10.244.0.1/24 dev cni0 && ip link set cni0 up
ip link add flannel.1 type vxlan id 1 dstport 8472 dev eth0 nolearning
ip addr add 10.244.0.0/32 dev flannel.1 && ip link set flannel.1 up
ip link add veth1234 type veth peer name veth5678 && ip link set veth1234 master cni0
ip route add 10.244.1.0/24 via {peer_ip} dev eth0 proto 186
ip route add blackhole 10.244.2.0/26 proto 186
ip route add 10.244.3.0/24 dev eth0 table 2004
ip rule add fwmark 0x200/0xf00 lookup 2004 pref 9
ip addr add 10.244.9.9/32 dev eth0
ipset create weave-test hash:ip && ipset add weave-test 10.244.0.5
iptables-nft -N KUBE-FORWARD && iptables-nft -A FORWARD -j KUBE-FORWARD
iptables-nft -A KUBE-FORWARD -m set --match-set weave-test src -j ACCEPT
iptables-nft -t nat -N CNI-abc && iptables-nft -t nat -A POSTROUTING -s 10.244.0.0/16 -j CNI-abc
iptables-legacy -t mangle -N cali-PREROUTING
iptables-legacy -t mangle -A PREROUTING -j cali-PREROUTING
iptables-nft -P FORWARD DROP
nft add table inet cilium-test
tc qdisc add dev eth0 clsact
mkdir -p /sys/fs/bpf/tc/globals
bpftool map create /sys/fs/bpf/tc/globals/cilium_test type hash key 4 value 4 \\
  entries 4 name cilium_test
mkdir -p /etc/cni/net.d /var/lib/cni/networks/cbr0 /run/flannel
echo '{{}}' > /etc/cni/net.d/10-flannel.conflist
echo 10.244.0.2 > /var/lib/cni/networks/cbr0/10.244.0.2
echo FLANNEL_NETWORK=10.244.0.0/16 > /run/flannel/subnet.env
sysctl -qw net.ipv4.conf.all.rp_filter=2
"""
    node.exec("sh", "-c", script)


def _state(node: Node) -> str:
    """A plain view of the node for comparing before and after (not the module's view).
    Of iptables it keeps rules, user chains and non-ACCEPT policies: legacy tables, once
    loaded in a namespace, cannot be removed, and an empty one filters nothing."""
    rules = "grep -E '^-A|^:[^ ]+ (DROP|-) '"
    return node.exec("sh", "-c", "ip -br link; ip -br addr; ip route show table all "
                     "| grep -v '^local\\|^broadcast'; ip rule;"
                     f"iptables-nft-save | {rules}; iptables-legacy-save | {rules};"
                     "ipset list -n; nft list tables;"
                     "tc qdisc show dev eth0;"
                     "find /sys/fs/bpf /etc/cni/net.d /var/lib/cni /run/flannel 2>/dev/null;"
                     " sysctl net.ipv4.conf.all.rp_filter").stdout


def test_reset_returns_every_node_to_its_baseline(nodes: SshNodes, tmp_path: Path) -> None:
    recorded = _playbook(nodes, tmp_path, "cluster.yml", "--tags", "node_reset")
    assert recorded.returncode == 0, recorded.stdout[-3000:]
    assert "Node reset | Record the clean baseline" in recorded.stdout
    for node in nodes.nodes:
        assert node.path("/var/lib/cnilab/node-baseline.json").is_file()
    clean = {node.name: _state(node) for node in nodes.nodes}
    again = _playbook(nodes, tmp_path, "cluster.yml", "--tags", "node_reset")
    assert all(c["changed"] == 0 for c in _recap(again.stdout).values()), again.stdout[-2000:]

    for node, peer in zip(nodes.nodes, [*nodes.nodes[1:], nodes.nodes[0]], strict=True):
        _leave_cni_residue(node, peer.ip)
    assert _state(nodes.nodes[0]) != clean["cp1"]

    artifacts = tmp_path / "run"
    reset = _playbook(nodes, tmp_path, "reset.yml", "-e", f"cnilab_artifact_dir={artifacts}")
    assert reset.returncode == 0, reset.stdout[-4000:]
    for node in nodes.nodes:
        assert _state(node) == clean[node.name], node.name
        report = (artifacts / "node-reset" / f"{node.name}.txt").read_text()
        assert "# differences remaining (0):" in report
        assert "# purge failures (0):" in report
        for action in ("ip link del cni0", "ip link del flannel.1", "ipset destroy weave-test",
                       "nft delete table inet cilium-test", "tc qdisc del dev eth0 clsact",
                       "iptables-nft-restore < baseline table filter",
                       "iptables-legacy-restore < baseline table mangle",
                       "ip -4 rule del pref 9", "ip addr del 10.244.9.9/32 dev eth0",
                       "rm /sys/fs/bpf/tc", "rm /etc/cni/net.d", "rm /var/lib/cni",
                       "rm /run/flannel", "sysctl net.ipv4.conf.all.rp_filter=0"):
            assert action in report, (action, report)
    # kubeadm was never on these nodes: nothing to kubeadm-reset, and it says so
    assert "Node reset | Run kubeadm reset" in reset.stdout

    second = _playbook(nodes, tmp_path, "reset.yml", "-e", f"cnilab_artifact_dir={artifacts}")
    assert second.returncode == 0, second.stdout[-3000:]
    assert all(c["changed"] == 0 for c in _recap(second.stdout).values()), second.stdout[-3000:]


def test_dirty_node_fails_and_names_what_remains(nodes: SshNodes, tmp_path: Path) -> None:
    recorded = _playbook(nodes, tmp_path, "cluster.yml", "--tags", "node_reset")
    assert recorded.returncode == 0, recorded.stdout[-3000:]
    worker = nodes.nodes[1]
    worker.exec("sh", "-c", "ip link add kube-bridge type bridge && "
                "iptables-nft -N KUBE-ROUTER-INPUT && mkdir -p /var/lib/kube-router && "
                "touch /var/lib/kube-router/kubeconfig")
    try:
        artifacts = tmp_path / "run"
        proc = _playbook(nodes, tmp_path, "reset.yml", "-e", "node_reset_purge=false",
                         "-e", f"cnilab_artifact_dir={artifacts}")
        assert proc.returncode == 2
        assert "w1 differs from its clean baseline in 3 way(s)" in proc.stdout
        report = (artifacts / "node-reset" / "w1.txt").read_text()
        assert "link kube-bridge (bridge): not in the baseline" in report
        assert "iptables nft-v4 filter: chain KUBE-ROUTER-INPUT not in the baseline" in report
        assert "path /var/lib/kube-router: not in the baseline" in report
        assert "# differences remaining (0):" in \
            (artifacts / "node-reset" / "cp1.txt").read_text()
    finally:
        cleanup = _playbook(nodes, tmp_path, "reset.yml")
        assert cleanup.returncode == 0, cleanup.stdout[-3000:]


def test_reset_without_a_baseline_is_refused(nodes: SshNodes, tmp_path: Path) -> None:
    proc = _playbook(nodes, tmp_path, "reset.yml",
                     "-e", "node_reset_baseline_file=/var/lib/cnilab/none.json")
    assert proc.returncode == 2
    assert "no clean baseline at /var/lib/cnilab/none.json" in proc.stdout
