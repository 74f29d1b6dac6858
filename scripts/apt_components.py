#!/usr/bin/env python3
"""Enable an extra archive component (Debian ``non-free``, Ubuntu ``multiverse``).

Why a script: the mirror a machine uses is whatever its administrator set up,
so we never write a mirror address of our own. We copy the machine's existing
``main`` entries (one-line ``sources.list`` style and deb822 ``.sources``
style) into one file of ours that names only the extra component. Re-running
rewrites the same file: idempotent, and removing the file undoes it.
"""

from __future__ import annotations

import sys
from pathlib import Path

APT_DIR = Path("/etc/apt")
OUR_STEM = "cnilab-extra-components"


def one_line_entries(text: str, component: str) -> list[str]:
    """Return ``deb URI SUITE COMPONENT`` lines for every ``deb ... main`` line."""
    out: list[str] = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        fields = line.split()
        if len(fields) < 4 or fields[0] != "deb":
            continue
        options = ""
        rest = fields[1:]
        if rest[0].startswith("["):
            end = next(i for i, f in enumerate(rest) if f.endswith("]"))
            options = " ".join(rest[: end + 1]) + " "
            rest = rest[end + 1 :]
        uri, suite, components = rest[0], rest[1], rest[2:]
        if "main" in components and component not in components:
            out.append(f"deb {options}{uri} {suite} {component}")
    return out


def deb822_stanzas(text: str, component: str) -> list[str]:
    """Return deb822 stanzas that mirror every stanza listing ``main``."""
    out: list[str] = []
    for block in text.split("\n\n"):
        fields: dict[str, str] = {}
        for raw in block.splitlines():
            if raw.startswith("#") or ":" not in raw or raw.startswith((" ", "\t")):
                continue
            key, value = raw.split(":", 1)
            fields[key.strip()] = value.strip()
        components = fields.get("Components", "").split()
        if "main" not in components or component in components:
            continue
        if fields.get("Enabled", "yes").lower() == "no":
            continue
        stanza = [f"Types: {fields.get('Types', 'deb')}", f"URIs: {fields['URIs']}",
                  f"Suites: {fields['Suites']}", f"Components: {component}"]
        if "Signed-By" in fields:
            stanza.append(f"Signed-By: {fields['Signed-By']}")
        out.append("\n".join(stanza))
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: apt_components.py COMPONENT", file=sys.stderr)
        return 2
    component = argv[1]
    one_line: list[str] = []
    stanzas: list[str] = []
    sources = [APT_DIR / "sources.list", *sorted((APT_DIR / "sources.list.d").glob("*"))]
    for path in sources:
        if not path.is_file() or path.stem == OUR_STEM:
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        if path.suffix == ".sources":
            stanzas += deb822_stanzas(text, component)
        elif path.suffix == ".list" or path.name == "sources.list":
            one_line += one_line_entries(text, component)
    if not one_line and not stanzas:
        print(f"apt: no 'main' entries found, or '{component}' already enabled")
        return 0
    if stanzas:
        target = APT_DIR / "sources.list.d" / f"{OUR_STEM}.sources"
        target.write_text("\n\n".join(dict.fromkeys(stanzas)) + "\n", encoding="utf-8")
    else:
        target = APT_DIR / "sources.list.d" / f"{OUR_STEM}.list"
        target.write_text("\n".join(dict.fromkeys(one_line)) + "\n", encoding="utf-8")
    print(f"apt: enabled component '{component}' in {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
