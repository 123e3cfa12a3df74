"""The topic filter and tag rules in the pipeline, and `monitor retag`, on both databases."""

from __future__ import annotations

import json
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from monitor.config import FeedSettings, FetchSettings, Settings, TagRule, TopicSettings
from monitor.records import Outcome
from monitor.retag import retag
from monitor.rules import RuleSet
from monitor.runner import run_once
from monitor.storage.schema import ArticleTag, Entry
from monitor.storage.store import Store
from tests.commands import MONITOR, environment, run_monitor
from tests.localsite import LocalSite, SiteRequest

TOPIC = TopicSettings(
    all=(("cambodia", "phnom penh", "sihanoukville"), ("human trafficking", "scam compound")),
)
TAGS = (
    TagRule(name="place:phnom-penh", any=("phnom penh",)),
    TagRule(name="place:sihanoukville", any=("sihanoukville",)),
    TagRule(name="theme:scam-compounds", any=("scam compound",)),
)
PARAGRAPH = (
    "Officials gave the figures at a press conference on Monday, and said more would follow. "
)
PAGES = {
    "/raid.html": (
        "Police raid scam compound in Sihanoukville",
        "Police in Sihanoukville raided a scam compound and freed 214 workers from Indonesia. "
        "Officials said the case was one of human trafficking. " + PARAGRAPH * 4,
    ),
    "/football.html": (
        "Phnom Penh Crown win the derby",
        "Phnom Penh Crown beat Visakha 2-1 in front of 12,000 fans at the Olympic Stadium. "
        + PARAGRAPH * 4,
    ),
}


def serve(site: LocalSite) -> None:
    items = "".join(
        f"<item><title>{title}</title><link>{site.url(path)}</link><guid>{path}</guid></item>"
        for path, (title, _) in PAGES.items()
    )
    feed = f'<rss version="2.0"><channel><title>News</title>{items}</channel></rss>'
    site.route("/feed.rss", lambda _: (200, {"Content-Type": "application/rss+xml"}, feed.encode()))
    for path, (title, text) in PAGES.items():
        html = (
            f"<html><head><title>{title}</title></head><body><article><h1>{title}</h1>"
            + "".join(f"<p>{sentence}.</p>" for sentence in text.split(". ") if sentence)
            + "</article></body></html>"
        )

        def page(_: SiteRequest, body: bytes = html.encode()) -> tuple[int, dict[str, str], bytes]:
            return 200, {"Content-Type": "text/html; charset=utf-8"}, body

        site.route(path, page)


def settings(
    site: LocalSite, *, filter_feed: bool = True, tags: tuple[TagRule, ...] = TAGS
) -> Settings:
    return Settings(
        fetch=FetchSettings(allow_private_addresses=True, timeout=5, per_host_delay=0),
        topic=TOPIC,
        tags=tags,
        feeds=(
            FeedSettings(
                name="news", url=site.url("/feed.rss"), filter=filter_feed, tags=("feed-tag",)
            ),
        ),
    )


def entries(store: Store) -> dict[str, Any]:
    with store.engine.connect() as connection:
        return {row.link.rsplit("/", 1)[-1]: row for row in connection.execute(sa.select(Entry))}


def rule_tags(store: Store) -> dict[str, list[str]]:
    with store.engine.connect() as connection:
        rows = connection.execute(
            sa.select(ArticleTag.tag, ArticleTag.detail).where(ArticleTag.source == "rule")
        ).all()
    return {tag: json.loads(detail or "[]") for tag, detail in rows}


def test_off_topic_entries_are_recorded_and_never_fetched_again(
    site: LocalSite, store: Store
) -> None:
    serve(site)
    config = settings(site)
    summary = run_once(config, store)
    assert summary.outcomes == {Outcome.STORED: 1, Outcome.OFF_TOPIC: 1}
    football = entries(store)["football.html"]
    assert (football.outcome, football.reason, football.article_id) == (
        "off_topic",
        "off_topic",
        None,
    )
    assert "topic.all[1]" in football.error
    # The next poll parses the feed again (no validators) but does not fetch it again.
    run_once(config, store)
    assert site.hits("/football.html") == 1


