"""How much of an article's opening the language classifier needs: the language found
in the opening N characters against the language of the whole text, and the cost.

    .venv/bin/python -m bench.language_sample [--samples 400,600,800,1000,1500,2000,4000]
        [--corpus ../shared/corpora/trafilatura] [--site-pages 600]

Texts: every page of trafilatura's test corpus that trafilatura finds 200 characters
of text in (English, German and a dozen other languages), the seed repost, and
`--site-pages` pages of the throughput benchmark's generated site. Each text is
classified whole with py3langid, then by its opening N characters as
`monitor.extract.detect_language` does; a row gives the texts whose language differs
and the median CPU time of one classification.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

import py3langid
import trafilatura

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.dedupcorpus.site import file_for  # noqa: E402
from bench.sitegen import throughput_documents, write_bench_site  # noqa: E402
from monitor.extract import _DETECTION_SAMPLE, _MIN_TEXT_FOR_DETECTION  # noqa: E402

CORPUS = REPO.parent / "shared" / "corpora" / "trafilatura"
SEED = REPO.parent / "shared" / "seed"


def corpus_texts(corpus: Path) -> list[tuple[str, str]]:
    texts = []
    for path in sorted(corpus.rglob("*")):
        if path.is_file() and path.suffix in {".html", ".htm", ""}:
            text = trafilatura.extract(path.read_bytes())
            if text and len(text) >= _MIN_TEXT_FOR_DETECTION:
                texts.append((f"corpus/{path.name}", text))
    return texts


def seed_texts(seed: Path) -> list[tuple[str, str]]:
    texts = []
    for path in sorted(seed.rglob("*.htm*")):
        text = trafilatura.extract(path.read_bytes())
        if text:
            texts.append((f"seed/{path.name}", text))
    return texts


def site_texts(pages: int, work: Path) -> list[tuple[str, str]]:
    documents = throughput_documents(pages, seed=0)
    manifest = write_bench_site(documents, work, feeds=1, order_seed=1, seed=0)
    texts = []
    for path in list(manifest)[:pages]:
        text = trafilatura.extract(file_for(work, path).read_bytes())
        if text:
            texts.append((f"site{path}", text))
    return texts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--samples", default="400,600,800,1000,1500,2000,4000")
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--site-pages", type=int, default=600)
    args = parser.parse_args(argv)
    samples = [int(number) for number in args.samples.split(",")]

    import tempfile

    with tempfile.TemporaryDirectory(prefix="bench-language-") as work:
        texts = corpus_texts(args.corpus) + seed_texts(SEED)
        texts += site_texts(args.site_pages, Path(work))
    whole = [py3langid.classify(text)[0] for _, text in texts]
    print(f"{len(texts)} texts; languages of the whole texts: {Counter(whole).most_common(12)}")
    print(f"monitor classifies the opening {_DETECTION_SAMPLE} characters\n")
    print("| opening, characters | texts whose language differs | CPU per text, median |")
    print("|---:|---:|---:|")
    for sample in samples:
        differing, seconds = [], []
        for (name, text), language in zip(texts, whole, strict=True):
            started = time.process_time()
            found = py3langid.classify(text[:sample])[0]
            seconds.append(time.process_time() - started)
            if found != language:
                differing.append(f"{name} ({language} → {found})")
        shown = "; ".join(differing[:3])
        print(
            f"| {sample:,} | {len(differing)}{': ' + shown if shown else ''} |"
            f" {statistics.median(seconds) * 1000:.2f} ms |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
