"""Phrase matching and boolean rules: whole words, accents, scripts without spaces."""

from __future__ import annotations

import json

import pytest

from monitor.config import TagRule, TopicSettings
from monitor.rules import RuleSet, normalize
from monitor.tagging import arrival_tags

TOPIC = TopicSettings(
    all=(
        ("cambodia", "phnom penh", "o'smach", "កម្ពុជា", "柬埔寨"),
        ("human trafficking", "scam compound", "scam compounds", "ការជួញដូរមនុស្ស", "诈骗园区"),
    ),
    none=("football match",),
)
TAGS = (
    TagRule(name="org:ncct", any=("ncct", "national committee for counter trafficking")),
    TagRule(name="org:un", any=("united nations", "unhcr"), none=("united nations football",)),
    TagRule(name="place:o-smach", any=("o'smach", "ocsmach")),
    TagRule(name="theme:raid", all=("police", "raid")),
    TagRule(name="in-title", any=("scam",), field="title"),
    TagRule(name="place:sihanoukville", any=("sihanoukville", "西港", "ព្រះសីហនុ")),
)
RULES = RuleSet.compile(TOPIC, TAGS)


def tags(title: str, text: str) -> dict[str, list[str]]:
    return {
        tag.name: json.loads(tag.detail or "[]") for tag in RULES.tags(RULES.match(title, text))
    }


def test_normalise_case_accents_apostrophes_and_spaces() -> None:
    assert normalize("  O’Smach  CAFÉ\n\tNCCT ") == "o'smach cafe ncct"
    # Khmer vowel signs are not accents: they stay.
    assert normalize("ព្រះសីហនុ") == "ព្រះសីហនុ"


def test_normalise_folds_what_writers_spell_either_way() -> None:
    # Hyphens, dashes and the non-breaking hyphen are spaces; a soft hyphen is nothing.
    assert normalize("Scam-compound bosses") == normalize("scam compound bosses")
    assert normalize("a 14\u2011year\u2011old girl") == "a 14 year old girl"
    assert normalize("forced\u2014labour") == "forced labour"
    assert normalize("traf\u00adficking") == "trafficking"
    # Letters with a stroke, which NFKD leaves whole, fold like accented ones.
    assert normalize("Đồng Tháp") == normalize("Dong Thap") == "dong thap"
    # Khmer's subscript "t" written with COENG DA or COENG TA.
    assert normalize("ផ្ដន្ទាទោស") == normalize("ផ្តន្ទាទោស")
    # Zero-width spaces between Khmer words are not in any phrase.
    assert normalize("ជួញដូរ\u200bមនុស្ស") == normalize("ជួញដូរមនុស្ស")
    # Khmer's independent vowel "ao", written ឲ or ឱ ("forced to beg").
    assert normalize("បង្ខំឲ្យសុំទាន") == normalize("បង្ខំឱ្យសុំទាន")
    # Traditional Chinese is read as Simplified: Taiwan's and Hong Kong's outlets match
    # every Chinese phrase; Latin and Khmer beside it are left as they are.
    assert normalize("國家反人口販賣委員會 在馬德望") == normalize("国家反人口贩卖委员会 在马德望")
    assert normalize("詐騙集團 NCCT ព្រះសីហនុ") == "诈骗集团 ncct ព្រះសីហនុ"


def test_hyphenated_text_matches_spaced_phrases() -> None:
    verdict = RULES.topic(RULES.match("", "Cambodia: the scam-compound bosses fled."))
    assert verdict.on_topic, verdict.reason
    assert not RULES.topic(RULES.match("", "Cambodia: scamcompound is one word.")).on_topic


def test_whole_words_only_for_spaced_scripts() -> None:
    assert "org:ncct" in tags("", "The NCCT met on Tuesday.")
    assert "org:ncct" not in tags("", "The NCCTS acronym is not it.")
    assert "place:o-smach" in tags("", "Raid near O’Smach.")
    assert tags("", "Police carried out a raid.")["theme:raid"] == ["police", "raid"]
    assert "theme:raid" not in tags("", "The police said nothing.")  # `all` needs both


def test_unspaced_scripts_match_inside_running_text() -> None:
    assert "place:sihanoukville" in tags("", "柬埔寨西港警方解救了312名外国人")
    assert "place:sihanoukville" in tags("", "សមត្ថកិច្ចខេត្តព្រះសីហនុបានជួយសង្គ្រោះ")


