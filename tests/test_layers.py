"""The layering rules, checked on the source (every import, module-level or not).

spec -> engine -> target/executor -> run directory -> analysis, with the lab and the
cluster beside each other:
- analysis (stats, summary, claims, figures, report, bundle) reads the run directory
  only: it imports no lab, target or cluster code;
- the engine talks to targets through their interface: no lab or cluster code;
- cluster code imports no lab code, and lab code no cluster code (what both need, the
  network addressing and the policy-scaling rules, lives in neutral modules).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
COLLECTIONS = ROOT / "collections" / "ansible_collections" / "cnilab"

LAB = ("cnilab.lab", "cnilab.targets.netns")
CLUSTER = ("cnilab.cluster", "cnilab.cni", "cnilab.inventory", "cnilab.testbeds",
           "cnilab.manifests", "cnilab.bench.kube", "cnilab.bench.kube_startup",
           "cnilab.targets.cluster")
TARGETS = ("cnilab.targets",)
RUNNERS = ("cnilab.ansible_engine",)


def _module(path: Path) -> str:
    if path.is_relative_to(COLLECTIONS):
        return "collections." + ".".join(path.relative_to(COLLECTIONS).with_suffix("").parts)
    return ".".join(path.relative_to(ROOT).with_suffix("").parts)


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def _under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


SOURCES = {_module(p): p for p in [*ROOT.glob("cnilab/**/*.py"),
                                   *COLLECTIONS.glob("*/plugins/**/*.py")]}

RULES = [
    ("analysis", ("cnilab.stats", "cnilab.decisions", "cnilab.sequential", "cnilab.summary",
                  "cnilab.claims", "cnilab.figures", "cnilab.report", "cnilab.bundle",
                  "cnilab.reference", "cnilab.headline"),
     LAB + CLUSTER + TARGETS + RUNNERS),
    ("engine", ("cnilab.bench.engine",), LAB + CLUSTER + RUNNERS + (
        "cnilab.targets.netns", "cnilab.targets.cluster")),
    ("cluster", (*CLUSTER, "collections.cluster"), LAB),
    ("lab", (*LAB, "collections.lab"), CLUSTER),
]


@pytest.mark.parametrize(("layer", "members", "forbidden"), RULES, ids=[r[0] for r in RULES])
def test_layer_imports_nothing_it_must_not(layer: str, members: tuple[str, ...],
                                           forbidden: tuple[str, ...]) -> None:
    modules = [m for m in SOURCES if _under(m, members)]
    assert modules, layer
    offenders = sorted(f"{m} imports {name}" for m in modules for name in _imports(SOURCES[m])
                       if _under(name, forbidden) and not _under(name, members))
    assert offenders == []


def test_the_rules_see_a_forbidden_import(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    from cnilab.lab.plan import POD_CIDR\n    return POD_CIDR\n")
    assert "cnilab.lab.plan" in _imports(probe)
    assert _under("cnilab.lab.plan", LAB) and not _under("cnilab.labx", LAB)