def test_rule_tags_are_stored_with_the_phrases_that_matched(site: LocalSite, store: Store) -> None:
    serve(site)
    run_once(settings(site), store)
    assert rule_tags(store) == {
        "place:sihanoukville": ["sihanoukville"],
        "theme:scam-compounds": ["scam compound"],
    }


def test_a_feed_that_opts_out_of_the_filter(site: LocalSite, store: Store) -> None:
    serve(site)
    summary = run_once(settings(site, filter_feed=False), store)
    assert summary.outcomes == {Outcome.STORED: 2}
    assert entries(store)["football.html"].outcome == "stored"


def test_retag_changes_exactly_the_edited_rule_and_is_idempotent(
    site: LocalSite, store: Store
) -> None:
    serve(site)
    run_once(settings(site, filter_feed=False), store)
    before = {**rule_tags(store)}
    edited = (
        TagRule(name="place:phnom-penh", any=("phnom penh", "olympic stadium")),
        TagRule(name="place:sihanoukville", any=("preah sihanouk",)),  # no longer matches
        TAGS[2],
        TagRule(name="theme:sport", any=("fans", "derby")),  # new
    )
    report = retag(store, RuleSet.compile(TOPIC, edited), batch_size=1)
    assert report.articles == 2
    assert dict(report.added) == {"theme:sport": 1}
    assert dict(report.removed) == {"place:sihanoukville": 1}
    assert dict(report.explained_anew) == {"place:phnom-penh": 1}
    after = rule_tags(store)
    assert after["place:phnom-penh"] == ["olympic stadium", "phnom penh"]
    assert after["theme:scam-compounds"] == before["theme:scam-compounds"]
    again = retag(store, RuleSet.compile(TOPIC, edited))
    assert not again.changed and again.articles == 2
    # Feed and category tags are not the rules' to change.
    with store.engine.connect() as connection:
        feed_tags = connection.execute(
            sa.select(sa.func.count()).select_from(ArticleTag).where(ArticleTag.source == "feed")
        ).scalar()
    assert feed_tags == 2


def test_explain_and_retag_from_the_command_line(
    site: LocalSite, tmp_path: Path, database_url: str
) -> None:
    serve(site)
    config = tmp_path / "config.toml"
    config.write_text(
        f'[database]\nurl = "{database_url}"\n'
        "[fetch]\nallow_private_addresses = true\nper_host_delay = 0\n"
        '[topic]\nall = [["cambodia", "phnom penh", "sihanoukville"], ["human trafficking"]]\n'
        '[[tags]]\nname = "place:sihanoukville"\nany = ["sihanoukville"]\n'
        f'[[feeds]]\nname = "news"\nurl = "{site.url("/feed.rss")}"\n',
        encoding="utf-8",
    )

    def run(*arguments: str) -> str:
        return run_monitor(config, *arguments)

    assert "off-topic: 1" in run("run-once")
    stored = run("explain", site.url("/raid.html?utm_source=x"))
    assert "stored as article" in stored and "topic: kept" in stored
    assert "place:sihanoukville: sihanoukville" in stored
    assert "near-duplicates: no kept story is alike enough to compare" in stored
    filtered = run("explain", site.url("/football.html"))
    assert "outcome off_topic" in filtered
    assert "topic: filtered: no phrase of topic.all[1]" in filtered
    assert "near-duplicates: it would be a story of its own" in filtered
    assert filtered.count("near-duplicates:") == 1
    # The same text at another address: a copy before any measure, as ingesting says.
    raid = urllib.request.urlopen(site.url("/raid.html"), timeout=10).read()
    site.route("/reposted.html", lambda _: (200, {"Content-Type": "text/html"}, raid))
    reposted = run("explain", site.url("/reposted.html"))
    assert "near-duplicates: it would be a copy (exact_text, similarity 1.00)" in reposted
    assert "the same text, word for word" in reposted
    # Through a feed that skips the topic filter, the football story is kept: explain
    # says the rules were not applied rather than "filtered".
    config.write_text(
        config.read_text(encoding="utf-8")
        + f'[[feeds]]\nname = "search"\nurl = "{site.url("/feed.rss")}?q=1"\nfilter = false\n',
        encoding="utf-8",
    )
    assert "stored: 1" in run("run-once")
    unfiltered = run("explain", site.url("/football.html"))
    assert "stored as article" in unfiltered
    assert "topic: not applied: the feed 'search' has `filter = false`" in unfiltered
    assert "topic: filtered" not in unfiltered
    # An operator edits a rule: retag changes it once, then nothing.
    config.write_text(
        config.read_text(encoding="utf-8").replace(
            'any = ["sihanoukville"]', 'any = ["indonesia"]'
        ),
        encoding="utf-8",
    )
    first = run("retag")
    assert (
        "changed: 1" in first
        and "place:sihanoukville: +0 -0 (matched phrases changed on 1)" in first
    )
    assert "no tag changed" in run("retag")


