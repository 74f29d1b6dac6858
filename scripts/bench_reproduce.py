#!/usr/bin/env python3
"""Benchmark: wall time of `cnilab reproduce lanman2020 --lab netns --quick` (target: <= 10
minutes on a 2-core machine), with the time per phase read back from the run directory.
Needs root. Prints figures; asserts nothing.

    .venv/bin/python scripts/bench_reproduce.py [--out DIR]
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
    args = parser.parse_args()
    exe = Path(sys.executable).with_name("cnilab")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.out or tmp)
        started = time.monotonic()
        proc = subprocess.run([str(exe), "reproduce", "lanman2020", "--lab", "netns",
                               "--quick", "--out", str(out)], capture_output=True, text=True,
                              check=False)
        elapsed = time.monotonic() - started
        print(proc.stdout)
        if proc.returncode not in (0, 1):
            print(proc.stderr[-2000:], file=sys.stderr)
            return proc.returncode
        run_dir = Path(proc.stdout.splitlines()[0].removeprefix("report: ")).parent
        records = [json.loads(line) for line in
                   (run_dir / "results.jsonl").read_text().splitlines()]
        measuring = sum(float(r["elapsed_s"]) for r in records)
        first = datetime.fromisoformat(records[0]["started_at"])
        last = datetime.fromisoformat(records[-1]["ended_at"])
        print(f"wall time {elapsed / 60:.1f} min (target <= 10 min); "
              f"{len(records)} measurements taking {measuring / 60:.1f} min; "
              f"lab up/down and reporting {(elapsed - measuring) / 60:.1f} min; "
              f"first to last measurement {(last - first).total_seconds() / 60:.1f} min")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
