"""The near-duplicate index, as tables in the database.

`article_signatures` holds each kept article's two MinHash signatures;
`lsh_buckets` holds one row per LSH band of them. Both are written in the same
transaction as the article, so the index agrees with the database after a crash
at any point, needs nothing loaded at start, and is shared by every replica that
uses the same database. `rebuild` recomputes the buckets from the signatures.
docs/dedup.md says why tables rather than datasketch's in-memory or Redis index.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session

from monitor.dedup import REWRITE_NUMBERS, Candidate, DedupInput, bucket_keys
from monitor.similarity import (
    FEATURES_VERSION,
    MINHASH_SCHEME,
    MINHASH_SEED,
    NUM_PERM,
    Signer,
    TextFeatures,
    text_features,
)
from monitor.storage.schema import Article, ArticleSignature, LshBucket, UTCDateTime

SCHEME = f"{MINHASH_SCHEME}:{NUM_PERM}:{MINHASH_SEED}:{FEATURES_VERSION}"
# pg_advisory_xact_lock key that serialises duplicate decisions (and rebuilds) across replicas.
DEDUP_LOCK_KEY = 0x6D6F6E69746F72  # "monitor"
# Candidates verified per new article, most shared buckets first.
MAX_CANDIDATES = 12
_INSERT_BATCH = 5000


# Kept articles whose features the daemon holds: about 9 KB each (9 MB in all).
FEATURE_CACHE_ARTICLES = 1024
# The second chance by numbers: a text citing fewer says too little to look up by them,
# and no verification rule accepts a pair sharing less than REWRITE_NUMBERS of them.
NUMBERS_TO_LOOK_UP = 2
# The features' sets of words and numbers: held in the cache as tuples of interned strings.
_WORD_SETS = tuple(
    field.name for field in dataclasses.fields(TextFeatures) if field.type == "frozenset[str]"
)
_NUMBERS = _WORD_SETS.index("numbers")
_NO_WORDS: frozenset[str] = frozenset()


@dataclasses.dataclass(frozen=True, slots=True)
class _PackedFeatures:
    """A text's features as the cache holds them. A small frozenset takes a hash table
    of 32 slots or more (700 bytes for ten numbers), and the same names and numbers
    recur in one text after another: as tuples of interned strings, a thousand texts'
    features take 9 MB instead of 15."""

    features: TextFeatures  # its word sets left empty
    word_sets: tuple[tuple[str, ...], ...]  # in _WORD_SETS order

    @classmethod
    def pack(cls, features: TextFeatures) -> _PackedFeatures:
        word_sets = tuple(
            tuple(sys.intern(word) for word in getattr(features, name)) for name in _WORD_SETS
        )
        emptied: dict[str, Any] = dict.fromkeys(_WORD_SETS, _NO_WORDS)
        # Not kept: the newcomer's is enough to find the paragraphs two texts share.
        emptied["text"] = ""
        return cls(dataclasses.replace(features, **emptied), word_sets)

    def unpack(self) -> TextFeatures:
        word_sets: dict[str, Any] = {
            name: frozenset(words) for name, words in zip(_WORD_SETS, self.word_sets, strict=True)
        }
        return dataclasses.replace(self.features, **word_sets)

    @property
    def numbers(self) -> tuple[str, ...]:
        return self.word_sets[_NUMBERS]


class FeatureCache:
    """The features of recently kept articles, by text fingerprint, so that verifying a
    candidate rarely means tokenising its text again (about 9 KB an article; copies
    mostly arrive within days, so the last thousand kept articles are enough).

    It also finds the cached texts that cite a new text's numbers: the second chance
    for a copy that shares no LSH band with its original (`candidates_by_numbers`).
    """

    def __init__(self, size: int = FEATURE_CACHE_ARTICLES) -> None:
        self._size = size
        self._entries: OrderedDict[str, _PackedFeatures] = OrderedDict()
        self._citing: dict[str, set[str]] = {}  # number -> fingerprints of texts citing it
        self._lock = threading.Lock()

    def get(self, fingerprint: str) -> TextFeatures | None:
        with self._lock:
            packed = self._entries.get(fingerprint)
            if packed is None:
                return None
            self._entries.move_to_end(fingerprint)
        return packed.unpack()

    def put(self, fingerprint: str, features: TextFeatures) -> None:
        packed = _PackedFeatures.pack(features)
        with self._lock:
            if fingerprint not in self._entries:
                for number in packed.numbers:
                    self._citing.setdefault(number, set()).add(fingerprint)
            self._entries[fingerprint] = packed
            self._entries.move_to_end(fingerprint)
            while len(self._entries) > self._size:
                evicted, old = self._entries.popitem(last=False)
                for number in old.numbers:
                    citing = self._citing[number]
                    citing.discard(evicted)
                    if not citing:
                        del self._citing[number]

    def citing_numbers(self, numbers: frozenset[str], limit: int) -> list[str]:
        """Fingerprints of the cached texts that share at least NUMBERS_TO_LOOK_UP of
        `numbers` and REWRITE_NUMBERS of the smaller set, most shared first."""
        with self._lock:
            shared: Counter[str] = Counter()
            for number in numbers:
                shared.update(self._citing.get(number, ()))
            ranked = []
            for fingerprint, count in shared.items():
                smaller = min(len(numbers), len(self._entries[fingerprint].numbers))
                if count >= NUMBERS_TO_LOOK_UP and count >= REWRITE_NUMBERS * smaller:
                    ranked.append((-count, fingerprint))
        return [fingerprint for _, fingerprint in sorted(ranked)[:limit]]


# Plain SQL on the session's connection: one new article runs these once each, and the
# ORM's per-statement overhead would cost more than the queries.
#
# The kept articles sharing most buckets with the new one, and the one with the same text:
# one round trip. The bucket keys go in as one parameter (a JSON array in SQLite, an array in
# PostgreSQL), not as 66 expanded ones that SQLAlchemy would rewrite into the SQL each time.
# The join returns only articles that still exist, with their fingerprints.
_CANDIDATES_SQL = (
    "SELECT r.article_id, r.shared, a.content_hash, a.published_at FROM ("
    " SELECT article_id, count(*) AS shared FROM lsh_buckets WHERE {buckets_match}"
    " GROUP BY article_id ORDER BY shared DESC, article_id LIMIT :limit"
    ") AS r JOIN articles AS a ON a.id = r.article_id"
    " UNION ALL SELECT id, 0, content_hash, published_at FROM ("
    " SELECT id, content_hash, published_at FROM articles"
    " WHERE content_hash = :fingerprint LIMIT 1"
    ") AS same_text"
)
_BUCKETS_MATCH = {
    "sqlite": "bucket IN (SELECT value FROM json_each(:buckets))",
    "postgresql": "bucket = ANY(CAST(:buckets AS BIGINT[]))",
}
_CANDIDATES = {
    dialect: sa.text(_CANDIDATES_SQL.format(buckets_match=match)).columns(
        sa.column("article_id", sa.Integer),
        sa.column("shared", sa.Integer),
        sa.column("content_hash", sa.String),
        sa.column("published_at", UTCDateTime),
    )
    for dialect, match in _BUCKETS_MATCH.items()
}
_DELETE_BUCKETS = {
    dialect: sa.text(f"DELETE FROM lsh_buckets WHERE article_id = :article AND {match}")
    for dialect, match in _BUCKETS_MATCH.items()
}
_SIGNATURE_OF = sa.text(
    "SELECT skeleton, entities FROM article_signatures WHERE article_id = :article"
)
_DELETE_SIGNATURE = sa.text("DELETE FROM article_signatures WHERE article_id = :article")
_TEXTS = sa.text("SELECT id, text FROM articles WHERE id IN :ids").bindparams(
    sa.bindparam("ids", expanding=True)
)


def candidates(session: Session, dedup: DedupInput, cache: FeatureCache) -> list[Candidate]:
    """Kept articles with the same text fingerprint or sharing an LSH bucket, with features.

    A candidate's features come from the cache when its fingerprint is there; its
    text is read (and tokenised) only otherwise.
    """
    connection = session.connection()
    rows = connection.execute(
        _CANDIDATES[connection.dialect.name],
        {
            "buckets": _buckets_parameter(connection, dedup.buckets),
            "limit": MAX_CANDIDATES,
            "fingerprint": dedup.fingerprint,
        },
    ).all()
    # Sharing no bucket, the article with the same text comes with 0 buckets shared.
    exact = next((row.article_id for row in rows if row.shared == 0), None)
    ranked = sorted((-row.shared, row.article_id) for row in rows if row.shared > 0)
    ids = [article_id for _, article_id in ranked]
    if exact is not None and exact not in ids:
        ids.insert(0, exact)
    if not ids:
        return []
    fingerprints: dict[int, str] = {row.article_id: row.content_hash for row in rows}
    published = {row.article_id: row.published_at for row in rows}
    cached = {i: cache.get(fingerprints[i]) for i in ids}
    missing = [i for i, features in cached.items() if features is None]
    if missing:
        for article_id, text in connection.execute(_TEXTS, {"ids": missing}).all():
            features = text_features(text)
            cache.put(fingerprints[article_id], features)
            cached[article_id] = features
    return [
        Candidate(
            article_id=i,
            features=features,
            same_fingerprint=i == exact,
            published_at=published[i],
        )
        for i, features in cached.items()
        if features is not None
    ]


_ARTICLES_WITH_FINGERPRINTS = (
    sa.text(
        "SELECT id, content_hash, published_at FROM articles"
        " WHERE content_hash IN :fingerprints ORDER BY id"
    )
    .bindparams(sa.bindparam("fingerprints", expanding=True))
    .columns(
        sa.column("id", sa.Integer),
        sa.column("content_hash", sa.String),
        sa.column("published_at", UTCDateTime),
    )
)


def candidates_by_numbers(
    session: Session, dedup: DedupInput, cache: FeatureCache, tried: Sequence[Candidate]
) -> list[Candidate]:
    """The second chance of a new article that no candidate verified as a copy: the
    recently kept articles (those in `cache`) that cite its numbers.

    LSH finds a candidate by chance: a heavy spin keeping a third of its original's
    skeleton shares no band with it about one time in ten (docs/dedup.md). Spinners
    leave numbers alone, and every verification rule asks for them.
    """
    if len(dedup.features.numbers) < NUMBERS_TO_LOOK_UP:
        return []
    fingerprints = cache.citing_numbers(dedup.features.numbers, MAX_CANDIDATES)
    if not fingerprints:
        return []
    seen = {candidate.article_id for candidate in tried}
    found: list[Candidate] = []
    rows = session.connection().execute(_ARTICLES_WITH_FINGERPRINTS, {"fingerprints": fingerprints})
    for article_id, fingerprint, published_at in rows:
        features = cache.get(fingerprint)
        if article_id not in seen and features is not None:
            found.append(
                Candidate(article_id=article_id, features=features, published_at=published_at)
            )
    return found


_INSERT_SIGNATURE = sa.text(
    "INSERT INTO article_signatures (article_id, scheme, skeleton, entities)"
    " VALUES (:article, :scheme, :skeleton, :entities)"
)


_DEDUP_LOCK = sa.text("SELECT pg_advisory_xact_lock(:key)")


def serialize_decisions(connection: sa.Connection) -> None:
    """Take, for the transaction, the lock that serialises duplicate decisions and index
    changes across processes (PostgreSQL; SQLite's BEGIN IMMEDIATE already does)."""
    if connection.dialect.name == "postgresql":
        connection.execute(_DEDUP_LOCK, {"key": DEDUP_LOCK_KEY})


def add(connection: sa.Connection, article_id: int, dedup: DedupInput) -> None:
    _add_signatures(
        connection, article_id, dedup.skeleton_signature, dedup.entities_signature, dedup.buckets
    )


def _add_signatures(
    connection: sa.Connection,
    article_id: int,
    skeleton: np.ndarray,
    entities: np.ndarray,
    buckets: Sequence[int],
) -> None:
    connection.execute(
        _INSERT_SIGNATURE,
        {
            "article": article_id,
            "scheme": SCHEME,
            "skeleton": _pack(skeleton),
            "entities": _pack(entities),
        },
    )
    _insert_buckets(connection, [(key, article_id) for key in set(buckets)])


def remove(connection: sa.Connection, article_id: int) -> None:
    """Forget an article's signatures and buckets (before it is replaced or merged away)."""
    signature = connection.execute(_SIGNATURE_OF, {"article": article_id}).first()
    if signature is None:
        return
    keys = bucket_keys(_unpack(signature.skeleton), _unpack(signature.entities))
    connection.execute(
        _DELETE_BUCKETS[connection.dialect.name],
        {"article": article_id, "buckets": _buckets_parameter(connection, keys)},
    )
    connection.execute(_DELETE_SIGNATURE, {"article": article_id})


def _buckets_parameter(connection: sa.Connection, keys: Sequence[int]) -> object:
    unique = sorted(set(keys))
    return json.dumps(unique) if connection.dialect.name == "sqlite" else unique


def rebuild(
    engine: sa.Engine,
    *,
    from_text: bool = False,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Empty `lsh_buckets` and refill it from the stored signatures; returns articles indexed.

    With `from_text`, first sign every kept article again from its text (after an
    upgrade that changed the features or the MinHash parameters). Runs in one
    transaction: readers and writers see the old index or the new one.
    """
    done = 0
    with Session(engine) as session, session.begin():
        serialize_decisions(session.connection())
        session.execute(sa.delete(LshBucket))
        if from_text:
            _resign(session)
        rows: list[tuple[int, int]] = []
        result = session.execute(
            sa.select(
                ArticleSignature.article_id, ArticleSignature.skeleton, ArticleSignature.entities
            )
            .where(ArticleSignature.scheme == SCHEME)
            .execution_options(yield_per=1000)
        )
        for article_id, skeleton, entities in result:
            rows.extend(
                (key, article_id) for key in set(bucket_keys(_unpack(skeleton), _unpack(entities)))
            )
            done += 1
            if len(rows) >= _INSERT_BATCH:
                _insert_buckets(session.connection(), rows)
                rows = []
                if progress:
                    progress(done)
        _insert_buckets(session.connection(), rows)
    if progress:
        progress(done)
    return done


def _resign(session: Session) -> None:
    signer = Signer()
    session.execute(sa.delete(ArticleSignature))
    texts = session.execute(sa.select(Article.id, Article.text).execution_options(yield_per=500))
    for article_id, text in texts:
        skeleton, entities = _signatures(text, signer)
        session.add(
            ArticleSignature(
                article_id=article_id,
                scheme=SCHEME,
                skeleton=_pack(skeleton),
                entities=_pack(entities),
            )
        )
    session.flush()


def _signatures(text: str, signer: Signer) -> tuple[np.ndarray, np.ndarray]:
    """The skeleton's and the entities' MinHash signatures of a stored text."""
    features = text_features(text)
    return signer.signature(features.skeleton), signer.signature(features.entities)


_UNSIGNED = sa.text(
    "SELECT a.id, a.text FROM articles a WHERE a.id > :after AND NOT EXISTS"
    " (SELECT 1 FROM article_signatures s WHERE s.article_id = a.id) ORDER BY a.id LIMIT :limit"
)


def sign_unsigned(engine: sa.Engine, *, batch_size: int = 500) -> int:
    """Sign the kept articles that have no signature, and index them; returns how many.

    A database taken below revision 0002 and up again keeps its articles but not its
    index, which that revision created: unsigned, no copy of them would ever be found.
    One transaction per batch, each under the lock that serialises duplicate decisions.
    """
    signer = Signer()
    done, last_id = 0, 0
    while True:
        with Session(engine) as session, session.begin():
            connection = session.connection()
            serialize_decisions(connection)
            rows = connection.execute(_UNSIGNED, {"after": last_id, "limit": batch_size}).all()
            if not rows:
                return done
            for article_id, text in rows:
                skeleton, entities = _signatures(text, signer)
                _add_signatures(
                    connection, article_id, skeleton, entities, bucket_keys(skeleton, entities)
                )
            done += len(rows)
            last_id = rows[-1][0]


def stale_signatures(session: Session) -> int:
    """Signatures made with other MinHash parameters than this version's (need re-signing)."""
    return (
        session.scalar(
            sa.select(sa.func.count())
            .select_from(ArticleSignature)
            .where(ArticleSignature.scheme != SCHEME)
        )
        or 0
    )


_INSERT_BUCKET = sa.text("INSERT INTO lsh_buckets (bucket, article_id) VALUES (:bucket, :article)")


def _insert_buckets(connection: sa.Connection, rows: Sequence[tuple[int, int]]) -> None:
    if rows:
        # A plain executemany: the ORM's bulk path costs more than the insert itself.
        connection.execute(
            _INSERT_BUCKET, [{"bucket": key, "article": article_id} for key, article_id in rows]
        )


def _pack(signature: np.ndarray) -> bytes:
    return np.ascontiguousarray(signature, dtype="<u4").tobytes()


def _unpack(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype="<u4")
