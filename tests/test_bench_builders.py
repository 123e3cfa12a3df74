"""The databases the export, soak and re-tagging benchmarks build from the shipped
config.toml: a taxonomy edit (two rules giving one tag) once broke them all, unseen."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from bench.export_bench import build
from monitor.storage.database import create_database_engine


def test_the_export_and_soak_database_builds_from_the_shipped_taxonomy(tmp_path: Path) -> None:
    path = tmp_path / "export.db"
    counts = build(path, 5000, seed=1)
    assert counts["articles"] == 5000 and counts["article_tags"] > 10000
    engine = create_database_engine(f"sqlite:///{path}")
    with engine.connect() as connection:
        tags = connection.execute(sa.text("SELECT count(*) FROM article_tags")).scalar_one()
    engine.dispose()
    assert tags == counts["article_tags"]
