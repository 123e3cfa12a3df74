"""Shared fixtures: `site`, the local fixture news site on 127.0.0.1."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.localsite import LocalSite

pytest_plugins = ["tests.databases"]

SITE_ROOT = Path(__file__).parent / "site"


@pytest.fixture
def site() -> Iterator[LocalSite]:
    with LocalSite(SITE_ROOT) as local_site:
        yield local_site
