"""Parsers from raw tool output to metric dictionaries (units in the key names)."""

from cnilab.errors import InputError


class ParseError(InputError):
    """The text is not a valid output of the tool (or the tool reported an error)."""
