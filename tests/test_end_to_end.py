"""`monitor run-once` against the local fixture news site, into a real SQLite file.

tests/site/expectations.json says what each feed item must become (see
tests/site/README.md); this test checks the database against it, then runs again.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from monitor.storage.database import create_database_engine
from tests.commands import run_monitor
from tests.localsite import LocalSite

REPO = Path(__file__).resolve().parent.parent
SITE = REPO / "tests" / "site"
EXPECTATIONS: dict[str, Any] = json.loads((SITE / "expectations.json").read_text(encoding="utf-8"))
FEED_TAGS = {"feeds/national.rss": ["cambodia", "national"], "feeds/autoblog.rss": ["autoblog"]}


def write_config(site: LocalSite, directory: Path, database_url: str | None = None) -> Path:
    feeds = "".join(
        f'[[feeds]]\nname = "{feed}"\nurl = "{site.url("/" + feed)}"\ninterval = "15m"\n'
        f"tags = {json.dumps(FEED_TAGS.get(feed, []))}\n\n"
        for feed in EXPECTATIONS["feeds"]
    )
    path = directory / "config.toml"
    url = database_url or f"sqlite:///{directory / 'monitor.db'}"
    path.write_text(
        f"[database]\nurl = {json.dumps(url)}\n\n"
        '[fetch]\nallow_private_addresses = true\nper_host_delay = 0\ntimeout = "10s"\n'
        'user_agent = "monitor-tests (+http://127.0.0.1/)"\n\n' + feeds,
        encoding="utf-8",
    )
    return path


def run_once(config: Path) -> str:
    return run_monitor(config, "run-once", timeout=300)


def summary(output: str) -> dict[str, int]:
    numbers = {}
    for line in output.splitlines():
        key, _, value = line.partition(": ")
        if value and value.split()[0].isdigit():
            numbers[key] = int(value.split()[0])
    return numbers


def link(item: dict[str, Any], site: LocalSite, key: str = "link") -> str:
    return str(item[key]).replace("{{BASE}}", site.base_url)


def canonical(item: dict[str, Any], site: LocalSite) -> str:
    return link(item, site, "canonical_link" if "canonical_link" in item else "link")


def utc(value: str) -> datetime:
    return datetime.fromisoformat(value).astimezone(UTC)


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory, module_database_url: str) -> Any:
    """Two runs of `monitor run-once` over the site; the database after each (SQLite,
    then PostgreSQL)."""
    directory = tmp_path_factory.mktemp("e2e")
    with LocalSite(SITE) as site:
        config = write_config(site, directory, module_database_url)
        first = run_once(config)
        engine = create_database_engine(module_database_url)
        with engine.connect() as connection:
            before = {
                table: connection.execute(sa.text(f"SELECT * FROM {table} ORDER BY 1"))
                .mappings()
                .all()
                for table in ("articles", "article_tags", "duplicates", "entries", "feeds")
            }
        second = run_once(config)
        with engine.connect() as connection:
            after = {
                table: connection.execute(sa.text(f"SELECT * FROM {table} ORDER BY 1"))
                .mappings()
                .all()
                for table in ("articles", "article_tags", "duplicates", "entries")
            }
            typed = connection.execute(sa.text("SELECT * FROM articles")).mappings().all()
        engine.dispose()
        yield {
            "site": site,
            "first": first,
            "second": second,
            "before": before,
            "after": after,
            "typed": typed,
        }


def stored_items() -> list[dict[str, Any]]:
    return [item for item in EXPECTATIONS["items"] if item["outcome"] == "stored"]


def test_one_article_per_distinct_story(ingested: Any) -> None:
    site: LocalSite = ingested["site"]
    articles = ingested["before"]["articles"]
    assert sorted(row["url"] for row in articles) == sorted(
        canonical(i, site) for i in stored_items()
    )


@pytest.mark.parametrize("item", stored_items(), ids=lambda item: item["story"])
def test_stored_article_fields(ingested: Any, item: dict[str, Any]) -> None:
    site: LocalSite = ingested["site"]
    (row,) = [row for row in ingested["before"]["articles"] if row["url"] == canonical(item, site)]
    assert row["title"] == item["title"]
    assert row["author"] == item["author"]
    assert row["language"] == item["language"]
    assert row["site"] == "127.0.0.1"
    stored_time = as_utc(row["published_at"])
    assert stored_time == utc(item["published_at"]), item["published_at_source"]
    text = row["text"]
    for snippet in item.get("must_contain", []):
        assert snippet in text
    for snippet in item.get("must_contain_once", []):
        assert text.count(snippet) == 1, snippet
    for snippet in item.get("must_not_contain", []):
        assert snippet not in text
    if "text_from_fixture" in item:
        spec = item["text_from_fixture"]
        lines = (REPO / spec["path"]).read_text(encoding="utf-8").splitlines()
        assert text == "\n".join(lines[spec["first_line"] - 1 : spec["last_line"]])


@pytest.mark.parametrize("item", stored_items(), ids=lambda item: item["story"])
def test_tags_with_their_sources(ingested: Any, item: dict[str, Any]) -> None:
    site: LocalSite = ingested["site"]
    (article,) = [r for r in ingested["before"]["articles"] if r["url"] == canonical(item, site)]
    tags = {
        (r["tag"], r["source"])
        for r in ingested["before"]["article_tags"]
        if r["article_id"] == article["id"]
    }
    # The story's tags are those of every arrival: its own entry's and its copies'.
    arrivals = [
        other
        for other in EXPECTATIONS["items"]
        if other["story"] == item["story"] and other["outcome"].startswith(("stored", "duplicate"))
    ]
    assert len(arrivals) >= 1
    expected = {(tag, "feed") for other in arrivals for tag in FEED_TAGS.get(other["feed"], [])}
    expected |= {(tag, "category") for other in arrivals for tag in other["categories"]}
    assert tags == expected


def test_duplicates_are_recorded_and_linked(ingested: Any) -> None:
    site: LocalSite = ingested["site"]
    article_ids = {row["url"]: row["id"] for row in ingested["before"]["articles"]}
    expected = sorted(
        (item["outcome"].split(":")[1], article_ids[link(item, site, "duplicate_of")])
        for item in EXPECTATIONS["items"]
        if item["outcome"].startswith("duplicate:")
    )
    found = sorted((row["kind"], row["article_id"]) for row in ingested["before"]["duplicates"])
    assert found == expected
    assert all(row["similarity"] == 1.0 for row in ingested["before"]["duplicates"])
    # The copy reached with utm_* parameters is recorded under its canonical URL.
    urls = {row["url"] for row in ingested["before"]["duplicates"]}
    assert not any("utm_" in url or "#" in url for url in urls)


def test_every_entry_has_its_outcome(ingested: Any) -> None:
    site: LocalSite = ingested["site"]
    feed_urls = {row["id"]: row["url"] for row in ingested["before"]["feeds"]}
    entries = {
        (feed_urls[row["feed_id"]], row["link"]): row for row in ingested["before"]["entries"]
    }
    assert len(entries) == len(ingested["before"]["entries"]) == len(EXPECTATIONS["items"])
    for item in EXPECTATIONS["items"]:
        row = entries[(site.url("/" + item["feed"]), link(item, site))]
        assert row["outcome"] == item["outcome"].split(":")[0], item["case"]
        if item["outcome"] == "failed":
            assert row["reason"] == f"http_{item['http_status']}"
            assert row["article_id"] is None
        else:
            assert row["article_id"] is not None


def test_summary_counts(ingested: Any) -> None:
    numbers = summary(ingested["first"])
    outcomes = Counter(item["outcome"].split(":")[0] for item in EXPECTATIONS["items"])
    assert numbers["feeds polled"] == len(EXPECTATIONS["feeds"])
    assert numbers["entries seen"] == len(EXPECTATIONS["items"])
    assert numbers["stored"] == outcomes["stored"]
    assert numbers["duplicates"] == outcomes["duplicate"]
    assert numbers["failed"] == outcomes["failed"]


def test_second_run_adds_nothing(ingested: Any) -> None:
    before, after = ingested["before"], ingested["after"]
    for table in ("articles", "article_tags", "duplicates"):
        assert after[table] == before[table], table
    numbers = summary(ingested["second"])
    assert numbers["stored"] == 0 and numbers["duplicates"] == 0
    # Only the broken link is tried again (up to fetch.max_attempts).
    assert numbers["failed"] == sum(1 for i in EXPECTATIONS["items"] if i["outcome"] == "failed")
    failed = [row for row in after["entries"] if row["outcome"] == "failed"]
    assert [row["attempts"] for row in failed] == [2] * len(failed)


def test_feed_health_recorded(ingested: Any) -> None:
    feeds = ingested["before"]["feeds"]
    assert len(feeds) == len(EXPECTATIONS["feeds"])
    for row in feeds:
        assert row["last_status"] == 200
        assert row["consecutive_failures"] == 0
        assert row["last_success_at"] is not None
        assert row["title"]


def as_utc(value: str | datetime) -> datetime:
    """A stored time: SQLite's UTC text, or PostgreSQL's timestamptz."""
    if isinstance(value, str):
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    return value.astimezone(UTC)


def test_times_are_stored_as_utc(ingested: Any) -> None:
    for row in ingested["typed"]:
        for column in ("published_at", "fetched_at"):
            value = row[column]
            if isinstance(value, str):
                # SQLite holds UTC wall time without an offset; SQLite's datetime() agrees.
                assert "+" not in value and "T" not in value
            else:
                assert value.utcoffset() is not None