def test_refilter_gives_dropped_entries_another_chance_after_a_topic_edit(
    site: LocalSite, tmp_path: Path, database_url: str
) -> None:
    serve(site)
    config = tmp_path / "config.toml"
    narrow = '[topic]\nall = [["cambodia", "phnom penh", "sihanoukville"], ["human trafficking"]]\n'
    config.write_text(
        f'[database]\nurl = "{database_url}"\n'
        "[fetch]\nallow_private_addresses = true\nper_host_delay = 0\n"
        + narrow
        + f'[[feeds]]\nname = "news"\nurl = "{site.url("/feed.rss")}"\n',
        encoding="utf-8",
    )

    def run(*arguments: str) -> str:
        return run_monitor(config, *arguments)

    assert "off-topic: 1" in run("run-once")
    # The operator widens the subject; the dropped entry is judged again only when asked.
    config.write_text(
        config.read_text(encoding="utf-8").replace('["human trafficking"]', '["stadium"]'),
        encoding="utf-8",
    )
    assert "the current rules keep it" in run("explain", site.url("/football.html"))
    fetched = site.hits("/football.html")  # by run-once, then by explain
    assert "off-topic: 0" in run("run-once") and site.hits("/football.html") == fetched
    assert "1 filtered entries would be judged again" in run("refilter", "--dry-run")
    # Taken out of the file, the feed is still enabled in the database until a poll reads
    # the file: its entries are left alone, not queued for a poll that never comes.
    with_feed = config.read_text(encoding="utf-8")
    config.write_text(
        with_feed.replace('[[feeds]]\nname = "news"', '[[feeds]]\nname = "other"').replace(
            "/feed.rss", "/other.rss"
        ),
        encoding="utf-8",
    )
    assert "0 filtered entries would be judged again" in run("refilter", "--dry-run")
    assert "0 filtered entries queued" in run("refilter")
    config.write_text(with_feed, encoding="utf-8")
    assert "0 filtered entries" in run("refilter", "--since", "2999-01-01")
    assert "1 filtered entries queued" in run("refilter", "--feed", "news")
    judged = run("run-once")
    assert "stored: 1" in judged  # the football story, judged by the new rules
    assert "(new: 0)" in judged  # not a new entry: the feed's health reads those
    assert site.hits("/football.html") == fetched + 1
    assert "0 filtered entries" in run("refilter")
    # A feed no longer enabled: no poll would take its entries up.
    config.write_text(
        config.read_text(encoding="utf-8").replace(
            'name = "news"', 'name = "news"\nenabled = false'
        ),
        encoding="utf-8",
    )
    refused = subprocess.run(
        [MONITOR, "--config", str(config), "refilter", "--feed", "news"],
        capture_output=True,
        text=True,
        env=environment(),
        check=False,
    )
    assert refused.returncode == 2 and "is not enabled in the configuration" in refused.stderr


REPORT = (
    "Police in Sihanoukville raided a scam compound on Tuesday and freed 214 workers from"
    " Indonesia, Kenya and Nepal. Officials said the case was one of human trafficking and"
    " that 19 suspects were detained at the site. The workers had been forced to run online"
    " fraud schemes for up to 14 hours a day, according to the provincial police chief. The"
    " Indonesian embassy said its 41 citizens would be flown home after screening. "
)


