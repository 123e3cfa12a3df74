"""The headline an analyst reads: the page's title without the site's name."""

from __future__ import annotations

import pytest

from monitor.titles import headline, names_site

URL = "https://www.khmertimeskh.com/501234/police-free-40/"


@pytest.mark.parametrize(
    ("page_title", "feed_title", "site_name", "expected"),
    [
        ("Police free 40 | Khmer Times", None, None, "Police free 40"),
        ("Khmer Times - Police free 40", None, None, "Police free 40"),
        ("Khmer Times: Police free 40", None, None, "Police free 40"),
        ("Police free 40 – Cambodia | Khmer Times", None, None, "Police free 40 – Cambodia"),
        # A hyphen inside a word and a colon in the headline are the headline's.
        ("Anti-trafficking unit: 40 freed", None, None, "Anti-trafficking unit: 40 freed"),
        (
            "Police free 40 workers in Sihanoukville | The Phnom Penh Post",
            None,
            "The Phnom Penh Post",
            "Police free 40 workers in Sihanoukville",
        ),
        # A page that puts its headline in og:site_name keeps its headline.
        ("Police free 40", None, "Police free 40", "Police free 40"),
        ("Police free 40 | KT", None, "Police free 40", "Police free 40 | KT"),
        # The site's name alone, a placeholder, a card title: the feed's title.
        ("Khmer Times", "Police free 40 in Sihanoukville", None, "Police free 40 in Sihanoukville"),
        ("Home", "Police free 40 in Sihanoukville", None, "Police free 40 in Sihanoukville"),
        (
            "Khmer Times: Insight into Cambodia",
            "Police free 40 in Sihanoukville",
            None,
            "Police free 40 in Sihanoukville",
        ),
        # The feed's title from an aggregator carries the source's name too.
        (None, "Police free 40 - Khmer Times", None, "Police free 40"),
        # Both name the story in other words: the page's is kept.
        ("Police free 40 workers", "Forty freed by police", None, "Police free 40 workers"),
        ("警方解救40人 | Khmer Times", "西港警方解救40名受害者", None, "警方解救40人"),
        (None, None, None, None),
        ("Khmer Times", None, None, None),
    ],
)
def test_headline(
    page_title: str | None, feed_title: str | None, site_name: str | None, expected: str | None
) -> None:
    assert headline(page_title, feed_title, URL, site_name) == expected


def test_names_site() -> None:
    assert names_site("Khmer Times", URL)
    assert names_site("The Khmer Times", URL)
    assert names_site("CamboJA News", "https://cambojanews.com/x")
    assert not names_site("KT", URL)  # too short to tell
    assert not names_site("Police", URL)
    assert names_site("The Post", URL, site_name="The Post")
