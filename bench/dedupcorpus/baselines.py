"""In-memory baselines over the documents' texts, scored like monitor.

Each document's text is what trafilatura extracts from its page (its paragraphs, a
trailing "Source link" excluded; `site.check_extraction` verifies that) cleaned by
monitor's own `monitor.clean.clean_text`. Documents arrive in the feeds' order.

- `exact`: one story per SHA-256 of the text case-folded with white space collapsed
  (what monitor's `exact_text` duplicates do).
- `minhash`: datasketch `MinHashLSH(threshold=0.5, num_perm=128)` over word 5-shingles;
  a document joins the story of the earliest-arrived candidate the index returns, else
  starts a new story. Words are `\\w+` runs of the case-folded text (Khmer and Chinese,
  written without spaces, get few and long "words": the plain baseline does not care).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence

from datasketch import MinHash, MinHashLSH

from .score import Prediction, Score, score_predictions
from .site import Manifest, Order, arrival_order
from .variants import Document

SHINGLE_WORDS = 5
THRESHOLD = 0.5
NUM_PERM = 128
_WORDS = re.compile(r"\w+")


def cleaned_text(document: Document) -> str:
    """The document's text as monitor stores it: extracted paragraphs, then cleaned."""
    from monitor.clean import clean_text

    text, _ = clean_text("\n".join(document.body_paragraphs))
    return text


def normalised(text: str) -> str:
    return " ".join(text.casefold().split())


Clustering = tuple[dict[str, Prediction], dict[str, str]]
"""doc_id -> Prediction, and predicted story -> kept doc_id (the first to arrive)."""


def exact_hash(documents: Sequence[Document]) -> Clustering:
    """Documents (in arrival order) grouped by the hash of their normalised text."""
    predictions: dict[str, Prediction] = {}
    kept: dict[str, str] = {}
    for document in documents:
        digest = hashlib.sha256(normalised(cleaned_text(document)).encode("utf-8")).hexdigest()
        story = f"exact:{digest[:16]}"
        outcome = "duplicate" if story in kept else "stored"
        kept.setdefault(story, document.doc_id)
        predictions[document.doc_id] = Prediction(story, outcome)
    return predictions, kept


def shingles(text: str, size: int = SHINGLE_WORDS) -> set[str]:
    words = _WORDS.findall(text.casefold())
    if len(words) <= size:
        return {" ".join(words)} if words else set()
    return {" ".join(words[i : i + size]) for i in range(len(words) - size + 1)}


def minhash_lsh(
    documents: Sequence[Document],
    *,
    threshold: float = THRESHOLD,
    num_perm: int = NUM_PERM,
    size: int = SHINGLE_WORDS,
) -> Clustering:
    """Greedy clustering in arrival order with a MinHash LSH index of word shingles."""
    index = MinHashLSH(threshold=threshold, num_perm=num_perm)
    arrival: dict[str, int] = {}
    story_of: dict[str, str] = {}
    predictions: dict[str, Prediction] = {}
    kept: dict[str, str] = {}
    for position, document in enumerate(documents):
        minhash = MinHash(num_perm=num_perm, seed=1)
        grams = shingles(cleaned_text(document), size)
        minhash.update_batch([gram.encode("utf-8") for gram in sorted(grams)])
        candidates = sorted(index.query(minhash), key=arrival.__getitem__) if grams else []
        if candidates:
            story = story_of[candidates[0]]
            outcome = "duplicate"
        else:
            story = f"minhash:{document.doc_id}"
            outcome = "stored"
            kept[story] = document.doc_id
        story_of[document.doc_id] = story
        arrival[document.doc_id] = position
        if grams:
            index.insert(document.doc_id, minhash)
        predictions[document.doc_id] = Prediction(story, outcome)
    return predictions, kept


BASELINES: dict[str, Callable[[Sequence[Document]], Clustering]] = {
    "exact hash": exact_hash,
    "MinHash LSH 0.5": minhash_lsh,
}


def run_baselines(
    documents: Sequence[Document], manifest: Manifest, order: Order, *, label: str = ""
) -> list[Score]:
    """Every baseline over the documents in `order`, scored against `manifest`."""
    ordered = arrival_order(documents, order)
    scores = []
    for name, baseline in BASELINES.items():
        predictions, kept = baseline(ordered)
        title = f"{name}{f' ({label})' if label else ''}"
        scores.append(score_predictions(manifest, predictions, kept, name=title))
    return scores
