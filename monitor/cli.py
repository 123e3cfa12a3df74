"""The `monitor` command line.

Exit status: 0 success; 1 the database is unusable; 2 the configuration or the
command line is wrong.
"""

from __future__ import annotations

import difflib
import errno
import io
import json
import logging
import os
import re
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn, TypeVar

import click
import httpx
import sqlalchemy as sa
import tomli_w
from sqlalchemy import Engine

from monitor import __version__, heap
from monitor.analysis import analyse
from monitor.config import (
    CONFIG_ENV,
    HttpSettings,
    Settings,
    format_duration,
    load_http_settings,
    load_settings,
    resolve_config_path,
)
from monitor.daemon import Daemon
from monitor.dedup import DedupInput, prepare_text
from monitor.endpoints import (
    INSTANCE_HEADER,
    EndpointRecorder,
    config_key,
    healthz_url,
    read_record,
)
from monitor.errors import ConfigError, DatabaseError, FetchError, MonitorError
from monitor.export import ExportFilter, ExportFormat, export
from monitor.health import Health
from monitor.http import build_client, fetch_page
from monitor.logs import LogFormat, configure_logging, json_output
from monitor.observability import HttpEndpoint, Metrics
from monitor.pipeline import PollReport
from monitor.processes import process_alive
from monitor.records import FeedEntry, Outcome, Tag
from monitor.retag import retag as run_retag
from monitor.retry import BUSY_STATUSES
from monitor.rules import RuleSet
from monitor.runner import open_store, run_once
from monitor.signals import DaemonSignals, restore_defaults
from monitor.storage import index
from monitor.storage.database import (
    check_reachable,
    create_database_engine,
    downgrade_database,
    first_line,
    mask_url,
    missing_sqlite_file,
    schema_revisions,
    upgrade_database,
    within,
)
from monitor.storage.schema import Entry, Feed
from monitor.storage.store import Judgement, Store, UrlRecord
from monitor.urls import canonical_url

log = logging.getLogger("monitor")

EXIT_DATABASE = 1
EXIT_CONFIG = 2


class _Context:
    def __init__(self, config_path: Path | None) -> None:
        self.config_path = resolve_config_path(config_path)

    def settings(self) -> Settings:
        return load_settings(self.config_path)


pass_context = click.make_pass_decorator(_Context)


F = TypeVar("F", bound=Callable[..., Any])


MAX_SEARCH_WORDS = 64
MAX_SEARCH_RESULTS = 10_000


def count_option(
    name: str, default: int, description: str, maximum: int | None = None
) -> Callable[[F], F]:
    """An option taking a count of at least one (0 would quietly do nothing)."""
    return click.option(
        name,
        type=click.IntRange(min=1, max=maximum),
        default=default,
        show_default=True,
        help=description,
    )


class _Commands(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            # `monitor export | head`: the reader had what it wanted, which is no failure
            # (click would exit 1). Python would report the pipe again when it flushes
            # stdout at exit, so stdout goes to /dev/null first.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(0)


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="monitor")
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help=f"Configuration file. Default: ${CONFIG_ENV}, else ./config.toml.",
)
@click.option(
    "--log-level",
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
    default="INFO",
    show_default=True,
    help="Least severe log events to print on standard error.",
)
@click.option(
    "--log-format",
    type=click.Choice(["auto", "json", "text"]),
    default="auto",
    show_default=True,
    help="auto: text on a terminal, JSON lines otherwise.",
)
@click.pass_context
def cli(
    context: click.Context, config_path: Path | None, log_level: str, log_format: LogFormat
) -> None:
    """Media-monitoring ingestion daemon.

    Polls the news feeds in the configuration, fetches and extracts each linked
    article, drops copies and stores tagged articles in the database
    (SQLite by default, PostgreSQL in production).
    """
    configure_logging(log_level, log_format)
    if context.invoked_subcommand != "run":
        restore_defaults()  # only the daemon gives signals a meaning of its own
    context.obj = _Context(config_path)


@cli.command()
@pass_context
def run(context: _Context) -> None:
    """Run the daemon: poll each enabled feed at its interval until SIGINT or SIGTERM.

    The configuration file is watched (and re-read on SIGHUP): changes apply
    without a restart, and a broken edit is logged while the previous
    configuration keeps running. On SIGTERM it finishes or abandons the work in
    hand and exits 0 within 10 seconds. With [http] port set, it serves /healthz
    and /metrics.
    """
    global _FATAL_AS_LOG_EVENT
    _FATAL_AS_LOG_EVENT = True
    stop, hurry = threading.Event(), threading.Event()
    # First of all, before the migrations: a stop or a SIGHUP during start-up is heard
    # (and those that came while the command line was imported, see monitor.signals).
    signals = DaemonSignals(stop, hurry)
    signals.install()
    settings = context.settings()
    heap.limit_arenas()  # before any thread starts
    store = open_store(settings)
    metrics = Metrics()
    daemon = Daemon(
        settings, store, stop, hurry=hurry, config_path=context.config_path, metrics=metrics
    )
    metrics.watch_feed_health(lambda: [health for _, health in store.feed_health_report()])
    endpoint: HttpEndpoint | None = None
    # Where the endpoint is, for `monitor healthcheck`: an edited [http] may not have moved it.
    recorder = EndpointRecorder(context.config_path)
    recorder.clear_stale()

    def serve(http: HttpSettings) -> bool:
        """Serve /healthz and /metrics as `http` says (none for port 0); False, with the
        endpoint as it was, when the address cannot be had."""
        nonlocal endpoint
        try:
            new = (
                HttpEndpoint(
                    http.host,
                    http.port,
                    metrics,
                    health=lambda: health_of(daemon),
                    instance=recorder.instance,
                )
                if http.port
                else None
            )
        except OSError as error:
            # Polling matters more than its dashboard: go on, and say so loudly.
            log.error(
                "cannot serve /healthz and /metrics on %s:%d (%s); %s",
                http.host,
                http.port,
                error.strerror or error,
                "running without them" if endpoint is None else "still serving them as before",
            )
            return False
        if endpoint is not None:
            endpoint.stop()
        endpoint = new
        if endpoint is not None:
            endpoint.start()
            recorder.serving(endpoint.host, endpoint.port)
        else:
            recorder.stopped()
            log.info("health and metrics no longer served ([http] port = 0)")
        return True

    if settings.http.port:
        serve(settings.http)
    daemon.on_http_change = serve
    signals.ready(daemon.request_reload)
    log.info("monitor %s: database %s", __version__, mask_url(settings.database.url))
    try:
        daemon.run()
    finally:
        if endpoint is not None:
            endpoint.stop()
        recorder.stopped()
    if stuck := daemon.in_hand():
        # A job still waits on what does not answer (a database behind a frozen peer
        # sends no error): waiting for it would break the promise of an exit within
        # seconds, and Python would wait for its thread. Whatever it had begun is rolled
        # back by the database when the connection goes; its entries stay pending.
        log.warning(
            "exiting without waiting any longer for %s, still busy at the stop deadline"
            " (on a fetch or a database that does not answer): its entries stay pending",
            ", ".join(stuck),
        )
        logging.shutdown()
        os._exit(0)


