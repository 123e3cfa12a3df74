"""Text from bytes whose declared encoding is missing or wrong.

feedparser and trafilatura read a document in the encoding it declares. When
the bytes match no declaration, both guess: feedparser falls back to
windows-1252, which turns an undeclared Big5 or KOI8-R feed into Latin-1 soup;
trafilatura asks charset_normalizer and ignores the page's `<meta charset>`, so
a Polish ISO-8859-2 page read as windows-1250 says "dziesi±tej" for
"dziesiątej". The functions here read such bytes as a browser would (the
declared charset when it reads every byte, WHATWG's aliases) and notice the
two common accidents: a UTF-8 document with a few stray windows-1252 bytes
pasted in, and a legacy encoding nothing declares.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterable

import charset_normalizer

_WINDOWS_1252_FALLBACK = "monitor.windows-1252-bytes"

# WHATWG Encoding Standard: these labels mean the superset encoding on the web.
_WEB_SUPERSETS = {
    "ascii": "cp1252",
    "iso8859-1": "cp1252",
    "iso8859-9": "cp1254",
    "iso8859-11": "cp874",
    "tis-620": "cp874",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "shift_jis": "cp932",
    "euc_kr": "cp949",
}
# Codecs Python has that no document may use: they are not character encodings a web
# page can declare (utf-7 is an XSS vector; the escapes decode markup).
_REFUSED = frozenset(
    {"utf-7", "unicode-escape", "raw-unicode-escape", "idna", "punycode", "undefined"}
)

_UTF8_SEQUENCE = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]"
    rb"|\xe0[\xa0-\xbf][\x80-\xbf]|[\xe1-\xec\xee\xef][\x80-\xbf]{2}|\xed[\x80-\x9f][\x80-\xbf]"
    rb"|\xf0[\x90-\xbf][\x80-\xbf]{2}|[\xf1-\xf3][\x80-\xbf]{3}|\xf4[\x80-\x8f][\x80-\xbf]{2}"
)
_HIGH_BYTES = bytes(range(0x80, 0x100))
_NON_ASCII_RUN = re.compile(r"[^\x00-\x7f]+")


def codec_for(label: str) -> str | None:
    """The Python codec a charset label means on the web (`iso-8859-1` reads as
    windows-1252); None for an unknown label, a non-text codec, or UTF-16/32 declared
    in ASCII-compatible markup (which cannot be true)."""
    try:
        info = codecs.lookup(label.strip().strip("\"'").lower())
    except (LookupError, ValueError):
        return None
    if (
        not getattr(info, "_is_text_encoding", True)
        or info.name in _REFUSED
        or info.name.startswith(("utf-16", "utf-32"))
    ):
        return None
    return _WEB_SUPERSETS.get(info.name, info.name)


def decode_declared(data: bytes, labels: Iterable[str]) -> tuple[str, str] | None:
    """(text, codec) in the first declared encoding that reads every byte, or None."""
    tried: set[str] = set()
    for label in labels:
        codec = codec_for(label)
        if codec is None or codec in tried:
            continue
        tried.add(codec)
        try:
            return data.decode(codec), codec
        except UnicodeError:
            continue
    return None


def is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def mostly_utf8(data: bytes) -> bool:
    """UTF-8 with a few bytes that are not (a Latin-1 fragment pasted in): a UTF-8 BOM,
    or at least as many valid multi-byte UTF-8 characters as stray bytes. Legacy
    encodings form valid UTF-8 sequences only by accident: in Chinese (GBK, Big5) about
    one for every four other high bytes, in Cyrillic, Hebrew or Western text almost
    never ("Ã©")."""
    if data.startswith(codecs.BOM_UTF8):
        return True
    sequences = _UTF8_SEQUENCE.findall(data)
    if not sequences:
        return False
    high = len(data) - len(data.translate(None, _HIGH_BYTES))
    stray = high - sum(len(sequence) for sequence in sequences)
    return len(sequences) >= stray


def decode_mixed_utf8(data: bytes) -> str:
    """UTF-8, each byte that is not part of a valid UTF-8 character read as
    windows-1252 (a Latin-1 fragment pasted into a UTF-8 document)."""
    return data.removeprefix(codecs.BOM_UTF8).decode("utf-8", errors=_WINDOWS_1252_FALLBACK)


def windows_1252_plausible(data: bytes) -> bool:
    """Whether the bytes read as windows-1252 look like text rather than mojibake.

    In a Western language the letters windows-1252 adds stand alone or in pairs
    ("café", "Größe"); a Chinese, Cyrillic, Hebrew or Thai text read as windows-1252
    is all runs of them ("²»¹éÒÆÃñÂþ"), however much ASCII markup dilutes it.
    """
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError:
        return False
    runs = [len(run) for run in _NON_ASCII_RUN.findall(text)]
    if sum(run for run in runs if run >= 3) * 2 > sum(runs):
        return False
    return bool(charset_normalizer.from_bytes(data, cp_isolation=["cp1252"]))


def detect(data: bytes) -> tuple[str, str] | None:
    """(text, codec) as charset_normalizer reads the bytes; None when no encoding gives
    text, or when encodings that read it as different texts are as likely as each other
    and none is recognised as a language (a short title in KOI8-R reads as well in
    Shift-JIS or windows-1251): better no text than garbage."""
    matches = list(charset_normalizer.from_bytes(data))
    if not matches:
        return None
    best = matches[0]
    text = str(best)
    if best.coherence == 0 and any(
        match.chaos <= best.chaos and str(match) != text for match in matches[1:]
    ):
        return None
    return text, best.encoding


def _windows_1252_byte(error: UnicodeError) -> tuple[str, int]:
    if not isinstance(error, UnicodeDecodeError):
        raise error
    byte = error.object[error.start : error.start + 1]
    try:
        return byte.decode("cp1252"), error.start + 1
    except UnicodeDecodeError:
        # The five bytes windows-1252 leaves undefined: C1 controls, as browsers read them.
        return byte.decode("latin-1"), error.start + 1


codecs.register_error(_WINDOWS_1252_FALLBACK, _windows_1252_byte)
