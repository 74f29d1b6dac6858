#!/usr/bin/env python3
"""Benchmark: wall time and verdicts of `cnilab reproduce lanman2020 --lab netns --quick`
(target: <= 5 minutes on a 2-core machine) or `--standard` (target: <= 30 minutes, and at
least 90 % of the claims the lab can test decided), with the time per phase read back
from the run directory. Needs root. Prints figures; asserts nothing.

    .venv/bin/python scripts/bench_reproduce.py [--standard] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="keep the run here (default: a temporary directory)")
    parser.add_argument("--standard", action="store_true",
                        help="the standard variant (default: quick)")
    args = parser.parse_args()
    variant = "standard" if args.standard else "quick"
    target_min = 30 if args.standard else 5
    exe = Path(sys.executable).with_name("cnilab")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.out or tmp)
        started = time.monotonic()
        proc = subprocess.run([str(exe), "reproduce", "lanman2020", "--lab", "netns",
                               f"--{variant}", "--out", str(out)], capture_output=True,
                              text=True, check=False)
        elapsed = time.monotonic() - started
        print(proc.stdout)
        if proc.returncode not in (0, 1):
            print(proc.stderr[-2000:], file=sys.stderr)
            return proc.returncode
        run_dir = Path(proc.stdout.splitlines()[-1].removeprefix("report: ")).parent
        records = [json.loads(line) for line in
                   (run_dir / "results.jsonl").read_text().splitlines()]
        measuring = sum(float(r["elapsed_s"]) for r in records)
        first = datetime.fromisoformat(records[0]["started_at"])
        last = datetime.fromisoformat(records[-1]["ended_at"])
        print(f"{variant}: wall time {elapsed / 60:.1f} min (target <= {target_min} min); "
              f"{len(records)} measurements taking {measuring / 60:.1f} min; "
              f"lab up/down and reporting {(elapsed - measuring) / 60:.1f} min; "
              f"first to last measurement {(last - first).total_seconds() / 60:.1f} min")
        claims = json.loads((run_dir / "claims.json").read_text())
        testable = [c for c in claims if c["verdict"] != "not testable"]
        decided = [c for c in testable
                   if c["verdict"] in ("holds", "does not hold", "no meaningful difference")]
        counts: dict[str, int] = {}
        for c in claims:
            counts[c["verdict"]] = counts.get(c["verdict"], 0) + 1
        share = len(decided) / len(testable) if testable else 0.0
        print(f"verdicts: {', '.join(f'{n} {v}' for v, n in counts.items())}; "
              f"{len(decided)} of {len(testable)} testable claims decided ({100 * share:.0f} %)")
        state = json.loads((run_dir / "state.json").read_text())
        for look, pending in sorted(state.get("looks", {}).items(), key=lambda i: int(i[0])):
            print(f"  after round {look}: undecided {', '.join(pending) or 'none'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