def test_an_original_after_its_copy_takes_only_its_own_rule_tags(
    site: LocalSite, store: Store
) -> None:
    """An auto-blog's copy arrives first, with a line of its own that a rule matches; the
    original replaces it. The kept story's rule tags are then what its stored text
    matches, so a retag with the same rules finds nothing to change."""
    pages = {
        "/autoblog/raid.html": (
            "Tue, 12 Mar 2024 09:00:00 GMT",
            "[ad_1] " + REPORT + PARAGRAPH * 3 + "Our Phnom Penh desk adds more soon. [ad_2]"
            " Source link",
        ),
        "/news/raid.html": ("Mon, 11 Mar 2024 09:00:00 GMT", REPORT + PARAGRAPH * 3),
    }
    items = "".join(
        f"<item><title>Police raid scam compound</title><link>{site.url(path)}</link>"
        f"<guid>{path}</guid><pubDate>{date}</pubDate></item>"
        for path, (date, _) in pages.items()
    )
    feed = f'<rss version="2.0"><channel><title>News</title>{items}</channel></rss>'
    site.route("/feed.rss", lambda _: (200, {"Content-Type": "application/rss+xml"}, feed.encode()))
    for path, (_, text) in pages.items():
        html = "<html><body><article>" + "".join(
            f"<p>{sentence}.</p>" for sentence in text.split(". ") if sentence
        )

        def page(_: SiteRequest, body: bytes = html.encode()) -> tuple[int, dict[str, str], bytes]:
            return 200, {"Content-Type": "text/html; charset=utf-8"}, body

        site.route(path, page)
    config = settings(site)
    run_once(config, store)
    with store.engine.connect() as connection:
        outcomes = dict(connection.execute(sa.select(Entry.link, Entry.outcome)).all())
    assert outcomes == {
        site.url("/autoblog/raid.html"): "duplicate",
        site.url("/news/raid.html"): "stored",
    }
    assert rule_tags(store) == {
        "place:sihanoukville": ["sihanoukville"],
        "theme:scam-compounds": ["scam compound"],
    }
    assert not retag(store, RuleSet.compile(TOPIC, TAGS)).changed


def test_explain_says_a_page_holding_two_kept_stories_would_merge_neither(
    site: LocalSite, tmp_path: Path, database_url: str
) -> None:
    # An audit: explain said a newsletter holding two kept stories whole would be a copy
    # of the first, and not that storing it would merge the second into the first.
    folder = Path(__file__).parent / "fixtures" / "compilations"
    stories = ("us-ranks-cambodia-tier-3", "kampot-court-jails-compound-boss")
    for name in (*stories, "digest-us-report-and-kampot-verdict"):
        title, *paragraphs = (folder / f"{name}.txt").read_text(encoding="utf-8").splitlines()
        html = (
            f"<html><head><title>{title}</title></head><body><article><h1>{title}</h1>"
            + "".join(f"<p>{paragraph}</p>" for paragraph in paragraphs)
            + "</article></body></html>"
        ).encode()

        def page(_: SiteRequest, body: bytes = html) -> tuple[int, dict[str, str], bytes]:
            return 200, {"Content-Type": "text/html; charset=utf-8"}, body

        site.route(f"/{name}.html", page)
    items = "".join(
        f"<item><title>{name}</title><link>{site.url(f'/{name}.html')}</link>"
        f"<guid>{name}</guid></item>"
        for name in stories
    )
    feed = f'<rss version="2.0"><channel><title>News</title>{items}</channel></rss>'.encode()
    site.route("/feed.rss", lambda _: (200, {"Content-Type": "application/rss+xml"}, feed))
    config = tmp_path / "config.toml"
    config.write_text(
        f'[database]\nurl = "{database_url}"\n'
        "[fetch]\nallow_private_addresses = true\nper_host_delay = 0\n"
        f'[[feeds]]\nname = "news"\nurl = "{site.url("/feed.rss")}"\nfilter = false\n',
        encoding="utf-8",
    )
    assert "stored: 2" in run_monitor(config, "run-once")
    explained = run_monitor(
        config, "explain", site.url("/digest-us-report-and-kampot-verdict.html")
    )
    assert "near-duplicates: it would be a copy (near_duplicate, similarity 1.00)" in explained
    assert "would stay a story of its own: it covers another part of this text" in explained
    assert "would be merged" not in explained
