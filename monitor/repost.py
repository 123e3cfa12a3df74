"""Repost signals: what marks an article as a content farm's copy, original known or not.

Auto-blog wrapping found by the cleaner (`[ad_N]` markers, a trailing "Source
link"), and the artefacts synonym spinners leave in well-known names and
phrases ("Khmer Occasions", "Nationwide Committee", "final 12 months"). One
artefact can be a writer's choice; two are a spinner.
"""

from __future__ import annotations

import regex

from monitor.records import CleanedArticle

WRAPPING_SIGNALS = ("ad_markers", "source_link")
SPINNER_ARTEFACTS = "spinner_artefacts"
_MIN_ARTEFACTS = 2

# Each pattern is a phrase no editor writes but a spinner produces from a common one.
_ARTEFACTS = [
    regex.compile(pattern)
    for pattern in (
        # "X Times" and "X Post" newspapers
        r"\b(?:Khmer|New York|Monetary|Straits|Bangkok|Asia|Financial|Instances) Occasions\b",
        r"\b(?:Phnom Penh|Bangkok|Washington|Jakarta|South China Morning) Submit\b",
        # "National", "General Assembly", "Persons", "Inter-Agency"
        r"\bNationwide (?:Committee|Meeting|Police|Strategic Plan|Assembly|Bank)\b",
        r"\b(?:Common|Basic) Meeting\b",
        r"\bTrafficking in Individuals\b",
        r"\bInter-Company Coordination\b",
        r"\bEverlasting (?:Vice|Secretary|Member|Mission)",
        r"\bUnited Nations Workplace\b",
        # "last year", "next year", "criminal activities", "on the other hand"
        r"\b(?:final|subsequent|earlier) 12 months\b",
        r"\bprison (?:actions|gangs|syndicates|networks|teams)\b",
        r"\bChinese language (?:syndicate|nationals|staff|gang|nationwide|residents)\b",
        r"\bQuite the opposite,",
        r"\bby america\b",
        r"\bSource hyperlink\b",
    )
]


def repost_signals(cleaned: CleanedArticle) -> tuple[str, ...]:
    """The signals found, in a fixed order; empty for an ordinary article."""
    signals = [signal for signal in WRAPPING_SIGNALS if signal in cleaned.removed]
    text = f"{cleaned.article.title}\n{cleaned.text}"
    if sum(1 for pattern in _ARTEFACTS if pattern.search(text)) >= _MIN_ARTEFACTS:
        signals.append(SPINNER_ARTEFACTS)
    return tuple(signals)
