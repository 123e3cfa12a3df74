"""Extraction quality on trafilatura's own test pages: monitor against trafilatura.

    .venv/bin/python bench/extraction_report.py [--corpus ../shared/corpora/trafilatura]
        [--markdown OUT.md] [--json OUT.json]

For every page of the corpus that has expectations (`expectations/by_file.json`, from
trafilatura's evaldata.json, and `expectations/realworld_by_file.json`, from its
realworld_tests.py), it extracts the text twice in the same run:

- monitor: `monitor.extract.extract_article` then `monitor.clean.clean_article`, as the
  pipeline runs them (the page's bytes, served without a charset; a page with no
  article text counts as empty text);
- trafilatura: `trafilatura.extract(html_bytes)` with its defaults, and with
  `include_comments=False` (monitor leaves reader comments out of an article; the
  defaults keep them).

A page passes when the text (whitespace collapsed, as trafilatura's evaluation does)
contains every expected snippet and none of the unwanted ones. The report gives the
pages passed, the snippet counts (true/false positives and negatives, F1) and every
page where monitor fails and trafilatura passes, with the snippets that differ.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import trafilatura

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from monitor.clean import clean_article  # noqa: E402
from monitor.errors import ExtractionError  # noqa: E402
from monitor.extract import extract_article  # noqa: E402
from monitor.records import FeedEntry, FetchedPage  # noqa: E402

DEFAULT_CORPUS = REPO.parent / "shared" / "corpora" / "trafilatura"
EXPECTATION_SETS = {
    "evaldata": "expectations/by_file.json",
    "realworld": "expectations/realworld_by_file.json",
}
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class Page:
    path: str
    url: str
    body: bytes
    with_: tuple[str, ...]
    without: tuple[str, ...]


@dataclass(slots=True)
class Verdict:
    """What one extractor's text says about one page's snippets."""

    missing: list[str] = field(default_factory=list)
    unwanted: list[str] = field(default_factory=list)
    found: int = 0
    avoided: int = 0

    @property
    def passed(self) -> bool:
        return not self.missing and not self.unwanted


@dataclass(slots=True)
class Tally:
    name: str
    pages: int = 0
    passed: int = 0
    tp: int = 0
    fn: int = 0
    fp: int = 0
    tn: int = 0
    seconds: float = 0.0

    def add(self, verdict: Verdict) -> None:
        self.pages += 1
        self.passed += verdict.passed
        self.tp += verdict.found
        self.fn += len(verdict.missing)
        self.fp += len(verdict.unwanted)
        self.tn += verdict.avoided

    @property
    def f1(self) -> float:
        precision = self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0
        recall = self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0
        return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def normalize(text: str) -> str:
    return _SPACE.sub(" ", text).strip()


def judge(text: str, page: Page) -> Verdict:
    flat = normalize(text)
    verdict = Verdict()
    for snippet in page.with_:
        if normalize(snippet) in flat:
            verdict.found += 1
        else:
            verdict.missing.append(snippet)
    for snippet in page.without:
        if normalize(snippet) in flat:
            verdict.unwanted.append(snippet)
        else:
            verdict.avoided += 1
    return verdict


def load_pages(corpus: Path, expectations: str) -> Iterator[Page]:
    spec: dict[str, dict[str, object]] = json.loads(
        (corpus / expectations).read_text(encoding="utf-8")
    )
    for path, item in sorted(spec.items()):
        file = corpus / path
        if not file.is_file():
            continue
        url = str(item.get("url") or "")
        with_ = item.get("with") or []
        without = item.get("without") or []
        assert isinstance(with_, list) and isinstance(without, list)
        yield Page(path, url, file.read_bytes(), tuple(map(str, with_)), tuple(map(str, without)))


def page_url(page: Page) -> str:
    """The page's address as the pipeline would have it: its original URL when the
    expectations give a real one (some say `hard::name.html`)."""
    if page.url.startswith(("http://", "https://")):
        return page.url
    return f"https://pages.example/{page.path}"


def monitor_text(page: Page) -> str:
    """The text the pipeline stores for this page (empty when it finds no article)."""
    url = page_url(page)
    fetched = FetchedPage(
        url=url,
        final_url=url,
        status=200,
        content_type="text/html",
        body=page.body,
        fetched_at=datetime.now(UTC),
    )
    try:
        return clean_article(extract_article(fetched, FeedEntry(link=url, url=url))).text
    except ExtractionError:
        return ""


def trafilatura_text(page: Page) -> str:
    return trafilatura.extract(page.body) or ""


def trafilatura_without_comments(page: Page) -> str:
    return trafilatura.extract(page.body, include_comments=False) or ""


OURS = "monitor (extract + clean)"
DEFAULTS = "trafilatura.extract, defaults"
NO_COMMENTS = "trafilatura.extract, include_comments=False"
EXTRACTORS: dict[str, Callable[[Page], str]] = {
    OURS: monitor_text,
    DEFAULTS: trafilatura_text,
    # What tells a reader comment (monitor leaves them out) from a loss of ours.
    NO_COMMENTS: trafilatura_without_comments,
}


@dataclass(slots=True)
class Comparison:
    """One expectation set: a tally per extractor and the pages where monitor loses."""

    name: str
    tallies: dict[str, Tally]
    # (page, monitor's verdict, whether trafilatura without comments fails it the same way)
    worse: list[tuple[str, Verdict, bool]] = field(default_factory=list)
    better: list[str] = field(default_factory=list)


def compare(corpus: Path, name: str, expectations: str) -> Comparison:
    tallies = {label: Tally(label) for label in EXTRACTORS}
    comparison = Comparison(name, tallies)
    for page in load_pages(corpus, expectations):
        verdicts: dict[str, Verdict] = {}
        for label, extractor in EXTRACTORS.items():
            started = time.perf_counter()
            text = extractor(page)
            tallies[label].seconds += time.perf_counter() - started
            verdicts[label] = verdict = judge(text, page)
            tallies[label].add(verdict)
        ours, theirs, bare = verdicts[OURS], verdicts[DEFAULTS], verdicts[NO_COMMENTS]
        if theirs.passed and not ours.passed:
            comments = (bare.missing, bare.unwanted) == (ours.missing, ours.unwanted)
            comparison.worse.append((page.path, ours, comments))
        elif ours.passed and not theirs.passed:
            comparison.better.append(page.path)
    return comparison


def markdown(comparisons: list[Comparison], command: str) -> str:
    lines = [
        "```sh",
        command,
        "```",
        "",
        "| expectations | extractor | pages passed | % | snippets tp / fn / fp / tn | F1 | time |",
        "|---|---|---:|---:|---|---:|---:|",
    ]
    for comparison in comparisons:
        for tally in comparison.tallies.values():
            lines.append(
                f"| {comparison.name} | {tally.name} | {tally.passed} / {tally.pages}"
                f" | {100 * tally.passed / max(tally.pages, 1):.1f}"
                f" | {tally.tp} / {tally.fn} / {tally.fp} / {tally.tn}"
                f" | {tally.f1:.4f} | {tally.seconds:.1f} s |"
            )
    for comparison in comparisons:
        comments = sum(1 for *_, in_comments in comparison.worse if in_comments)
        colon = ":" if comparison.worse else "."
        lines += [
            "",
            f"**{comparison.name}**: monitor passes {len(comparison.better)} pages that"
            f" trafilatura's defaults fail, and fails {len(comparison.worse)} pages they pass"
            f" ({comments} of them because the snippet is in a reader comment, which"
            " trafilatura's defaults keep and monitor leaves out: trafilatura with"
            f" include_comments=False fails them the same way){colon}",
        ]
        if comparison.worse:
            lines.append("")
        for path, ours, in_comments in comparison.worse:
            problems = [f"misses {snippet!r}" for snippet in ours.missing]
            problems += [f"keeps {snippet!r}" for snippet in ours.unwanted]
            why = " (a reader comment)" if in_comments else ""
            lines.append(f"- `{path}`{why}: {'; '.join(_short(p) for p in problems)}")
    return "\n".join(lines) + "\n"


def _short(text: str, limit: int = 90) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…'"


def as_json(comparisons: list[Comparison]) -> dict[str, object]:
    return {
        comparison.name: {
            "tallies": {
                label: {
                    "pages": t.pages,
                    "passed": t.passed,
                    "tp": t.tp,
                    "fn": t.fn,
                    "fp": t.fp,
                    "tn": t.tn,
                    "f1": round(t.f1, 4),
                    "seconds": round(t.seconds, 2),
                }
                for label, t in comparison.tallies.items()
            },
            "monitor_worse": [
                {
                    "page": path,
                    "missing": ours.missing,
                    "unwanted": ours.unwanted,
                    "reader_comment": in_comments,
                }
                for path, ours, in_comments in comparison.worse
            ],
            "monitor_better": comparison.better,
        }
        for comparison in comparisons
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--markdown", type=Path, help="write the report section here")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    if not (args.corpus / EXPECTATION_SETS["evaldata"]).is_file():
        print(f"extraction_report: no trafilatura corpus at {args.corpus}", file=sys.stderr)
        return 2
    comparisons = [
        compare(args.corpus, name, expectations) for name, expectations in EXPECTATION_SETS.items()
    ]
    command = ".venv/bin/python bench/extraction_report.py" + (
        f" --markdown {args.markdown}" if args.markdown else ""
    )
    report = markdown(comparisons, command)
    print(report, end="")
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(report, encoding="utf-8")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(as_json(comparisons), indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
