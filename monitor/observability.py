"""Observability: Prometheus metrics, and the HTTP endpoint that serves them with
`/healthz` (prometheus_client for the format, the standard library's WSGI server)."""

from __future__ import annotations

import json
import logging
import socketserver
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import sqlalchemy as sa
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from monitor.endpoints import INSTANCE_HEADER
from monitor.storage.database import first_line, within

log = logging.getLogger(__name__)


class Metrics:
    """The daemon's metrics, in a registry of their own (one per process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.polls = Counter(
            "monitor_polls",
            "Feed polls, by result (ok, not_modified, failed).",
            ["result"],
            registry=self.registry,
        )
        self.poll_failures = Counter(
            "monitor_poll_failures",
            "Failed feed polls, by reason (http_404, timeout…).",
            ["reason"],
            registry=self.registry,
        )
        self.entries = Counter(
            "monitor_entries",
            "Entries processed, by outcome.",
            ["outcome"],
            registry=self.registry,
        )
        self.entry_retries = Counter(
            "monitor_entry_retries",
            "Entries left pending for a later try, by reason: a transient failure (http_429,"
            " http_503, timeout…) with attempts left, or host_waiting (not fetched: the"
            " host asked to wait).",
            ["reason"],
            registry=self.registry,
        )
        self.duplicates = Counter(
            "monitor_duplicates", "Copies found, by kind.", ["kind"], registry=self.registry
        )
        self.fetch_seconds = Histogram(
            "monitor_fetch_seconds",
            "Time to fetch a feed or a page, by kind (feed, page).",
            ["kind"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=self.registry,
        )
        self.feeds_scheduled = Gauge(
            "monitor_feeds_scheduled", "Enabled feeds with a scheduled job.", registry=self.registry
        )
        self.reloads = Counter(
            "monitor_config_reloads",
            "Configuration reloads, by result (applied, rejected, failed).",
            ["result"],
            registry=self.registry,
        )

    def watch_feed_health(self, report: Callable[[], Iterable[str]]) -> None:
        """Count feeds by health state at each scrape, from `report()` (one state per feed)."""
        self.registry.register(_HealthCollector(report))


HEALTH_REPORT_SECONDS = 3.0


class _HealthCollector(Collector):
    def __init__(self, report: Callable[[], Iterable[str]]) -> None:
        self._report = report

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "monitor_feeds", "Configured feeds, by health state.", labels=["health"]
        )
        counts: dict[str, int] = {}
        reachable = GaugeMetricFamily(
            "monitor_database_up",
            "Whether the database answered this scrape's feed health query (1) or not (0).",
        )
        try:
            # Bounded: a scrape must answer when the database does not.
            for state in within(HEALTH_REPORT_SECONDS, lambda: list(self._report())):
                counts[state] = counts.get(state, 0) + 1
            reachable.add_metric([], 1)
        except TimeoutError as error:
            log.warning("feed health unavailable for /metrics: the database: %s", error)
        except sa.exc.DBAPIError as error:
            # The database is away: one line a scrape, as the polls log it.
            log.warning("feed health unavailable for /metrics: the database: %s", first_line(error))
        except Exception:
            log.warning("feed health unavailable for /metrics", exc_info=True)
        if not reachable.samples:
            # Without feed states, an alert on them has no data: this says why.
            reachable.add_metric([], 0)
        for state, count in sorted(counts.items()):
            family.add_metric([state], count)
        yield family
        yield reachable


class _QuietHandler(WSGIRequestHandler):
    # A client that connects and says nothing is dropped after this many seconds.
    timeout = 10

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("http: " + format, *args)


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    """A thread per request: one idle or slow client (a port scanner, a stuck probe)
    must not keep /healthz from answering the next."""

    daemon_threads = True


class HttpEndpoint:
    """`/healthz` (200 when `health()` says so, else 503, JSON either way, with the
    daemon's `instance` in a header) and `/metrics`."""

    def __init__(
        self,
        host: str,
        port: int,
        metrics: Metrics,
        health: Callable[[], dict[str, Any]],
        *,
        instance: str,
    ) -> None:
        metrics_app = make_wsgi_app(metrics.registry)

        def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            path = environ.get("PATH_INFO", "")
            if path == "/metrics":
                return metrics_app(environ, start_response)  # type: ignore[no-any-return]
            if path == "/healthz":
                report = health()
                status = "200 OK" if report.get("status") == "ok" else "503 Service Unavailable"
                body = json.dumps(report).encode()
                headers = [("Content-Type", "application/json"), (INSTANCE_HEADER, instance)]
                start_response(status, headers)
                return [body]
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found: try /healthz or /metrics\n"]

        self._server: WSGIServer = make_server(
            host, port, app, server_class=_ThreadingServer, handler_class=_QuietHandler
        )
        self.host = host
        self.port = self._server.server_port
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="monitor-http", daemon=True
        )

    def start(self) -> None:
        self._thread.start()
        host = str(self._server.server_address[0])
        shown = f"[{host}]" if ":" in host else host
        log.info("health and metrics on http://%s:%d/", shown, self.port)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
