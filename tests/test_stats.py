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


# Welch's classic worked example (two samples of 15 with unequal spread).
A1 = [27.5, 21.0, 19.0, 23.6, 17.0, 17.9, 16.9, 20.1, 21.9, 22.6, 23.1, 19.6, 19.0, 21.7, 21.4]
A2 = [27.1, 22.0, 20.8, 23.4, 23.4, 23.5, 25.8, 22.0, 24.8, 20.2, 21.9, 22.1, 22.9, 20.5, 24.4]


def test_welch_against_hand_computation() -> None:
    from cnilab.stats import welch

    # by hand: means 20.82 and 22.987; variances/n 0.4805 and 0.1886 (5 s.f.)
    c = welch(A1, A2)
    assert c is not None
    assert c.mean_a == pytest.approx(20.82, abs=1e-9)
    assert c.mean_b == pytest.approx(22.98667, abs=1e-5)
    assert c.t == pytest.approx(-2.46, abs=0.005)
    assert c.dof == pytest.approx(24.99, abs=0.02)
    assert c.p_value == pytest.approx(0.021, abs=0.001)
    assert c.significant()
    assert not welch([1.0, 2.0, 3.0], [1.5, 2.5, 2.0]).significant()  # type: ignore[union-attr]


def test_welch_edge_cases() -> None:
    from cnilab.stats import welch

    assert welch([1.0], [1.0, 2.0]) is None
    same = welch([5.0, 5.0], [5.0, 5.0])
    assert same is not None and same.p_value == 1.0
    differ = welch([5.0, 5.0], [6.0, 6.0])
    assert differ is not None and differ.p_value == 0.0 and differ.ratio == pytest.approx(5 / 6)


def test_spearman() -> None:
    from cnilab.stats import spearman

    assert spearman([0, 1, 2, 3], [10.0, 8.0, 5.0, 1.0]) == pytest.approx(-1.0)
    assert spearman([0, 1, 2, 3], [1.0, 3.0, 2.0, 4.0]) == pytest.approx(0.8)
    assert spearman([0, 1], [1.0, 2.0]) is None
    assert spearman([0, 1, 2], [1.0, 1.0, 1.0]) is None