# /healthz answers within this even when the database does not (a container's check
# gives up after its own timeout, and a hung check would say nothing at all): less than
# the 5 s that `monitor healthcheck` waits, so that it hears "unreachable".
HEALTH_CHECK_SECONDS = 3.0


def health_of(daemon: Daemon) -> dict[str, str]:
    """What /healthz says: the scheduler runs and the database answers."""
    report = {"scheduler": "running" if daemon.alive else "stopped"}
    try:
        within(HEALTH_CHECK_SECONDS, lambda: check_reachable(daemon.store.engine))
        report["database"] = "reachable"
    except (DatabaseError, TimeoutError) as error:
        report["database"] = f"unreachable: {error}"
    healthy = daemon.alive and report["database"] == "reachable"
    return {"status": "ok" if healthy else "unhealthy", **report}


@cli.command()
@pass_context
def healthcheck(context: _Context) -> None:
    """Ask the running daemon's /healthz (for container health checks); exit 0 if healthy.

    The daemon records the address it serves for its configuration file (see
    docs/operations.md); the check asks there, so an edited [http] that the daemon
    could not move to does not matter. Without a record it asks the file's [http]
    (when the file does not validate: its [http] table alone, else the environment
    and the defaults). Only an answer from the daemon itself counts: a record left
    by a daemon that has exited, or another server on the port, is a failure.
    """
    path = context.config_path
    if not path.is_file() or not os.access(path, os.R_OK):
        raise ConfigError(f"{path}: config file not found or not readable")
    record = read_record(path)
    if record is not None:
        if not process_alive(record.pid):
            raise click.ClickException(
                f"the daemon is not running: its process {record.pid}, which served"
                f" {record.url}, has exited"
            )
        url = record.url

        def from_the_daemon(instance: str) -> bool:
            return instance == record.instance
    else:
        http = load_http_settings(path)
        if not http.port:
            raise click.ClickException("the HTTP endpoint is off ([http] port = 0)")
        url = healthz_url(http.host, http.port)

        def from_the_daemon(instance: str) -> bool:
            return instance.startswith(f"{config_key(path)}:")

    try:
        response = httpx.get(url, timeout=5, trust_env=False)  # never through a proxy
    except httpx.HTTPError as error:
        raise click.ClickException(f"{url}: {error}") from None
    if not from_the_daemon(response.headers.get(INSTANCE_HEADER, "")):
        raise click.ClickException(
            f"{url}: answered by something else than the daemon running {path}"
            f" (HTTP {response.status_code}): another server, or a daemon started with"
            " another path to its configuration file (a link to it names another file;"
            " give the check the path the daemon was given)"
        )
    click.echo(response.text.strip())
    if response.status_code != 200:
        raise click.exceptions.Exit(1)


@cli.command()
@pass_context
def status(context: _Context) -> None:
    """Print the feeds with their health: ok, failing, backing off, stale, never polled,
    disabled."""
    settings = context.settings()
    store = open_store(settings, sync_feeds=False, create=False, read_only=True)
    rows = store.feed_health_report()
    known = {feed.url for feed, _ in rows}
    # Feeds added to the file since the daemon last started (or before it ever ran).
    unseen = [
        (
            Feed(name=feed.name, url=feed.url, enabled=feed.enabled, consecutive_failures=0),
            Health.NEVER_POLLED if feed.enabled else Health.DISABLED,
        )
        for feed in settings.feeds
        if feed.url not in known
    ]
    rows = sorted(rows + unseen, key=lambda row: (not row[0].enabled, row[0].name))
    waiting = store.waiting_entries()
    header = (
        "feed",
        "health",
        "last poll",
        "last success",
        "HTTP",
        "fails",
        "next poll",
        "waiting",
        "last error",
    )
    table = [header] + [
        (
            feed.name[:40],
            health,
            _when(feed.last_polled_at),
            _when(feed.last_success_at),
            str(feed.last_status or "-"),
            str(feed.consecutive_failures),
            # Only a put-off poll's time says more than the interval (a disabled feed's
            # is a leftover: it is not polled at all).
            _when(feed.next_poll_at) if health == Health.BACKING_OFF else "-",
            _waiting(waiting.get(feed.id)) if feed.id is not None else "-",
            feed.last_error or "",
        )
        for feed, health in rows
    ]
    widths = [max(len(row[column]) for row in table) for column in range(len(header) - 1)]
    # On a terminal the last error is cut to the line, and says so; piped, it is whole.
    room = None
    if sys.stdout.isatty():
        room = max(30, shutil.get_terminal_size().columns - sum(widths) - 2 * len(widths))
    for row in table:
        error = row[-1]
        if room is not None and len(error) > room:
            error = error[: room - 1] + "…"
        click.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False))
            + "  "
            + error
        )


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if moment else "-"


