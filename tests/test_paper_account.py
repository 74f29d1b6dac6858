"""The paper lives inside the project: every claim and reported value of the studies cites
an anchor of docs/paper.md that exists (issue: claims cited a "paper.md" that was not in
the repository)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cnilab.spec import load_spec

ROOT = Path(__file__).resolve().parent.parent
PAPER = ROOT / "docs" / "paper.md"
STUDIES = sorted((ROOT / "experiments").glob("*.yaml"))


def _anchors() -> set[str]:
    return set(re.findall(r'<a id="([a-z0-9-]+)"></a>', PAPER.read_text(encoding="utf-8")))


def _cited(text: str) -> list[str]:
    """Anchors a source names: ``docs/paper.md#a`` and any ``#b`` after it."""
    if "docs/paper.md#" not in text:
        return []
    return re.findall(r"#([a-z0-9-]+)", text.split("docs/paper.md", 1)[1])


def test_paper_links_resolve_within_itself() -> None:
    anchors = _anchors()
    assert {f"conclusion-{i}" for i in range(1, 10)} <= anchors
    for link in re.findall(r"\]\(#([a-z0-9-]+)\)", PAPER.read_text(encoding="utf-8")):
        assert link in anchors, link


@pytest.mark.parametrize("study", STUDIES, ids=lambda p: p.name)
def test_every_claim_cites_an_anchor_that_exists(study: Path) -> None:
    spec = load_spec(study)
    anchors = _anchors()
    assert spec.claims
    for claim in spec.claims:
        # a " #" inside a plain YAML scalar starts a comment: the rest would be lost
        assert not claim.source.rstrip().endswith(","), (claim.id, claim.source)
        cited = _cited(claim.source)
        assert cited, f"{study.name} {claim.id}: source {claim.source!r} cites no anchor"
        assert set(cited) <= anchors, (claim.id, cited)
    for value in spec.paper_values:
        cited = _cited(value.where)
        assert cited and set(cited) <= anchors, (value.id, value.where)
