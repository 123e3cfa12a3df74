"""URL canonicalisation: one spelling per article, so copies meet in the database.

Lower-case scheme and host, default port dropped, query parameters sorted,
tracking parameters (utm_*, fbclid, gclid…) and the fragment removed. courlan
holds the list of tracking parameters; we add nothing to it.
"""

from __future__ import annotations

import re
from urllib.parse import SplitResult, urlsplit, urlunsplit

from courlan import normalize_url

from monitor.errors import FetchError

_BAD_HOST = re.compile(r"[\s/\\<>\"'`{}|^%]")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def canonical_url(url: str) -> str:
    """The canonical form of an absolute http(s) URL; FetchError if it is not one.

    The canonical form of a canonical URL is itself.
    """
    text = url.strip()
    try:
        # Handed a string, courlan would HTML-unescape all of it, reading "&section=2" as
        # "§ion=2"; a feed's XML parser has already unescaped its links, so only a
        # double-escaped "&amp;" is left to undo.
        parts = _http_parts(urlsplit(text.replace("&amp;", "&")), url)
        if parts.port == _DEFAULT_PORTS[parts.scheme.lower()]:
            # Before courlan sees it: courlan decodes a punycode host only without a port.
            parts = parts._replace(netloc=parts.netloc.rpartition(":")[0])
        normalized = urlsplit(normalize_url(parts, strict=False))._replace(fragment="")
        return urlunsplit(_http_parts(normalized, url))
    except ValueError as exc:
        raise FetchError(f"invalid URL {url!r}: {exc}", reason="invalid_url") from exc


def _http_parts(parts: SplitResult, url: str) -> SplitResult:
    host = parts.hostname
    if parts.scheme.lower() not in _DEFAULT_PORTS or not host or _BAD_HOST.search(host):
        raise FetchError(f"not an absolute http(s) URL: {url!r}", reason="invalid_url")
    return parts


def site_of(url: str) -> str:
    """The host name a downstream reader groups articles by, without a leading "www."."""
    host = (urlsplit(url).hostname or "").lower()
    return host.removeprefix("www.")
