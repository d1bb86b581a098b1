"""A JSON parser that answers 400, never 500, for bodies no client sends on purpose."""

import io

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

MAX_DEPTH = 32


def _depth(raw: bytes) -> int:
    """Deepest nesting of [ and { outside strings (a linear scan, no recursion)."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return deepest


def _has_nul(value) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


class SafeJSONParser(JSONParser):
    """JSON nested deeper than MAX_DEPTH, or holding a NUL character, is a 400 with a reason."""

    def parse(self, stream, media_type=None, parser_context=None):
        raw = stream.read()
        if _depth(raw) > MAX_DEPTH:
            raise ParseError(f"JSON nested deeper than {MAX_DEPTH} levels is not accepted.")
        data = super().parse(io.BytesIO(raw), media_type, parser_context)
        if _has_nul(data):
            raise ParseError("JSON strings may not contain NUL characters.")
        return data
