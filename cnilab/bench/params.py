"""Declared, typed test parameters: what a suite accepts and how it is checked.

Suites declare their parameters here so that spec validation can name the field
and the allowed values without knowing any suite in particular.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ParamSpec:
    """One parameter of a suite."""

    name: str
    kind: type
    default: Any
    help: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[Any, ...] | None = None

    def describe_allowed(self) -> str:
        if self.choices is not None:
            return "one of " + ", ".join(str(c) for c in self.choices)
        kind = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}
        text = kind.get(self.kind, self.kind.__name__)
        if self.minimum is not None and self.maximum is not None:
            text += f" from {self.minimum:g} to {self.maximum:g}"
        elif self.minimum is not None:
            text += f" >= {self.minimum:g}"
        return text

    def check(self, value: Any) -> str | None:
        """Return an error message, or None when ``value`` is acceptable."""
        ok_type = isinstance(value, self.kind) and not (
            self.kind in (int, float) and isinstance(value, bool)
        )
        if self.kind is float and isinstance(value, int) and not isinstance(value, bool):
            ok_type = True
        if not ok_type:
            return f"must be {self.describe_allowed()}, got {value!r}"
        if self.choices is not None and value not in self.choices:
            return f"must be {self.describe_allowed()}, got {value!r}"
        if self.minimum is not None and value < self.minimum:
            return f"must be {self.describe_allowed()}, got {value!r}"
        if self.maximum is not None and value > self.maximum:
            return f"must be {self.describe_allowed()}, got {value!r}"
        return None
