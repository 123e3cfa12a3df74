"""An article spinner like the ones auto-blogs run over scraped news.

Such spinners swap words and phrases for "synonyms" from a fixed table, with no
regard for sense or for names: "National Committee" becomes "Nationwide Panel",
"Khmer Times" "Khmer Occasions", "last year" "final 12 months". This one does the
same with `synonyms.tsv` (phrase, tab, replacements separated by `|`):

    spinner = Spinner(SynonymTable.load(), rate=0.30, seed=7)
    spinner.spin("Police rescued 312 workers last year.")   # 'Law enforcement rescued ...'
    spinner.spin_detailed(text).fraction                     # share of content words replaced

`rate` is the share of the text's content words (not function words, not numbers
or dates) that gets replaced. Phrases are matched longest first, case-insensitively,
and the replacement takes the capitalisation of what it replaces. Numbers, number
words and dates are never replaced. The output depends only on (table, rate, seed,
text).
"""

from __future__ import annotations

import hashlib
import itertools
import random
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

DEFAULT_TABLE = Path(__file__).with_name("synonyms.tsv")

# Closed-class words: never counted as content words, never replaced.
_FUNCTION_WORDS = """
    a an the this that these those my your his her its our their i me you he him she it we us
    they them mine yours hers ours theirs myself yourself himself herself itself ourselves
    yourselves themselves who whom whose which what whatever whoever whichever when where why
    how and or but nor so yet for if then than because although though while whilst whereas
    unless until till since as whether of in on at by to from with without into onto upon
    about above below over under after before between among amongst through throughout during
    against across along around behind beyond beside besides near off out up down per via
    within toward towards despite inside outside except like unlike amid amidst alongside
    be am is are was were been being have has had having do does did doing will would shall
    should can could may might must ought not no all any both each either neither every few
    many much more most less least other others another some such several own same only very
    too just there here i'm you're he's she's it's we're they're i've you've we've
    they've i'd you'd he'd she'd we'd they'd i'll you'll he'll she'll we'll they'll isn't
    aren't wasn't weren't hasn't haven't hadn't doesn't don't didn't won't wouldn't can't
    cannot couldn't shouldn't mustn't that's there's what's who's let's
"""
FUNCTION_WORDS = frozenset(_FUNCTION_WORDS.split())

# Numbers written as words, and dates: facts, never replaced and not counted.
_NUMBER_WORDS = """
    zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen
    fifteen sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty
    ninety hundred hundreds thousand thousands million millions billion billions trillion
    dozen dozens tens half twice thrice first second third fourth fifth sixth seventh eighth
    ninth tenth eleventh twelfth twentieth hundredth thousandth single double triple
    january february march april may june july august september october november december
    jan feb mar apr jun jul aug sep sept oct nov dec monday tuesday wednesday thursday friday
    saturday sunday
"""
NUMBER_WORDS = frozenset(_NUMBER_WORDS.split())

