"""`monitor search`: one web-search syntax over SQLite's FTS5 and PostgreSQL's text search.

Both indexes cut text into words at spaces and punctuation, so in scripts written
without spaces between words (Chinese, Japanese, Thai, Lao, Khmer, Myanmar) a whole
run between punctuation is one word, and a word inside it is never found. A query
term in those scripts is therefore looked for as written, inside the title and text,
starting and ending on whole characters as the reader sees them (a consonant is not
found inside a consonant cluster or before its vowel sign). Terms in other scripts
still go through the index.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any

import regex
import sqlalchemy as sa

from monitor.chinese import simplified, traditional

_SEARCH_SQLITE = sa.text(
    "SELECT a.id, a.title, a.url, a.published_at,"
    " snippet(articles_fts, 1, '[', ']', '…', 16)"
    " FROM articles_fts JOIN articles a ON a.id = articles_fts.rowid"
    " WHERE articles_fts MATCH :query ORDER BY rank LIMIT :limit"
)
# Ranked and highlighted by the wanted terms alone: ts_rank gives every row the same
# 1e-20 for a query with a negation ("scam -poipet"), which lost the order.
_SEARCH_POSTGRES = sa.text(
    "SELECT a.id, a.title, a.url, a.published_at,"
    " ts_headline('english', a.text, w, 'StartSel=[, StopSel=], MaxWords=24, MinWords=8')"
    " FROM articles a, websearch_to_tsquery('english', :query) q,"
    " websearch_to_tsquery('english', :wanted) w"
    " WHERE a.search_document @@ q ORDER BY ts_rank(a.search_document, w) DESC, a.id"
    " LIMIT :limit"
)

_SEARCH_TERM = re.compile(r'(-?)(?:"([^"]*)"?|([^\s"]+))')

# Scripts written without spaces between words.
_UNSPACED_SCRIPT = regex.compile(
    r"[\p{Han}\p{Hiragana}\p{Katakana}\p{Thai}\p{Lao}\p{Khmer}\p{Myanmar}]"
)
_HAN = regex.compile(r"\p{Han}")
# Signs that join the next letter to the one before (Khmer's coeng, Myanmar's virama,
# the zero-width joiner): no character boundary after them.
_JOINERS = frozenset("\u17d2\u1039\u200d")
# Characters shown on either side of a match found as written.
_SNIPPET_BEFORE, _SNIPPET_AFTER = 40, 80


@dataclass(frozen=True, kw_only=True, slots=True)
class SearchHit:
    article_id: int
    title: str
    url: str
    published_at: datetime | str | None
    snippet: str


@dataclass(frozen=True)
class _SearchTerm:
    text: str
    phrase: bool = False
    negated: bool = False
    prefix: bool = False
    either: bool = False  # joined to the term before by `or`

    @property
    def unspaced(self) -> bool:
        """In a script without spaces between words: looked for as written."""
        return _UNSPACED_SCRIPT.search(self.text) is not None

    @cached_property
    def spellings(self) -> tuple[str, ...]:
        """The ways an unspaced term is looked for: Chinese in Simplified and in
        Traditional characters too, as a Hong Kong or Taiwan outlet writes it (converted
        once per query, not once per article read)."""
        if _HAN.search(self.text) is None:
            return (self.text,)
        return tuple(dict.fromkeys((self.text, simplified(self.text), traditional(self.text))))


def _search_terms(query: str) -> list[_SearchTerm]:
    """The terms of a web-search query (words, "a phrase", or, -word), read once for both
    databases: a `-` standing alone, or a term with no letter or digit, is no term
    (PostgreSQL read "- forced" as "not forced", SQLite as "forced"), and "--word" is
    "-word"."""
    terms: list[_SearchTerm] = []
    either = False
    for negated, phrase, word in _SEARCH_TERM.findall(query):
        if not negated and phrase == "" and word.lower() == "or":
            either = bool(terms)
            continue
        text = phrase if phrase else word.lstrip("-") if negated else word
        prefix = not phrase and text.endswith("*")
        text = (text.rstrip("*") if prefix else text).replace('"', "")
        if not any(character.isalnum() for character in text):
            continue
        terms.append(_SearchTerm(text, bool(phrase), bool(negated), prefix, either and not negated))
        either = False
    return terms


def fts5_query(query: str) -> str | None:
    """The query as FTS5 reads it, so that `monitor search` reads a query alike on both
    databases; a trailing * on a word is a prefix. None when nothing is left to look for
    (only exclusions)."""
    wanted: list[str] = []
    excluded: list[str] = []
    for term in _search_terms(query):
        if term.negated:
            excluded.append(_fts5_term(term))
        else:
            wanted.append((" OR " if term.either else " ") * bool(wanted) + _fts5_term(term))
    if not wanted:
        return None
    positive = "".join(wanted)
    return f"({positive}) NOT ({' OR '.join(excluded)})" if excluded else positive


def _fts5_term(term: _SearchTerm) -> str:
    return f'"{term.text}"' + ("*" if term.prefix else "")


def websearch_query(query: str, *, wanted_only: bool = False) -> str:
    """The query as PostgreSQL's websearch_to_tsquery reads it, from the same terms (with
    `wanted_only`, without the excluded ones)."""
    parts = []
    for term in _search_terms(query):
        if wanted_only and term.negated:
            continue
        text = f'"{term.text}"' if term.phrase else term.text
        parts.append(("or " if term.either else "") + ("-" if term.negated else "") + text)
    return " ".join(parts)


def search_articles(connection: sa.Connection, query: str, *, limit: int) -> list[SearchHit]:
    """Kept articles matching `query`: by the index's rank, or newest first when a term
    is looked for as written."""
    terms = _search_terms(query)
    if not any(not term.negated for term in terms):
        return []  # only exclusions: alike on both databases, nothing asked for
    if any(term.unspaced for term in terms):
        return _search_as_written(connection, terms, limit=limit)
    if connection.dialect.name == "postgresql":
        rows = connection.execute(
            _SEARCH_POSTGRES,
            {
                "query": websearch_query(query),
                "wanted": websearch_query(query, wanted_only=True),
                "limit": limit,
            },
        ).all()
    else:
        try:
            rows = connection.execute(
                _SEARCH_SQLITE, {"query": fts5_query(query), "limit": limit}
            ).all()
        except sa.exc.OperationalError:
            rows = []  # a phrase FTS5 cannot read (punctuation alone) finds nothing
    return [
        SearchHit(article_id=row[0], title=row[1], url=row[2], published_at=row[3], snippet=row[4])
        for row in rows
    ]


def _search_as_written(
    connection: sa.Connection, terms: Sequence[_SearchTerm], *, limit: int
) -> list[SearchHit]:
    """The query judged article by article: the database narrows the articles down (an
    unspaced term's characters anywhere, each other term through the index) and says
    which indexed terms each one matches; the unspaced terms are then checked on whole
    characters, and the query's and, or and not applied to the answers."""
    postgres = connection.dialect.name == "postgresql"
    parameters: dict[str, Any] = {}
    matches: list[str] = []  # per term: the SQL that is true when the article has it
    for number, term in enumerate(terms):
        name = f"term{number}"
        if term.unspaced:
            found = "strpos(a.title || ' ' || a.text, :{0}) > 0"
            found = found if postgres else found.replace("strpos", "instr")
            spellings = []
            for spelling_number, spelling in enumerate(term.spellings):
                parameters[f"{name}_{spelling_number}"] = spelling
                spellings.append(found.format(f"{name}_{spelling_number}"))
            matches.append("(" + " OR ".join(spellings) + ")")
        elif postgres:
            parameters[name] = f'"{term.text}"' if term.phrase else term.text
            matches.append(f"a.search_document @@ websearch_to_tsquery('english', :{name})")
        else:
            parameters[name] = _fts5_term(term)
            matches.append(
                f"a.id IN (SELECT rowid FROM articles_fts WHERE articles_fts MATCH :{name})"
            )
    # Narrowing may keep too much, never too little: an unspaced term found by its
    # characters may still sit inside a cluster, so its exclusion waits for the check.
    narrowing = " AND ".join(
        f"NOT ({matches[number]})"
        for number, term in enumerate(terms)
        if term.negated and not term.unspaced
    )
    wanted = " OR ".join(
        "(" + " AND ".join(matches[number] for number in group) + ")"
        for group in _either_groups(terms)
    )
    indexed = "".join(
        f", {match}" if not term.unspaced else ", NULL"
        for match, term in zip(matches, terms, strict=True)
    )
    statement = sa.text(
        f"SELECT a.id, a.title, a.url, a.published_at, a.text{indexed} FROM articles a"
        f" WHERE ({wanted}){' AND ' + narrowing if narrowing else ''}"
        " ORDER BY coalesce(a.published_at, a.fetched_at) DESC, a.id DESC"
    )
    hits: list[SearchHit] = []
    try:
        rows = connection.execution_options(stream_results=True, max_row_buffer=200).execute(
            statement, parameters
        )
        for row in rows:
            title, text = row[1], row[4]
            has = [
                _found_whole(term.spellings, title, text)
                if term.unspaced
                else bool(row[5 + number])
                for number, term in enumerate(terms)
            ]
            if not _query_holds(terms, has):
                continue
            hits.append(
                SearchHit(
                    article_id=row[0],
                    title=title,
                    url=row[2],
                    published_at=row[3],
                    snippet=_snippet(text, terms),
                )
            )
            if len(hits) == limit:
                break
        rows.close()
    except sa.exc.OperationalError:
        return []  # a phrase FTS5 cannot read (punctuation alone) finds nothing
    return hits


def _either_groups(terms: Sequence[_SearchTerm]) -> list[list[int]]:
    """The wanted terms' positions, in groups that must all hold, any group enough (`or`
    binds looser than the space between words, as in FTS5 and PostgreSQL)."""
    groups: list[list[int]] = []
    for number, term in enumerate(terms):
        if term.negated:
            continue
        if term.either and groups:
            groups.append([number])
        elif groups:
            groups[-1].append(number)
        else:
            groups.append([number])
    return groups


def _query_holds(terms: Sequence[_SearchTerm], has: Sequence[bool]) -> bool:
    if any(has[number] for number, term in enumerate(terms) if term.negated):
        return False
    return any(all(has[number] for number in group) for group in _either_groups(terms))


def _found_whole(needles: Iterable[str], *haystacks: str) -> bool:
    return any(
        _whole_occurrence(needle, haystack) is not None
        for needle in needles
        for haystack in haystacks
    )


def _whole_occurrence(needle: str, haystack: str) -> int | None:
    """Where `needle` first stands in `haystack` starting and ending on character
    boundaries (not before a combining sign, not after a joining sign); None if nowhere."""
    start = haystack.find(needle)
    while start != -1:
        if _boundary(haystack, start) and _boundary(haystack, start + len(needle)):
            return start
        start = haystack.find(needle, start + 1)
    return None


def _boundary(text: str, position: int) -> bool:
    if position in (0, len(text)):
        return True
    return (
        unicodedata.category(text[position])[0] != "M"
        and text[position - 1] not in _JOINERS
        and text[position] not in _JOINERS
    )


def _snippet(text: str, terms: Iterable[_SearchTerm]) -> str:
    """The text around the first wanted term found in it, the term in [brackets]."""
    for term in terms:
        if term.negated:
            continue
        start, length = None, len(term.text)
        if term.unspaced:
            for spelling in term.spellings:
                start, length = _whole_occurrence(spelling, text), len(spelling)
                if start is not None:
                    break
        else:
            found = text.casefold().find(term.text.casefold())
            start = found if found >= 0 and len(text.casefold()) == len(text) else None
        if start is None:
            continue
        end = start + length
        before = text[max(0, start - _SNIPPET_BEFORE) : start]
        after = text[end : end + _SNIPPET_AFTER]
        return (
            ("…" if start > _SNIPPET_BEFORE else "")
            + " ".join(f"{before}[{text[start:end]}]{after}".split())
            + ("…" if end + _SNIPPET_AFTER < len(text) else "")
        )
    opening = " ".join(text[: _SNIPPET_BEFORE + _SNIPPET_AFTER].split())
    return opening + ("…" if len(text) > _SNIPPET_BEFORE + _SNIPPET_AFTER else "")
