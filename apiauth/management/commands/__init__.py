"""apiauth's management commands: a stable contract for scripts (see the README)."""

from __future__ import annotations

import unicodedata


def printable(text: str) -> str:
    """``text`` with control and invisible formatting characters escaped (``\\x1b``, ``\\n``,
    ``\\u202e``), so a stored name can neither drive nor disguise itself in an operator's
    terminal. Names are validated against the same characters; older rows may still hold them.
    """
    from apiauth.models import FORBIDDEN_NAME_CATEGORIES

    return "".join(
        char.encode("unicode_escape").decode("ascii")
        if unicodedata.category(char) in FORBIDDEN_NAME_CATEGORIES
        else char
        for char in text
    )