def _waiting(entries: tuple[int, datetime] | None) -> str:
    """Entries waiting for a later try, and when the first is due: "3@14:05"."""
    if entries is None:
        return "-"
    count, soonest = entries
    return f"{count}@{soonest:%H:%M}"


@cli.command("run-once")
@click.option(
    "--ignore-backoff",
    is_flag=True,
    help="Also poll the feeds backing off after failures or asked to wait (Retry-After).",
)
@pass_context
def run_once_command(context: _Context, ignore_backoff: bool) -> None:
    """Poll every enabled feed once, process every new entry and print a summary.

    Feeds backing off (after failures in a row, or a server's Retry-After) are left
    until their next try, as the daemon leaves them. Exits 0 even when some feeds fail
    (their errors are printed and recorded on the feeds table); non-zero when the
    configuration or database is unusable, and 128 + the signal's number when SIGINT or
    SIGTERM cut the run short (after its summary).
    """
    global _FATAL_AS_LOG_EVENT
    _FATAL_AS_LOG_EVENT = True
    settings = context.settings()
    heap.limit_arenas()  # before any thread starts
    stop = threading.Event()
    received = _stop_on_signals(stop)
    store = open_store(settings)
    # A progress bar on a terminal; nothing extra when the output is a file or a pipe.
    with click.progressbar(
        length=len(settings.enabled_feeds),
        label="polling feeds",
        file=sys.stderr,
        hidden=not sys.stderr.isatty(),
        item_show_func=lambda name: name,
    ) as bar:

        def advance(report: PollReport) -> None:
            bar.update(1, report.feed)

        summary = run_once(
            settings, store, stop=stop, progress=advance, ignore_backoff=ignore_backoff
        )
    for report in summary.reports:
        if report.error:
            click.echo(f"feed failed: {report.feed}: {report.error}")
    for name, due in summary.backing_off:
        click.echo(f"feed backing off: {name}: not polled before {due:%Y-%m-%d %H:%M} UTC")
    for name in summary.held_elsewhere:
        click.echo(f"feed being polled by another process (a daemon): {name}: not polled")
    not_polled = [
        f"{len(summary.backing_off)} backing off" if summary.backing_off else "",
        f"{len(summary.held_elsewhere)} polled elsewhere" if summary.held_elsewhere else "",
    ]
    skipped = ", ".join(part for part in not_polled if part)
    click.echo(
        f"feeds polled: {summary.feeds_polled} ({summary.feeds_failed} failed"
        + (f"; not polled: {skipped}" if skipped else "")
        + ")\n"
        f"entries seen: {summary.total('entries_seen')} "
        f"(new: {summary.total('new_entries')})\n"
        f"stored: {summary.outcomes.get(Outcome.STORED, 0)}\n"
        f"duplicates: {summary.outcomes.get(Outcome.DUPLICATE, 0)}\n"
        f"off-topic: {summary.outcomes.get(Outcome.OFF_TOPIC, 0)}\n"
        f"failed: {summary.outcomes.get(Outcome.FAILED, 0)}\n"
        f"to be tried later: {summary.total('waiting')}"
    )
    if received:
        # A cut-off run is not a complete one: cron, a timeout wrapper, must tell.
        click.echo(
            f"interrupted by {signal.Signals(received[0]).name}: {store.unfinished_entries()}"
            " entries left pending, finished by the next run"
        )
        sys.exit(128 + received[0])


@cli.command("check-config")
@pass_context
def check_config(context: _Context) -> None:
    """Validate the configuration and print the effective settings (secrets masked)."""
    settings = context.settings()
    click.echo(f"# {context.config_path}: valid")
    click.echo(render_settings(settings))


_DURATIONS = (
    ("fetch", "timeout"),
    ("fetch", "total_timeout"),
    ("fetch", "per_host_delay"),
    ("fetch", "max_backoff"),
    ("fetch", "retry_delay"),
    ("fetch", "revalidate_after"),
    ("health", "stale_minimum"),
)


def render_settings(settings: Settings) -> str:
    """The effective settings as TOML, durations spelled as in the file, passwords masked."""
    data: dict[str, Any] = settings.model_dump(mode="python")
    data["database"]["url"] = mask_url(settings.database.url)
    for section, key in _DURATIONS:
        seconds = data[section][key]
        data[section][key] = format_duration(seconds) if seconds else "0s"
    if float(data["health"]["stale_after_gaps"]).is_integer():
        data["health"]["stale_after_gaps"] = int(data["health"]["stale_after_gaps"])
    data["feeds"] = [
        {**feed, "interval": format_duration(feed["interval"]), "tags": list(feed["tags"])}
        for feed in data["feeds"]
    ]
    data["topic"] = {**data["topic"], "all": [list(group) for group in data["topic"]["all"]]}
    data["tags"] = [
        {key: list(value) if isinstance(value, tuple) else value for key, value in rule.items()}
        for rule in data["tags"]
    ]
    return tomli_w.dumps(data)


