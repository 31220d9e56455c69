"""Checks for text that users send and the database must store.

PostgreSQL text and jsonb refuse NUL (U+0000), and no database driver can encode a lone
surrogate (a JSON body may carry "\\ud800"). Refusing both up front turns what would be a 500
from the database into a 400 with a message, the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

import re

from .errors import ApplicationError

_UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")


def text_check_storable(text: str, *, what: str) -> str:
    """`text` unchanged, or ApplicationError naming `what` ("The rationale", ...)."""
    found = _UNSTORABLE.search(text or "")
    if found is not None:
        kind = "a NUL character" if found.group() == "\x00" else "an unpaired surrogate"
        raise ApplicationError(f"{what} contains {kind}, which cannot be stored; remove it.")
    return text


_JSON_TOKEN = re.compile(r'\\.|"|[\[\]{}]', re.S)
_JSON_TOKEN_BYTES = re.compile(rb'\\.|"|[\[\]{}]', re.S)


def json_depth(text: str | bytes) -> int:
    """Deepest bracket nesting of a JSON document outside strings, found without parsing.

    json.loads recurses once per level and raises RecursionError near 1,000 levels; checking
    first lets callers refuse deep documents with a message instead of a crash.
    """
    pattern = _JSON_TOKEN_BYTES if isinstance(text, bytes) else _JSON_TOKEN
    quote, opening = ('"', "[{") if isinstance(text, str) else (b'"', (b"[", b"{"))
    depth = deepest = 0
    in_string = False
    for match in pattern.finditer(text):
        token = match.group()
        if token == quote:
            in_string = not in_string
        elif in_string or len(token) == 2:
            continue  # an escape, or any bracket inside a string
        elif token in opening:
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest
