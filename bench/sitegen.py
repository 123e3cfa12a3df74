"""Pages for the throughput and polling benchmarks: many realistic, labelled news pages.

    documents = throughput_documents(pages=2000, seed=0)   # corpus + generated stories
    manifest = write_bench_site(documents, root, feeds=40, order_seed=1)

The documents are the dedup corpus (bench/corpus/stories through bench/dedupcorpus: the
89 written stories, their syndicated, ad-wrapped and spun copies, the real seed repost;
436 pages in 72 stories) padded with generated stories until there are `pages` of them.

A generated story is English news about trafficking in Cambodia: a lead paragraph made
from templates (a place, nationalities, an agency, numbers of its own), then four to
seven paragraphs of the written stories, each from a different story, with every number
that is not a year replaced by a number of its own. Its numbers are what keep two
generated stories apart for monitor (every duplicate rule asks for 70-80% of the numbers
in common, docs/dedup.md), so each one is a story of its own, and its copies (a quarter
get a syndicated copy, a quarter an auto-blog copy: wrapped, or spun at 15/30/50%, or
spun and wrapped, made by bench/dedupcorpus) belong to it.

Pages are those of bench/dedupcorpus/site.py (four templates with navigation, sidebar,
related links, comments, footer), with the weight real news pages carry around them
(`pad_page`): inline CSS and JavaScript, a JSON-LD block, a page-state JSON, a mega
menu, a trending bar, a "more stories" grid with images and teasers, a footer with link
columns and inline SVG icons, and tracking scripts: 45-110 KB per page.
"""

from __future__ import annotations

import json
import random
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from functools import cache
from html import escape
from pathlib import Path

from bench.dedupcorpus.site import BASE, Manifest, file_for, write_site
from bench.dedupcorpus.spinner import SynonymTable
from bench.dedupcorpus.stories import Story, load_stories
from bench.dedupcorpus.variants import (
    Document,
    _autoblog_copy,
    _document_for_story,
    _syndicated,
    build_documents,
    slugify,
)

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO / "bench" / "corpus" / "stories"

PHNOM_PENH = timezone(timedelta(hours=7))

TOWNS = (
    "Sihanoukville",
    "Bavet",
    "Poipet",
    "Koh Kong",
    "Siem Reap",
    "Battambang",
    "Kampot",
    "Svay Rieng",
    "Phnom Penh",
    "Kandal",
    "Takeo",
    "Kampong Speu",
    "Kampong Cham",
    "Prey Veng",
    "O'Smach",
    "Cham Yeam",
    "Banteay Meanchey",
    "Oddar Meanchey",
)
NATIONALITIES = (
    "Thai",
    "Vietnamese",
    "Indonesian",
    "Chinese",
    "Malaysian",
    "Filipino",
    "Kenyan",
    "Ugandan",
    "Indian",
    "Sri Lankan",
    "Bangladeshi",
    "Nepali",
    "Pakistani",
    "Myanmar",
    "Taiwanese",
    "Laotian",
    "Ethiopian",
    "Brazilian",
    "Turkish",
    "Kyrgyz",
    "Mongolian",
    "Ghanaian",
)
AGENCIES = (
    ("the National Committee for Counter Trafficking", "NCCT"),
    ("the Interior Ministry", "Interior Ministry"),
    ("the provincial police", "Police"),
    ("the Anti-Human Trafficking and Juvenile Protection Department", "Anti-trafficking police"),
    ("the General Department of Immigration", "Immigration officials"),
    ("the Ministry of Labour and Vocational Training", "Labour Ministry"),
    ("the Ministry of Social Affairs", "Social Affairs Ministry"),
)
PLACES = (
    "a casino complex",
    "a walled compound",
    "a high-rise apartment block",
    "an online scam compound",
    "a former hotel",
    "a guarded industrial park",
    "a block of rented villas",
)
SURNAMES = (
    "Sok",
    "Chan",
    "Kim",
    "Heng",
    "Chea",
    "Keo",
    "Meas",
    "Phan",
    "Sam",
    "Ly",
    "Ouk",
    "Prak",
    "Seng",
    "Touch",
    "Yim",
    "Long",
)
GIVEN_NAMES = (
    "Dara",
    "Sophea",
    "Vannak",
    "Bopha",
    "Rithy",
    "Sokha",
    "Chantha",
    "Piseth",
    "Sreymom",
    "Vuthy",
    "Kunthea",
    "Ratana",
    "Sovann",
    "Malis",
    "Narith",
    "Theary",
)
ROLES = (
    "a spokesman for the provincial police",
    "a deputy governor of the province",
    "an official of the provincial labour department",
    "a lawyer who represents several of the workers",
    "a researcher with a local rights group",
    "the head of the provincial anti-trafficking office",
)
OUTLETS = (
    "Khmer Times",
    "Phnom Penh Post",
    "CamboJA News",
    "Kiripost",
    "VOD English",
    "Cambodianess",
    "Fresh News",
    "Agence Kampuchea Presse",
    "Xinhua",
    "Reuters",
    "AFP",
    "Bernama",
    "The Diplomat",
    "Nikkei Asia",
    "Radio Free Asia",
    "VnExpress International",
    "Bangkok Post",
    "The Straits Times",
    "South China Morning Post",
    "Mekong Eye",
)
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
ACTIONS = ("rescued", "freed", "removed", "brought out")
LEADS = (
    "{Agency} said on {weekday} that {n} {nat} nationals had been {action} from {place} in"
    " {town}, where they said they had been held for up to {months} months and forced to run"
    " online scams. {n2} of them were taken to a shelter in {town2} and the others were"
    " questioned by immigration police, {person}, {role}, told reporters.",
    "Police in {town} {action} {n} people, {n2} of them {nat} citizens, from {place} late on"
    " {weekday}, after a worker smuggled out a video saying they were victims of human"
    " trafficking. The workers told officers they had paid brokers up to ${money} for jobs that"
    " did not exist, said {person}, {role}.",
    "{n} {nat} men and women who escaped from {place} in {town} have asked their embassy to"
    " bring them home, saying they were beaten when they failed to meet targets in online"
    " scams. {Agency} opened an investigation on {weekday} and said {n2} suspects, including"
    " {n3} foreigners, had been detained.",
    "A court in {town} on {weekday} charged {n3} people with human trafficking over the"
    " detention of {n} {nat} workers at {place}, where prosecutors say victims were sold between"
    " compounds for as much as ${money} each. {person}, {role}, said the trial could open within"
    " {months} months.",
    "{Agency} has repatriated {n} {nat} victims of trafficking who were found at {place} near"
    " {town} in a raid that also freed {n2} people of other nationalities, officials said on"
    " {weekday}. The victims had been recruited on social media with offers of ${money} a"
    " month, {person}, {role}, said.",
    "Families of {n} {nat} workers missing in {town} say they have received ransom demands of"
    " up to ${money}, weeks after the workers crossed into Cambodia for what they were told"
    " were call-centre jobs and ended in forced labour. {Agency} said on {weekday} it had"
    " located {n2} of them at {place}.",
)
TITLES = (
    "{n} {nat} nationals {action} from {town} scam compound",
    "Police free {n} from {town} compound after video plea",
    "{nat} workers held in {town} ask embassy for help",
    "{town} court charges {n3} over trafficking of {nat} workers",
    "{n} {nat} trafficking victims sent home from {town}",
    "Families of missing {nat} workers in {town} get ransom demands",
)
_NUMBER = re.compile(r"\d[\d,.]*\d|\d")
_SENTENCE_START = re.compile(r"(^|[.!?]\s+)([a-z])")


def load_corpus(directory: Path = CORPUS) -> dict[str, Story]:
    return load_stories(directory)


def corpus_documents(
    stories: Mapping[str, Story], *, seed: int, table: SynonymTable
) -> list[Document]:
    """The dedup evaluation's 436 documents (72 stories)."""
    return build_documents(stories, seed=seed, table=table)


@cache
def _pool(directory: Path = CORPUS) -> tuple[tuple[str, str], ...]:
    """(story id, paragraph) of every English paragraph of 25 words or more."""
    stories = load_corpus(directory)
    return tuple(
        (story.id, paragraph)
        for story in stories.values()
        if story.language == "en"
        for paragraph in story.paragraphs
        if len(paragraph.split()) >= 25
    )


def _renumber(paragraph: str, rng: random.Random) -> str:
    """Every number that is not a year (1990-2035) replaced by another of the same shape."""

    def replace(match: re.Match[str]) -> str:
        text = match.group(0)
        if re.fullmatch(r"(199\d|20[0-3]\d)", text):
            return text
        digits = "".join(str(rng.randint(1, 9) if i == 0 else rng.randint(0, 9)) for i in range(8))
        out, used = [], 0
        for char in text:
            if char.isdigit():
                out.append(digits[used % len(digits)])
                used += 1
            else:
                out.append(char)
        return "".join(out)

    return _NUMBER.sub(replace, paragraph)


