"""YAML loading that remembers where each key and list item came from.

Why: every command that reads a user file must point at ``FILE:LINE`` of the
offending field. PyYAML's composed nodes carry marks; we keep those marks on
the plain dicts and lists we hand to validators instead of making every
validator walk YAML nodes.

Input files come from anyone, so the loader bounds what a document may cost before
any validator sees it: its size, its nesting depth and the number of values it expands
to through aliases (a "billion laughs" document is a few lines that expand to 10^9
values). Each bound is a one-line error at the line where it is crossed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from cnilab.errors import SpecError


class PosDict(dict[str, Any]):
    """A mapping that knows its own line and the line of each key (1-based)."""

    line: int
    key_lines: dict[str, int]


class PosList(list[Any]):
    """A sequence that knows its own line and the line of each item (1-based)."""

    line: int
    item_lines: list[int]


MAX_BYTES = 1024 * 1024           # a spec or an inventory is a few kB
MAX_DEPTH = 64
MAX_VALUES = 100_000              # values after alias expansion


def _subtree_size(node: yaml.Node, sizes: dict[int, int]) -> int:
    """How many values ``node`` stands for once every alias in it is expanded."""
    known = sizes.get(id(node))
    if known is not None:
        return known
    if isinstance(node, yaml.SequenceNode):
        size = 1 + sum(_subtree_size(child, sizes) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        size = 1 + sum(_subtree_size(k, sizes) + _subtree_size(v, sizes)
                       for k, v in node.value)
    else:
        size = 1
    sizes[id(node)] = size
    return size


class _PosLoader(yaml.SafeLoader):
    """SafeLoader that builds PosDict/PosList, rejects duplicate keys and bounds depth
    and alias expansion while composing (before anything is constructed)."""

    name: str
    _depth = 0
    _values = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        line = event.start_mark.line + 1 if event.start_mark is not None else None
        if isinstance(event, yaml.AliasEvent) and event.anchor in self.anchors:
            sizes: dict[int, int] = self.__dict__.setdefault("_sizes", {})
            self._values += _subtree_size(self.anchors[event.anchor], sizes) - 1
        self._values += 1
        if self._values > MAX_VALUES:
            raise SpecError(self.name, line, f"the document expands to more than "
                            f"{MAX_VALUES} values (through aliases?); refused")
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise SpecError(self.name, line, f"nested more than {MAX_DEPTH} levels deep; "
                            "refused")
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _construct_mapping(loader: _PosLoader, node: yaml.MappingNode) -> PosDict:
    result = PosDict()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    loader.flatten_mapping(node)
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if not isinstance(key, str):
            raise SpecError(loader.name, line, f"key {key!r} must be a string")
        if key in result:
            raise SpecError(loader.name, line, f"duplicate key '{key}'")
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = line
    return result


def _construct_sequence(loader: _PosLoader, node: yaml.SequenceNode) -> PosList:
    result = PosList(loader.construct_object(child, deep=True) for child in node.value)
    result.line = node.start_mark.line + 1
    result.item_lines = [child.start_mark.line + 1 for child in node.value]
    return result


_PosLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_PosLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


def load_text(text: str, name: str) -> Any:
    """Parse YAML text; syntax errors become ``SpecError`` at the failing line."""
    if len(text) > MAX_BYTES:
        raise SpecError(name, None, f"{len(text)} characters, more than the {MAX_BYTES} a "
                        "cnilab file may have; refused")
    loader = _PosLoader(text)
    loader.name = name
    try:
        return loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or exc.context or "invalid YAML"
        raise SpecError(name, line, f"malformed YAML: {problem}") from None
    except yaml.YAMLError as exc:
        raise SpecError(name, None, f"malformed YAML: {exc}") from None
    finally:
        loader.dispose()


def load_file(path: Path) -> tuple[Any, str]:
    """Read and parse a YAML file; returns (data, text)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(str(path), None, f"cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise SpecError(str(path), None, "not UTF-8 text") from None
    return load_text(text, str(path)), text


def line_of(container: Any, key: str | int | None = None) -> int | None:
    """Best-known line of ``container[key]`` (or of the container itself)."""
    if isinstance(container, PosDict):
        if isinstance(key, str) and key in container.key_lines:
            return container.key_lines[key]
        return container.line
    if isinstance(container, PosList):
        if isinstance(key, int) and 0 <= key < len(container.item_lines):
            return container.item_lines[key]
        return container.line
    return None
