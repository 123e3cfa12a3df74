"""Repost signals: what marks an article as a content farm's copy, original known or not.

Auto-blog wrapping found by the cleaner (`[ad_N]` markers, a trailing "Source
link"), and the artefacts synonym spinners leave in well-known names and
phrases ("Khmer Occasions", "Nationwide Committee", "final 12 months"). One
artefact can be a writer's choice; two are a spinner. And a republisher's credit to
the outlet it took the story from.
"""

from __future__ import annotations

import regex

from monitor.records import CleanedArticle

WRAPPING_SIGNALS = ("ad_markers", "source_link")
SPINNER_ARTEFACTS = "spinner_artefacts"
CREDITS_ANOTHER_OUTLET = "credits_another_outlet"
_MIN_ARTEFACTS = 2
# A republished story's credit to its source, a short paragraph opening or closing the
# text: "This article was originally published by Coastal News", "Republished with
# permission from VOD", "A version of this story first appeared in The Diplomat". Not a
# sentence of the story ("The report was first published in March by…").
_CREDIT = regex.compile(
    r"(?:(?:a version of )?this (?:article|story|report|piece|post) (?:was |is |has been )?"
    r"(?:(?:originally|first) (?:published|appeared|posted|ran)"
    r"|(?:re-?published|reprinted)(?: here)?(?: with (?:the )?permission)?) (?:by|in|on|at|from)"
    r"|(?:originally|first) published (?:by|in|on|at)"
    r"|(?:re-?published|reprinted)(?: here)?(?: with (?:the )?permission)? from)"
    r"\s+(?-i:\p{Lu})",
    regex.IGNORECASE,
)
_CREDIT_MAX_WORDS = 40

# Each pattern is a phrase no editor writes but a spinner produces from a common one,
# with a literal it contains: the pattern only runs where the literal is found.
_ARTEFACTS = [
    (literal, regex.compile(pattern))
    for literal, pattern in (
        # "X Times" and "X Post" newspapers
        ("Occasions", r"\b(?:Khmer|New York|Monetary|Straits|Bangkok|Asia|Financial) Occasions\b"),
        ("Submit", r"\b(?:Phnom Penh|Bangkok|Washington|Jakarta|South China Morning) Submit\b"),
        # "National", "General Assembly", "Persons", "Inter-Agency"
        ("Nationwide", r"\bNationwide (?:Committee|Meeting|Police|Strategic Plan|Assembly|Bank)\b"),
        ("Meeting", r"\b(?:Common|Basic) Meeting\b"),
        ("Individuals", r"\bTrafficking in Individuals\b"),
        ("Inter-Company", r"\bInter-Company Coordination\b"),
        ("Everlasting", r"\bEverlasting (?:Vice|Secretary|Member|Mission)"),
        ("Workplace", r"\bUnited Nations Workplace\b"),
        # "last year", "next year", "criminal activities", "on the other hand"
        ("12 months", r"\b(?:final|subsequent|earlier) 12 months\b"),
        ("prison", r"\bprison (?:actions|gangs|syndicates|networks|teams)\b"),
        ("Chinese language", r"\bChinese language (?:syndicate|nationals|staff|gang|residents)\b"),
        ("Quite the opposite", r"\bQuite the opposite,"),
        ("america", r"\bby america\b"),
        ("hyperlink", r"\bSource hyperlink\b"),
    )
]


def repost_signals(cleaned: CleanedArticle) -> tuple[str, ...]:
    """The signals found, in a fixed order; empty for an ordinary article."""
    signals = [signal for signal in WRAPPING_SIGNALS if signal in cleaned.removed]
    text = f"{cleaned.article.title}\n{cleaned.text}"
    found = sum(1 for literal, pattern in _ARTEFACTS if literal in text and pattern.search(text))
    if found >= _MIN_ARTEFACTS:
        signals.append(SPINNER_ARTEFACTS)
    paragraphs = cleaned.text.split("\n")
    if any(
        len(paragraph.split()) <= _CREDIT_MAX_WORDS and _CREDIT.match(paragraph)
        for paragraph in {*paragraphs[:2], *paragraphs[-2:]}
    ):
        signals.append(CREDITS_ANOTHER_OUTLET)
    return tuple(signals)
