"""Relevance and tag rules: every phrase of every rule found in one pass, then boolean
rules over the phrases found.

Phrases and texts are normalised alike (NFKC, case-folded, Latin accents removed and
letters like "đ" folded to their base letter, curly apostrophes straightened, hyphens
and dashes read as spaces so that "scam-compound" is "scam compound", Khmer's two
spellings of the subscript "t" and of the vowel "ao" made one, Traditional Chinese read
as Simplified, white space collapsed). A phrase that starts or
ends with a letter or digit of a spaced script matches whole words only; Khmer,
Chinese and other scripts written without spaces match inside running text. An
Aho-Corasick automaton (pyahocorasick) holds all phrases, so matching costs one
pass over the text whatever the number of rules.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import ahocorasick

from monitor.chinese import simplified
from monitor.config import Settings, TagRule, TextField, TopicSettings
from monitor.records import Tag, TagSource

_ACCENTS = re.compile("[\u0300-\u036f]")
# What NFKD leaves whole: letters with a stroke, curly apostrophes, hyphens and dashes (a
# hyphen joins words writers also write apart: "14-year-old", "forced-labour"), the soft
# hyphen, which only marks where a word may break, and the zero-width space Khmer text
# puts between words (and the word joiner and BOM like it), which no phrase holds.
_FOLDS = {
    "đ": "d",
    "ł": "l",
    "ø": "o",
    "ħ": "h",
    "’": "'",
    "‘": "'",
    "\u00ad": "",
    "\u200b": "",
    "\u2060": "",
    "\ufeff": "",
    # Khmer's independent vowel "ao", written ឲ or ឱ ("បង្ខំឲ្យសុំទាន", forced to beg).
    "\u17b2": "\u17b1",
    **dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe63", " "),
}
# A regular expression finds them: str.translate with a table reads every character
# through a dict once the text holds one non-ASCII character, and made matching take
# twice as long.
_FOLDED = re.compile("[" + "".join(_FOLDS) + "]")
# Khmer writes the subscript "t" with COENG DA or COENG TA, and both look alike.
_KHMER_COENG_DA = "\u17d2\u178a"
_KHMER_COENG_TA = "\u17d2\u178f"
_SPACES = re.compile(r"\s+")
_UNSPACED = re.compile(
    "[\u0e00-\u0eff\u0f00-\u0fff\u1000-\u109f\u1780-\u17ff\u19e0-\u19ff"
    "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]"
)


def normalize(text: str) -> str:
    """The form phrases and texts are compared in."""
    text = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text).casefold())
    text = unicodedata.normalize("NFC", _ACCENTS.sub("", text)).replace("-", " ")
    if not text.isascii():
        text = _FOLDED.sub(_fold, text).replace(_KHMER_COENG_DA, _KHMER_COENG_TA)
        # Read as Simplified, so that every Chinese phrase matches what Taiwan's and
        # Hong Kong's outlets write in Traditional (馬德望, 詐騙集團, 緬甸).
        text = simplified(text)
    return _SPACES.sub(" ", text).strip()


def _fold(found: re.Match[str]) -> str:
    return _FOLDS[found[0]]


def _without_headline(title: str, text: str) -> str:
    """The text without its first line when that line is the title: extraction keeps a
    headline written inside the article body, and a rule on `field = "text"` means the body."""
    first_line, _, rest = text.partition("\n")
    if title and len(first_line) <= 2 * len(title) and normalize(first_line) == normalize(title):
        return rest
    return text


def _is_word_character(character: str) -> bool:
    return character.isalnum() and not _UNSPACED.match(character)


# Korean writes its particles and suffixes onto the word ("캄보디아에서", in Cambodia;
# "인신매매를"): a phrase ending in Hangul goes on matching through more Hangul.
_HANGUL = re.compile("[\u1100-\u11ff\u3130-\u318f\uac00-\ud7a3]")


def _joins_the_next(last: str, following: str) -> bool:
    """Whether `following`, right after a phrase ending in `last`, continues its word."""
    if not _is_word_character(last) or not _is_word_character(following):
        return False
    return not (_HANGUL.match(last) and _HANGUL.match(following))


@dataclass(frozen=True, slots=True)
class Matches:
    """The phrases (by number) found in an article's title and in its text."""

    title: frozenset[int]
    text: frozenset[int]

    def in_field(self, where: TextField) -> frozenset[int]:
        if where == "title":
            return self.title
        if where == "text":
            return self.text
        return self.title | self.text


@dataclass(frozen=True, slots=True)
class TopicVerdict:
    on_topic: bool
    reason: str


@dataclass(frozen=True, slots=True)
class _CompiledRule:
    name: str
    any: frozenset[int]
    all: frozenset[int]
    none: frozenset[int]
    field: TextField


