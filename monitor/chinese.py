"""Chinese written in Traditional or Simplified characters, read as one (OpenCC)."""

from __future__ import annotations

import re
from functools import cache

import opencc

# Chinese characters (CJK Unified Ideographs, Extension A, Compatibility Ideographs).
_CHINESE = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


@cache
def _converter(configuration: str) -> opencc.OpenCC:
    return opencc.OpenCC(configuration)


def simplified(text: str) -> str:
    """`text` with Traditional characters written as Simplified ones; a text without
    Chinese characters as it is, without a pass of OpenCC over it."""
    if not _CHINESE.search(text):
        return text
    converted: str = _converter("t2s.json").convert(text)
    return converted


def traditional(text: str) -> str:
    """`text` with Simplified characters written as Traditional ones."""
    converted: str = _converter("s2t.json").convert(text)
    return converted