@cli.group()
def db() -> None:
    """Database schema: migrate with Alembic."""


@db.command("upgrade")
@click.argument("revision", default="head")
@pass_context
def db_upgrade(context: _Context, revision: str) -> None:
    """Upgrade the database schema to REVISION (default: head)."""
    _migrate(context, upgrade_database, revision)


@db.command("downgrade")
@click.argument("revision")
@pass_context
def db_downgrade(context: _Context, revision: str) -> None:
    """Downgrade the database schema to REVISION ("base" removes every table of
    monitor's, leaving Alembic's alembic_version, empty)."""
    _migrate(context, downgrade_database, revision)


def _migrate(context: _Context, migrate: Callable[[Engine, str], None], revision: str) -> None:
    from alembic.util import CommandError  # here: Alembic is slow to import

    engine = create_database_engine(context.settings().database.url)
    check_reachable(engine)
    try:
        migrate(engine, revision)
    except CommandError as error:
        raise click.BadParameter(str(error), param_hint="'REVISION'") from None
    current, _ = schema_revisions(engine)
    reached = current or "base (no schema)"
    click.echo(f"database {mask_url(engine.url)} is at {reached}")
    if revision not in ("head", "base", current):
        click.echo(
            f"(not at {revision}: an upgrade never goes back, a downgrade never forward)",
            err=True,
        )


@db.command("current")
@pass_context
def db_current(context: _Context) -> None:
    """Print the schema revision of the database and whether it is the newest."""
    settings = context.settings()
    missing = missing_sqlite_file(settings.database.url)
    if missing is not None:
        raise DatabaseError(f"no database at {missing} (`monitor db upgrade` creates it)")
    engine = create_database_engine(settings.database.url, read_only=True)
    check_reachable(engine)
    current, head = schema_revisions(engine)
    if current is None:
        raise DatabaseError(f"{mask_url(engine.url)}: no schema yet (run `monitor db upgrade`)")
    if current == head:
        click.echo(f"{mask_url(engine.url)}: revision {current} (up to date)")
        return
    # Zero-padded revision numbers: a newer monitor's revision sorts after our head.
    state = (
        f"behind: newest is {head}; `monitor db upgrade` migrates it"
        if head is not None and current < head
        else f"newer than this monitor, which knows revisions up to {head}"
    )
    click.echo(f"{mask_url(engine.url)}: revision {current} ({state})")
    sys.exit(EXIT_DATABASE)


@cli.command()
@click.option("--since", type=click.DateTime(), help="Only entries first seen on or after (UTC).")
@click.option(
    "--feed", "feeds", multiple=True, help="Only entries of the feed with this name (repeatable)."
)
@click.option("--dry-run", is_flag=True, help="Count them; change nothing.")
@pass_context
def refilter(
    context: _Context, since: datetime | None, feeds: tuple[str, ...], dry_run: bool
) -> None:
    """Give the entries the topic filter dropped another chance, after editing [topic].

    They become pending again: the next poll of each one's feed (the daemon's, or
    `monitor run-once`) fetches its page and judges it by the rules of that moment,
    up to 100 entries of a feed a poll. Articles already stored are not judged again.
    """
    settings = context.settings()
    store = open_store(settings, sync_feeds=False, create=False, read_only=dry_run)
    polled = _polled_feeds(store, settings, feeds)
    count = (
        store.refilter(
            since=since.replace(tzinfo=UTC) if since else None, feeds=polled, dry_run=dry_run
        )
        if polled
        else 0
    )
    if dry_run:
        click.echo(f"{count} filtered entries would be judged again")
    else:
        click.echo(
            f"{count} filtered entries queued: the next poll of their feeds fetches them again"
        )


@cli.command()
@click.option("--since", type=click.DateTime(), help="Only entries first seen on or after (UTC).")
@click.option(
    "--feed", "feeds", multiple=True, help="Only entries of the feed with this name (repeatable)."
)
@click.option(
    "--reason",
    "reasons",
    multiple=True,
    help="Only entries failed for this reason, e.g. http_429, timeout (repeatable).",
)
@click.option("--dry-run", is_flag=True, help="Count them; change nothing.")
@pass_context
def retry(
    context: _Context,
    since: datetime | None,
    feeds: tuple[str, ...],
    reasons: tuple[str, ...],
    dry_run: bool,
) -> None:
    """Give the entries that failed for good another chance, after an outage.

    They become pending again with a full budget of attempts (fetch.max_attempts):
    the next poll of each one's feed (the daemon's, or `monitor run-once`) fetches
    its page, up to 100 entries of a feed a poll.
    """
    settings = context.settings()
    store = open_store(settings, sync_feeds=False, create=False, read_only=dry_run)
    polled = _polled_feeds(store, settings, feeds)
    _check_reasons(store, reasons)
    count = (
        store.retry_failed(
            since=since.replace(tzinfo=UTC) if since else None,
            feeds=polled,
            reasons=reasons,
            dry_run=dry_run,
        )
        if polled
        else 0
    )
    if dry_run:
        click.echo(f"{count} failed entries would be tried again")
    else:
        click.echo(
            f"{count} failed entries queued: the next poll of their feeds fetches them again"
        )


