"""The `monitor` command as an operator runs it: exit statuses, messages, no tracebacks."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from monitor import __version__
from tests.commands import MONITOR, environment
from tests.localsite import LocalSite


def monitor(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MONITOR, *args],
        cwd=cwd,
        env=environment(**(env or {})),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_version(tmp_path: Path) -> None:
    result = monitor("--version", cwd=tmp_path)
    assert result.returncode == 0
    assert __version__ in result.stdout


def test_help_lists_every_command(tmp_path: Path) -> None:
    result = monitor("--help", cwd=tmp_path)
    assert result.returncode == 0
    for command in ("run", "run-once", "check-config", "db"):
        assert command in result.stdout
    db_help = monitor("db", "--help", cwd=tmp_path)
    assert "upgrade" in db_help.stdout and "downgrade" in db_help.stdout


def test_broken_config_exits_2_naming_the_key(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(
        '[[feeds]]\nname = "a"\nurl = "https://a.example/feed"\ninterval = "fast"\n',
        encoding="utf-8",
    )
    for command in ("run", "run-once", "check-config"):
        result = monitor(command, cwd=tmp_path)
        assert result.returncode == 2, command
        assert "config.toml" in result.stderr
        assert "feeds[0].interval" in result.stderr
        assert "Traceback" not in result.stderr


def test_config_from_environment_and_option(tmp_path: Path) -> None:
    (tmp_path / "elsewhere.toml").write_text('[fetch]\ntimeout = "7s"\n', encoding="utf-8")
    by_env = monitor("check-config", cwd=tmp_path, env={"MONITOR_CONFIG": "elsewhere.toml"})
    assert by_env.returncode == 0, by_env.stderr
    assert 'timeout = "7s"' in by_env.stdout
    by_option = monitor("--config", "elsewhere.toml", "check-config", cwd=tmp_path)
    assert 'timeout = "7s"' in by_option.stdout
    missing = monitor("check-config", cwd=tmp_path)
    assert missing.returncode == 2
    assert "config.toml: config file not found" in missing.stderr


def test_check_config_masks_the_password(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(
        '[database]\nurl = "postgresql://monitor:s3cret@db.internal:5432/monitor"\n',
        encoding="utf-8",
    )
    result = monitor("check-config", cwd=tmp_path)
    assert result.returncode == 0
    assert "s3cret" not in result.stdout + result.stderr
    assert "postgresql://monitor:***@db.internal:5432/monitor" in result.stdout
    overridden = monitor(
        "check-config",
        cwd=tmp_path,
        env={"MONITOR_DATABASE_URL": "postgresql://u:other-secret@h/db"},
    )
    assert "other-secret" not in overridden.stdout and "u:***@h/db" in overridden.stdout
    # libpq also reads a password from the query string.
    in_query = monitor(
        "check-config",
        cwd=tmp_path,
        env={"MONITOR_DATABASE_URL": "postgresql://u@h/db?password=q-secret&sslmode=require"},
    )
    assert "q-secret" not in in_query.stdout
    assert "postgresql://u@h/db?password=***&sslmode=require" in in_query.stdout


def test_db_upgrade_creates_the_schema(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(
        '[database]\nurl = "sqlite:///var/m.db"\n', encoding="utf-8"
    )
    result = monitor("db", "upgrade", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    with sqlite3.connect(tmp_path / "var" / "m.db") as connection:
        tables = {
            row[0]
            for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
    assert {"feeds", "entries", "articles", "article_tags", "duplicates"} <= tables
    current = monitor("db", "current", cwd=tmp_path)
    assert current.returncode == 0 and "(up to date)" in current.stdout
    older = monitor("db", "downgrade", "0003", cwd=tmp_path)
    assert older.returncode == 0, older.stderr
    behind = monitor("db", "current", cwd=tmp_path)
    assert behind.returncode == 1 and "revision 0003 (behind: newest is" in behind.stdout
    down = monitor("db", "downgrade", "base", cwd=tmp_path)
    assert down.returncode == 0, down.stderr
    empty = monitor("db", "current", cwd=tmp_path)
    assert empty.returncode == 1 and "no schema yet" in empty.stderr


def test_unreachable_database_exits_1_without_traceback(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text("", encoding="utf-8")
    result = monitor(
        "run-once",
        cwd=tmp_path,
        env={"MONITOR_DATABASE_URL": "postgresql://monitor:pw@127.0.0.1:9/none?connect_timeout=2"},
    )
    assert result.returncode == 1
    assert "database error" in result.stderr
    assert "pw@" not in result.stderr
    assert "Traceback" not in result.stderr


def test_a_sqlite_file_that_cannot_be_created_exits_1_without_traceback(tmp_path: Path) -> None:
    (tmp_path / "volume").write_text("a file where a folder should be", encoding="utf-8")
    (tmp_path / "config.toml").write_text(
        '[database]\nurl = "sqlite:///volume/data/m.db"\n', encoding="utf-8"
    )
    result = monitor("run-once", cwd=tmp_path)
    assert result.returncode == 1
    assert "database error: cannot create volume/data for the SQLite database" in result.stderr
    assert "Traceback" not in result.stderr


def test_commands_that_read_never_create_a_database(tmp_path: Path) -> None:
    # An operator in the wrong directory must not be shown a new empty database.
    (tmp_path / "config.toml").write_text(
        '[database]\nurl = "sqlite:///data/m.db"\n', encoding="utf-8"
    )
    for command in (
        ("status",),
        ("search", "scam"),
        ("export",),
        ("retag",),
        ("index", "rebuild"),
        ("db", "current"),
    ):
        result = monitor(*command, cwd=tmp_path)
        assert result.returncode == 1, command
        assert "database error: no database at data/m.db" in result.stderr, command
        assert "creates it" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "data" / "m.db").exists()
    # A page can still be judged by the rules before any run (it fails to fetch here).
    judged = monitor("explain", "http://127.0.0.1:9/a.html", cwd=tmp_path)
    assert "no database at data/m.db yet: judging the page by the rules alone" in judged.stdout
    assert not (tmp_path / "data" / "m.db").exists()
    # A database file without monitor's schema is refused too, and left as it is.
    (tmp_path / "data").mkdir()
    sqlite3.connect(tmp_path / "data" / "m.db").close()
    empty = monitor("status", cwd=tmp_path)
    assert empty.returncode == 1 and "has no monitor schema yet" in empty.stderr
    with sqlite3.connect(tmp_path / "data" / "m.db") as connection:
        assert connection.execute("SELECT count(*) FROM sqlite_master").fetchone() == (0,)


def test_export_of_an_unknown_feed_names_the_known_ones(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(
        '[fetch]\nallow_private_addresses = true\ntimeout = "2s"\n'
        '[[feeds]]\nname = "Khmer Times"\nurl = "http://127.0.0.1:9/feed.rss"\n',
        encoding="utf-8",
    )
    assert monitor("run-once", cwd=tmp_path).returncode == 0  # the feed fails; it is known
    misspelt = monitor("export", "--feed", "Khmer Time", cwd=tmp_path)
    assert misspelt.returncode == 2 and misspelt.stdout == ""
    assert "no feed named 'Khmer Time' in the database (feeds: 'Khmer Times')" in misspelt.stderr
    known = monitor("export", "--feed", "Khmer Times", cwd=tmp_path)
    assert known.returncode == 0 and "exported 0 articles" in known.stderr
    # Repeated, every name is checked.
    both = monitor("export", "--feed", "Khmer Times", "--feed", "Khmer Time", cwd=tmp_path)
    assert both.returncode == 2 and "no feed named 'Khmer Time'" in both.stderr
    # A search may start with a word it must not hold: not an option.
    excluded = monitor("search", "-football scam", cwd=tmp_path)
    assert excluded.returncode == 0, excluded.stderr
    assert "0 articles" in excluded.stderr
    for query in ("-hotline scam", "-human scam", "-help scam"):  # not -h, help
        searched = monitor("search", query, cwd=tmp_path)
        assert searched.returncode == 0 and "Usage" not in searched.stdout, query
        assert "0 articles" in searched.stderr, query
    assert "Usage: monitor search" in monitor("search", "-h", cwd=tmp_path).stdout


def test_export_of_a_tag_nothing_gives_suggests_the_likely_one(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(
        '[fetch]\nallow_private_addresses = true\ntimeout = "2s"\n'
        '[[feeds]]\nname = "news"\nurl = "http://127.0.0.1:9/feed.rss"\n'
        '[[tags]]\nname = "place:poipet"\nany = ["poipet"]\n',
        encoding="utf-8",
    )
    assert monitor("run-once", cwd=tmp_path).returncode == 0
    # A rule's tag that no article has yet: nothing to export, rightly.
    ruled = monitor("export", "--tag", "place:poipet", cwd=tmp_path)
    assert ruled.returncode == 0 and "exported 0 articles" in ruled.stderr
    for misspelt in ("place:poipett", "Place:Poipet"):
        refused = monitor("export", "--tag", misspelt, cwd=tmp_path)
        assert refused.returncode == 2 and refused.stdout == ""
        assert f"no stored article has the tag {misspelt!r}" in refused.stderr
        assert "did you mean 'place:poipet'?" in refused.stderr


def test_status_lists_configured_feeds_never_polled(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(
        '[fetch]\nallow_private_addresses = true\ntimeout = "2s"\n'
        '[[feeds]]\nname = "Polled"\nurl = "http://127.0.0.1:9/a.rss"\n',
        encoding="utf-8",
    )
    assert monitor("db", "upgrade", cwd=tmp_path).returncode == 0
    fresh = monitor("status", cwd=tmp_path)
    assert fresh.returncode == 0, fresh.stderr
    assert [line.split()[:2] for line in fresh.stdout.splitlines()[1:]] == [
        ["Polled", "never_polled"]
    ]
    assert monitor("run-once", cwd=tmp_path).returncode == 0
    # Failing once, it is polled again at its interval: no put-off time to show.
    (failing,) = monitor("status", cwd=tmp_path).stdout.splitlines()[1:]
    header = monitor("status", cwd=tmp_path).stdout.splitlines()[0]
    assert failing[header.index("next poll") :].startswith("- ")
    (tmp_path / "config.toml").write_text(
        (tmp_path / "config.toml").read_text(encoding="utf-8")
        + '[[feeds]]\nname = "Added"\nurl = "http://127.0.0.1:9/b.rss"\n'
        + '[[feeds]]\nname = "Paused"\nurl = "http://127.0.0.1:9/c.rss"\nenabled = false\n',
        encoding="utf-8",
    )
    later = monitor("status", cwd=tmp_path)
    assert [line.split()[:2] for line in later.stdout.splitlines()[1:]] == [
        ["Added", "never_polled"],
        ["Polled", "failing"],
        ["Paused", "disabled"],
    ]


def test_bad_command_line_values_are_refused_before_any_work(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text('[database]\nurl = "sqlite:///m.db"\n', encoding="utf-8")
    assert monitor("db", "upgrade", cwd=tmp_path).returncode == 0
    for arguments, message in [
        (("retag", "--batch-size", "0"), "Invalid value for '--batch-size'"),
        (("search", "scam", "--limit", "0"), "Invalid value for '--limit'"),
        (("search", " "), "Invalid value for 'QUERY': give the words to search for"),
        (("search", "scam " * 65), "Invalid value for 'QUERY': at most 64 words, got 65"),
        (("search", "scam", "--limit", "9" * 20), "Invalid value for '--limit'"),
        (
            ("export", "--format", "csv", "--include-duplicates"),
            "Invalid value for '--include-duplicates': the copies are listed in JSON Lines only",
        ),
        (
            ("export", "--since", "2025-01-01", "--until", "2024-01-01"),
            "2025-01-01 00:00:00 is not before --until 2024-01-01 00:00:00",
        ),
    ]:
        result = monitor(*arguments, cwd=tmp_path)
        assert (result.returncode, result.stdout) == (2, ""), arguments
        assert message in result.stderr and "Traceback" not in result.stderr


def test_a_wrong_argument_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text('[database]\nurl = "sqlite:///m.db"\n', encoding="utf-8")
    for arguments, message in [
        (("db", "upgrade", "9999"), "Invalid value for 'REVISION': Can't locate revision"),
        (("db", "downgrade", "9999"), "Invalid value for 'REVISION': Can't locate revision"),
        (("explain", "notaurl"), "Invalid value for 'URL': not an absolute http(s) URL"),
        (("--config", "nope.toml", "healthcheck"), "nope.toml: config file not found"),
    ]:
        result = monitor(*arguments, cwd=tmp_path)
        assert result.returncode == 2, (arguments, result.stderr)
        assert message in result.stderr and "Traceback" not in result.stderr


def test_export_to_a_file_is_whole_or_absent(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text('[database]\nurl = "sqlite:///m.db"\n', encoding="utf-8")
    assert monitor("db", "upgrade", cwd=tmp_path).returncode == 0
    nowhere = monitor("export", "--output", str(tmp_path / "missing" / "a.jsonl"), cwd=tmp_path)
    assert nowhere.returncode == 1 and "Traceback" not in nowhere.stderr
    assert f"cannot write {tmp_path / 'missing' / 'a.jsonl'}: No such file" in nowhere.stderr
    written = monitor("export", "--format", "csv", "--output", "a.csv", cwd=tmp_path)
    assert written.returncode == 0, written.stderr
    assert (tmp_path / "a.csv").read_text(encoding="utf-8").startswith("id,url,title,")
    assert not list(tmp_path.glob(".*partial"))
    # A device or a link is written to as it is, never replaced by a file.
    piped = monitor("export", "--format", "csv", "--output", "/dev/stdout", cwd=tmp_path)
    assert piped.returncode == 0 and piped.stdout.startswith("id,url,title,")
    assert Path("/dev/stdout").is_symlink()


def test_export_into_a_reader_that_stops_or_a_full_disk(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text('[database]\nurl = "sqlite:///m.db"\n', encoding="utf-8")
    assert monitor("db", "upgrade", cwd=tmp_path).returncode == 0
    for command in (("export", "--format", "csv"), ("search", "trafficking"), ("status",)):
        # `monitor export | head`: the reader leaves before the first byte is written.
        with subprocess.Popen(
            [MONITOR, *command],
            cwd=tmp_path,
            env=environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        ) as process:
            assert process.stdout is not None and process.stderr is not None
            process.stdout.close()
            errors = process.stderr.read().decode()
        assert process.returncode == 0, (command, errors)
        assert "Traceback" not in errors and "Broken pipe" not in errors, command
    with Path("/dev/full").open("wb") as full:
        result = subprocess.run(
            [MONITOR, "export", "--format", "csv"],
            cwd=tmp_path,
            env=environment(),
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
        )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "cannot write to standard output: No space left on device" in result.stderr
    # The other commands too: one line and status 1, whether the write fails on the way
    # or when the last of it is flushed at exit; and with standard output closed (`>&-`).
    for redirection in ("status > /dev/full", "export --format csv >&-"):
        result = subprocess.run(
            f'"{MONITOR}" {redirection}',
            shell=True,
            cwd=tmp_path,
            env=environment(),
            stderr=subprocess.PIPE,
            text=True,
            check=False,
        )
        assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
        assert result.stderr.startswith("monitor: error: cannot write"), result.stderr
        assert result.stderr.count("\n") == 1, result.stderr


def test_a_role_without_rights_is_told_so_not_sent_to_create_the_schema(
    tmp_path: Path, postgres_url: str
) -> None:
    """A role that can see monitor's tables but not read them: every command names the
    refusal (exit 1), none says "no schema yet", none prints a traceback."""
    import uuid

    import sqlalchemy as sa

    from monitor.storage.database import create_database_engine

    (tmp_path / "config.toml").write_text("", encoding="utf-8")
    owner = {"MONITOR_DATABASE_URL": postgres_url}
    assert monitor("db", "upgrade", cwd=tmp_path, env=owner).returncode == 0
    role = f"norights_{uuid.uuid4().hex[:8]}"
    schema = postgres_url.rsplit("%3D", 1)[1]
    admin = create_database_engine(postgres_url)
    with admin.begin() as connection:
        connection.execute(sa.text(f'CREATE ROLE "{role}" LOGIN'))
        connection.execute(sa.text(f'GRANT USAGE ON SCHEMA "{schema}" TO "{role}"'))
    try:
        user = postgres_url.split("://", 1)[1].split("@", 1)[0]
        stranger = {"MONITOR_DATABASE_URL": postgres_url.replace(f"{user}@", f"{role}@", 1)}
        for command in (("status",), ("db", "current"), ("export",), ("index", "rebuild")):
            result = monitor(*command, cwd=tmp_path, env=stranger)
            assert result.returncode == 1, (command, result.stderr)
            assert "permission denied" in result.stderr, (command, result.stderr)
            assert "no monitor schema" not in result.stderr and "no schema yet" not in result.stderr
            assert "Traceback" not in result.stderr, (command, result.stderr)
    finally:
        with admin.begin() as connection:
            connection.execute(sa.text(f'DROP OWNED BY "{role}"'))
            connection.execute(sa.text(f'DROP ROLE "{role}"'))
        admin.dispose()


def test_index_rebuild_warns_of_articles_without_signatures(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text('[database]\nurl = "sqlite:///m.db"\n', encoding="utf-8")
    assert monitor("db", "upgrade", cwd=tmp_path).returncode == 0
    with sqlite3.connect(tmp_path / "m.db") as connection:  # as stored before the index
        connection.execute(
            "INSERT INTO articles (url, title, text, fetched_at, site, content_hash)"
            " VALUES ('http://x.test/a', 'A', 'Police freed 318 workers.', '2024-01-01', 'x', 'h')"
        )
    plain = monitor("index", "rebuild", cwd=tmp_path)
    assert plain.returncode == 0 and "index rebuilt: 0 articles" in plain.stdout
    assert "warning: 1 articles have no signature" in plain.stderr
    signed = monitor("index", "rebuild", "--from-text", cwd=tmp_path)
    assert "index rebuilt: 1 articles" in signed.stdout and "warning" not in signed.stderr


def _without_write_rights() -> list[str]:
    """A command prefix under which this process's user obeys file modes (root does not)."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: file modes cannot be enforced")
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search"]