@dataclass(slots=True)
class RuleSet:
    """The topic filter and the tag rules of one configuration, compiled once."""

    phrases: list[str] = field(default_factory=list)
    topic_groups: list[frozenset[int]] = field(default_factory=list)
    topic_none: frozenset[int] = frozenset()
    topic_field: TextField = "both"
    tag_rules: list[_CompiledRule] = field(default_factory=list)
    _numbers: dict[str, int] = field(default_factory=dict)
    _automaton: ahocorasick.Automaton | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> RuleSet:
        return cls.compile(settings.topic, settings.tags)

    @classmethod
    def compile(cls, topic: TopicSettings, tags: Sequence[TagRule]) -> RuleSet:
        rules = cls()
        rules.topic_groups = [rules._ids(group) for group in topic.all]
        rules.topic_none = rules._ids(topic.none)
        rules.topic_field = topic.field
        rules.tag_rules = [
            _CompiledRule(
                name=rule.name,
                any=rules._ids(rule.any),
                all=rules._ids(rule.all),
                none=rules._ids(rule.none),
                field=rule.field,
            )
            for rule in tags
        ]
        if rules.phrases:
            automaton = ahocorasick.Automaton()
            for number, phrase in enumerate(rules.phrases):
                automaton.add_word(phrase, (number, len(phrase)))
            automaton.make_automaton()
            rules._automaton = automaton
        return rules

    def _ids(self, phrases: Iterable[str]) -> frozenset[int]:
        ids = set()
        for phrase in phrases:
            normalized = normalize(phrase)
            if normalized not in self._numbers:
                self._numbers[normalized] = len(self.phrases)
                self.phrases.append(normalized)
            ids.add(self._numbers[normalized])
        return frozenset(ids)

    def match(self, title: str, text: str) -> Matches:
        return Matches(title=self._find(title), text=self._find(_without_headline(title, text)))

    def _find(self, text: str) -> frozenset[int]:
        if self._automaton is None or not text:
            return frozenset()
        normalized = normalize(text)
        found = set()
        for end, (number, length) in self._automaton.iter(normalized):
            if number in found:
                continue
            start = end - length + 1
            phrase = self.phrases[number]
            if (
                _is_word_character(phrase[0])
                and start > 0
                and _is_word_character(normalized[start - 1])
            ):
                continue
            if end + 1 < len(normalized) and _joins_the_next(phrase[-1], normalized[end + 1]):
                continue
            found.add(number)
        return frozenset(found)

    def topic(self, matches: Matches) -> TopicVerdict:
        """On topic: a phrase of every `topic.all` group found, and no `topic.none` phrase."""
        found = matches.in_field(self.topic_field)
        excluded = sorted(self.phrases[number] for number in found & self.topic_none)
        if excluded:
            return TopicVerdict(False, f"topic.none phrase found: {', '.join(excluded)}")
        for index, group in enumerate(self.topic_groups):
            if not found & group:
                # Numbered as first written: the group's opening phrases say what it is for.
                examples = ", ".join(self.phrases[number] for number in sorted(group)[:3])
                count = f"{len(group)} phrase{'s' if len(group) > 1 else ''}"
                more = "…" if len(group) > 3 else ""
                return TopicVerdict(
                    False, f"no phrase of topic.all[{index}] found ({count}: {examples}{more})"
                )
        return TopicVerdict(True, "on topic")

    def explain_topic(self, matches: Matches) -> list[str]:
        """One line per topic group and one for the exclusions: what matched."""
        found = matches.in_field(self.topic_field)
        lines = []
        for index, group in enumerate(self.topic_groups):
            hits = sorted(self.phrases[number] for number in found & group)
            lines.append(f"topic.all[{index}]: {', '.join(hits) if hits else 'no phrase found'}")
        excluded = sorted(self.phrases[number] for number in found & self.topic_none)
        lines.append(f"topic.none: {', '.join(excluded) if excluded else 'none found'}")
        return lines

    def tags(self, matches: Matches) -> list[Tag]:
        """The rule tags an article gets, each with the phrases that matched (JSON) as detail."""
        tags: dict[str, set[str]] = {}
        for rule in self.tag_rules:
            found = matches.in_field(rule.field)
            if rule.any and not found & rule.any:
                continue
            if not rule.all <= found or found & rule.none:
                continue
            matched = {self.phrases[number] for number in found & (rule.any | rule.all)}
            tags.setdefault(rule.name, set()).update(matched)
        return [
            Tag(
                name=name,
                source=TagSource.RULE,
                detail=json.dumps(sorted(phrases), ensure_ascii=False),
            )
            for name, phrases in tags.items()
        ]
