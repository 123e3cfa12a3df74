"""URL canonicalisation: one spelling per article, so copies meet in the database.

Lower-case scheme and host, default port dropped, query parameters sorted,
tracking parameters (utm_*, fbclid, gclid…) and the fragment removed. courlan
normalises the rest. Its list of trackers is not ours: it drops every parameter
whose name merely starts with "cid", "uid", "ga", "source" or "ref", and a
`news.php?cid=3031` and a `news.php?cid=3032` are two articles that must not meet.
We drop only names that are tracking wherever they appear.
"""

from __future__ import annotations

import re
from urllib.parse import SplitResult, parse_qsl, urlencode, urlsplit, urlunsplit

from courlan import normalize_url

from monitor.errors import FetchError

_BAD_HOST = re.compile(r"[\s/\\<>\"'`{}|^%]")
_DEFAULT_PORTS = {"http": 80, "https": 443}
# Analytics, ad-click and newsletter parameters (Google, Meta, Microsoft, Mailchimp,
# HubSpot, Marketo, AT Internet, Matomo, Piwik) and the referral markers feeds add to
# their links ("?ref=rss", "?source=rss"): never part of what identifies an article.
_TRACKING_PARAMETER = re.compile(
    r"(?:utm|mtm|pk|piwik|ga|gs|mc|ad|ads|itm|vero|oly|at|hsa|ml)_\w*"
    r"|_hs(?:enc|mi)|mkt_tok|xtor|(?:d|fb|g|ms|tw|y|li|tt)clid|msclkid|gclsrc|(?:g|w)braid|igsh(?:id)?"
    r"|ref|ref_?src|ref_?url|referr?er|source|src|campaign|medium|affiliate|aff_id|session(?:id)?",
)


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
        query = _without_tracking(parts.query)
        normalized = urlsplit(normalize_url(parts._replace(query=""), strict=False))
        return urlunsplit(_http_parts(normalized._replace(query=query, fragment=""), url))
    except ValueError as exc:
        raise FetchError(f"invalid URL {url!r}: {exc}", reason="invalid_url") from exc


def _without_tracking(query: str) -> str:
    """The query's parameters sorted by name, the tracking ones left out."""
    kept = [
        (name, value)
        for name, value in parse_qsl(query)
        if not _TRACKING_PARAMETER.fullmatch(name.lower())
    ]
    return urlencode(sorted(kept, key=lambda pair: pair[0]))


def _http_parts(parts: SplitResult, url: str) -> SplitResult:
    host = parts.hostname
    if parts.scheme.lower() not in _DEFAULT_PORTS or not host or _BAD_HOST.search(host):
        raise FetchError(f"not an absolute http(s) URL: {url!r}", reason="invalid_url")
    return parts


def site_of(url: str) -> str:
    """The host name a downstream reader groups articles by, without a leading "www."."""
    host = (urlsplit(url).hostname or "").lower()
    return host.removeprefix("www.")


def is_home_page(url: str) -> bool:
    """Whether `url` is a site's home page (no path, no query): never an article."""
    parts = urlsplit(url)
    return parts.path in ("", "/") and not parts.query
