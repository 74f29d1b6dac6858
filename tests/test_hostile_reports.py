"""Reports travel: a committee opens other people's report.html. Every value that comes
from a spec, a record or a tool output must reach the page as text, never as markup.

One real run on the lab, then its report rendered from a spec whose claims carry script
and event-handler payloads: the page may hold no element or attribute that the same
report of a harmless spec does not hold.
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from cnilab.report import markdown_text, write_report

pytestmark = [pytest.mark.root, pytest.mark.e2e]

PAYLOADS = ['<script>alert(5)</script>', '<svg onload=alert(6)>',
            '<b onmouseover=alert(7)>x</b>', '"><img src=x onerror=alert(8)>',
            "javascript:alert(9)", "a | b ] (c) [d](javascript:x)"]

SPEC = """\
name: hostile
matrix: [{cni: flannel, mode: vxlan}]
placements: [intra-host]
tests:
  - suite: iperf3-tcp
    params: {duration_s: 1, omit_s: 0}
repetitions: 1
warmup: 0
"""


class _Markup(HTMLParser):
    """Every (tag, attribute names) the page holds, and every script body."""

    def __init__(self) -> None:
        super().__init__()
        self.elements: set[tuple[str, tuple[str, ...]]] = set()
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.add((tag, tuple(sorted(a for a, _ in attrs))))
        self._in_script = tag == "script"

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts.append(data)

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False


def _markup(html: str) -> _Markup:
    parser = _Markup()
    parser.feed(html)
    return parser


def _claims(texts: list[str]) -> str:
    lines = ["claims:"]
    for i, text in enumerate(texts):
        lines += [f"  - id: {json.dumps(f'X{i}' + text)}", f"    text: {json.dumps(text)}",
                  f"    source: {json.dumps(text)}", "    kind: untestable",
                  f"    reason: {json.dumps(text)}"]
    return "\n".join(lines) + "\n"


def _render(run: Path, claims: str) -> str:
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["spec"]["text"] = SPEC + claims
    (run / "manifest.json").write_text(json.dumps(manifest))
    return write_report(run).read_text()


def test_spec_and_record_values_never_become_markup(cli: Any, clean_lab: None,
                                                    tmp_path: Path) -> None:
    spec = tmp_path / "hostile.yaml"
    spec.write_text(SPEC)
    proc = cli("run", str(spec), "--lab", "netns", "--out", str(tmp_path / "runs"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    (run,) = (tmp_path / "runs").iterdir()
    benign = _markup(_render(run, _claims(["plain words"] * len(PAYLOADS))))
    html = _render(run, _claims(PAYLOADS))
    hostile = _markup(html)
    assert hostile.elements <= benign.elements, hostile.elements - benign.elements
    assert hostile.scripts == benign.scripts
    for payload in PAYLOADS:                  # markup arrived as text, escaped
        assert (payload in html) == (not any(c in payload for c in '<>"')), payload
    markdown = (run / "report.md").read_text()
    for line in markdown.splitlines():
        if line.startswith("| X"):                # a claims row keeps its seven columns
            assert len(re.split(r"(?<!\\)\|", line)) == 9, line
    assert "<script>" not in markdown
    assert re.search(r"(?<!\\)\]\(javascript:", markdown) is None   # no live link


def test_markdown_text_escapes_what_markdown_would_render() -> None:
    assert markdown_text("a | b") == "a \\| b"
    assert markdown_text("[x](javascript:alert(1))") == "\\[x\\](javascript:alert(1))"
    assert markdown_text("<script>") == "&lt;script&gt;"
    assert markdown_text("two\nlines") == "two lines"
    assert markdown_text("`code` *em* _u_") == "\\`code\\` *em* _u_"    # emphasis is harmless
    assert markdown_text(1.5) == "1.5"