@cli.command()
@count_option("--batch-size", 500, "Articles per transaction.")
@pass_context
def retag(context: _Context, batch_size: int) -> None:
    """Apply the current tag rules to every stored article, and report what changed.

    Run it after editing [[tags]] in the configuration. Idempotent: a second run
    changes nothing. Each batch of articles is one transaction.
    """
    settings = context.settings()
    store = open_store(settings, sync_feeds=False, create=False)
    rules = RuleSet.from_settings(settings)
    total = store.article_count()
    started = time.monotonic()
    with click.progressbar(
        length=total, label="retagging", file=sys.stderr, hidden=not sys.stderr.isatty()
    ) as bar:
        report = run_retag(store, rules, batch_size=batch_size, progress=bar.update)
    seconds = time.monotonic() - started
    click.echo(
        f"articles: {report.articles}, changed: {report.articles_changed} "
        f"({report.articles / seconds if seconds else 0:.0f} articles/s)"
    )
    names = sorted(set(report.added) | set(report.removed) | set(report.explained_anew))
    if not names:
        click.echo("no tag changed")
    for name in names:
        click.echo(
            f"  {name}: +{report.added[name]} -{report.removed[name]}"
            + (
                f" (matched phrases changed on {report.explained_anew[name]})"
                if report.explained_anew[name]
                else ""
            )
        )


@cli.command()
@click.argument("url")
@pass_context
def explain(context: _Context, url: str) -> None:
    """Show why one article was kept or filtered, and which tag rules match it.

    URL is a stored article's, a copy's, or any page's (it is then fetched and
    extracted now, without being stored).
    """
    settings = context.settings()
    rules = RuleSet.from_settings(settings)
    try:
        canonical = canonical_url(url)
    except FetchError as error:
        raise click.BadParameter(str(error), param_hint="'URL'") from None
    # Before any run there is no database, and a page is still worth judging by the rules.
    missing = missing_sqlite_file(settings.database.url)
    store: Store | None = None
    dedup: DedupInput | None = None
    if missing is None:
        store = open_store(settings, sync_feeds=False, create=False, read_only=True)
        record = store.find_by_url(canonical)
    else:
        record = UrlRecord(article=None, copy=None, entry=None, tags=[])
        click.echo(f"(no database at {missing} yet: judging the page by the rules alone)")
    if record.article is not None:
        article = record.article
        if record.copy is not None:
            click.echo(
                f"{canonical}: a copy ({record.copy.kind}, similarity {record.copy.similarity:.2f})"
                f" of article {article.id}, {article.url}"
            )
        elif article.url != canonical:
            click.echo(
                f"{canonical}: stored as article {article.id}, under the URL its page"
                f" declares: {article.url}"
            )
        else:
            click.echo(f"{canonical}: stored as article {article.id}")
        title, text = article.title, article.text
    else:
        if record.entry is not None:
            click.echo(f"{canonical}: seen in a feed, {_entry_state(record.entry, settings)}")
            if _host_asked_to_wait(record.entry):
                # Asking again before then is what the answer asked us not to do.
                click.echo(
                    "not fetched now: its server asked to be left alone until then; explain"
                    " it again after that time"
                )
                return
        else:
            click.echo(f"{canonical}: not in the database; fetching it now")
        with build_client(settings.fetch) as client:
            page = fetch_page(client, canonical, max_size=settings.fetch.max_response_size)
        entry = FeedEntry(link=canonical, url=canonical)
        analysis = analyse(page, entry)
        cleaned, dedup = analysis.cleaned, analysis.dedup
        title, text = cleaned.article.title, cleaned.text
    matches = rules.match(title, text)
    verdict = rules.topic(matches)
    if record.copy is not None:
        click.echo("the story's kept text, by the current rules (a copy's own is not stored):")
    click.echo(f"title: {title}")
    unfiltered = [feed.name for feed in settings.feeds if not feed.filter]
    skipped_by = [name for name in record.feeds if name in unfiltered]
    if skipped_by and not verdict.on_topic:
        click.echo(
            f"topic: not applied: the feed {skipped_by[0]!r} has `filter = false`, so its"
            f" entries are kept whatever they are about (by the rules alone: filtered:"
            f" {verdict.reason})"
        )
    else:
        click.echo(f"topic: {'kept' if verdict.on_topic else 'filtered'}: {verdict.reason}")
    if verdict.on_topic and record.entry is not None and record.entry.outcome == Outcome.OFF_TOPIC:
        click.echo(
            "the current rules keep it, the rules of its poll did not: `monitor refilter`"
            " queues it to be fetched and judged again"
        )
    for line in rules.explain_topic(matches):
        click.echo(f"  {line}")
    rule_tags = rules.tags(matches)
    click.echo("tags from the current rules:" if rule_tags else "no tag rule matches")
    for tag in sorted(rule_tags, key=lambda tag: tag.name):
        click.echo(f"  {tag.name}: {', '.join(json.loads(tag.detail or '[]'))}")
    if record.article is not None:
        stored = sorted(f"{tag} ({source})" for tag, source, _ in record.tags)
        click.echo(f"stored tags: {', '.join(stored) if stored else 'none'}")
        current = {tag.name for tag in rule_tags}
        recorded = {tag for tag, source, _ in record.tags if source == "rule"}
        if current != recorded:
            click.echo(
                f"`monitor retag` would add {sorted(current - recorded)} "
                f"and remove {sorted(recorded - current)}"
            )
    if store is not None:
        _explain_duplicates(store, record, dedup, rule_tags)


