"""Cleaning: strip what auto-blogs wrap around a scraped article.

`[ad_1]`-style markers, a trailing "Source link", a trailing "- Tags: …" line and
paragraphs repeated word for word. A paragraph said twice in different words
may be the source's own text, so only exact repeats go.
"""

from __future__ import annotations

import re
import unicodedata

from monitor.printable import printable
from monitor.records import CleanedArticle, ExtractedArticle

AD_MARKER = re.compile(r"\[\s*/?\s*ad_?\d+\s*\]", re.IGNORECASE)
SOURCE_LINK = re.compile(r"^(?:source\s+link|source|original\s+article)\s*[:.]?$", re.IGNORECASE)
TAGS_LINE = re.compile(r"^[-–—•*]?\s*tags?\s*:", re.IGNORECASE)
# Shorter paragraphs ("Advertisement", "***", a one-line quote) may repeat legitimately.
_MIN_WORDS_FOR_REPEAT = 8
# Lines a site puts inside the article that are not the article: an ad slot's label, a
# link to another story ("Read more: Police free 40 workers in Bavet" would tag this
# story with Bavet), a subscription appeal. Short lines only: a paragraph of the story
# may begin "Read more" too.
_INSERT = re.compile(
    r"(?:advertisement|advertising|sponsored(?: content)?|\W+)\W*"
    r"|(?:read (?:more|also)|also read|related(?: stories| articles| news)?|see also"
    r"|recommended(?: stories)?|more on this(?: story)?|you may also like"
    r"|អានបន្ថែម|អានបន្ត|ព័ត៌មានពាក់ព័ន្ធ|ข่าวที่เกี่ยวข้อง|อ่านเพิ่มเติม|相关阅读|延伸阅读|推荐阅读"
    r"|相關閱讀|延伸閱讀|xem thêm|baca juga)\s*[:：៖-].*"
    r"|enjoying this article\?.*|(?:click here to )?subscribe (?:now|today|for|to) .*"
    # A paywall's notice where the rest of the story would be.
    r"|this (?:article|story|content|page) is (?:only )?(?:for|available (?:only )?to|reserved"
    r" for) (?:our )?(?:subscribers|members|premium \w+|paying \w+)(?: only)?\W*"
    r"|already (?:a|an) (?:subscriber|member)\?.*|to (?:continue|keep) reading,? (?:please )?"
    r"(?:subscribe|log in|sign in|register)\b.*|(?:log|sign) in to (?:continue|keep) reading\W*"
    r"|(?:log|sign) in to read (?:the )?(?:full |rest of the |whole )?(?:article|story)\W*"
    # A wire photo's caption, the agency and the photographer after the caption's last
    # sentence: "… Phnom Penh, March 14, 2025. REUTERS/Cindy Liu", "… (AFP PHOTO / TANG
    # CHHIN SOTHY)". Agencies by name: "WHO/Europe" or "KHR/USD" end sentences too.
    r"|.{0,300}[.!?]\s+[(（]?(?-i:(?:REUTERS|Reuters|AFP(?: PHOTO)?|AP(?: Photo)?|EPA(?:-EFE)?"
    r"|XINHUA|Xinhua|ANADOLU|GETTY IMAGES|Getty Images|KYODO|BERNAMA|ANTARA(?: FOTO)?|VNA"
    r"|NurPhoto|SOPA Images)\s?/\s?[A-Z][\w.'-]*(?: [A-Z][\w.'-]*){0,3})[)）]?\W*"
    r"|.{0,300}[(（](?:photo|photos|file photo|picture)\b[^)）]{0,80}[)）]\W*"
    r"|.{0,150}[(（][^)）]{0,30}(?:供图|供圖|摄|攝|摄影|攝影)[)）]\W*",
    re.IGNORECASE,
)
_INSERT_MAX_WORDS = 30
# A date alone on its line: a page's dateline left in the text ("Thursday, 10 April
# 2025", "April 10, 2025 at 3:05 pm", "10/04/2025 15:05"). One such line near the start
# or last: a timeline's dates are several, and stay.
_DATE_LINE = re.compile(
    r"(?:(?:mon|tue|wed|thu|fri|sat|sun)[a-z]*\.?,?\s+)?(?:\d{1,2}(?:st|nd|rd|th)?\s+"
    r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?,?\s+\d{4}"
    r"|(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\s+\d{1,2}(?:st|nd|rd|th)?,?"
    r"\s+\d{4}|\d{1,4}[-/.]\d{1,2}[-/.]\d{2,4})(?:,?\s+(?:at\s+|-\s+)?\d{1,2}[:.]\d{2}"
    r"(?:\s*[ap]\.?m\.?)?(?:\s+[A-Z]{2,5}|\s*\(?(?:GMT|UTC)?\s*[+-]\d{1,2}(?::?\d{2})?\)?)?)?"
    r"\W*",
    re.IGNORECASE,
)
# A person's or an outlet's name, capitalised: what a credit line gives after "by".
_NAME = r"(?-i:[A-Z][\w.'-]*(?: (?:[A-Z][\w.'-]*|de|van|von|bin|binti)){0,4})"
# The closing lines of a page's template: a copyright line, a newsletter or donation
# appeal, a social-media call. Only at the end, and short.
_CLOSING = re.compile(
    r"(?:©|\(c\)\s*\d{4}|copyright\b).*"
    r"|.*\b(?:sign up (?:here|now|for)|subscribe to (?:our|the) [\w' ]*newsletter"
    r"|support (?:our|independent) journalism|donate to|follow us on)\b.*"
    # A photo's caption and credit, and an editor's credit line, left at the end by the
    # extraction: "… Dec. 4, 2026. (Photo by Phearum/Xinhua)", "新华社发（索帕摄）", "编辑：王芳".
    r"|.*[(（](?:photo|photos|file photo)\b[^)）]*[)）]\W*"
    r"|.*(?:新华社发|摄)[)）]?"
    r"|[(（]?(?:责任编辑|責任編輯|编辑|編輯|责编|責編|記者|记者|摄影|攝影)\s*[：:][^)）]{0,30}[)）]?"
    # A wire's credit line: "(Reporting by Rithy Odom; Editing by Kevin Barr)".
    r"|[(（]?(?:(?:additional )?reporting|writing|editing|compiled) by\b[^)）]{0,200}[)）]?\W*"
    # A writer's and editor's credit: "Written by Ry Sochan for Mekong Monitor. Edited by…".
    r"|(?:(?:written|edited|produced|additional reporting) by "
    + _NAME
    + "(?: for "
    + _NAME
    + r")?[.;,]?\s*)+",
    re.IGNORECASE,
)
_CLOSING_MAX_WORDS = 40


