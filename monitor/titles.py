"""An article's headline from what its page and its feed call it, without the site's name.

Pages title themselves for browsers and social cards: "Police free 40 | Khmer Times",
"Khmer Times - Police free 40", and on some sites the same card title on every page
("Khmer Times: Insight into Cambodia"). An analyst reads the headline.
"""

from __future__ import annotations

import re

from monitor.urls import site_of

# " | ", " - ", " – ", " — ", " · ", " • ", " » ", " :: " between a headline and the
# site's name; a hyphen only with spaces around it ("anti-trafficking" is a word).
_SEPARATOR = re.compile(r"\s+(?:[|\-–—·•»]|::)\s+")
# "Khmer Times: …", the site's name before a colon.
_SITE_PREFIX = re.compile(r"^([^:：]{2,60})[:：]\s*")
# Words, and each character of the scripts written without spaces (Thai, Khmer, Chinese).
_WORD = re.compile(r"[\u0e00-\u0e7f\u1780-\u17ff\u3400-\u9fff]|[^\W\d_]{2,}")
_PLACEHOLDERS = frozenset({"home", "homepage", "home page", "index", "news", "untitled", "article"})


def headline(
    page_title: str | None, feed_title: str | None, url: str, site_name: str | None = None
) -> str | None:
    """The page's title without the site's name; the feed's when the page's is the
    site's own (a placeholder, the site's name or its card title on every page).

    `site_name` is the page's og:site_name, which some pages fill with their title."""
    page = without_site_name(page_title, url, site_name)
    feed = without_site_name(feed_title, url, site_name)
    # Whole, the title is judged by the host's name only: some pages fill og:site_name
    # with their own headline.
    if page is None or page.casefold() in _PLACEHOLDERS or names_site(page, url):
        return feed
    if feed is not None and _words(feed) and not _words(page) & _words(feed):
        # Not a word in common: the page's title is not this story's.
        return feed
    return page


def without_site_name(title: str | None, url: str, site_name: str | None = None) -> str | None:
    """`title` without the site's name at its start or at its end ("… | Khmer Times")."""
    text = (title or "").strip()
    if site_name and len(_letters(site_name)) * 2 > len(_letters(text)):
        # More than half of the title: a page that put its headline in og:site_name.
        site_name = None
    while (last := _last_separator(text)) and names_site(text[last.end() :], url, site_name):
        text = text[: last.start()]
    while (first := _SEPARATOR.search(text)) and names_site(text[: first.start()], url, site_name):
        text = text[first.end() :]
    if (prefix := _SITE_PREFIX.match(text)) and names_site(prefix.group(1), url, site_name):
        text = text[prefix.end() :]
    return text.strip() or None


def names_site(text: str, url: str, site_name: str | None = None) -> bool:
    """Whether `text` is the site's name: its og:site_name, or as its host name spells
    it ("Khmer Times" on www.khmertimeskh.com, "The Japan Times" on japantimes.co.jp)."""
    letters = _letters(text)
    if len(letters) < 3:
        return False
    if site_name and letters == _letters(site_name):
        return True
    host = _letters(site_of(url))
    return letters in host or (letters.startswith("the") and letters[3:] in host)


def _last_separator(text: str) -> re.Match[str] | None:
    separators = list(_SEPARATOR.finditer(text))
    return separators[-1] if separators else None


def _letters(text: str) -> str:
    return "".join(character for character in text.casefold() if character.isalnum())


def _words(text: str) -> set[str]:
    return {word.casefold() for word in _WORD.findall(text)}
