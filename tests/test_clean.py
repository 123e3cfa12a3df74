"""Cleaning: auto-blog wrapping removed, the article's own text kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.clean import clean_text

SEED = (Path(__file__).parent / "fixtures" / "seed_repost.txt").read_text(encoding="utf-8")


def test_seed_repost_loses_its_wrapping() -> None:
    text, removed = clean_text(SEED)
    assert "[ad_1]" not in text and "[ad_2]" not in text
    assert "Source link" not in text
    assert "Tags:" not in text
    assert text.startswith("Cambodia’s Nationwide Committee for Counter Trafficking")
    assert text.endswith("in addition to worldwide organisations.")
    assert set(removed) == {"ad_markers", "source_link", "tags_line"}


def test_seed_keeps_its_paraphrased_repeats() -> None:
    text, _ = clean_text(SEED)
    # The seed says the Khmer Times investigation paragraph twice in different words.
    assert "Over the previous three years" in text
    assert "Over the past three years" in text
    assert len(text.splitlines()) == len(SEED.splitlines()) - 4


def test_exact_repeated_paragraph_is_dropped_once() -> None:
    paragraph = "Police rescued 312 foreign workers from a compound in Sihanoukville on Monday."
    text, removed = clean_text(f"Intro line here.\n{paragraph}\nMiddle.\n{paragraph}\nEnd.")
    assert text.count(paragraph) == 1
    assert text.splitlines() == ["Intro line here.", paragraph, "Middle.", "End."]
    assert removed == ("repeated_paragraphs",)


def test_short_repeats_and_inline_words_are_kept() -> None:
    text, removed = clean_text("Photo: AFP\nA story about a source link.\nPhoto: AFP")
    assert text == "Photo: AFP\nA story about a source link.\nPhoto: AFP"
    assert removed == ()


def test_inserts_and_closing_lines_of_the_page_leave_the_article() -> None:
    # An audit of 30 pages in the templates of outlets that cover the topic: a link to
    # another story inside the text tagged this one with the other's places.
    story = [
        "Police in Preah Sihanouk rescued 63 foreigners from a compound in Otres.",
        "ADVERTISEMENT",
        "Read more: Police free 40 workers in Bavet raid, five suspects detained",
        "Among those rescued were 27 Indonesians and 19 Vietnamese.",
        "អានបន្ថែម៖ ពលករខ្មែរជាង ២០០នាក់ត្រូវបានជួយសង្គ្រោះពីភូមា",
        "Enjoying this article? Click here to subscribe for full access.",
        "Read more about the compound's owners in our investigation published last year,"
        " which traced the company through three shell firms registered in Phnom Penh and"
        " Hong Kong: the building was leased from a relative of a provincial official.",
        "VOD is an independent news outlet. Support our journalism.",
        "Copyright © 1998-2026, RFA. Used with the permission of Radio Free Asia.",
    ]
    text, removed = clean_text("\n".join(story))
    assert text.split("\n") == [story[0], story[3], story[6]]
    assert removed == ("inserts", "closing_lines")
    # A closing line alone is the text, not a closing.
    assert clean_text(story[-1])[0] == story[-1]


def test_source_link_only_removed_at_the_end() -> None:
    text, _ = clean_text("Source link\nThe article body.\nSource link")
    assert text == "Source link\nThe article body."


def test_whitespace_is_normalised() -> None:
    text, _ = clean_text("  A   line\twith  spaces \n\n\n Next\u00a0line ")
    assert text == "A line with spaces\nNext line"


def test_what_is_never_text_leaves_the_article() -> None:
    # An audit: "&#xD800;" and "&#0;" in a page, which an HTML parser reads as U+FFFD,
    # were stored; docs/security.md says text is never stored with replacement characters.
    text, _ = clean_text(
        "Lone surrogate \ufffd and NUL \ufffd references.\n"
        "A \u202eroved\u202c override, a \x85 control, \ud800 and \ufffe.\n"
        "ការជួញដូរ\u200bមនុស្ស keeps its zero-width space; tabs\tstay words."
    )
    lines = text.split("\n")
    assert lines[0] == "Lone surrogate and NUL references."
    assert lines[1] == "A roved override, a control, and ."
    assert lines[2] == "ការជួញដូរ\u200bមនុស្ស keeps its zero-width space; tabs stay words."
    text.encode("utf-8")


def test_a_caption_or_an_editor_credit_left_at_the_end_leaves_the_text() -> None:
    story = "Cambodia deported 126 Chinese nationals on Thursday, the immigration department said."
    for caption in (
        "Chinese suspects are escorted to board a plane at the Techo International Airport"
        " in Phnom Penh, Cambodia, Dec. 4, 2026. (Photo by Phearum/Xinhua)",
        "12月3日，在柬埔寨西哈努克省，获救人员在警察局等候。新华社发（索帕摄）",
        # An audit: a wire's caption, its agency in capitals and the photographer.
        "Police officers escort detained foreigners out of a building in Dangkao district,"
        " Phnom Penh, March 14, 2025. REUTERS/Cindy Liu",
        "Rescued workers wait at the provincial police station in Sihanoukville on"
        " Tuesday. (AFP PHOTO / TANG CHHIN SOTHY)",
    ):
        # A photo's caption goes wherever it is (an analyst audit: first in the text).
        assert clean_text(f"{story}\n{caption}") == (story, ("inserts",))
        assert clean_text(f"{caption}\n{story}") == (story, ("inserts",))
    for closing in (
        "Written by Ry Sochan for Mekong Monitor. Edited by Jane Doe.",
        "编辑：王芳",
        "（責任編輯：王小文）",
        "(Reporting by Rithy Odom; Editing by Kevin Barr)",
    ):
        assert clean_text(f"{story}\n{closing}") == (story, ("closing_lines",))
    # Inside the text, or the last paragraph of the story itself: kept.
    told = f"{story}\nThe ministry said the flights would continue. (Reuters)"
    assert clean_text(told)[0] == told
    funded = f"{story}\nThe shelter is funded by the EU. UNICEF/Cambodia runs it."
    assert (
        clean_text(funded)[0]
        == f"{story}\nThe shelter is funded by the EU. UNICEF/Cambodia runs it."
    )


def test_a_paywalls_notice_leaves_the_text() -> None:
    # An audit: "This article is for subscribers only" was stored as the story's end.
    lede = (
        "Internal payroll records from a scam compound in Kandal province list monthly"
        " payments to at least nine police officers, according to documents obtained by us."
    )
    for notice in (
        "This article is for subscribers only",
        "This content is available only to premium members.",
        "Already a subscriber? Log in",
        "To continue reading, please subscribe or log in.",
    ):
        assert clean_text(f"{lede}\n{notice}") == (lede, ("inserts",))


def test_a_khmer_continue_reading_link_goes() -> None:
    # An analyst audit: "អានបន្ត៖ …" (continue reading) linked another story about a
    # court, whose words tagged an article about a meeting `theme:prosecution`.
    story = "The committee met partners in Phnom Penh on Monday to plan the year's work."
    text = f"{story}\nអានបន្ត៖ តុលាការភ្នំពេញ កាត់ទោសស្ត្រីម្នាក់\n{story} It ended at noon."
    assert clean_text(text) == (f"{story}\n{story} It ended at noon.", ("inserts",))


@pytest.mark.parametrize(
    "dateline",
    [
        "Thursday, 10 April 2025",
        "April 10, 2025 at 3:05 pm",
        "Thu, Apr 10, 2025",
        "10/04/2025 15:05",
        "10 April 2025, 15:05 (GMT+7)",
    ],
)
def test_a_date_alone_on_its_line_leaves_the_text(dateline: str) -> None:
    # An audit: a page's dateline was the first line of the stored text.
    story = "Police in Kuala Lumpur freed 78 Cambodians held by a recruitment agency."
    assert clean_text(f"{dateline}\n{story}") == (story, ("inserts",))
    told = f"{story}\nOn 10 April 2025, the court will hear the case."
    assert clean_text(told)[0] == told
    # A timeline's dates are several, and stay (a second audit).
    timeline = (
        f"{story}\nTimeline of the case:\n14 August 2022\nPolice raid the Heng Fu compound."
        "\n3 March 2023\nThe provincial court charges six managers."
    )
    assert clean_text(timeline)[0] == timeline


@pytest.mark.parametrize(
    "sentence",
    [
        "The meeting was attended by officials from the UN, WHO/Europe.",
        "Prices are quoted in riel, KHR/USD.",
        "Sign in to read the full judgment on the court's website, lawyers said.",
        "Produced by Cambodia's Ministry of Information, the documentary will air on Sunday.",
        "Written by Prime Minister Hun Manet himself, the letter urged calm in the provinces.",
    ],
)
def test_a_storys_own_sentence_like_a_credit_or_a_notice_stays(sentence: str) -> None:
    # A second audit: the first forms of the caption, paywall and credit rules took these.
    story = "Police in Kuala Lumpur freed 78 Cambodians held by a recruitment agency."
    for text in (f"{story}\n{sentence}", f"{sentence}\n{story}\n{story[:-1]} on Monday."):
        assert clean_text(text)[0] == text