def _person(rng: random.Random) -> str:
    return f"{rng.choice(SURNAMES)} {rng.choice(GIVEN_NAMES)}"


def generated_story(number: int, *, seed: int) -> Story:
    """Generated story `number`: deterministic for (number, seed); see the module doc."""
    rng = random.Random(f"bench-story:{seed}:{number}")
    agency, agency_short = rng.choice(AGENCIES)
    town, town2 = rng.sample(TOWNS, 2)
    fields = {
        "Agency": agency[0].upper() + agency[1:],
        "agency_short": agency_short,
        "weekday": rng.choice(WEEKDAYS),
        "n": str(rng.randint(11, 680)),
        "n2": str(rng.randint(3, 95)),
        "n3": str(rng.randint(2, 19)),
        "months": str(rng.randint(2, 23)),
        "money": f"{rng.randint(1, 30):,}{rng.choice(('00', '50', '25'))}0",
        "nat": rng.choice(NATIONALITIES),
        "action": rng.choice(ACTIONS),
        "place": rng.choice(PLACES),
        "town": town,
        "town2": town2,
        "person": _person(rng),
        "role": rng.choice(ROLES),
    }
    template = rng.randrange(len(LEADS))
    lead = LEADS[template].format(**fields)
    title = TITLES[template].format(**fields)
    title = title[0].upper() + title[1:]
    pool = _pool()
    count = rng.randint(4, 7)
    chosen: list[str] = []
    sources: set[str] = set()
    while len(chosen) < count:
        source, paragraph = pool[rng.randrange(len(pool))]
        if source in sources:
            continue
        sources.add(source)
        chosen.append(_renumber(paragraph, rng))
    published = datetime(2024, 1, 1, tzinfo=PHNOM_PENH) + timedelta(
        minutes=rng.randint(0, 540 * 24 * 60)
    )
    author = _person(rng) if rng.random() < 0.8 else None
    return Story(
        id=f"gen-{number:05d}",
        kind="original",
        of=None,
        language="en",
        outlet=rng.choice(OUTLETS),
        title=title,
        author=author,
        published_at=published,
        paragraphs=(lead, *chosen),
        cluster=f"gen-{number:05d}",
    )


AUTOBLOG_VARIANTS = ("wrapped", "spun15", "spun30", "spun50", "spun_wrapped")


def documents_of(story: Story, *, seed: int, table: SynonymTable) -> list[Document]:
    """A generated story's page, and (a quarter each) a syndicated and an auto-blog copy."""
    rng = random.Random(f"bench-copies:{seed}:{story.id}")
    documents = [_document_for_story(story)]
    if rng.random() < 0.25:
        documents.append(_syndicated(story, seed))
    if rng.random() < 0.25:
        documents.append(_autoblog_copy(story, rng.choice(AUTOBLOG_VARIANTS), seed, table))
    return documents


class TopicFilter:
    """The topic rules of the shipped config.toml, applied to a document's text as monitor
    will clean it: pages that monitor would drop as off topic are left out of the
    benchmarks (spinning loses "human trafficking" in one spun copy in ten), so that every
    page goes the whole way through the pipeline."""

    def __init__(self, config: Path = REPO / "config.toml") -> None:
        from monitor.config import settings_from_document
        from monitor.rules import RuleSet

        shipped = tomllib.loads(config.read_text(encoding="utf-8"))
        settings = settings_from_document(
            {"topic": shipped["topic"], "tags": shipped["tags"]}, source=str(config), environ={}
        )
        self.rules = RuleSet.from_settings(settings)

    def on_topic(self, document: Document) -> bool:
        from monitor.clean import clean_text

        text, _ = clean_text("\n".join(document.paragraphs))
        return self.rules.topic(self.rules.match(document.title, text)).on_topic


def _on_topic(documents: Sequence[Document], topic: TopicFilter) -> list[Document]:
    """The on-topic documents; none of a story whose own page is off topic."""
    kept = [document for document in documents if topic.on_topic(document)]
    originals = {d.cluster for d in kept if d.variant in ("original", "follow_up")}
    clusters = {d.cluster for d in documents if d.variant in ("original", "follow_up")}
    return [d for d in kept if d.cluster in originals or d.cluster not in clusters]


