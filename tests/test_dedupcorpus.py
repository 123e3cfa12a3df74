"""The dedup evaluation tooling (bench/dedupcorpus): spinner, variants, site, scorer.

These test the tooling only, never how well monitor detects duplicates.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import feedparser
import pytest
import sqlalchemy as sa

from bench.dedupcorpus.baselines import exact_hash, minhash_lsh
from bench.dedupcorpus.score import Prediction, score_database, score_predictions
from bench.dedupcorpus.site import (
    Manifest,
    ManifestEntry,
    arrival_order,
    check_extraction,
    write_feeds,
    write_site,
)
from bench.dedupcorpus.spinner import NUMBER_WORDS, Spinner, SynonymTable, SynonymTableError
from bench.dedupcorpus.stories import Story, StoryError, parse_story, resolve_clusters
from bench.dedupcorpus.variants import (
    SEED_CLUSTER,
    SOURCE_LINK,
    build_documents,
    select_subset,
)
from monitor.storage.database import create_database_engine, upgrade_database

# A typical wire story of about 400 words (invented people and numbers).
ARTICLE = [
    "PHNOM PENH, March 12 — Cambodian police rescued 186 foreign workers from a suspected"
    " online scam compound in Kandal province on Monday and arrested 14 people, including the"
    " compound's alleged Chinese manager, the National Police said in a statement on Tuesday.",
    "The operation, which began before dawn, involved about 300 officers from the provincial"
    " police, the Military Police and the Interior Ministry's anti-human trafficking department."
    " Officers found the workers in four buildings behind a closed hotel near the Bassac river.",
    "Police said the workers came from nine countries, among them 72 Indonesians, 45"
    " Vietnamese, 30 Thais and 21 Filipinos. Many told investigators they had answered"
    " advertisements on Facebook and Telegram promising customer service jobs with monthly"
    " salaries of $1,000, and were then forced to defraud people through fake investment"
    " websites.",
    "“Some of them had not been paid for months and were beaten when they failed to reach"
    " their targets,” provincial police chief Major General Sok Vanna told reporters. “Their"
    " passports were taken from them on the first day.”",
    "Officers seized 950 mobile phones, 130 computers and notebooks recording daily targets"
    " for each worker. The suspects, 11 Chinese nationals and three Cambodians, face charges of"
    " human trafficking, illegal confinement and fraud, and will be sent to the Kandal"
    " Provincial Court.",
    "The National Committee for Counter Trafficking said social workers would interview the"
    " rescued workers to identify victims of trafficking before they are returned home through"
    " their embassies. Those who entered Cambodia illegally but are not identified as victims"
    " may be deported.",
    "Rights groups welcomed the raid but said it showed that compounds continued to operate"
    " near the capital two years after the government ordered a nationwide crackdown."
    " “Officials know where these buildings are,” said Chea Sopheap of the Cambodian Human"
    " Rights Alliance. “The question is why the owners are never charged.”",
    "Last year the United States kept Cambodia on Tier 3 of its annual Trafficking in Persons"
    " report, the lowest ranking, citing official complicity in scam operations. The government"
    " rejected the report, saying it had rescued more than 2,500 victims since 2022.",
    "Families of Cambodian victims have also come forward. A mother from Prey Veng province"
    " said her 19-year-old son had left home in January after a recruiter offered him work in"
    " a hotel, and that she had not heard from him since. “I only want him back,” she said."
    " Police said they were checking whether any of the rescued workers were Cambodian.",
]
DIGITS = re.compile(r"\d+(?:[.,:/]\d+)*")
TABLE = SynonymTable.load()


def story(story_id: str, kind: str = "original", of: str | None = None, **changes) -> Story:
    data = {
        "id": story_id,
        "kind": kind,
        "of": of,
        "language": "en",
        "outlet": "Khmer Times",
        "title": "Police rescue 186 workers from Kandal scam compound",
        "author": "Sok Chanthy",
        "published_at": "2024-03-12T09:00:00+07:00",
        "paragraphs": ARTICLE,
    }
    data.update(changes)
    return parse_story(data, source=f"{story_id}.json")


def stories() -> dict[str, Story]:
    return resolve_clusters(
        [
            story("kandal-raid"),
            story(
                "kandal-rewrite",
                "rewrite",
                "kandal-raid",
                outlet="Phnom Penh Post",
                published_at="2024-03-12T15:00:00+07:00",
                paragraphs=ARTICLE[1:5],
            ),
            story(
                "kandal-follow-up",
                "follow_up",
                "kandal-raid",
                published_at="2024-03-20T10:00:00+07:00",
                paragraphs=[ARTICLE[0], "The court charged 12 of the 14 suspects on Tuesday."],
            ),
            story(
                "zh-brief",
                language="zh",
                outlet="柬华日报",
                title="西港警方解救四十名外籍劳工",
                author="本报记者",
                paragraphs=[
                    "西哈努克省警方周一在一次突击行动中解救了四十名被困于网络诈骗园区的外籍劳工，"
                    "其中包括越南、印尼和泰国公民。",
                    "省警察局长表示，警方根据一名受害者家属的举报采取行动，现场逮捕了六名嫌疑人，"
                    "并查获大量手机和电脑。",
                    "获救人员称，他们被高薪工作广告诱骗来到柬埔寨，抵达后护照被没收，"
                    "每天被迫工作超过十五个小时，未完成业绩就会遭到殴打。",
                    "国家打击人口贩卖委员会表示，将对获救人员进行身份甄别，"
                    "确认人口贩卖受害者后，通过各国大使馆安排遣返。",
                    "人权组织呼吁当局加大力度，追查诈骗园区背后的幕后老板，而不仅仅是逮捕基层管理人员。",
                ],
            ),
        ]
    )


# Stories


def test_story_clusters_and_validation():
    loaded = stories()
    assert loaded["kandal-rewrite"].cluster == "kandal-raid"
    assert loaded["kandal-follow-up"].cluster == "kandal-follow-up"
    assert loaded["kandal-raid"].published_at.utcoffset() == timedelta(hours=7)
    with pytest.raises(StoryError, match=r"x\.json: kind: 'copy' is not one of"):
        story("x", kind="copy")
    with pytest.raises(StoryError, match=r"published_at: .* has no UTC offset"):
        story("x", published_at="2024-03-12T09:00:00")
    with pytest.raises(StoryError, match="of: no story has id 'missing'"):
        resolve_clusters([story("x", "rewrite", "missing")])
    with pytest.raises(StoryError, match="must be published after"):
        resolve_clusters([story("a"), story("b", "follow_up", "a")])


# Spinner


@pytest.mark.parametrize("rate", [0.15, 0.30, 0.50])
def test_spinner_meets_its_rate_on_a_typical_article(rate):
    text = "\n".join(ARTICLE)
    assert 380 <= len(text.split()) <= 420
    for seed in range(5):
        result = Spinner(TABLE, rate, seed).spin_detailed(text)
        assert result.content_words > 150
        assert abs(result.fraction - rate) <= 0.05, (seed, result.fraction)
        assert result.text.count("\n") == text.count("\n")


def test_spinner_never_changes_numbers():
    text = "\n".join(ARTICLE)
    numbers = DIGITS.findall(text)
    for seed in range(5):
        result = Spinner(TABLE, 0.5, seed).spin_detailed(text)
        spun = iter(DIGITS.findall(result.text))
        # Every number is still there, in order (a replacement may add one: "final 12 months").
        assert all(number in spun for number in numbers)
        for replacement in result.replacements:
            words = re.findall(r"[^\W\d_]+", replacement.source.lower())
            assert not DIGITS.search(replacement.source)
            assert not NUMBER_WORDS.intersection(words), replacement


def test_spinner_is_deterministic_and_keeps_capitalisation():
    text = "\n".join(ARTICLE)
    assert Spinner(TABLE, 0.3, 7).spin(text) == Spinner(TABLE, 0.3, 7).spin(text)
    assert Spinner(TABLE, 0.3, 7).spin(text) != Spinner(TABLE, 0.3, 8).spin(text)
    everything = Spinner(SynonymTable.parse(["national\tnationwide", "committee\tpanel"]), 1.0)
    assert everything.spin("The National Committee and a national committee") == (
        "The Nationwide Panel and a nationwide panel"
    )
    assert Spinner(TABLE, 1.0).spin("KHMER TIMES") == "KHMER OCCASIONS"
    small = SynonymTable.parse(["government\tauthorities", "last year\tfinal 12 months"])
    assert Spinner(small, 1.0).spin("The Government’s plan, Last year: 3 raids.") == (
        "The Authorities’s plan, Final 12 months: 3 raids."
    )


def test_synonym_table_has_spinner_vocabulary():
    assert len(TABLE) >= 800
    expected = {
        "Times": "occasions",
        "National": "nationwide",
        "Committee": "panel",
        "fine": "tremendous",
        "charge": "cost",
        "tier": "layer",
        "workers": "staff",
        "reports": "experiences",
        "criminal activities": "prison actions",
        "last year": "final 12 months",
        "Chinese": "chinese language",
    }
    for phrase, replacement in expected.items():
        assert replacement in (TABLE.get(phrase) or ()), phrase
    assert sum(" " in phrase for phrase in TABLE.entries) >= 50
    with pytest.raises(SynonymTableError, match="number"):
        SynonymTable.parse(["three\tfour"])
    with pytest.raises(SynonymTableError, match="listed twice"):
        SynonymTable.parse(["police\tcops", "Police\tlaw enforcement"])


# Variants


def test_variants_are_deterministic_and_labelled():
    loaded = stories()
    documents = build_documents(loaded, seed=3, table=TABLE)
    assert documents == build_documents(loaded, seed=3, table=TABLE)
    other = {d.doc_id: d for d in build_documents(loaded, seed=4, table=TABLE)}
    by_id = {d.doc_id: d for d in documents}
    assert by_id["kandal-raid--spun30"].paragraphs != other["kandal-raid--spun30"].paragraphs
    assert len(by_id) == len(documents)
    variants = {d.variant for d in documents if d.story_id == "kandal-raid"}
    assert variants == {
        "original",
        "syndicated",
        "wrapped",
        "spun15",
        "spun30",
        "spun50",
        "spun_wrapped",
    }
    assert all(d.cluster == "kandal-raid" for d in documents if d.story_id == "kandal-raid")
    assert by_id["kandal-rewrite"].cluster == "kandal-raid"
    assert by_id["kandal-rewrite"].variant == "rewrite"
    follow_up = by_id["kandal-follow-up"]
    assert (follow_up.cluster, follow_up.variant, follow_up.follows) == (
        "kandal-follow-up",
        "follow_up",
        "kandal-raid",
    )
    # Not English: no spun copies.
    assert {d.variant for d in documents if d.story_id == "zh-brief"} == {
        "original",
        "syndicated",
        "wrapped",
    }
    original = by_id["kandal-raid"]
    wrapped = by_id["kandal-raid--wrapped"]
    assert wrapped.paragraphs[0] == "[ad_1]" and wrapped.paragraphs[-1] == SOURCE_LINK
    assert wrapped.paragraphs[1:-3] == original.paragraphs
    assert wrapped.paragraphs[-3].startswith("- Tags: ")
    spun = by_id["kandal-raid--spun_wrapped"]
    assert spun.paragraphs[0] == "[ad_1]" and spun.paragraphs[1:-3] != original.paragraphs
    assert by_id["kandal-raid--spun50"].title != original.title
    for document in documents:
        if document.variant in ("syndicated", "wrapped", "spun15"):
            delay = document.published_at - loaded[document.story_id].published_at
            assert timedelta(minutes=15) <= delay <= timedelta(hours=30)


def test_seed_repost_joins_its_original_and_subsets_keep_families():
    loaded = dict(stories())
    loaded[SEED_CLUSTER] = replace(loaded["kandal-raid"], id=SEED_CLUSTER, cluster=SEED_CLUSTER)
    seed = [d for d in build_documents(loaded, table=TABLE) if d.variant == "seed"]
    assert len(seed) == 1
    assert seed[0].cluster == SEED_CLUSTER
    assert seed[0].paragraphs[0] == "[ad_1]" and seed[0].paragraphs[-1] == SOURCE_LINK
    assert set(select_subset(stories(), 1)) == {
        "kandal-raid",
        "kandal-rewrite",
        "kandal-follow-up",
    }
    assert set(select_subset(stories(), 5)) == set(stories())


# Site


def test_site_pages_extract_to_their_paragraphs(tmp_path):
    documents = build_documents(stories(), table=TABLE)
    manifest = write_site(documents, tmp_path, feeds=2, order_seed="chronological")
    assert sorted(entry.doc_id for entry in manifest.values()) == sorted(
        d.doc_id for d in documents
    )
    assert check_extraction(documents, manifest, tmp_path) == []
    assert Manifest.from_json(manifest.to_json()) == manifest


def test_every_template_extracts_cleanly(tmp_path):
    documents = build_documents(stories(), table=TABLE)
    original = next(d for d in documents if d.doc_id == "kandal-raid")
    forced = [
        replace(original, doc_id=f"t-{template}", template=template, site=f"site-{template}")
        for template in ("national", "wire", "regional", "autoblog")
    ]
    manifest = write_site(forced, tmp_path, feeds=1)
    assert check_extraction(forced, manifest, tmp_path) == []
    page = (tmp_path / "site-autoblog").rglob("index.html").__next__().read_text()
    assert 'property="article:published_time" content="2024-03-12T02:00:00+00:00"' in page
    assert '<meta name="author" content="Sok Chanthy" />' in page
    # The check notices a page whose time is not the document's.
    wire = next((tmp_path / "site-wire").rglob("*.html"))
    wire.write_text(wire.read_text().replace("2024-03-12T09:00:00+07:00", "2024-03-12T09:00:00"))
    problems = check_extraction(forced, manifest, tmp_path)
    assert [(p.doc_id, p.what) for p in problems] == [("t-wire", "article:published_time")]


def test_feeds_list_the_documents_in_order(tmp_path):
    documents = build_documents(stories(), table=TABLE)
    manifest = write_site(documents, tmp_path, feeds=1)
    feeds = write_feeds(documents, manifest, tmp_path, count=3, order_seed=5, directory="feeds/o5")
    assert [Path(f).suffix for f in feeds] == [".rss", ".atom", ".rss"]
    links = []
    for feed in feeds:
        parsed = feedparser.parse((tmp_path / feed.lstrip("/")).read_bytes())
        assert not parsed.bozo, parsed.bozo_exception
        links += [entry.link.removeprefix("{{BASE}}") for entry in parsed.entries]
    expected = [manifest.by_doc()[d.doc_id][0] for d in arrival_order(documents, 5)]
    assert links == expected
    assert arrival_order(documents, 5) == arrival_order(documents, 5)
    assert arrival_order(documents, 5) != arrival_order(documents, "chronological")


# Scoring


def manifest_of(*rows: tuple[str, str, str] | tuple[str, str, str, str]) -> Manifest:
    return Manifest(
        {f"/{row[0]}.html": ManifestEntry(row[0], row[1], row[2], *row[3:]) for row in rows}
    )


MANIFEST = manifest_of(
    ("a", "a", "original"),
    ("a--wrapped", "a", "wrapped"),
    ("a--spun30", "a", "spun30"),
    ("b", "b", "original"),
    ("b--syndicated", "b", "syndicated"),
    ("b--spun50", "b", "spun50"),
    ("c", "c", "follow_up", "a"),
)


def test_scorer_on_a_monitor_database(tmp_path):
    url = f"sqlite:///{tmp_path / 'monitor.db'}"
    engine = create_database_engine(url)
    upgrade_database(engine)
    tables = sa.MetaData()
    tables.reflect(engine, only=["feeds", "articles", "entries"])
    feeds, articles, entries = (tables.tables[n] for n in ("feeds", "articles", "entries"))
    now = datetime(2024, 3, 12, 3, 0, tzinfo=UTC).replace(tzinfo=None)
    base = "http://127.0.0.1:8000"

    def article(article_id: int, doc: str) -> dict[str, object]:
        return {
            "id": article_id,
            "url": f"{base}/{doc}.html",
            "title": doc,
            "text": doc,
            "fetched_at": now,
            "site": "127.0.0.1",
            "content_hash": f"{article_id:064d}",
        }

    def entry(
        entry_id: int,
        doc: str,
        outcome: str,
        article_id: int | None = None,
        reason: str | None = None,
    ) -> dict[str, object]:
        return {
            "id": entry_id,
            "feed_id": 1,
            "url": f"{base}/{doc}.html",
            "link": f"{base}/{doc}.html",
            "guid": doc,
            "first_seen_at": now,
            "attempts": 1,
            "outcome": outcome,
            "reason": reason,
            "error": "404 Not Found" if reason else None,
            "article_id": article_id,
        }

    with engine.begin() as connection:
        connection.execute(
            feeds.insert(),
            [
                {
                    "id": 1,
                    "url": f"{base}/feed.rss",
                    "name": "feed",
                    "enabled": True,
                    "interval_seconds": 900.0,
                    "consecutive_failures": 0,
                    "created_at": now,
                }
            ],
        )
        connection.execute(
            articles.insert(),
            [article(1, "a--wrapped"), article(2, "a--spun30"), article(3, "b")],
        )
        connection.execute(
            entries.insert(),
            [
                entry(1, "a--wrapped", "stored", 1),
                entry(2, "a", "duplicate", 1),
                entry(3, "a--spun30", "stored", 2),
                entry(4, "b", "stored", 3),
                entry(5, "b--syndicated", "duplicate", 3),
                entry(6, "c", "duplicate", 1),
                entry(7, "b--spun50", "failed", reason="http_404"),
                entry(8, "elsewhere", "stored", 3),
            ],
        )
    engine.dispose()

    score = score_database(url, MANIFEST)
    # Predicted: {a, a--wrapped, c} {a--spun30} {b, b--syndicated} {b--spun50}.
    assert (score.true_positives, score.false_positives, score.false_negatives) == (2, 2, 4)
    assert score.precision == 0.5
    assert score.recall == pytest.approx(1 / 3)
    assert {(v.variant, v.merged, v.total) for v in score.per_variant} == {
        ("wrapped", 1, 1),
        ("spun30", 0, 1),
        ("syndicated", 1, 1),
        ("spun50", 0, 1),
    }
    assert {(m.doc_a, m.doc_b) for m in score.false_merges} == {("a", "c"), ("a--wrapped", "c")}
    assert score.merged_cluster_pairs == (("a", "c"),)
    assert score.follow_ups_merged == ("c",)
    assert (score.original_kept, score.clusters_with_copies) == (1, 2)
    assert [(n.cluster, n.kept_doc, n.kept_variant) for n in score.not_kept] == [
        ("a", "a--wrapped", "wrapped")
    ]
    assert [(f.doc_id, f.outcome, f.reason) for f in score.failures] == [
        ("b--spun50", "failed", "http_404")
    ]
    assert score.unmatched_entries == (f"{base}/elsewhere.html",)
    assert "| pairwise precision | 0.500 |" in score.to_markdown()
    assert json.loads(score.to_json())["recall"] == pytest.approx(1 / 3)


def test_scorer_counts_missing_documents_as_failures():
    predictions = {"a": Prediction("s1", "stored"), "a--wrapped": Prediction("s1", "duplicate")}
    score = score_predictions(MANIFEST, predictions, {"s1": "a"}, name="partial")
    assert {f.doc_id for f in score.failures} == {
        "a--spun30",
        "b",
        "b--syndicated",
        "b--spun50",
        "c",
    }
    assert all(f.outcome == "missing" for f in score.failures)
    assert (score.true_positives, score.predicted_pairs) == (1, 1)
    assert score.precision == 1.0


def test_baselines_see_through_the_wrapping_only():
    documents = [d for d in build_documents(stories(), table=TABLE) if d.story_id == "kandal-raid"]
    predictions, kept = exact_hash(documents)
    story_of = {doc_id: p.story for doc_id, p in predictions.items()}
    assert story_of["kandal-raid--wrapped"] == story_of["kandal-raid"]
    assert story_of["kandal-raid--spun30"] != story_of["kandal-raid"]
    original_story = story_of["kandal-raid"]
    assert original_story is not None and kept[original_story] == "kandal-raid"
    predictions, _ = minhash_lsh(documents)
    story_of = {doc_id: p.story for doc_id, p in predictions.items()}
    assert story_of["kandal-raid--wrapped"] == story_of["kandal-raid"]
