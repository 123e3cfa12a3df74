"""What downstream readers get: the views, and `monitor export` (both databases)."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from monitor.config import FeedSettings, FetchSettings, Settings
from monitor.export import ExportFilter, export
from monitor.runner import run_once
from monitor.storage.store import Store
from tests.localsite import LocalSite

FEEDS = ("feeds/national.rss", "feeds/wire.atom", "feeds/regional.rdf", "feeds/autoblog.rss")


@pytest.fixture
def ingested(site: LocalSite, store: Store) -> Store:
    settings = Settings(
        fetch=FetchSettings(allow_private_addresses=True, per_host_delay=0),
        feeds=tuple(
            FeedSettings(
                name=feed.split("/")[1].split(".")[0], url=site.url(f"/{feed}"), tags=("kh",)
            )
            for feed in FEEDS
        ),
    )
    run_once(settings, store)
    return store


def rows(store: Store, sql: str) -> list[Any]:
    with store.engine.connect() as connection:
        return list(connection.execute(sa.text(sql)).mappings())


def test_views_answer_the_common_questions(ingested: Store) -> None:
    reach = {row["url"]: row for row in rows(ingested, "SELECT * FROM story_reach")}
    (raid,) = [row for url, row in reach.items() if url.endswith("compound-raid.html")]
    # The wire's feed links the Herald's own URL: listed twice, copied by nobody.
    assert (raid["copies"], raid["copying_sites"], raid["copied_by"]) == (0, 0, None)
    assert raid["same_url_entries"] == 1
    tip = next(row for url, row in reach.items() if "tier-3" in url)
    assert (tip["copies"], tip["copied_by"], tip["same_url_entries"]) == (1, "127.0.0.1", 0)
    counts = rows(ingested, "SELECT * FROM daily_tag_counts WHERE tag = 'kh'")
    assert sum(row["articles"] for row in counts) == len(reach)
    assert all(str(row["day"]).startswith("2024-") for row in counts)
    health = rows(ingested, "SELECT name, health, last_status FROM feed_health ORDER BY name")
    assert [row["name"] for row in health] == ["autoblog", "national", "regional", "wire"]
    assert {row["health"] for row in health} == {"ok"}


def test_export_jsonl_with_filters(ingested: Store) -> None:
    output = io.BytesIO()
    assert export(ingested, output, fmt="jsonl", selection=ExportFilter()) == 9
    lines = output.getvalue().decode("utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    # What json.dumps writes: UTF-8, not \u escapes; times as isoformat() gives them.
    assert lines == [
        json.dumps(record, ensure_ascii=False, separators=(",", ":")) for record in records
    ]
    assert all(datetime.fromisoformat(r["published_at"]).tzinfo is not None for r in records)
    assert all(
        {"id", "url", "title", "text", "tags", "published_at", "feed"} <= set(r) for r in records
    )
    stored_tags = {tag["tag"] for r in records for tag in r["tags"]}
    assert ingested.tag_names() == sorted(stored_tags) and stored_tags
    assert all(
        any(tag["tag"] == "kh" and tag["source"] == "feed" for tag in r["tags"]) for r in records
    )
    # The same order on either database, so that their exports compare equal.
    assert all(
        r["tags"] == sorted(r["tags"], key=lambda t: (t["tag"], t["source"])) for r in records
    )

    def count(**selection: Any) -> int:
        return export(ingested, io.BytesIO(), fmt="jsonl", selection=ExportFilter(**selection))

    assert count(tags=("NCCT",)) == 2
    assert count(feeds=("autoblog",)) == 2
    # Tags repeated: articles with every one; feeds: through any one.
    assert count(tags=("NCCT", "kh")) == 2 and count(tags=("NCCT", "no such tag")) == 0
    assert count(feeds=("autoblog", "national")) == count(feeds=("autoblog",)) + count(
        feeds=("national",)
    )
    # A story arrived through every feed that listed it: the wire's feed links the Herald's
    # own compound-raid URL (a same_url entry), so the wire's export has that story too.
    through_wire = io.BytesIO()
    export(ingested, through_wire, fmt="jsonl", selection=ExportFilter(feeds=("wire",)))
    wire = [json.loads(line) for line in through_wire.getvalue().splitlines()]
    assert any(r["url"].endswith("compound-raid.html") and r["feed"] != "wire" for r in wire)
    assert (
        count(since=datetime(2024, 5, 1, tzinfo=UTC))
        + count(until=datetime(2024, 5, 1, tzinfo=UTC))
        == 9
    )
    with_copies = io.BytesIO()
    export(ingested, with_copies, fmt="jsonl", selection=ExportFilter(include_duplicates=True))
    copies = [json.loads(line)["duplicates"] for line in with_copies.getvalue().splitlines()]
    assert sum(len(c) for c in copies) == 4
    assert {c["kind"] for story in copies for c in story} == {"same_url", "exact_text"}


def test_exported_tags_are_in_code_point_order_with_their_phrases_as_arrays(
    ingested: Store,
) -> None:
    # An audit: PostgreSQL sorted "country:…" before "Crime" in a database with a
    # language collation, SQLite after it; and detail came out as JSON text in the JSON.
    with ingested.engine.begin() as connection:
        article_id = connection.execute(sa.text("SELECT min(id) FROM articles")).scalar_one()
        connection.execute(
            sa.text(
                "INSERT INTO article_tags (article_id, tag, source, detail) VALUES"
                " (:id, 'country:indonesia', 'rule', '[\"indonesia\", \"jakarta\"]'),"
                " (:id, 'Crime', 'category', NULL), (:id, 'crime', 'category', NULL)"
            ),
            {"id": article_id},
        )
    output = io.BytesIO()
    export(ingested, output, fmt="jsonl", selection=ExportFilter())
    (record,) = [
        r for r in map(json.loads, output.getvalue().splitlines()) if r["id"] == article_id
    ]
    names = [tag["tag"] for tag in record["tags"]]
    assert names.index("Crime") < names.index("country:indonesia") < names.index("crime")
    (rule,) = [tag for tag in record["tags"] if tag["tag"] == "country:indonesia"]
    assert rule["detail"] == ["indonesia", "jakarta"]


def test_export_csv(ingested: Store, tmp_path: Path) -> None:
    path = tmp_path / "articles.csv"
    with path.open("wb") as file:
        assert export(ingested, file, fmt="csv", selection=ExportFilter(tags=("NCCT",))) == 2
    with path.open(encoding="utf-8") as file:
        table = list(csv.DictReader(file))
    assert len(table) == 2
    assert all("NCCT (category)" in row["tags"] for row in table)
    assert all(row["published_at"].startswith("2024-") for row in table)
    assert all(row["fetched_at"] and row["url"].startswith("http") and row["text"] for row in table)
    assert all(row["id"].isdigit() and row["copies"].isdigit() for row in table)
    # Without --include-duplicates too: the number of each story's duplicates rows.
    with path.open("wb") as file:
        export(ingested, file, fmt="csv", selection=ExportFilter())
    with path.open(encoding="utf-8") as file:
        assert sum(int(row["copies"]) for row in csv.DictReader(file)) == 4


@pytest.mark.parametrize("view", ["story_reach", "daily_tag_counts", "feed_health"])
def test_every_view_column_is_documented(store: Store, view: str) -> None:
    schema = (Path(__file__).resolve().parent.parent / "docs" / "schema.md").read_text("utf-8")
    section = schema.split(f"## `{view}`\n", 1)[1].split("\n## ", 1)[0]
    with store.engine.connect() as connection:
        columns = connection.execute(sa.text(f"SELECT * FROM {view} LIMIT 0")).keys()
    for column in columns:
        assert f"| `{column}` |" in section, f"{view}.{column}"


def test_full_text_search_is_kept_current_by_the_database(ingested: Store) -> None:
    hits = ingested.search("Sihanoukville raid")
    assert hits and all("[" in hit.snippet for hit in hits)  # matched words marked
    assert any("Sihanoukville" in hit.title for hit in hits)
    titles = [hit.title for hit in ingested.search("NCCT")]
    assert any("NCCT" in title for title in titles)
    assert ingested.search("zzzznotaword") == []
    # A query that is not valid FTS5 syntax still searches its words.
    assert ingested.search('"NCCT')

    # One syntax on both databases: -word excludes, or widens, "a phrase" is a phrase.
    def found(query: str) -> set[int]:
        return {hit.article_id for hit in ingested.search(query, limit=1000)}

    police, sihanoukville = found("police"), found("Sihanoukville")
    assert police & sihanoukville and police - sihanoukville
    assert found("police -Sihanoukville") == police - sihanoukville
    # Still best matches first: an exclusion does not flatten the rank (on PostgreSQL,
    # ts_rank of a query with a negation is the same for every row).
    ranked = [hit.article_id for hit in ingested.search("police", limit=1000)]
    assert [hit.article_id for hit in ingested.search("police -Sihanoukville", limit=1000)] == [
        article for article in ranked if article not in sihanoukville
    ]
    assert ranked != sorted(ranked)  # the rank, not the ids, gives the order
    assert found("police or Sihanoukville") == police | sihanoukville
    assert ingested.search("-raid") == []
    # A "-" standing alone is no exclusion, "--word" is one: alike on both databases.
    assert found("- police") == police
    assert found("police - Sihanoukville") == police & sihanoukville
    assert found("--Sihanoukville police") == police - sihanoukville
    # An article rewritten in place (the original replacing a copy) is found by its new text.
    with ingested.engine.begin() as connection:
        connection.execute(
            sa.text(
                "UPDATE articles SET text = 'xylophone quartet' WHERE id = (SELECT min(id) FROM articles)"
            )
        )
    assert [hit.article_id for hit in ingested.search("xylophone")] == [
        rows(ingested, "SELECT min(id) AS id FROM articles")[0]["id"]
    ]


def _retitle_first_article(store: Store, title: str, text: str | None = None) -> int:
    with store.engine.begin() as connection:
        article_id = connection.execute(sa.text("SELECT min(id) FROM articles")).scalar_one()
        connection.execute(
            sa.text(
                "UPDATE articles SET title = :title, text = coalesce(:text, text) WHERE id = :id"
            ),
            {"title": title, "text": text, "id": article_id},
        )
    return int(article_id)


def test_a_khmer_word_is_found_inside_its_run_and_never_by_its_letters(ingested: Store) -> None:
    # Khmer writes no space between words, so both indexes hold a whole run as one
    # word: "trafficking" (ជួញដូរ) inside "from human trafficking" was never found.
    # SQLite's tokenizer once cut Khmer at every vowel sign, and an audit found a
    # one-consonant query matching: letters inside a cluster are no match.
    title = "ក្រសួងមហាផ្ទៃ ជួយសង្គ្រោះជនរងគ្រោះពីការជួញដូរមនុស្ស"
    article_id = _retitle_first_article(ingested, title)
    (hit,) = ingested.search("ក្រសួងមហាផ្ទៃ")
    assert hit.title == title
    assert [hit.article_id for hit in ingested.search("ជួញដូរ")] == [article_id]
    police = {hit.article_id for hit in ingested.search("police", limit=1000)}
    assert [hit.article_id for hit in ingested.search("ជួញដូរ police")] == (
        [article_id] if article_id in police else []
    )
    # A consonant before its vowel sign or its coeng, or a cluster cut after the
    # coeng: no match (ក stands in ក្រសួង and ការ, never alone).
    assert ingested.search("ក") == [] and ingested.search("ងមហ") == []
    assert ingested.search("ក្") == []
    assert ingested.search("ជួញដូរ -ក្រសួង") == []


def test_chinese_words_are_found_inside_a_sentence(ingested: Store) -> None:
    text = (
        "柬埔寨警方周二在西港一处诈骗园区解救了三百多名外国人。"
        "警方表示，这些人被以高薪工作为诱饵骗到柬埔寨，被迫从事网络诈骗。"
    )
    article_id = _retitle_first_article(ingested, "柬埔寨警方在西港解救诈骗园区受害者", text)

    def found(query: str) -> list[int]:
        return [hit.article_id for hit in ingested.search(query, limit=1000)]

    assert found("西港") == [article_id]
    assert found("网络诈骗") == [article_id]
    assert found("诈骗 -缅甸") == [article_id]
    assert found("诈骗 -网络诈骗") == []
    assert found("缅甸") == []
    assert found("缅甸 or 西港") == [article_id]
    (hit,) = ingested.search("网络诈骗")
    assert "[网络诈骗]" in hit.snippet and "被迫从事" in hit.snippet
    # A query in Traditional characters finds the Simplified text, and back.
    (hit,) = ingested.search("網絡詐騙")
    assert "[网络诈骗]" in hit.snippet
    _retitle_first_article(ingested, "柬埔寨警方在西港解救詐騙園區受害者", "")
    assert found("诈骗园区") == [article_id]
    # Terms in other scripts still go through the index, in the same query.
    everything = {hit.article_id for hit in ingested.search("police", limit=1000)}
    assert set(found("police -西港")) == everything - {article_id}