def clean_article(article: ExtractedArticle) -> CleanedArticle:
    text, removed = clean_text(article.text)
    return CleanedArticle(article=article, text=text, removed=removed)


def clean_text(text: str) -> tuple[str, tuple[str, ...]]:
    """The cleaned text and the names of what was removed from it."""
    removed: list[str] = []
    normalized = unicodedata.normalize("NFC", printable(text))
    if AD_MARKER.search(normalized):
        removed.append("ad_markers")
        # Until none is left: removing "[ad_1]" from "[[ad_1]ad_2]" leaves a marker.
        while AD_MARKER.search(normalized):
            normalized = AD_MARKER.sub(" ", normalized)
    paragraphs = [" ".join(line.split()) for line in normalized.splitlines()]
    paragraphs = [paragraph for paragraph in paragraphs if paragraph]
    dates = [index for index, paragraph in enumerate(paragraphs) if _DATE_LINE.fullmatch(paragraph)]
    if (
        len(dates) == 1
        and (dates[0] < 3 or dates[0] == len(paragraphs) - 1)
        and len(paragraphs) > 1
    ):
        del paragraphs[dates[0]]
        removed.append("inserts")
    kept = [paragraph for paragraph in paragraphs if not _is_insert(paragraph)]
    if len(kept) != len(paragraphs) and kept:
        if "inserts" not in removed:
            removed.append("inserts")
        paragraphs = kept
    # Repeats first: dropping a repeated last paragraph can leave a "Source link" last.
    paragraphs, repeated = _drop_exact_repeats(paragraphs)
    paragraphs, trailing = _drop_trailing_boilerplate(paragraphs)
    removed.extend(trailing)
    if repeated:
        removed.append("repeated_paragraphs")
    return "\n".join(paragraphs), tuple(removed)


def _is_insert(paragraph: str) -> bool:
    return len(paragraph.split()) <= _INSERT_MAX_WORDS and bool(_INSERT.fullmatch(paragraph))


def _drop_trailing_boilerplate(paragraphs: list[str]) -> tuple[list[str], list[str]]:
    removed: list[str] = []
    while paragraphs:
        last = paragraphs[-1]
        if SOURCE_LINK.match(last):
            removed.append("source_link")
        elif TAGS_LINE.match(last) and len(last) < 300:
            removed.append("tags_line")
        elif (
            len(paragraphs) > 1
            and len(last.split()) <= _CLOSING_MAX_WORDS
            and _CLOSING.fullmatch(last)
        ):
            removed.append("closing_lines")
        else:
            break
        paragraphs = paragraphs[:-1]
    return paragraphs, sorted(set(removed), key=removed.index)


def _drop_exact_repeats(paragraphs: list[str]) -> tuple[list[str], bool]:
    seen: set[str] = set()
    kept: list[str] = []
    for paragraph in paragraphs:
        key = paragraph.casefold()
        if len(paragraph.split()) >= _MIN_WORDS_FOR_REPEAT and key in seen:
            continue
        seen.add(key)
        kept.append(paragraph)
    return kept, len(kept) != len(paragraphs)