def test_a_korean_phrase_matches_with_the_particles_written_onto_it() -> None:
    rules = RuleSet.compile(
        TopicSettings(), (TagRule(name="place:cambodia", any=("캄보디아", "범죄단지")),)
    )

    def found(text: str) -> bool:
        return bool(rules.tags(rules.match("", text)))

    assert found("캄보디아에서 한국인 대학생이 숨졌다")  # in Cambodia
    assert found("캄보디아인 노동자")  # a Cambodian
    assert found("경찰은 범죄단지를 급습했다")  # the compound (object)
    assert not found("북캄보디아") and not found("범죄단")  # the start is still a word's
    assert not found("cambodia")


def test_field_and_none() -> None:
    assert "in-title" in tags("Scam bosses jailed", "Nothing else.")
    assert "in-title" not in tags("Bosses jailed", "A scam.")
    assert "org:un" in tags("", "The United Nations said so.")
    assert "org:un" not in tags("", "The United Nations football team lost.")


def test_text_field_leaves_out_a_headline_the_extraction_kept() -> None:
    # trafilatura keeps an <h1> written inside <article> as the text's first line.
    rules = RuleSet.compile(TopicSettings(), (TagRule(name="body", any=("jailed",), field="text"),))
    assert not rules.tags(rules.match("Bosses jailed", "Bosses  JAILED\nThe court ruled."))
    assert rules.tags(rules.match("Bosses jailed", "Bosses jailed\nThey were jailed."))
    assert rules.tags(rules.match("Other title", "Bosses jailed\nThe court ruled."))


def test_tag_detail_lists_the_matched_phrases() -> None:
    assert tags("", "NCCT, the National Committee for Counter Trafficking, met.")["org:ncct"] == [
        "national committee for counter trafficking",
        "ncct",
    ]


@pytest.mark.parametrize(
    ("title", "text", "on_topic", "reason"),
    [
        ("Raid", "Police in Phnom Penh freed victims of a scam compound.", True, "on topic"),
        ("Match", "A football match in Phnom Penh on Sunday.", False, "topic.none"),
        ("Goal", "Svay Rieng beat Phnom Penh Crown 2-1.", False, "topic.all[1]"),
        ("Nigeria", "Human trafficking in Lagos and Libya.", False, "topic.all[0]"),
        ("", "柬埔寨警方捣毁一个诈骗园区", True, "on topic"),
        ("", "កម្ពុជាប្រយុទ្ធប្រឆាំងការជួញដូរមនុស្ស", True, "on topic"),
    ],
)
def test_topic(title: str, text: str, on_topic: bool, reason: str) -> None:
    verdict = RULES.topic(RULES.match(title, text))
    assert verdict.on_topic is on_topic
    assert reason in verdict.reason


def test_an_off_topic_reason_gives_the_groups_phrases_as_they_are() -> None:
    # An operator audit: "(1 phrases: zzzunlikelyphrase…)" for a group of one phrase.
    one = RuleSet.compile(TopicSettings(all=(("zzzunlikelyphrase",),)), ())
    assert one.topic(one.match("", "text")).reason == (
        "no phrase of topic.all[0] found (1 phrase: zzzunlikelyphrase)"
    )
    reason = RULES.topic(RULES.match("Nigeria", "Lagos")).reason
    assert reason == "no phrase of topic.all[0] found (5 phrases: cambodia, phnom penh, o'smach…)"


def test_no_rules_keeps_everything() -> None:
    empty = RuleSet.compile(TopicSettings(), ())
    assert empty.topic(empty.match("anything", "at all")).on_topic
    assert empty.tags(empty.match("anything", "at all")) == []


def test_explain_topic_names_each_group() -> None:
    lines = RULES.explain_topic(RULES.match("", "A scam compound in Phnom Penh."))
    assert lines == [
        "topic.all[0]: phnom penh",
        "topic.all[1]: scam compound",
        "topic.none: none found",
    ]


def test_arrival_tags_split_a_list_of_categories_and_collapse_spaces() -> None:
    tags = arrival_tags(["source:  wire "], ["Labour; Asia", " Asia ", ";", "NCCT"])
    assert [(tag.name, tag.source.value) for tag in tags] == [
        ("source: wire", "feed"),
        ("Labour", "category"),
        ("Asia", "category"),
        ("NCCT", "category"),
    ]
