"""containerd's configuration: rendered per major version, and judged from what containerd
loaded (`containerd config dump`), which the container_runtime role's check reads.

A real containerd of the 1.x line (Debian 12's 1.6) loads the file cnilab renders for
the paper-2020 stack's 1.4 (both read config ``version = 2`` with the CRI plugin at
``io.containerd.grpc.v1.cri``) and dumps it; the check must find the systemd cgroup
driver and the pinned sandbox image there. containerd 1.4 itself dumps runc's options
as an empty table (its ``toml.Primitive`` has no exported fields: containerd#4203, fixed
in 1.5 by containerd#5300): that dump is made from the real 1.6 one by emptying the
table, and the check must then read the option from the file. No containerd 2.x can be
installed here: its case is judged on the rendered file, whose plugin paths the 2.x
documentation
(docs/cri/config.md at v2.0: ``io.containerd.cri.v1.runtime`` and
``io.containerd.cri.v1.images``) names.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from cnilab.cluster import containerd

ROOT = Path(__file__).resolve().parent.parent
PROFILES = yaml.safe_load((ROOT / "versions" / "kubernetes.yml").read_text())["profiles"]


def _installed_version() -> str:
    out = subprocess.run(["containerd", "--version"], capture_output=True, text=True,
                         check=True, timeout=30).stdout.split()
    return out[2].split("~")[0].lstrip("v")


def _as_containerd_14(dump: str) -> str:
    """The dump as containerd 1.4 prints it: runc's options table with nothing under it."""
    lines, out, skipping = dump.splitlines(), [], False
    for line in lines:
        if line.strip().startswith("["):
            skipping = line.strip().endswith('runtimes.runc.options]')
            out.append(line)
        elif not skipping:
            out.append(line)
    return "\n".join(out) + "\n"


def _dump(config: str, tmp_path: Path) -> str:
    binary = shutil.which("containerd")
    if binary is None:
        pytest.skip("containerd is not installed (scripts/install-system-deps.sh test)")
    path = tmp_path / "config.toml"
    path.write_text(config)
    proc = subprocess.run([binary, "--config", str(path), "config", "dump"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_a_real_containerd_1x_loads_the_paper_config_as_the_check_expects(
        tmp_path: Path) -> None:
    pins = PROFILES["paper-2020"]
    rendered = containerd.config_toml(pins["containerd"], pins["sandbox_image"])
    dump = _dump(rendered, tmp_path)
    # judged as the containerd that dumped it (>= 1.5: the dump shows runc's options)
    version = _installed_version()
    assert containerd.dumps_runtime_options(version)
    assert containerd.loaded_problems(dump, version, pins["sandbox_image"]) == []
    # the same under 1.4, whose dump hides the options: read from the file
    hidden = _as_containerd_14(dump)
    assert "SystemdCgroup" not in hidden and 'runtimes.runc.options]' in hidden
    assert not containerd.dumps_runtime_options(pins["containerd"])
    assert containerd.loaded_problems(hidden, pins["containerd"], pins["sandbox_image"],
                                      rendered) == []
    # judged from that dump alone, a correct 1.4 node would be refused
    assert containerd.loaded_problems(hidden, version, pins["sandbox_image"]) != []


def test_a_config_without_the_systemd_driver_is_named(tmp_path: Path) -> None:
    pins = PROFILES["paper-2020"]
    rendered = containerd.config_toml(pins["containerd"], "registry.k8s.io/pause:3.1")
    wrong = rendered.replace("SystemdCgroup = true", "SystemdCgroup = false")
    dump = _dump(wrong, tmp_path)
    expected = [
        'runc does not use the systemd cgroup driver (plugins."io.containerd.grpc.v1.cri".'
        "containerd.runtimes.runc.options.SystemdCgroup is False)",
        "sandbox image registry.k8s.io/pause:3.1, the profile pins registry.k8s.io/pause:3.2"]
    assert containerd.loaded_problems(dump, _installed_version(), pins["sandbox_image"]) \
        == expected
    assert containerd.loaded_problems(_as_containerd_14(dump), pins["containerd"],
                                      pins["sandbox_image"], wrong) == expected
    # containerd's own defaults (no file at all) are not what the kubelet needs either
    bare = _dump("version = 2\n", tmp_path)
    assert containerd.loaded_problems(bare, _installed_version(), pins["sandbox_image"])[0] \
        .startswith("runc does not use the systemd cgroup driver")


def test_the_2x_config_carries_what_the_check_reads() -> None:
    pins = PROFILES["current"]
    rendered = containerd.config_toml(pins["containerd"], pins["sandbox_image"])
    assert containerd.loaded_problems(rendered, pins["containerd"], pins["sandbox_image"]) == []
    # a 1.x-shaped file under containerd 2 is not read by its CRI plugins
    old = containerd.config_toml("1.7.0", pins["sandbox_image"])
    assert len(containerd.loaded_problems(old, pins["containerd"], pins["sandbox_image"])) == 2
    assert containerd.loaded_problems("not = [toml", "2.3.4", "x")[0].startswith(
        "`containerd config dump` is not TOML")
