"""Chinese written in Traditional or Simplified characters, read as one (OpenCC)."""

from __future__ import annotations

from functools import cache

import opencc


@cache
def _converter(configuration: str) -> opencc.OpenCC:
    return opencc.OpenCC(configuration)


def simplified(text: str) -> str:
    """`text` with Traditional characters written as Simplified ones."""
    converted: str = _converter("t2s.json").convert(text)
    return converted


def traditional(text: str) -> str:
    """`text` with Simplified characters written as Traditional ones."""
    converted: str = _converter("s2t.json").convert(text)
    return converted
