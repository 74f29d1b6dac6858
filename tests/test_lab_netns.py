"""The netns lab built for real (root): CNI plugins, VXLAN datapath, idempotence, teardown."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cnilab.ansible_engine import Progress, run_playbook
from cnilab.lab import core, sh
from cnilab.lab.plan import make_plan

pytestmark = [pytest.mark.root, pytest.mark.e2e]


def _link_stats(netns: str, dev: str) -> dict[str, int]:
    data = json.loads(sh.ip(netns, "-j", "-s", "link", "show", dev).stdout)[0]
    return {"tx": data["stats64"]["tx"]["packets"], "rx": data["stats64"]["rx"]["packets"]}


def test_lab_up_status_idempotent_down(cli, clean_lab: None, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    proc = cli("lab", "up", "--lab", "netns", "--cni", "flannel", "--mode", "vxlan", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert "flannel.1" in proc.stdout and "vni 1 port 8472 learning False" in proc.stdout

    status = json.loads(cli("lab", "status", "--json").stdout)
    assert status["emulation"] is True and status["cni"] == "flannel"
    for host in status["hosts"]:
        devices = {d["name"]: d for d in host["devices"]}
        assert devices["flannel.1"]["mtu"] == 1450 and devices["cni0"]["kind"] == "bridge"
        assert {p["mtu"] for p in host["pods"]} == {1450}
        assert host["iptables_rules"]["filter"] >= 3  # FLANNEL-FWD and its jump

    # Pods were attached by the real bridge plugin: host-local leases on disk.
    leases = list(Path("/run/cnilab/lab/ipam/h1/cbr0").glob("10.244.1.*"))
    assert len(leases) == 2

    # Inter-host pod traffic crosses flannel.1 (encapsulated), intra-host does not.
    plan = make_plan("flannel", "vxlan")
    h1 = plan.hosts[0]
    before = _link_stats(h1.netns, "flannel.1")
    remote = core.pod_address(plan, plan.hosts[1].pods[0])
    local = core.pod_address(plan, h1.pods[1])
    sh.run(sh.in_netns(h1.pods[0].netns, ["ping", "-c", "3", "-A", "-q", local]))
    assert _link_stats(h1.netns, "flannel.1")["tx"] == before["tx"]
    sh.run(sh.in_netns(h1.pods[0].netns, ["ping", "-c", "3", "-A", "-q", remote]))
    assert _link_stats(h1.netns, "flannel.1")["tx"] >= before["tx"] + 3

    # A second run of the playbook changes nothing.
    result = run_playbook("lab-netns.yml", private_data_dir=tmp_path,
                          extravars={"lab_netns_state": "present",
                                     "lab_netns_plan": plan.to_dict()},
                          progress=Progress(io.StringIO()))
    assert result.ok and result.changed_count() == 0

    proc = cli("lab", "down", "--quiet")
    assert proc.returncode == 0 and "removed" in proc.stdout
    assert not any(core.leftovers(None).values())
    proc = cli("lab", "down", "--quiet")  # idempotent
    assert proc.returncode == 0 and "no netns lab was up" in proc.stdout


def test_unknown_mode_refused_nothing_created(cli, clean_lab: None) -> None:  # type: ignore[no-untyped-def]
    proc = cli("lab", "up", "--cni", "flannel", "--mode", "udp")
    assert proc.returncode == 2
    assert "unknown mode 'udp' for cni 'flannel' (allowed: host-gw, vxlan)" in proc.stderr
    assert not core.lab_namespaces()


# (cni, mode, what must exist before the kill: a namespace, or a routing daemon's pid file)
KILL_POINTS = [("flannel", "vxlan", None), ("calico", "bgp", "bird"),
               ("kube-router", "bgp", "gobgpd")]


@pytest.mark.parametrize(("cni", "mode", "daemon"), KILL_POINTS,
                         ids=[f"{c}-{m}" for c, m, _ in KILL_POINTS])
def test_lab_killed_mid_build_then_down_leaves_nothing(cli, clean_lab: None, cni: str,  # type: ignore[no-untyped-def]
                                                       mode: str, daemon: str | None) -> None:
    exe = Path(sys.executable).with_name("cnilab")
    proc = subprocess.Popen([str(exe), "lab", "up", "--cni", cni, "--mode", mode, "--quiet"],
                            start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    pids = Path("/run/cnilab/lab/pids")

    def started() -> bool:
        if daemon is None:
            return bool(core.lab_namespaces())
        return any(pids.glob(f"{daemon}-*.pid"))

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not started():
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert started(), "the build should have got this far before the kill"
    down = cli("lab", "down", "--quiet")
    assert down.returncode == 0, down.stderr
    assert not any(core.leftovers(None).values())
    if daemon:
        found = subprocess.run(["pgrep", "-x", daemon], capture_output=True, text=True).stdout
        # Dead children of a killed parent wait as zombies until PID 1 reaps them.
        live = [p for p in found.split() if core.process_alive(int(p))]
        assert not live, f"{daemon} still running: {live}"


def test_down_stops_an_orphaned_build_first(clean_lab: None) -> None:
    """A killed cnilab leaves ansible-playbook (its own session) building on; down ends it,
    and leaves alone what builds another instance."""
    orphan = subprocess.Popen(["sleep", "60"], start_new_session=True,
                              env={**os.environ, **core.builder_env()})
    bystander = subprocess.Popen(["sleep", "60"], start_new_session=True)
    other = subprocess.Popen(["sleep", "60"], start_new_session=True,
                             env={**os.environ, **core.builder_env("cnl.other")})
    try:
        assert orphan.pid in core.builder_pids()
        assert core.builder_pids("cnl.other") == [other.pid]
        report = core.down()
        assert orphan.pid in report.processes
        assert orphan.wait(timeout=5) == -signal.SIGKILL
        assert bystander.poll() is None, "down must not touch unmarked processes"
        assert other.poll() is None, "down must not stop another instance's build"
    finally:
        for proc in (orphan, bystander, other):
            proc.kill()
            proc.wait()


def test_down_removes_only_links_named_as_the_lab_names_them(clean_lab: None) -> None:
    """A root-namespace link left by the lab (``cnl-...``) goes with ``down``; one that
    only starts with the same letters (the emulated SSH nodes' ``cnlssh-br``, a user's
    ``cnl0``) or belongs to another instance (``cnl.x-...``) stays."""
    names = ["cnl-h9-left", "cnlssh9-br", "cnl0", "cnl.x-h1"]
    try:
        for name in names:
            sh.run(["ip", "link", "add", name, "type", "bridge"])
        assert core.root_links() == ["cnl-h9-left"]
        assert core.down().root_links == ["cnl-h9-left"]
        assert core.root_links("cnl.x") == ["cnl.x-h1"]
        left = {n for n in names if sh.run(["ip", "link", "show", n], check=False).returncode == 0}
        assert left == {"cnlssh9-br", "cnl0", "cnl.x-h1"}
    finally:
        for name in names:
            sh.run(["ip", "link", "del", name], check=False)


def test_named_instances_stand_side_by_side(cli, clean_lab: None) -> None:  # type: ignore[no-untyped-def]
    """Two labs up at once (one with BIRD daemons), each reachable inside itself; down of
    one leaves the other working; nothing left after both."""
    up_a = cli("lab", "up", "--lab", "netns:a", "--cni", "flannel", "--mode", "vxlan",
               "--quiet")
    assert up_a.returncode == 0, up_a.stderr
    up_b = cli("lab", "up", "--lab", "netns:b", "--cni", "calico", "--mode", "bgp", "--quiet")
    assert up_b.returncode == 0, up_b.stderr
    assert core.lab_namespaces("cnl.a") and core.lab_namespaces("cnl.b")
    assert not core.lab_namespaces()                  # the default lab is not involved
    assert set(core.instances()) == {"a", "b"}
    every = json.loads(cli("lab", "status", "--all", "--json").stdout)
    assert every["up"] and {k: v["cni"] for k, v in every["instances"].items()} == {
        "a": "flannel", "b": "calico"}
    # the same addresses in both, each pod reaching its own lab's peer
    plan_a = make_plan("flannel", "vxlan", instance="a")
    plan_b = make_plan("calico", "bgp", instance="b")
    for plan in (plan_a, plan_b):
        remote = core.pod_address(plan, plan.hosts[1].pods[0])
        sh.run(sh.in_netns(plan.hosts[0].pods[0].netns,
                           ["ping", "-c", "2", "-A", "-W", "2", "-q", remote]))
    birds = core.leftovers("cnl.b")["processes"]
    assert birds                                      # BIRD runs in b's hosts
    # a busy instance is refused by name; another instance is not held by it
    down_a = cli("lab", "down", "--lab", "netns:a", "--quiet")
    assert down_a.returncode == 0 and down_a.stdout.strip() == "removed: netns:a", down_a
    assert not any(core.leftovers("cnl.a").values())
    assert core.leftovers("cnl.b")["processes"] == birds
    remote = core.pod_address(plan_b, plan_b.hosts[1].pods[0])
    sh.run(sh.in_netns(plan_b.hosts[0].pods[0].netns,
                       ["ping", "-c", "2", "-A", "-W", "2", "-q", remote]))
    assert json.loads(cli("lab", "status", "--lab", "netns:b", "--json").stdout)["cni"] == \
        "calico"
    bad = cli("lab", "up", "--lab", "netns:B!", "--cni", "flannel", "--mode", "vxlan")
    assert bad.returncode == 2 and "lab instance 'B!'" in bad.stderr
    assert cli("lab", "down", "--all", "--quiet").returncode == 0
    assert not any(core.leftovers(None).values()) and core.instances() == []