def test_the_reading_commands_read_a_database_on_a_read_only_volume(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(
        '[database]\nurl = "sqlite:///volume/m.db"\n'
        '[[feeds]]\nname = "Khmer Times"\nurl = "http://127.0.0.1:9/a.rss"\n',
        encoding="utf-8",
    )
    assert monitor("db", "upgrade", cwd=tmp_path).returncode == 0
    volume = tmp_path / "volume"
    prefix = _without_write_rights()

    def read(*arguments: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*prefix, MONITOR, *arguments],
            cwd=tmp_path,
            env=environment(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def feeds_listed() -> list[str]:
        result = read("status")
        assert result.returncode == 0, result.stderr
        return [line.split()[0] for line in result.stdout.splitlines()[1:]]

    # A writer that is still open keeps its last commit in the write-ahead log.
    writer = sqlite3.connect(volume / "m.db", isolation_level=None)
    writer.execute("PRAGMA wal_autocheckpoint=0")
    writer.execute(
        "INSERT INTO feeds (url, name, enabled, interval_seconds, consecutive_failures,"
        " created_at) VALUES ('http://127.0.0.1:9/b.rss', 'Phnom Penh Post', 1, 600, 0,"
        " '2026-12-07 00:00:00')"
    )
    before = sorted(path.name for path in volume.iterdir())
    volume.chmod(0o555)
    try:
        assert "Phnom" in feeds_listed()  # "Phnom Penh Post", held in the log
        writer.close()
        volume.chmod(0o755)
        assert not (volume / "m.db-wal").exists()
        volume.chmod(0o555)
        (volume / "m.db").chmod(0o444)
        assert sorted(feeds_listed()) == ["Khmer", "Phnom"]
        for arguments in (
            ("search", "scam"),
            ("export",),
            ("db", "current"),
            ("refilter", "--dry-run"),
            ("retry", "--dry-run"),
        ):
            result = read(*arguments)
            assert result.returncode == 0, (arguments, result.stderr)
        assert "(read-only): revision" in read("db", "current").stdout
        # Writing is still refused, with the database named.
        refused = read("retag")
        assert refused.returncode == 1 and "Traceback" not in refused.stderr
        assert "m.db" in refused.stderr
    finally:
        volume.chmod(0o755)
        (volume / "m.db").chmod(0o644)
    assert "m.db-wal" in before


def test_a_page_no_library_can_read_is_logged_once_with_its_url(
    tmp_path: Path, site: LocalSite
) -> None:
    # An audit: an empty article made trafilatura log two ERROR lines naming neither
    # the feed nor the page, which trips alerting on ERROR; monitor's own line says it.
    site.route(
        "/feed.rss",
        lambda _: (
            200,
            {"Content-Type": "application/rss+xml"},
            (
                "<rss version='2.0'><channel><title>F</title><item><title>Empty</title>"
                f"<link>{site.url('/empty.html')}</link></item></channel></rss>"
            ).encode(),
        ),
    )
    site.route("/empty.html", lambda _: (200, {"Content-Type": "text/html"}, b""))
    (tmp_path / "config.toml").write_text(
        "[fetch]\nallow_private_addresses = true\nper_host_delay = 0\n"
        f'[[feeds]]\nname = "F"\nurl = "{site.url("/feed.rss")}"\n',
        encoding="utf-8",
    )
    result = monitor("--log-format", "text", "run-once", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Document is empty" not in result.stderr and "trafilatura" not in result.stderr
    assert site.url("/empty.html") in result.stderr


def test_the_error_that_stops_the_daemon_is_a_json_log_event(tmp_path: Path) -> None:
    # An operator audit: `docker logs monitor | jq` stopped at the plain-text line of a
    # broken configuration or an unreachable database.
    (tmp_path / "config.toml").write_text(
        '[[feeds]]\nname = "a"\nurl = "https://a.example/feed"\ninterval = "fast"\n',
        encoding="utf-8",
    )
    broken = monitor("run", cwd=tmp_path)
    assert broken.returncode == 2
    (event,) = [json.loads(line) for line in broken.stderr.splitlines()]
    assert event["level"] == "CRITICAL" and "feeds[0].interval" in event["message"]
    (tmp_path / "config.toml").write_text(
        '[database]\nurl = "postgresql://nobody@127.0.0.1:9/none"\n', encoding="utf-8"
    )
    unreachable = monitor("run", cwd=tmp_path)
    assert unreachable.returncode == 1
    events = [json.loads(line) for line in unreachable.stderr.splitlines()]
    assert "database error" in events[-1]["message"]
    # A person's command answers in words, as before.
    assert monitor("status", cwd=tmp_path).stderr.startswith("monitor: database error")


def test_status_piped_shows_each_feeds_last_error_whole(tmp_path: Path) -> None:
    # An operator audit: the last error was cut at 60 characters, without a mark, and
    # the advice at its end ("set fetch.allow_private_addresses…") was lost.
    (tmp_path / "config.toml").write_text(
        '[database]\nurl = "sqlite:///m.db"\n'
        '[[feeds]]\nname = "Wire"\nurl = "http://127.0.0.1:9/a.rss"\n',
        encoding="utf-8",
    )
    assert monitor("db", "upgrade", cwd=tmp_path).returncode == 0
    error = "blocked_address: refused 127.0.0.1:9: " + "x" * 80 + " (set fetch.allow_private)"
    with sqlite3.connect(tmp_path / "m.db") as connection:
        connection.execute(
            "INSERT INTO feeds (url, name, enabled, interval_seconds, consecutive_failures,"
            " created_at, last_error) VALUES ('http://127.0.0.1:9/a.rss', 'Wire', 1, 600, 1,"
            " '2026-12-07 00:00:00', ?)",
            (error,),
        )
    result = monitor("status", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[1].endswith(error)