def generated_documents(
    pages: int, *, seed: int, table: SynonymTable, topic: TopicFilter, first: int = 0
) -> tuple[list[Document], int]:
    """`pages` on-topic documents of generated stories numbered from `first` (the last
    story's copies are cut off at `pages`); returns them and the next story number."""
    documents: list[Document] = []
    number = first
    while len(documents) < pages:
        story = generated_story(number, seed=seed)
        documents.extend(_on_topic(documents_of(story, seed=seed, table=table), topic))
        number += 1
    return documents[:pages], number


def throughput_documents(pages: int, *, seed: int) -> list[Document]:
    """The corpus's on-topic documents, then generated ones up to `pages` in all."""
    table = SynonymTable.load()
    topic = TopicFilter()
    documents = _on_topic(corpus_documents(load_corpus(), seed=seed, table=table), topic)
    if len(documents) < pages:
        more, _ = generated_documents(pages - len(documents), seed=seed, table=table, topic=topic)
        documents.extend(more)
    return documents[:pages]


def stories_in(documents: Iterable[Document]) -> int:
    """How many distinct stories (clusters) the documents hold: the articles monitor
    must keep."""
    return len({document.cluster for document in documents})


# Page weight


def write_bench_site(
    documents: Sequence[Document],
    root: Path,
    *,
    feeds: int,
    order_seed: int,
    seed: int,
    feed_directory: str = "feeds",
) -> Manifest:
    """Pages and feeds as bench/dedupcorpus/site.py writes them, each page padded."""
    manifest = write_site(
        documents, root, feeds=feeds, order_seed=order_seed, feed_directory=feed_directory
    )
    titles = [document.title for document in documents if document.language == "en"]
    teasers = [
        document.paragraphs[0][:180]
        for document in documents
        if document.language == "en" and document.paragraphs
    ]
    by_id = {document.doc_id: document for document in documents}
    for path, entry in manifest.items():
        target = file_for(root, path)
        page = target.read_text(encoding="utf-8")
        target.write_text(
            pad_page(page, by_id[entry.doc_id], path, titles=titles, teasers=teasers, seed=seed),
            encoding="utf-8",
        )
    return manifest


def feed_paths(root: Path, feed_directory: str = "feeds") -> list[str]:
    """URL paths of the feeds `write_bench_site` wrote, in the order monitor polls them."""
    folder = root / feed_directory
    names = sorted(
        (p.name for p in folder.iterdir() if p.suffix in (".rss", ".atom")),
        key=lambda name: int(name.split("-")[1].split(".")[0]),
    )
    return [f"/{feed_directory}/{name}" for name in names]


_BODY_TAG = re.compile(r"<body[^>]*>")


def pad_page(
    page: str,
    document: Document,
    path: str,
    *,
    titles: Sequence[str],
    teasers: Sequence[str],
    seed: int,
) -> str:
    """`page` with what a real news page carries besides the article (see the module doc);
    the article, its title, date and author are untouched."""
    site_rng = random.Random(f"bench-site:{seed}:{document.site}")
    rng = random.Random(f"bench-page:{seed}:{path}")
    site_url = f"{BASE}/{document.site}/"
    head = "\n".join(
        (
            _css(site_rng),
            _json_ld(document, path),
            _analytics(site_rng, document.site),
            _page_state(rng, titles, teasers, site_url),
        )
    )
    top = "\n".join((_mega_menu(site_rng, site_url), _trending(rng, titles, site_url)))
    bottom = "\n".join(
        (
            _more_stories(rng, titles, teasers, site_url),
            _footer(site_rng, site_url, document.outlet),
            _tracking(site_rng),
        )
    )
    match = _BODY_TAG.search(page)
    if match is None or "</head>" not in page or "</body>" not in page:
        raise ValueError(f"{path}: page without <head> or <body>")
    page = page.replace("</head>", head + "\n</head>", 1)
    start = page.index(match.group(0)) + len(match.group(0))
    page = page[:start] + "\n" + top + page[start:]
    return page.replace("</body>", bottom + "\n</body>", 1)


def _css(rng: random.Random) -> str:
    rules = []
    for number in range(rng.randint(90, 220)):
        rules.append(
            f".c{number:03d}-{rng.choice(('hd', 'nav', 'card', 'ft', 'ad', 'art'))}"
            f" .{rng.choice(('title', 'link', 'wrap', 'media', 'meta'))}"
            f"{{margin:{rng.randint(0, 40)}px {rng.randint(0, 40)}px;"
            f"padding:{rng.randint(0, 24)}px;color:#{rng.randrange(16**6):06x};"
            f'font:{rng.randint(11, 36)}px/1.{rng.randint(2, 8)} "Helvetica Neue",Arial,sans-serif;'
            f"display:{rng.choice(('flex', 'block', 'grid', 'inline-block'))}}}"
        )
    return "<style>" + "\n".join(rules) + "</style>"


