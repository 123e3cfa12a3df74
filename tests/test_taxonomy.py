"""The shipped config.toml's topic filter and tag taxonomy on real and written articles."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from monitor.clean import clean_text
from monitor.config import load_settings
from monitor.rules import RuleSet

REPO = Path(__file__).resolve().parent.parent
RULES = RuleSet.from_settings(load_settings(REPO / "config.toml", environ={}))
FIXTURES = sorted((Path(__file__).parent / "fixtures" / "relevance").glob("*.json"))
SEED = clean_text((Path(__file__).parent / "fixtures" / "seed_repost.txt").read_text("utf-8"))[0]


def judge(title: str, text: str) -> tuple[bool, set[str]]:
    matches = RULES.match(title, text)
    return RULES.topic(matches).on_topic, {tag.name for tag in RULES.tags(matches)}


def test_the_seed_passes_and_gets_the_analysts_tags() -> None:
    on_topic, tags = judge("Cambodia, UN see eye-to-eye on combatting human trafficking", SEED)
    assert on_topic
    assert {"org:ncct", "org:un", "theme:policy-and-diplomacy", "theme:tip-report"} <= tags
    assert tags & {"theme:scam-compounds", "theme:online-fraud"}


@pytest.mark.parametrize("path", FIXTURES, ids=lambda path: path.stem)
def test_written_articles(path: Path) -> None:
    article = json.loads(path.read_text(encoding="utf-8"))
    on_topic, tags = judge(article["title"], article["text"])
    assert on_topic is article["expect_on_topic"]
    assert set(article["expect_tags"]) <= tags
    assert not set(article.get("unexpected_tags", ())) & tags


def test_every_corpus_story_is_on_topic() -> None:
    for path in sorted((REPO / "bench" / "corpus" / "stories").glob("*.json")):
        story = json.loads(path.read_text(encoding="utf-8"))
        on_topic, _ = judge(story["title"], "\n".join(story["paragraphs"]))
        assert on_topic, path.stem


def test_khmer_and_chinese_articles_are_matched_in_their_script() -> None:
    by_name = {path.stem: json.loads(path.read_text(encoding="utf-8")) for path in FIXTURES}
    for name in ("khmer-raid", "chinese-rescue"):
        article = by_name[name]
        assert article["language"] in ("km", "zh")
        on_topic, tags = judge(article["title"], article["text"])
        assert on_topic and "place:sihanoukville" in tags
