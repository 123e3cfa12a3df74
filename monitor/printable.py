"""Characters that are never text to store: what a hostile or broken document can put
in a title, a link or a paragraph and no reader should see.

A lone surrogate (`&#xD800;` in a feed, `"\\ud800"` in a JSON Feed) cannot even be
encoded, so a database driver raises on it; control characters (PostgreSQL refuses
NUL), noncharacters (U+FFFE), the replacement character (a `&#0;` or a surrogate
reference as an HTML parser reads it), and bidirectional overrides and isolates,
which make "gnp.exe" read as "exe.png", are taken out. Tab and newline stay (the
callers decide about whitespace).
"""

from __future__ import annotations

import re

_NEVER_TEXT = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufdd0-\ufdef\ufffd\ufffe\uffff"
    "\u202a-\u202e\u2066-\u2069]"
)


def printable(text: str, replacement: str = " ") -> str:
    """`text` with every character that is never text replaced."""
    return _NEVER_TEXT.sub(replacement, text)