def _explain_duplicates(
    store: Store, record: UrlRecord, dedup: DedupInput | None, rule_tags: Sequence[Tag]
) -> None:
    """The near-duplicate decision: the stories it compares the article with, and why
    each is or is not the same story."""
    from monitor.similarity import Signer  # here: loads datasketch's MinHash

    if record.copy is not None:
        click.echo(
            "near-duplicates: decided when the copy arrived (its own text is not stored,"
            " so it is not compared again)"
        )
        return
    exclude = None
    if record.article is not None:
        article = record.article
        count, copies = store.copies_of(article.id)
        if count:
            click.echo(f"copies recorded: {count}")
            for copy in copies:
                click.echo(f"  {copy.kind} (similarity {copy.similarity:.2f}): {copy.url}")
            if count > len(copies):
                click.echo(
                    f"  … and {count - len(copies)} more"
                    " (`monitor export --include-duplicates`, or the duplicates table)"
                )
        dedup = prepare_text(article.text, Signer(), published_at=article.published_at)
        exclude = article.id
    if dedup is None:
        return
    nearest = store.nearest_stories(dedup, exclude=exclude)
    if record.article is None:
        _explain_judgement(store, store.judge(dedup, rule_tags), bool(nearest))
    if not nearest:
        story = "it would be a story of its own: " if record.article is None else ""
        click.echo(f"near-duplicates: {story}no kept story is alike enough to compare")
        return
    click.echo("nearest kept stories:")
    for near in nearest:
        click.echo(f"  article {near.article_id}, {near.url}: {near.report.reason}")
        click.echo(f"    {near.report.measures}")


def _explain_judgement(store: Store, judgement: Judgement, compared: bool) -> None:
    """What storing a page not yet stored would do, as `Store.ingest` decides it."""
    decision = judgement.decision
    if decision.duplicate_of is None:
        if compared:
            click.echo("near-duplicates: it would be a story of its own")
        return
    kept_url = store.article_url(decision.duplicate_of)
    pair = f"{decision.kind}, similarity {decision.similarity:.2f}"
    if judgement.original:
        click.echo(
            f"near-duplicates: it would be the original of article {decision.duplicate_of},"
            f" {kept_url} ({pair}): the story would keep its id and take this page's text"
        )
    else:
        click.echo(
            f"near-duplicates: it would be a copy ({pair}) of article"
            f" {decision.duplicate_of}, {kept_url}"
        )
    for merge in judgement.merges:
        other = f"article {merge.article_id}, {store.article_url(merge.article_id)}"
        if merge.kept_apart_because is None:
            click.echo(
                f"  and {other} would be merged into that story as its copy ({merge.kind},"
                f" similarity {merge.similarity:.2f}): this page shows the two are one story"
            )
        else:
            click.echo(
                f"  {other}, which it resembles as much ({merge.kind}), would stay a story"
                f" of its own: {merge.kept_apart_because}"
            )


def _host_asked_to_wait(entry: Entry) -> bool:
    """Whether the entry waits because its server answered 429 or 503 (or its host is
    waiting on such an answer to another page)."""
    due = entry.next_attempt_at
    busy = entry.reason == "host_waiting" or entry.reason in {
        f"http_{status}" for status in BUSY_STATUSES
    }
    return busy and due is not None and due > datetime.now(UTC)


def _entry_state(entry: Entry, settings: Settings) -> str:
    """An entry's outcome in words, and when one waiting for a later try is due."""
    reason = f": {entry.error}" if entry.error else ""
    due = entry.next_attempt_at
    if entry.outcome in (Outcome.PENDING, Outcome.FAILED) and due is not None:
        if due > datetime.now(UTC):
            when = f"waiting until {due:%Y-%m-%d %H:%M:%S} UTC"
        else:
            when = "due at the next poll of its feed"
        spent = f"attempt {entry.attempts + 1} of {settings.fetch.max_attempts}"
        if entry.reason == "host_waiting":
            spent = "no attempt spent: its host asked to wait"
        return f"outcome {entry.outcome}, {when} ({spent}){reason}"
    if entry.outcome == Outcome.FAILED and entry.attempts >= settings.fetch.max_attempts:
        return (
            f"outcome failed after {entry.attempts} attempts{reason}"
            " (`monitor retry` queues it again)"
        )
    return f"outcome {entry.outcome}{reason}"


# A query may start with "-" (-word: not): it is not an option, and "-hotline" is not
# -h (help) either.
@cli.command(context_settings={"ignore_unknown_options": True, "help_option_names": ["--help"]})
@click.argument("query")
@count_option("--limit", 20, "Most articles to list.", maximum=MAX_SEARCH_RESULTS)
@pass_context
def search(context: _Context, query: str, limit: int) -> None:
    """Full-text search of the stored articles' titles and texts, best matches first.

    QUERY is web-search syntax on both databases: words (all of them), "a phrase",
    or, -word (not); on SQLite a trailing * also makes a word a prefix. A word in a
    script written without spaces (Chinese, Khmer, Thai...) is found inside a
    sentence, as written; such a query lists the newest matches first.
    """
    if query == "-h":  # -h alone still asks for help, as for every other command
        click.echo(click.get_current_context().get_help())
        return
    if not query.strip():
        raise click.BadParameter("give the words to search for", param_hint="'QUERY'")
    if len(query.split()) > MAX_SEARCH_WORDS:
        # PostgreSQL's snippets cost the square of the query's length: a pasted article
        # would hold the database for minutes.
        raise click.BadParameter(
            f"at most {MAX_SEARCH_WORDS} words, got {len(query.split())}", param_hint="'QUERY'"
        )
    store = open_store(context.settings(), sync_feeds=False, create=False, read_only=True)
    hits = store.search(query, limit=limit)
    for hit in hits:
        when = hit.published_at
        if isinstance(when, datetime) and when.tzinfo is not None:
            when = when.astimezone(UTC)  # PostgreSQL answers in the session's time zone
        published = str(when)[:10] if when else "(no date)"
        click.echo(f"{hit.article_id}\t{published}\t{hit.title}\n\t{hit.url}\n\t{hit.snippet}")
    click.echo(f"{len(hits)} article{'s' if len(hits) != 1 else ''}", err=True)


