"""Parsers from raw tool output to metric dictionaries (units in the key names).

A parser refuses what is not a number where a number belongs: a raw file is evidence
that travels in bundles and is re-parsed by ``cnilab verify``, so a truncated value, a
string where a number was, NaN, an infinity or a negative rate is a ParseError naming
the field, never a metric.
"""

from __future__ import annotations

import math
from typing import Any

from cnilab.errors import InputError


class ParseError(InputError):
    """The text is not a valid output of the tool (or the tool reported an error)."""


def number(value: Any, field: str, *, negative: bool = False) -> float:
    """``value`` as a finite number (not a bool, not a string), non-negative unless
    ``negative``; else a ParseError naming ``field``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ParseError(f"{field} is not a number: {str(value)[:40]!r}")
    if not math.isfinite(value):
        raise ParseError(f"{field} is not a finite number: {value!r}")
    if value < 0 and not negative:
        raise ParseError(f"{field} is negative: {value!r}")
    return float(value)