_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*(?:-(?:[^\W\d_]+(?:['’][^\W\d_]+)*|\d+))*")
_NUMBER = re.compile(r"\d")
_POSSESSIVE = re.compile(r"^(.+?)(['’]s)$", re.IGNORECASE)
_SMALL_WORDS = frozenset({"a", "an", "the", "of", "in", "on", "at", "to", "for", "and", "or"})


class SynonymTableError(ValueError):
    """A synonym table line that cannot be used."""


def _key(text: str) -> str:
    return " ".join(text.replace("’", "'").lower().split())


def _is_number(word: str) -> bool:
    if _NUMBER.search(word):
        return True
    return any(part in NUMBER_WORDS for part in _key(word).split("-"))


@dataclass(frozen=True, slots=True)
class SynonymTable:
    """Phrases (lower case, `'` for apostrophes) and their replacements."""

    entries: Mapping[str, tuple[str, ...]]

    @property
    def longest(self) -> int:
        """Words in the longest phrase."""
        return max((len(phrase.split()) for phrase in self.entries), default=0)

    def __len__(self) -> int:
        return len(self.entries)

    def get(self, phrase: str) -> tuple[str, ...] | None:
        return self.entries.get(_key(phrase))

    @classmethod
    def parse(cls, lines: Iterable[str], *, source: str = "<table>") -> SynonymTable:
        """Lines of `phrase<TAB>replacement|replacement`; `#` comments and blank lines skipped.

        A phrase must have a content word and no number, number word or date; a
        replacement must differ from its phrase. A phrase listed twice is an error.
        """
        entries: dict[str, tuple[str, ...]] = {}
        for number, raw in enumerate(lines, start=1):
            line = raw.rstrip("\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            where = f"{source}:{number}"
            phrase, tab, rest = line.partition("\t")
            if not tab:
                raise SynonymTableError(f"{where}: expected 'phrase<TAB>replacement|...'")
            key = _key(phrase)
            words = key.split()
            if not words or any(not _WORD.fullmatch(word) for word in words):
                raise SynonymTableError(f"{where}: {phrase!r} is not a phrase of words")
            if any(_is_number(word) for word in words):
                raise SynonymTableError(f"{where}: {phrase!r} holds a number, word or date")
            if all(word in FUNCTION_WORDS for word in words):
                raise SynonymTableError(f"{where}: {phrase!r} has only function words")
            replacements = tuple(
                dict.fromkeys(" ".join(r.split()) for r in rest.split("|") if r.strip())
            )
            if not replacements:
                raise SynonymTableError(f"{where}: {phrase!r} has no replacement")
            if any(_key(r) == key for r in replacements):
                raise SynonymTableError(f"{where}: {phrase!r} is replaced by itself")
            if key in entries:
                raise SynonymTableError(f"{where}: {phrase!r} is listed twice")
            entries[key] = replacements
        return cls(entries=entries)

    @classmethod
    def load(cls, path: Path = DEFAULT_TABLE) -> SynonymTable:
        with path.open(encoding="utf-8") as lines:
            return cls.parse(lines, source=str(path))


@dataclass(frozen=True, slots=True)
class Replacement:
    """One replaced phrase: what the text said, what it says now, content words replaced."""

    source: str
    replacement: str
    content_words: int


@dataclass(frozen=True, slots=True)
class SpinResult:
    text: str
    content_words: int
    """Content words in the input: words that are neither function words nor numbers."""
    eligible_words: int
    """Content words that the table could replace."""
    replacements: tuple[Replacement, ...]

    @property
    def replaced_words(self) -> int:
        return sum(r.content_words for r in self.replacements)

    @property
    def fraction(self) -> float:
        """The share of content words replaced (0 for a text without content words)."""
        return self.replaced_words / self.content_words if self.content_words else 0.0


@dataclass(frozen=True, slots=True)
class _Token:
    start: int
    end: int
    word: str
    stem: str
    suffix: str
    content: bool
    number: bool


@dataclass(frozen=True, slots=True)
class _Candidate:
    first: int
    last: int
    weight: int
    replacements: tuple[str, ...]


class Spinner:
    """Replaces about `rate` of a text's content words using `table`; deterministic."""

    def __init__(self, table: SynonymTable, rate: float, seed: int | str = 0) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"rate must be between 0 and 1, got {rate}")
        self.table = table
        self.rate = rate
        self.seed = seed

    def spin(self, text: str) -> str:
        return self.spin_detailed(text).text

    def spin_paragraphs(self, paragraphs: Sequence[str]) -> tuple[str, ...]:
        """Paragraphs spun as one text (the rate holds over the article, not each paragraph)."""
        spun = self.spin("\n".join(paragraphs)).split("\n")
        assert len(spun) == len(paragraphs)
        return tuple(spun)

    def spin_detailed(self, text: str) -> SpinResult:
        tokens = _tokens(text)
        content_words = sum(token.content for token in tokens)
        candidates = self._candidates(text, tokens)
        eligible = sum(candidate.weight for candidate in candidates)
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        rng = random.Random(f"{self.seed}:{self.rate}:{digest}")
        target = round(self.rate * content_words)
        order = list(range(len(candidates)))
        rng.shuffle(order)
        chosen: list[int] = []
        total = 0
        for index in order:
            weight = candidates[index].weight
            if total + weight <= target:
                chosen.append(index)
                total += weight
            if total == target:
                break
        pieces: list[str] = []
        replacements: list[Replacement] = []
        position = 0
        for index in sorted(chosen):
            candidate = candidates[index]
            first, last = tokens[candidate.first], tokens[candidate.last]
            source_words = [token.stem for token in tokens[candidate.first : candidate.last + 1]]
            replacement = _match_case(source_words, rng.choice(candidate.replacements))
            replacement += last.suffix
            pieces.append(text[position : first.start])
            pieces.append(replacement)
            replacements.append(
                Replacement(text[first.start : last.end], replacement, candidate.weight)
            )
            position = last.end
        pieces.append(text[position:])
        return SpinResult(
            text="".join(pieces),
            content_words=content_words,
            eligible_words=eligible,
            replacements=tuple(replacements),
        )

    def _candidates(self, text: str, tokens: list[_Token]) -> list[_Candidate]:
        """Non-overlapping phrases of the table, longest first from left to right."""
        candidates: list[_Candidate] = []
        longest = self.table.longest
        index = 0
        while index < len(tokens):
            found = None
            for length in range(min(longest, len(tokens) - index), 0, -1):
                span = tokens[index : index + length]
                if not _adjacent(text, span):
                    continue
                replacements = self.table.entries.get(" ".join(_key(t.stem) for t in span))
                if replacements is None:
                    continue
                weight = sum(t.content for t in span)
                if weight and not any(t.number for t in span):
                    found = _Candidate(index, index + length - 1, weight, replacements)
                    break
            if found is None:
                index += 1
            else:
                candidates.append(found)
                index = found.last + 1
        return candidates


def _tokens(text: str) -> list[_Token]:
    tokens = []
    for match in _WORD.finditer(text):
        word = match.group()
        possessive = _POSSESSIVE.match(word)
        stem, suffix = (possessive.group(1), possessive.group(2)) if possessive else (word, "")
        number = _is_number(word)
        key = _key(word)
        content = not number and key not in FUNCTION_WORDS and _key(stem) not in FUNCTION_WORDS
        tokens.append(_Token(match.start(), match.end(), word, stem, suffix, content, number))
    return tokens


def _adjacent(text: str, span: list[_Token]) -> bool:
    """Consecutive words with only spaces between them; a possessive only at the end."""
    for before, after in itertools.pairwise(span):
        if before.suffix or text[before.end : after.start].strip(" \t\u00a0"):
            return False
    return True


def _match_case(source_words: list[str], replacement: str) -> str:
    letters = "".join(source_words)
    if len(letters) > 1 and letters.isupper():
        return replacement.upper()
    if len(source_words) > 1 and all(word[:1].isupper() for word in source_words):
        words = replacement.split(" ")
        return " ".join(
            word if (i and word in _SMALL_WORDS) or not word else word[:1].upper() + word[1:]
            for i, word in enumerate(words)
        )
    if source_words[0][:1].isupper():
        return replacement[:1].upper() + replacement[1:]
    return replacement
