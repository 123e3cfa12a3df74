"""monitor: a media-monitoring ingestion daemon.

Polls news feeds, fetches and extracts each linked article, drops copies and
stores tagged articles in a database that downstream tools read.
"""

__version__ = "0.1.0"
