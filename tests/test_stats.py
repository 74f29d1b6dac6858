"""Statistics against hand-computed values."""

from __future__ import annotations

import pytest

from cnilab.stats import summarize, t_critical


def test_t_critical_known_values() -> None:
    assert t_critical(0.95, 2) == pytest.approx(4.302653, abs=1e-5)
    assert t_critical(0.95, 9) == pytest.approx(2.262157, abs=1e-5)


def test_ci_of_three_values() -> None:
    # values 10, 12, 14: mean 12, sample sd 2, half width = 4.302653 * 2 / sqrt(3) = 4.968275
    s = summarize([10.0, 12.0, 14.0])
    assert s.n == 3
    assert s.mean == pytest.approx(12.0)
    assert s.median == pytest.approx(12.0)
    assert s.stdev == pytest.approx(2.0)
    assert s.ci95_half_width == pytest.approx(4.968275, abs=1e-5)
    assert s.ci95_low == pytest.approx(12.0 - 4.968275, abs=1e-5)
    assert s.cv == pytest.approx(2.0 / 12.0)


def test_single_value_has_no_spread() -> None:
    s = summarize([5.0])
    assert s.stdev is None and s.ci95_half_width is None and s.mean == 5.0


def test_empty_rejected() -> None:
    with pytest.raises(ValueError):
        summarize([])
