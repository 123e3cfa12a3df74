"""Evaluation tooling for monitor's near-duplicate detection.

- `stories`: the hand-written story files of bench/corpus/stories.
- `spinner`: an auto-blog article spinner (synonym table in `synonyms.tsv`).
- `variants`: the documents made from the stories (syndicated, wrapped, spun copies).
- `site`: a static web site and feeds for those documents, served by tests/localsite.py.
- `score`: scores a monitor database (or any document -> story mapping) against the labels.
- `baselines`: exact-hash and plain MinHash-LSH baselines over the same documents.

`bench/dedup_eval.py` runs it all against `monitor run-once`.
"""

from __future__ import annotations
