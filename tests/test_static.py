"""Static checks: Python lint and types, YAML lint, playbook syntax, ansible-lint (production)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
           "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run(list(argv), cwd=ROOT, capture_output=True, text=True, env=env,
                          timeout=600, check=False)


def _assert_clean(proc: subprocess.CompletedProcess[str]) -> None:
    assert proc.returncode == 0, f"{proc.args}\n{proc.stdout}\n{proc.stderr}"


def test_ruff() -> None:
    _assert_clean(_run(str(BIN / "ruff"), "check", "cnilab", "tests", "collections", "scripts"))


def test_mypy() -> None:
    _assert_clean(_run(str(BIN / "mypy")))


def test_yamllint() -> None:
    _assert_clean(_run(str(BIN / "yamllint"), "--strict", "."))


@pytest.mark.parametrize("playbook", sorted(p.name for p in (ROOT / "playbooks").glob("*.yml")))
def test_playbook_syntax(playbook: str) -> None:
    _assert_clean(_run(str(BIN / "ansible-playbook"), "--syntax-check", f"playbooks/{playbook}"))


def test_ansible_lint_production_offline() -> None:
    proc = _run(str(BIN / "ansible-lint"), "--offline", "--profile", "production")
    _assert_clean(proc)
    assert "Profile 'production' was required, and it passed" in proc.stdout + proc.stderr


def test_no_version_literals_outside_pins() -> None:
    """Versions a result depends on live in versions/ only."""
    import yaml

    stacks = yaml.safe_load((ROOT / "versions" / "kubernetes.yml").read_text())["profiles"]
    pinned = ["3.12-1+deb12u2", "2.7.0-0.1", "1.1.1+ds1", "2.0.12-7", "v0.28.9", "v3.32.1",
              "2.19.14", *(s[k] for s in stacks.values()
                           for k in ("kubernetes", "containerd", "runc", "crictl"))]
    offenders = []
    for path in [*ROOT.glob("cnilab/**/*.py"), *ROOT.glob("roles/**/*.yml"),
                 *ROOT.glob("playbooks/*.yml"), *ROOT.glob("scripts/*")]:
        text = path.read_text(encoding="utf-8")
        offenders += [f"{path.relative_to(ROOT)}: {v}" for v in pinned if v in text]
    assert not offenders


def test_node_side_python_parses_with_the_oldest_target_grammar() -> None:
    """Modules and module_utils run on the nodes: they must parse with the grammar of the
    oldest Python the pinned ansible-core runs modules with (``_PY_MIN``, read from its
    source by the preflight, which refuses older nodes) and must not rely on postponed
    annotations."""
    import ast

    from cnilab.cluster.preflight import min_target_python

    oldest = min_target_python()
    assert oldest >= (3, 8)     # ansible-core 2.19: module_utils/basic.py _PY_MIN = (3, 8)
    plugins = ROOT / "collections" / "ansible_collections" / "cnilab" / "cluster" / "plugins"
    files = sorted([*plugins.glob("modules/*.py"), *plugins.glob("module_utils/*.py")])
    assert files
    for path in files:
        source = path.read_text()
        ast.parse(source, filename=str(path), feature_version=oldest[:2])
        assert "from __future__ import annotations" not in source, path


def test_the_os_preparation_installs_what_deb822_repository_imports() -> None:
    """ansible.builtin.deb822_repository (kube_packages' apt method) fails with
    missing_required_lib unless the node has the package its source names (ansible-core
    2.19: ``missing_required_lib("python3-debian")``); os_prep must install it, and run
    before kube_packages."""
    import importlib.util
    import re

    spec = importlib.util.find_spec("ansible.modules.deb822_repository")
    assert spec is not None and spec.origin is not None
    needed = re.findall(r'missing_required_lib\("([^"]+)"\)', Path(spec.origin).read_text())
    assert needed == ["python3-debian"]
    packages = yaml.safe_load((ROOT / "roles/os_prep/defaults/main.yml").read_text())[
        "os_prep_packages"]
    assert set(needed) <= set(packages)
    uses = [p.relative_to(ROOT) for p in ROOT.glob("roles/*/tasks/*.yml")
            if "deb822_repository" in p.read_text()]
    assert uses == [Path("roles/kube_packages/tasks/apt.yml")]
    play = yaml.safe_load((ROOT / "playbooks/cluster.yml").read_text())[0]
    order = [r["role"] for r in play["roles"]]
    assert order.index("os_prep") < order.index("kube_packages")
