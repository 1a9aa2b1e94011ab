"""How deeply JSON text nests, read from its bytes: the request checks and the FHIR client
both bound it before any recursive code sees the parsed value."""
from __future__ import annotations

from typing import Callable

_AS_SQUARE_BRACKETS = bytes.maketrans(b"{}", b"[]")
_NOT_BRACKET_OR_QUOTE = bytes(set(range(256)) - set(b'{}[]"'))


def nesting_within(raw: bytes, max_depth: int, each_pass: Callable[[], object] = lambda: None) -> bool:
    """Whether well-formed JSON text nests at most `max_depth` arrays and objects. Found
    with byte operations (C speed, a third to a half of walking the parsed value): escapes
    and then strings are dropped, '{}' read as '[]', and each pass removes the innermost
    pairs. `each_pass` is called before every pass (a deadline check may raise there)."""
    if b"\\" in raw:  # without escapes, every '"' left opens or closes a string
        raw = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    tokens = raw.translate(_AS_SQUARE_BRACKETS, _NOT_BRACKET_OR_QUOTE)
    brackets = b"".join(tokens.split(b'"')[::2])
    for _ in range(max_depth):
        if not brackets:
            return True
        each_pass()
        brackets = brackets.replace(b"[]", b"")
    return not brackets
