"""Static checks: Python lint and types, YAML lint, playbook syntax, ansible-lint (production)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

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
    """Modules and module_utils run on the nodes: ansible-core 2.19 supports Python 3.6
    there (the paper-2020 profile's Ubuntu 18.04), so they must parse as 3.6 code and
    must not rely on postponed annotations (3.7+)."""
    import ast

    plugins = ROOT / "collections" / "ansible_collections" / "cnilab" / "cluster" / "plugins"
    files = sorted([*plugins.glob("modules/*.py"), *plugins.glob("module_utils/*.py")])
    assert files
    for path in files:
        source = path.read_text()
        ast.parse(source, filename=str(path), feature_version=(3, 6))
        assert "from __future__ import annotations" not in source, path
