"""Layout of a report page as a real headless Chromium lays it out.

The page is copied with a small probe script appended (the report itself carries no
script) and shown in an iframe of the chosen size: headless Chromium will not make a
window narrower than 500 px, and a frame is a viewport of its own, as a phone's screen
is. ``--dump-dom`` prints the outer document after the probe has written its
measurements into it as JSON. What is measured is what a reader sees: the page's scroll
width against the viewport, where each visible image ends, and where the claims table
starts.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from html import escape as html_escape
from pathlib import Path
from typing import Any

import pytest

_PROBE = """<script>
window.addEventListener('load', () => {
  const box = (el) => { const r = el.getBoundingClientRect();
    return {left: r.left, right: r.right, top: r.top + window.scrollY,
            bottom: r.bottom + window.scrollY, width: r.width, height: r.height}; };
  const visible = (el) => el.getClientRects().length > 0;
  const claims = document.getElementById('claims');
  const out = {
    viewport: {width: window.innerWidth, height: window.innerHeight},
    scroll_width: document.documentElement.scrollWidth,
    images: [...document.images].filter(visible).map((img) => ({alt: img.alt, ...box(img)})),
    claims: claims ? box(claims) : null,
    claims_first_row: claims && claims.rows.length > 1 ? box(claims.rows[1]) : null,
    tally: document.getElementById('tally') ? box(document.getElementById('tally')) : null,
  };
  const pre = parent.document.createElement('pre');
  pre.id = 'cnilab-probe';
  pre.textContent = JSON.stringify(out);
  parent.document.body.appendChild(pre);
});
</script>"""


def browser() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.skip("chromium is not installed (scripts/install-system-deps.sh test)")
    return found


def layout(html: Path, width: int, height: int) -> dict[str, Any]:
    """The probe's measurements of ``html`` in a ``width`` x ``height`` window."""
    text = html.read_text(encoding="utf-8")
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "frame.html"
        probed = html_escape(text.replace("</body>", _PROBE + "</body>"), quote=True)
        page.write_text(f'<!DOCTYPE html><html><body style="margin:0"><iframe '
                        f'style="border:0;width:{width}px;height:{height}px" '
                        f'srcdoc="{probed}"></iframe></body></html>', encoding="utf-8")
        proc = subprocess.run(
            [browser(), "--headless=new", "--no-sandbox", "--disable-gpu",
             "--hide-scrollbars", f"--window-size={max(width, 800) + 40},{height + 200}",
             "--virtual-time-budget=10000", f"--user-data-dir={tmp}/profile", "--dump-dom",
             page.as_uri()], capture_output=True, text=True, timeout=120, check=True)
    match = re.search(r'<pre id="cnilab-probe">(.*?)</pre>', proc.stdout, re.S)
    assert match, f"the probe did not run: {proc.stderr[-500:]}"
    return json.loads(match.group(1).replace("&quot;", '"').replace("&amp;", "&")
                      .replace("&lt;", "<").replace("&gt;", ">"))


def screenshot(html: Path, out: Path, width: int = 1200, height: int = 2400) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([browser(), "--headless=new", "--no-sandbox", "--disable-gpu",
                        "--hide-scrollbars", f"--window-size={width},{height}",
                        f"--user-data-dir={tmp}/profile", f"--screenshot={out}",
                        html.as_uri()], capture_output=True, timeout=120, check=True)
