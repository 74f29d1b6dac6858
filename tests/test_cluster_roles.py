"""Real-cluster roles run by real Ansible against this machine in check mode (a dry run:
no VM or cluster can exist here, and the build machine must not be reconfigured)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def _inventory(tmp_path: Path) -> Path:
    path = tmp_path / "hosts.yml"
    path.write_text(yaml.safe_dump({"all": {"children": {
        "control_plane": {"hosts": {"localhost": {
            "ansible_connection": "local", "node_ip": "192.0.2.10",
            "ansible_python_interpreter": sys.executable}}},
        "workers": {"hosts": {}}}}}))
    return path


def test_os_prep_dry_run_plans_the_expected_changes(tmp_path: Path) -> None:
    modules = tmp_path / "modules.conf"
    sysctls = tmp_path / "sysctl.conf"
    proc = subprocess.run(
        [str(Path(sys.executable).with_name("ansible-playbook")), "--check", "--diff",
         "-i", str(_inventory(tmp_path)), "playbooks/cluster.yml",
         "-e", f"os_prep_modules_file={modules}", "-e", f"os_prep_sysctl_file={sysctls}",
         "-e", "os_prep_time_service=''"],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
        env={**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")})
    out = proc.stdout
    assert proc.returncode == 0, out[-3000:] + proc.stderr[-2000:]
    # the diff shows exactly the files the role persists, and nothing was written
    assert "+overlay" in out and "+br_netfilter" in out
    assert "+net.bridge.bridge-nf-call-iptables = 1" in out and "+net.ipv4.ip_forward = 1" in out
    assert not modules.exists() and not sysctls.exists()
    assert "OS prep | Require a Debian-family system" in out