@cli.command("export")
@click.option(
    "--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl", show_default=True
)
@click.option(
    "--output", type=click.Path(path_type=Path, dir_okay=False), help="Default: standard output."
)
@click.option("--since", type=click.DateTime(), help="Published (or fetched) on or after (UTC).")
@click.option("--until", type=click.DateTime(), help="Published (or fetched) before (UTC).")
@click.option(
    "--tag", "tags", multiple=True, help="Only articles with this tag (repeated: with every one)."
)
@click.option(
    "--feed",
    "feeds",
    multiple=True,
    help="Only articles that arrived through the feed with this name (repeated: any of them).",
)
@click.option("--include-duplicates", is_flag=True, help="List each story's copies with it.")
@pass_context
def export_command(
    context: _Context,
    fmt: ExportFormat,
    output: Path | None,
    since: datetime | None,
    until: datetime | None,
    tags: tuple[str, ...],
    feeds: tuple[str, ...],
    include_duplicates: bool,
) -> None:
    """Stream the stored articles as JSON Lines or CSV, in constant memory."""
    if since and until and since >= until:
        raise click.BadParameter(
            f"{since:%Y-%m-%d %H:%M:%S} is not before --until {until:%Y-%m-%d %H:%M:%S}",
            param_hint="'--since'",
        )
    if include_duplicates and fmt == "csv":
        raise click.BadParameter(
            "the copies are listed in JSON Lines only (--format jsonl); CSV gives their"
            " number in its `copies` column",
            param_hint="'--include-duplicates'",
        )
    settings = context.settings()
    store = open_store(settings, sync_feeds=False, create=False, read_only=True)
    _check_feed_names(store, feeds)
    _check_tag_names(store, settings, tags)
    selection = ExportFilter(
        since=since.replace(tzinfo=UTC) if since else None,
        until=until.replace(tzinfo=UTC) if until else None,
        tags=tags,
        feeds=feeds,
        include_duplicates=include_duplicates,
    )
    if output is None:
        try:
            sys.stdout.flush()
            count = export(store, sys.stdout.buffer, fmt=fmt, selection=selection)
            sys.stdout.buffer.flush()
        except BrokenPipeError:
            raise  # the reader stopped reading (`| head`): _Commands ends quietly
        except OSError as error:
            raise click.ClickException(
                f"cannot write to standard output: {error.strerror or error}"
            ) from None
    else:
        count = _export_to_file(store, output, fmt, selection)
    click.echo(f"exported {count} articles", err=True)


def _polled_feeds(store: Store, settings: Settings, feeds: Sequence[str]) -> tuple[str, ...]:
    """The feeds whose entries a command queues for the next poll: those named (each
    known and enabled), else every feed the configuration enables. The database's own
    list of enabled feeds lags behind the file until the daemon or `run-once` reads it,
    and an entry of a feed taken out of the file would stay pending for ever."""
    _check_feed_names(store, feeds)
    enabled = tuple(feed.name for feed in settings.enabled_feeds)
    for feed in feeds:
        if feed not in enabled:
            raise click.BadParameter(
                f"feed {feed!r} is not enabled in the configuration: no poll would fetch"
                " its entries",
                param_hint="'--feed'",
            )
    return tuple(feeds) or enabled


def _check_feed_names(store: Store, feeds: Sequence[str]) -> None:
    """A misspelt name would otherwise select nothing, and look like no coverage."""
    names = store.feed_names() if feeds else []
    for feed in feeds:
        if feed not in names:
            known = ", ".join(repr(name) for name in names) or "none yet"
            raise click.BadParameter(
                f"no feed named {feed!r} in the database (feeds: {known})", param_hint="'--feed'"
            )


def _check_reasons(store: Store, reasons: Sequence[str]) -> None:
    """A reason is written as the entries table has it (`http_500`, `timeout`): "500" or
    "HTTP_500" would select nothing, and look like nothing to retry."""
    if not reasons:
        return
    present = store.failed_reasons()
    listed = ", ".join(f"{reason} ({count})" for reason, count in present.items()) or "none"
    for reason in reasons:
        if reason in present:
            continue
        if _REASON_FORM.fullmatch(reason):
            log.warning("no failed entry has the reason %r (failed entries: %s)", reason, listed)
            continue
        lower = reason.casefold()
        guess = [lower] if _REASON_FORM.fullmatch(lower) else []
        guess = guess or difflib.get_close_matches(lower, list(present), n=1, cutoff=0.6)
        hint = f"did you mean {guess[0]!r}? " if guess else ""
        raise click.BadParameter(
            f"{reason!r} is not a reason as entries record them (lower case, e.g. http_500,"
            f" timeout): {hint}failed entries: {listed}",
            param_hint="'--reason'",
        )


_REASON_FORM = re.compile(r"[a-z][a-z0-9_]*")


def _check_tag_names(store: Store, settings: Settings, tags: Sequence[str]) -> None:
    """A tag no article has and no rule gives is a misspelling ("human trafficking" for
    the feed's "Human Trafficking", "place:poipett"): it would select nothing, and look
    like no coverage. A rule's tag that no article has yet selects nothing, rightly."""
    if not tags:
        return
    ruled = {rule.name for rule in settings.tags}
    stored = store.tag_names()
    known = set(stored) | ruled
    for tag in tags:
        if tag in known:
            continue
        folded = {name.casefold(): name for name in known}
        likely = [folded[tag.casefold()]] if tag.casefold() in folded else []
        likely = likely or difflib.get_close_matches(tag, sorted(known), n=3, cutoff=0.75)
        hint = f"; did you mean {', '.join(repr(name) for name in likely)}?" if likely else ""
        raise click.BadParameter(
            f"no stored article has the tag {tag!r} and no tag rule gives it"
            f" ({len(stored)} tags in the database){hint}",
            param_hint="'--tag'",
        )


