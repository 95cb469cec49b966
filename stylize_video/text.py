"""Text from outside the program (checkpoint metadata, file names, HTTP requests) made safe to show.

A checkpoint's title, a style file's name or a client's request line can carry
control characters: ANSI escapes that recolour, hide or rewrite what a terminal
shows, carriage returns that overwrite a line, bidi overrides that reorder it.
:func:`printable` is the one place they are neutralised before being printed or logged.
"""

from __future__ import annotations

import unicodedata

# Unicode categories that are invisible or move the cursor: controls (C0, C1, DEL),
# format characters (bidi overrides, zero-width ones), line/paragraph separators,
# surrogates left over from undecodable file names, unassigned and private-use code points.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def printable(value: object, limit: int | None = 200) -> str:
    """``str(value)`` with every control or invisible character written as an escape.

    ``"\\x1b[31mred"`` becomes ``"\\\\x1b[31mred"``: visible, inert, one line.

    Args:
        value: anything; non-strings go through ``str`` first.
        limit: longest result in characters (longer text ends in ``...``); None: no limit.
    """
    text = value if isinstance(value, str) else str(value)
    if limit is not None and len(text) > limit:
        text = text[:limit] + "..."
    if text.isprintable() and text.isascii():
        return text  # the usual case, without a per-character pass
    out = []
    for ch in text:
        if ch == " " or unicodedata.category(ch) not in _UNSAFE_CATEGORIES:
            out.append(ch)
        else:
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
    return "".join(out)