def _json_ld(document: Document, path: str) -> str:
    data = {
        "@context": "https://schema.org",
        "@type": "NewsArticle",
        "headline": document.title,
        "datePublished": document.published_at.isoformat(),
        "dateModified": document.published_at.isoformat(),
        "mainEntityOfPage": BASE + path,
        "author": [{"@type": "Person", "name": document.author or "Staff"}],
        "publisher": {
            "@type": "Organization",
            "name": document.outlet,
            "logo": {"@type": "ImageObject", "url": f"{BASE}/{document.site}/logo.png"},
        },
    }
    return (
        '<script type="application/ld+json">'
        + json.dumps(data, ensure_ascii=False).replace("</", "<\\/")
        + "</script>"
    )


def _analytics(rng: random.Random, site: str) -> str:
    slots = [
        {
            "id": f"div-gpt-ad-{rng.randrange(10**12)}-{number}",
            "path": f"/{rng.randrange(10**8)}/{site}/{rng.choice(('top', 'mid', 'side', 'foot'))}",
            "sizes": [[300, 250], [728, 90], [320, 50]][: rng.randint(1, 3)],
            "targeting": {"section": rng.choice(("national", "world", "business")), "pos": number},
        }
        for number in range(rng.randint(6, 18))
    ]
    functions = "".join(
        f"function _{rng.randrange(16**6):06x}(e,t){{var n=e.length,r=0;for(;r<n;r++)"
        f"{{if(e[r]&&e[r].{rng.choice(('id', 'key', 'ref'))}===t)return e[r]}}"
        f"return window.__q&&window.__q.push([{rng.randrange(999)},t]),null}}"
        for _ in range(rng.randint(40, 120))
    )
    return (
        "<script>window.dataLayer=window.dataLayer||[];function gtag(){dataLayer.push(arguments)}"
        f"gtag('js',new Date());gtag('config','G-{rng.randrange(16**10):010X}');</script>\n"
        f"<script>var adSlots={json.dumps(slots)};</script>\n"
        f"<script>!function(){{{functions}}}();</script>"
    )


def _page_state(
    rng: random.Random, titles: Sequence[str], teasers: Sequence[str], site_url: str
) -> str:
    items = [
        {
            "id": rng.randrange(10**7),
            "headline": rng.choice(titles),
            "summary": rng.choice(teasers),
            "url": f"{site_url}news/{rng.randrange(10**6)}.html",
            "image": {"src": f"{site_url}img/{rng.randrange(10**8)}.jpg", "w": 1200, "h": 675},
        }
        for _ in range(rng.randint(10, 30))
    ]
    state = json.dumps({"page": {"type": "article"}, "feed": items}, ensure_ascii=False)
    return "<script>window.__INITIAL_STATE__=" + state.replace("</", "<\\/") + ";</script>"


_SECTIONS = (
    "News",
    "Politics",
    "Business",
    "World",
    "Asia",
    "Opinion",
    "Lifestyle",
    "Sport",
    "Property",
    "Tech",
)
_LINK_WORDS = (
    "National",
    "Provinces",
    "Crime",
    "Courts",
    "Economy",
    "Markets",
    "Banking",
    "Tourism",
    "Asean",
    "China",
    "Thailand",
    "Vietnam",
    "Editorial",
    "Columns",
    "Letters",
    "Food",
    "Travel",
    "Health",
    "Football",
    "Boxing",
    "Startups",
    "Telecoms",
    "Real estate",
    "Video",
    "Podcasts",
    "Photos",
)


def _mega_menu(rng: random.Random, site_url: str) -> str:
    columns = []
    for section in rng.sample(_SECTIONS, rng.randint(6, 10)):
        links = "".join(
            f'<li><a href="{site_url}{slugify(section)}/{slugify(word)}/">{word}</a></li>'
            for word in rng.sample(_LINK_WORDS, rng.randint(6, 14))
        )
        columns.append(
            f'<li class="mega-col"><a class="mega-head" href="{site_url}{slugify(section)}/">'
            f'{section}</a><ul class="mega-links">{links}</ul></li>'
        )
    return (
        '<div class="mega-menu" role="navigation" aria-label="All sections">'
        f'<ul class="mega-cols">{"".join(columns)}</ul>'
        f'<form class="search" action="{site_url}search"><input name="q" placeholder="Search">'
        "<button>Search</button></form></div>"
    )