def _export_to_file(store: Store, output: Path, fmt: ExportFormat, selection: ExportFilter) -> int:
    """Export into a file beside `output` and rename it into place when complete, so that
    `output` is never a partial export (a full disk, an interrupted run). A device, a
    pipe or a link (/dev/stdout) is written to as it is."""
    in_place = output.is_symlink() or (output.exists() and not output.is_file())
    target = output if in_place else output.with_name(f".{output.name}.partial")
    try:
        with target.open("wb") as file:
            count = export(store, file, fmt=fmt, selection=selection)
        if target != output:
            target.replace(output)
    except OSError as error:
        raise click.ClickException(f"cannot write {output}: {error.strerror or error}") from None
    finally:
        if target != output:
            target.unlink(missing_ok=True)  # gone once renamed; a partial one otherwise
    return count


@cli.group("index")
def index_group() -> None:
    """The near-duplicate index (LSH buckets of each kept article's MinHash signatures)."""


@index_group.command("rebuild")
@click.option(
    "--from-text",
    is_flag=True,
    help="Sign every kept article again from its text first (after an upgrade that "
    "changed the similarity features).",
)
@pass_context
def index_rebuild(context: _Context, from_text: bool) -> None:
    """Rebuild the index from the stored signatures, in one transaction."""
    engine = open_store(context.settings(), sync_feeds=False, create=False).engine
    show = sys.stderr.isatty()

    def progress(done: int) -> None:
        if show:
            click.echo(f"\rindexed {done} articles", nl=False, err=True)

    count = index.rebuild(engine, from_text=from_text, progress=progress)
    if show:
        click.echo(err=True)
    click.echo(f"index rebuilt: {count} articles")
    with engine.connect() as connection:
        unsigned = connection.execute(_UNSIGNED_ARTICLES).scalar_one()
    if unsigned:
        # Articles from before the index (a database downgraded and upgraded again):
        # no signature, so no copy of them will ever be found.
        click.echo(
            f"warning: {unsigned} articles have no signature and are not in the index:"
            " `monitor index rebuild --from-text` signs them from their text",
            err=True,
        )


_UNSIGNED_ARTICLES = sa.text(
    "SELECT count(*) FROM articles a"
    " WHERE NOT EXISTS (SELECT 1 FROM article_signatures s WHERE s.article_id = a.id)"
)


def _stop_on_signals(stop: threading.Event) -> list[int]:
    """run-once: the first SIGINT or SIGTERM stops after the entries in hand. Returns
    the list the signal received is put in."""
    received: list[int] = []

    def handle(signum: int, _frame: FrameType | None) -> None:
        if stop.is_set():
            # A second signal: the operator does not want to wait.
            raise SystemExit(128 + signum)
        log.info("received %s: stopping after the entries in hand", signal.Signals(signum).name)
        received.append(signum)
        stop.set()

    signal.signal(signal.SIGINT, handle)
    signal.signal(signal.SIGTERM, handle)
    return received


def main() -> NoReturn:
    """Console entry point: MonitorError becomes a message and an exit status, never a
    traceback; so does standard output that cannot be written (`> /dev/full`, `>&-`)."""
    if sys.stdout is None:  # started with standard output closed
        sys.stdout = io.TextIOWrapper(io.BufferedWriter(_ClosedOutput()))
    try:
        _main()
    except SystemExit as exit_:
        status = exit_.code
    except BrokenPipeError:
        status = 0  # the reader stopped reading: no failure (_Commands.invoke)
    except OSError as error:
        _discard_output()
        _fatal(f"monitor: error: cannot write its output: {error.strerror or error}", 1)
    # What is still buffered is written now: at exit a failure would only be an
    # "Exception ignored" warning and status 120.
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _discard_output()
    except OSError as error:
        _discard_output()
        if not status:  # else the command has said what went wrong
            _fatal(f"monitor: error: cannot write its output: {error.strerror or error}", 1)
    sys.exit(status)


class _ClosedOutput(io.RawIOBase):
    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        raise OSError(errno.EBADF, "standard output is closed")


def _discard_output() -> None:
    sys.stdout = Path(os.devnull).open("w", encoding="utf-8")  # noqa: SIM115 - kept open to exit


def _main() -> NoReturn:
    try:
        status = cli.main(prog_name="monitor", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(1)
    except click.UsageError as error:
        error.show()
        sys.exit(error.exit_code)
    except click.ClickException as error:
        # Not the command line's fault: one line, as every other error.
        _fatal(f"monitor: error: {error.format_message()}", error.exit_code)
    except ConfigError as error:
        _fatal(f"monitor: configuration error: {error}", EXIT_CONFIG)
    except DatabaseError as error:
        _fatal(f"monitor: database error: {error}", EXIT_DATABASE)
    except sa.exc.DBAPIError as error:
        # What no command expected (a role without the right to a table): the database's
        # own words, not a traceback.
        _fatal(f"monitor: database error: {first_line(error)}", EXIT_DATABASE)
    except MonitorError as error:
        _fatal(f"monitor: error: {error}", EXIT_DATABASE)
    sys.exit(status if isinstance(status, int) else 0)


# Set by `monitor run`: the daemon's log is read by machines (`docker logs | jq`), so the
# error that stops it is one more event of that log; other commands answer a person.
_FATAL_AS_LOG_EVENT = False


def _fatal(message: str, status: int) -> NoReturn:
    if _FATAL_AS_LOG_EVENT and json_output():
        logging.getLogger("monitor").critical(message, extra={"event": "fatal"})
    else:
        click.echo(message, err=True)
    sys.exit(status)
