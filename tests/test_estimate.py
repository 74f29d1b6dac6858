"""How long a spec takes (cnilab/estimate.py) and `cnilab validate`'s plan of each variant."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cnilab.bench.engine import plan_measurements
from cnilab.estimate import DEFAULT_OVERHEAD_S, estimate, overhead_s
from cnilab.spec import load_spec

ROOT = Path(__file__).resolve().parent.parent
STUDY = ROOT / "experiments" / "lanman2020.yaml"


def _record(duration: float | None, elapsed: float) -> dict[str, object]:
    params = {} if duration is None else {"duration_s": duration}
    return {"params": params, "elapsed_s": elapsed}


def test_overhead_is_the_run_wall_time_beyond_its_tests() -> None:
    manifest = {"created_at": "2026-11-30T10:00:00+00:00"}
    state = {"updated_at": "2026-11-30T10:01:40+00:00"}          # 100 s
    records = [_record(5, 6.0)] * 8 + [_record(None, 2.0)] * 2    # 40 s of tests
    assert overhead_s(manifest, state, records) == pytest.approx(6.0)
    # without the timestamps: the records' own elapsed time beyond their tests
    assert overhead_s({}, {}, records) == pytest.approx((8 * 1.0 + 2 * 2.0) / 10)
    assert overhead_s(manifest, state, []) == DEFAULT_OVERHEAD_S


def test_estimate_counts_every_cell_at_its_test_duration() -> None:
    spec = load_spec(STUDY, "quick")
    got = estimate(spec, overhead=1.0)
    expected_s = sum((float(c.params_dict().get("duration_s", 0) or 0) + 1.0)
                     * (spec.repetitions + spec.warmup) for c in spec.cells())
    assert got.minutes_low == pytest.approx(expected_s / 60)
    assert got.measurements == len(spec.cells()) * spec.repetitions
    # a skipped mode's cells are left out
    one = spec.matrix[0].key
    assert estimate(spec, 1.0, {one}).minutes_low < got.minutes_low


def test_validate_shows_the_plan_of_every_variant(cli) -> None:  # type: ignore[no-untyped-def]
    proc = cli("validate", str(STUDY))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == f"{STUDY}: ok"
    assert load_spec(STUDY).variants == ("quick", "standard")
    assert load_spec(STUDY, "quick").variants == ("quick", "standard")
    assert load_spec(ROOT / "experiments" / "quickstart.yaml").variants == ()
    for variant, label in (("", "full"), ("quick", "--quick"), ("standard", "--standard")):
        spec = load_spec(STUDY, variant)
        line = next(x for x in lines if x.split()[0] == label)
        assert f"{len(plan_measurements(spec))} measurement(s)" in line
        assert estimate(spec).text() in line
        assert re.search(r"\d+(\.\d)? (min|h)", line)