def _trending(rng: random.Random, titles: Sequence[str], site_url: str) -> str:
    links = "".join(
        f'<li><a href="{site_url}news/{rng.randrange(10**6)}.html">{escape(title)}</a></li>'
        for title in rng.sample(list(titles), min(len(titles), rng.randint(5, 10)))
    )
    return f'<div class="trending-bar"><span>Trending</span><ul>{links}</ul></div>'


def _more_stories(
    rng: random.Random, titles: Sequence[str], teasers: Sequence[str], site_url: str
) -> str:
    cards = []
    for _ in range(rng.randint(8, 24)):
        image = rng.randrange(10**8)
        href = f"{site_url}news/{rng.randrange(10**6)}.html"
        cards.append(
            f'<div class="story-card"><a href="{href}" class="card-media">'
            f'<img src="{site_url}img/{image}-400.jpg" srcset="{site_url}img/{image}-400.jpg'
            f' 400w, {site_url}img/{image}-800.jpg 800w, {site_url}img/{image}-1200.jpg 1200w"'
            f' sizes="(max-width: 600px) 100vw, 33vw" alt="" loading="lazy" width="400"'
            f' height="225"></a><h3 class="card-title"><a href="{href}">'
            f"{escape(rng.choice(titles))}</a></h3>"
            f'<div class="card-dek">{escape(_dek(rng.choice(teasers)))}</div>'
            f'<span class="card-time">{rng.randint(1, 23)} hours ago</span></div>'
        )
    return (
        '<section class="more-stories" aria-label="More stories"><h2>More stories</h2>'
        f'<div class="story-grid">{"".join(cards)}</div></section>'
    )


def _dek(text: str, limit: int = 90) -> str:
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + "…"


def _svg(rng: random.Random) -> str:
    points = " ".join(
        f"{rng.choice('MLCQ')}{rng.randint(0, 24)}.{rng.randint(0, 99)} "
        f"{rng.randint(0, 24)}.{rng.randint(0, 99)}"
        for _ in range(rng.randint(20, 60))
    )
    return (
        '<svg viewBox="0 0 24 24" width="24" height="24" aria-hidden="true">'
        f'<path d="{points}"/></svg>'
    )


def _footer(rng: random.Random, site_url: str, outlet: str) -> str:
    columns = []
    for section in rng.sample(_SECTIONS, 5):
        links = "".join(
            f'<li><a href="{site_url}{slugify(section)}/{slugify(word)}/">{word}</a></li>'
            for word in rng.sample(_LINK_WORDS, rng.randint(6, 12))
        )
        columns.append(f'<div class="footer-col"><h4>{section}</h4><ul>{links}</ul></div>')
    social = "".join(
        f'<a class="social-{name}" href="https://{name}.com/">{_svg(rng)}</a>'
        for name in ("facebook", "x", "youtube", "tiktok", "telegram", "instagram")
    )
    return (
        f'<footer class="global-footer"><div class="footer-cols">{"".join(columns)}</div>'
        f'<div class="footer-social">{social}</div>'
        f'<div class="footer-apps"><a href="{site_url}app/ios">Download on the App Store</a>'
        f' <a href="{site_url}app/android">Get it on Google Play</a></div>'
        f'<p class="copyright">&copy; 2025 {escape(outlet)}. All rights reserved.'
        f' <a href="{site_url}terms.html">Terms of use</a>'
        f' <a href="{site_url}privacy.html">Privacy policy</a></p></footer>'
    )


def _tracking(rng: random.Random) -> str:
    return "\n".join(
        (
            f'<noscript><iframe src="https://www.googletagmanager.com/ns.html?id=GTM-'
            f'{rng.randrange(16**6):06X}" height="0" width="0" style="display:none"></iframe>'
            "</noscript>",
            "<script>(function(w,d){var s=d.createElement('script');s.async=1;"
            f"s.src='https://cdn.example-ads.com/{rng.randrange(10**6)}/tag.js';"
            "d.head.appendChild(s)})(window,document);</script>",
            f"<script>window.__cmp={{v:{rng.randint(1, 9)},vendors:"
            f"{json.dumps([rng.randrange(1000) for _ in range(rng.randint(50, 200))])}}};</script>",
        )
    )
