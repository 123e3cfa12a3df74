"""Configuration: validation, error messages that name the key, environment overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.config import (
    HttpSettings,
    format_duration,
    load_http_settings,
    load_settings,
    parse_duration,
    parse_size,
    resolve_config_path,
)
from monitor.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def error_for(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, text), environ={})
    return str(caught.value)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("45s", 45),
        ("15m", 900),
        ("2h", 7200),
        ("1d", 86400),
        ("1h30m", 5400),
        ("90", 90),
        (30, 30),
        (2.5, 2.5),
        ("500ms", 0.5),
        (" 15M ", 900),
    ],
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["fast", "", "15 minutes", "-5s", "0", "m15", True, None, "1x"])
def test_bad_durations(text: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@pytest.mark.parametrize("text", [0, "0", "0s", "0ms", "0m", "0.0s", "0h0m"])
def test_a_delay_of_zero_may_be_written_in_any_unit(tmp_path: Path, text: object) -> None:
    value = f'"{text}"' if isinstance(text, str) else text
    settings = load_settings(write(tmp_path, f"[fetch]\nper_host_delay = {value}\n"), environ={})
    assert settings.fetch.per_host_delay == 0


def test_a_negative_delay_is_refused(tmp_path: Path) -> None:
    assert "per_host_delay" in error_for(tmp_path, "[fetch]\nper_host_delay = -1\n")
    # Written with a unit, it is told what is wrong, not how to write a duration.
    message = error_for(tmp_path, '[fetch]\nper_host_delay = "-1s"\n')
    assert "must not be negative" in message
    assert "greater than zero" in error_for(tmp_path, '[fetch]\ntimeout = "-5m"\n')


def test_format_duration_round_trips() -> None:
    for seconds in (45, 900, 7200, 86400, 5400, 0.5):
        assert parse_duration(format_duration(seconds)) == seconds


@pytest.mark.parametrize(
    ("text", "size"), [("10MB", 10_000_000), ("512KiB", 524_288), (1024, 1024)]
)
def test_sizes(text: object, size: int) -> None:
    assert parse_size(text) == size


def test_shipped_config_is_valid_and_uses_real_feeds() -> None:
    settings = load_settings(REPO / "config.toml", environ={})
    assert settings.database.url == "sqlite:///data/monitor.db"
    assert settings.fetch.allow_private_addresses is False
    assert "+http" in settings.fetch.user_agent  # a contact URL
    assert len(settings.enabled_feeds) >= 8
    assert all(feed.url.startswith("https://") for feed in settings.feeds)


def test_every_shipped_feed_has_a_comment() -> None:
    lines = (REPO / "config.toml").read_text(encoding="utf-8").splitlines()
    for index, line in enumerate(lines):
        if line.strip() == "[[feeds]]":
            assert lines[index + 1].lstrip().startswith("#"), f"feed at line {index + 1}"


def test_defaults_and_feed_values(tmp_path: Path) -> None:
    settings = load_settings(
        write(
            tmp_path,
            """
            [[feeds]]
            name = "Local"
            url = "http://127.0.0.1:8000/feed.rss"
            interval = "45s"
            tags = ["cambodia", " scam  compounds ", "cambodia"]
            """,
        ),
        environ={},
    )
    (feed,) = settings.feeds
    assert feed.interval == 45
    assert feed.tags == ("cambodia", "scam compounds")
    assert feed.enabled is True
    assert settings.fetch.timeout == 20
    assert settings.fetch.max_attempts == 3


def test_unknown_key_is_named_with_its_section(tmp_path: Path) -> None:
    message = error_for(tmp_path, '[fetch]\ntimout = "5s"\n')
    assert "config.toml" in message
    assert "fetch.timout: unknown key" in message
    assert "timeout" in message  # the expected keys are listed


def test_unknown_key_in_a_list_of_tables_lists_the_expected_keys(tmp_path: Path) -> None:
    message = error_for(tmp_path, '[[tags]]\nname = "a"\nany = ["x"]\nfeild = "text"\n')
    assert "tags[0].feild: unknown key (expected one of: all, any, field, name, none)" in message
    message = error_for(
        tmp_path, '[[feeds]]\nname = "x"\nurl = "http://127.0.0.1/f"\nintrval = 5\n'
    )
    assert "feeds[0].intrval (feed 'x'): unknown key (expected one of: enabled," in message


def test_missing_url_names_the_feed(tmp_path: Path) -> None:
    message = error_for(
        tmp_path, '[[feeds]]\nname = "a"\nurl = "https://a.example/"\n[[feeds]]\nname = "b"\n'
    )
    assert "feeds[1].url" in message
    assert "'b'" in message
    assert "missing" in message


def test_names_tags_and_urls_longer_than_the_database_keeps_are_refused(tmp_path: Path) -> None:
    # An audit's 300-character feed name passed check-config, then stopped run-once and the
    # daemon's reload on PostgreSQL (varchar 200).
    for feed, key in [
        (f'name = "{"n" * 201}"\nurl = "https://a.example/feed"\n', "feeds[0].name"),
        (f'name = "a"\nurl = "https://a.example/{"p" * 2048}"\n', "feeds[0].url"),
        (f'name = "a"\nurl = "https://a.example/feed"\ntags = ["{"t" * 201}"]\n', "feeds[0].tags"),
    ]:
        message = error_for(tmp_path, "[[feeds]]\n" + feed)
        assert key in message, message
    assert "2048" in error_for(
        tmp_path, f'[[feeds]]\nname = "a"\nurl = "https://a.example/{"p" * 2048}"\n'
    )


def test_bad_interval_names_the_key_and_value(tmp_path: Path) -> None:
    feeds = "".join(
        f'[[feeds]]\nname = "f{i}"\nurl = "https://f{i}.example/feed"\n' for i in range(3)
    )
    message = error_for(
        tmp_path, feeds + '[[feeds]]\nname = "x"\nurl = "https://x.example/"\ninterval = "fast"\n'
    )
    assert "feeds[3].interval" in message
    assert "'fast'" in message


def test_duplicate_feed_url_after_canonicalisation(tmp_path: Path) -> None:
    message = error_for(
        tmp_path,
        '[[feeds]]\nname = "a"\nurl = "https://A.example/feed?utm_source=x"\n'
        '[[feeds]]\nname = "b"\nurl = "https://a.example/feed"\n',
    )
    assert "feeds[1].url" in message
    assert "duplicate feed URL" in message
    assert "feeds[0]" in message


def test_all_problems_are_reported_at_once(tmp_path: Path) -> None:
    message = error_for(
        tmp_path,
        '[fetch]\nfoo = 1\n[[feeds]]\nname = "a"\nurl = "ftp://a.example/"\n',
    )
    assert "2 problems" in message
    assert "fetch.foo" in message
    assert "feeds[0].url" in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("feeds = [", "invalid TOML"),
        # An operator audit: the message named no key; the line it quotes does.
        (
            '[fetch]\ntimeout = "5s"\ntimeout = "6s"\n',
            """(at line 3, column 15): 'timeout = "6s"'""",
        ),
        ('[fetch]\ntimeout = "soon"\n', "fetch.timeout"),
        ('[fetch]\nallow_private_addresses = "yes"\n', "fetch.allow_private_addresses"),
        ('[[feeds]]\nname = ""\nurl = "https://a.example/"\n', "feeds[0].name"),
        ('[[feeds]]\nname = "a"\nurl = "https://a.example/"\ntags = "x"\n', "feeds[0].tags"),
        (
            '[[feeds]]\nname = "a"\nurl = "https://a.example/"\nenabled = "maybe"\n',
            "feeds[0].enabled",
        ),
        ("database = 5\n", "database"),
        (
            '[[tags]]\nname = "x"\nany = ["..."]\n',
            "tags[0].any: phrase '...' has no letter or digit: it can never match",
        ),
        ('[topic]\nall = [["cambodia", "--"]]\n', "phrase '--' has no letter or digit"),
        (
            '[topic]\nall = [["cambodia"], []]\n',
            "topic.all: group 1 (topic.all[1]) lists no phrase",
        ),
        ('[processing]\nworkers = "AUTO"\n', "processing.workers: expected a number of worker"),
        ('[http]\nhost = "not a host!"\n', "http.host: 'not a host!' is neither an IP address"),
        ('[[tags]]\nname = "a;b"\nany = ["x"]\n', "tags[0].name: a tag must not hold ';'"),
        ("[fetch]\nper_host_delay = -1\n", "fetch.per_host_delay: delay -1 must not be negative"),
        ('tags = "x"\n', 'tags: expected a list, as in ["a", "b"], got \'x\''),
        ('[tags]\nname = "x"\n', "tags: expected a list of tables: write [[tags]], not [tags]"),
        (
            '[[feeds]]\nname = "a"\nurl = "https://a.example/"\ninterval = "1ms"\n',
            "feeds[0].interval (feed 'a'): interval 0.001s is too short: at least 1s",
        ),
        (
            '[[feeds]]\nname = "a"\nurl = "https://bob:pw@a.example/"\n',
            "feeds[0].url (feed 'a'): a feed URL must not hold a user name or password",
        ),
        (
            '[database]\nurl = "postgresql://u:p@ss@db.example/m"\n',
            "database.url: the user name or password holds an '@': write it as %40",
        ),
    ],
)
def test_bad_values(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in error_for(tmp_path, text)


def test_a_tag_rule_name_is_collapsed_like_a_feed_tag(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[[tags]]\nname = " theme:labour   migration "\nany = ["migrant"]\n')
    assert load_settings(path, environ={}).tags[0].name == "theme:labour migration"


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "nope.toml", environ={})


def test_a_bad_value_from_the_environment_names_its_variable(tmp_path: Path) -> None:
    path = write(tmp_path, "")
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={"MONITOR_HTTP__PORT": "abc", "MONITOR_FETCH__TIMOUT": "5s"})
    message = str(caught.value)
    assert "http.port (set by MONITOR_HTTP__PORT): input should be a valid integer" in message
    assert "fetch.timout (set by MONITOR_FETCH__TIMOUT): unknown key" in message


def test_database_url_from_environment(tmp_path: Path) -> None:
    path = write(tmp_path, '[database]\nurl = "sqlite:///a.db"\n')
    settings = load_settings(path, environ={"MONITOR_DATABASE_URL": "postgresql://u:pw@h/db"})
    assert settings.database.url == "postgresql://u:pw@h/db"


def test_config_path_resolution(tmp_path: Path) -> None:
    assert (
        resolve_config_path(tmp_path / "a.toml", {"MONITOR_CONFIG": "b.toml"})
        == tmp_path / "a.toml"
    )
    assert resolve_config_path(None, {"MONITOR_CONFIG": "b.toml"}) == Path("b.toml")
    assert resolve_config_path(None, {}) == Path("config.toml")


def test_health_check_finds_the_endpoint_through_a_broken_edit(tmp_path: Path) -> None:
    """The daemon keeps its previous configuration on a broken edit, so `monitor
    healthcheck` must keep asking where it listens: the file's [http] table when the
    problem is elsewhere, the environment and the defaults when the file is unreadable."""
    http = '[http]\nhost = "127.0.0.2"\nport = 8799\n'
    feed = '[[feeds]]\nname = "a"\nurl = "https://example.org/feed"\ninterval = "{}"\n'
    path = write(tmp_path, http + feed.format("15m"))
    valid = load_http_settings(path, environ={})
    assert (valid.host, valid.port) == ("127.0.0.2", 8799)
    write(tmp_path, http + feed.format("every so often"))
    with pytest.raises(ConfigError):
        load_settings(path, environ={})
    assert load_http_settings(path, environ={}).port == 8799
    assert load_http_settings(path, environ={"MONITOR_HTTP__PORT": "9090"}).port == 9090
    write(tmp_path, '[http]\nport = "eighty"\n' + feed.format("15m"))
    assert load_http_settings(path, environ={}).port == 8080
    write(tmp_path, http + "[[feeds]\n")
    assert load_http_settings(path, environ={"MONITOR_HTTP__PORT": "9090"}).port == 9090
    # The TOML itself broken, before or after [http]: its own lines still say where.
    assert load_http_settings(path, environ={}).port == 8799
    write(tmp_path, "[fetch\ntimout = 3\n" + http + feed.format("15m"))
    broken = load_http_settings(path, environ={})
    assert (broken.host, broken.port) == ("127.0.0.2", 8799)
    write(tmp_path, "[fetch\ntimout = 3\n")
    assert load_http_settings(path, environ={}).port == 8080
    assert load_http_settings(tmp_path / "gone.toml", environ={}).port == 8080


def test_a_misspelt_section_in_the_environment_is_an_error_not_ignored(tmp_path: Path) -> None:
    path = write(tmp_path, "")
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={"MONITOR_FECTH__TIMEOUT": "30s"})
    assert "MONITOR_FECTH__TIMEOUT: no section 'fecth'" in str(caught.value)
    # Other programs' variables of the same prefix (Kubernetes names a service's address
    # MONITOR_PORT, MONITOR_SERVICE_HOST) are none of monitor's business.
    settings = load_settings(
        path, environ={"MONITOR_PORT": "tcp://10.0.0.1:8080", "MONITOR_SERVICE_HOST": "10.0.0.1"}
    )
    assert settings.http.port == HttpSettings().port


def test_values_an_operator_audit_saw_accepted_are_refused(tmp_path: Path) -> None:
    # A port no address can have, an empty listening address (an unset variable in a
    # compose file: every interface), a variable with no section at all.
    message = error_for(tmp_path, '[[feeds]]\nname = "a"\nurl = "http://127.0.0.1:99999/a"\n')
    assert "feeds[0].url" in message and "port 99999 is not between 1 and 65535" in message
    path = write(tmp_path, "")
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={"MONITOR_HTTP__HOST": ""})
    assert "http.host (set by MONITOR_HTTP__HOST)" in str(caught.value)
    assert "empty" in str(caught.value)
    with pytest.raises(ConfigError, match="MONITOR__TIMEOUT: no section"):
        load_settings(path, environ={"MONITOR__TIMEOUT": "30s"})
