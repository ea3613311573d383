"""Text from the other end, made safe to print on a terminal."""

from __future__ import annotations

import unicodedata


def printable(text: object, limit: int = 200) -> str:
    """Control characters (escape sequences, newlines, bells) shown as escapes.

    A server, proxy or peer chooses these strings; printed raw they could move
    the cursor, rewrite earlier lines or hide an error.
    """
    raw = str(text)[:limit]
    out = []
    for char in raw:
        if char == " " or unicodedata.category(char)[0] not in ("C", "Z"):
            out.append(char)
        else:
            out.append(char.encode("unicode_escape").decode("ascii"))
    return "".join(out)
