"""URL canonicalisation: one spelling per article, so copies meet in the database.

Lower-case scheme and host, default port dropped, query parameters sorted,
tracking parameters (utm_*, fbclid, gclid…) and the fragment removed. courlan
holds the list of tracking parameters; we add nothing to it.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

from courlan import normalize_url

from monitor.errors import FetchError

_BAD_HOST = re.compile(r"[\s/\\<>\"'`{}|^%]")


def canonical_url(url: str) -> str:
    """The canonical form of an absolute http(s) URL; FetchError if it is not one."""
    text = url.strip()
    try:
        parts = urlsplit(text)
        host = parts.hostname
        if parts.scheme.lower() not in ("http", "https") or not host or _BAD_HOST.search(host):
            raise FetchError(f"not an absolute http(s) URL: {url!r}", reason="invalid_url")
        normalized = normalize_url(text, strict=False)
        return urlunsplit(urlsplit(normalized)._replace(fragment=""))
    except ValueError as exc:
        raise FetchError(f"invalid URL {url!r}: {exc}", reason="invalid_url") from exc


def site_of(url: str) -> str:
    """The host name a downstream reader groups articles by, without a leading "www."."""
    host = (urlsplit(url).hostname or "").lower()
    return host.removeprefix("www.")
