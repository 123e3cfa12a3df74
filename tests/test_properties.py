"""Property-based tests: no input makes the parsers raise anything but our own errors.

Config parsing, URL canonicalisation, text cleaning, tokenisation and shingling, and
feed parsing get arbitrary and hostile input from hypothesis strategies; each may
raise only the error it documents (`ConfigError`, `FetchError`, `FeedParseError`, or
nothing at all), and what it returns keeps the properties its docstring promises.

Two settings profiles, chosen with the `HYPOTHESIS_PROFILE` environment variable:

- `ci` (the default): derandomized (the same examples on every run, so CI cannot
  flake), no example database, and few enough examples that this file runs in
  well under a minute.
- `dev`: random examples, ten times as many, and the example database in
  `.hypothesis/` that replays failures. Run it locally when changing a parser:

      HYPOTHESIS_PROFILE=dev .venv/bin/python -m pytest tests/test_properties.py

A failure prints the smallest input found; once the bug is fixed, keep that input as
an `@example` here (every profile runs those) or as a test of the module.
"""

from __future__ import annotations

import json
import math
import os
import re
import tomllib
import unicodedata
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit
from xml.sax.saxutils import escape, quoteattr

import numpy as np
import pytest
import tomli_w
from courlan.clean import TRACKERS_RE
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.provisional import domains, urls

from monitor.clean import AD_MARKER, clean_text
from monitor.config import (
    _ENV_SECTIONS,
    FeedSettings,
    FetchSettings,
    HealthSettings,
    Settings,
    TagRule,
    apply_environment,
    format_duration,
    key_path,
    load_settings,
    parse_duration,
    parse_size,
    settings_from_document,
)
from monitor.errors import ConfigError, FeedParseError, FetchError
from monitor.feeds import parse_feed
from monitor.similarity import NUM_PERM, Signer, compare, text_features
from monitor.tokens import Role, tokenize
from monitor.urls import canonical_url, site_of

settings.register_profile(
    "ci",
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "dev", deadline=None, print_blob=True, suppress_health_check=[HealthCheck.too_slow]
)
# Not loaded as the session's default: the profile applies to this module's tests only.
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
_SCALE = {"ci": 1, "dev": 10}.get(PROFILE, 1)


def examples(count: int) -> settings:
    """Settings for one test: `count` examples in CI, more under the dev profile."""
    return settings(settings.get_profile(PROFILE), max_examples=count * _SCALE)


# ---------------------------------------------------------------------------
# Text strategies shared by the tests.

# Scripts the monitor reads: Khmer (with its combining signs and digits), Chinese, Thai,
# Latin with accents, plus emoji, combining marks, zero-width and bidi controls.
_SCRIPTS = st.one_of(
    st.characters(min_codepoint=0x1780, max_codepoint=0x17FF),  # Khmer
    st.characters(min_codepoint=0x4E00, max_codepoint=0x4E80),  # CJK
    st.characters(min_codepoint=0x0E00, max_codepoint=0x0E7F),  # Thai
    st.characters(min_codepoint=0x0300, max_codepoint=0x036F),  # combining marks
    st.characters(min_codepoint=0x1F300, max_codepoint=0x1F6FF),  # emoji
    st.sampled_from("\u200b\u200c\u200d\u2028\u2029\u202e\ufeff\u00a0\u3000\x85\x0b\x0c\x1c"),
    st.sampled_from("aAéÉßİıǰﬁ½²١٢३\u0130\u01c5 \t\n\r.,:!?'’-_[]"),
)
script_text = st.text(alphabet=_SCRIPTS, max_size=200)
any_text = st.one_of(st.text(max_size=300), script_text)


# ---------------------------------------------------------------------------
# Config parsing.

_SECTION_KEYS: dict[str, list[str]] = {
    "database": ["url"],
    "fetch": sorted(FetchSettings.model_fields),
    "http": ["host", "port"],
    "health": sorted(HealthSettings.model_fields),
    "topic": ["all", "none", "field"],
}
_FEED_KEYS = sorted(FeedSettings.model_fields)
_TAG_KEYS = sorted(TagRule.model_fields)
_ALL_FIELDS = {key for keys in (*_SECTION_KEYS.values(), _FEED_KEYS, _TAG_KEYS) for key in keys}

# Strings that look like the values the keys want, and near misses.
_TRICKY_STRINGS = st.sampled_from(
    [
        "15m", "45s", "1h30m", "500ms", "0", "0s", "-5s", "5x", "fast", "", " ", "1e400",
        "9" * 400, "9" * 400 + "s", "9" * 400 + "MB", "nan", "inf", "infs", "１５m", "١٥m",
        "1.5.5s", "10MB", "512KiB", "0.0000001kb", "10 ZB", "https://example.com/feed",
        "http://[::1", "ftp://example.com/", "https://exa mple.com/", "http://xn--/",
        "https://ex\u00e4mple.com/feed?utm_source=x#f", "//example.com/feed", "title", "both",
        "\x00", "a\nb", "\u202e", "postgresql://user:pw@db:5432/x",
    ]
)  # fmt: skip
_SCALARS = st.one_of(
    st.text(max_size=20),
    _TRICKY_STRINGS,
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.sampled_from([0, 1, -1, 65535, 65536, 2**63 - 1, -(2**63), 10**400, -(10**400)]),
    st.floats(),
    st.sampled_from([0.0, -0.0, 1e-300, 1e300, math.inf, -math.inf, math.nan]),
    st.booleans(),
    st.datetimes(),
    st.datetimes(timezones=st.just(UTC)),
    st.dates(),
    st.times(),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)
_ANY_KEY = st.one_of(st.text(max_size=12), st.sampled_from(sorted(_ALL_FIELDS)))


def _table(keys: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    """A table with some of `keys` and perhaps unknown ones, each with any value."""
    return st.dictionaries(st.sampled_from(keys) | _ANY_KEY, _VALUES, max_size=len(keys) + 1)


def _good_feed(index: int) -> dict[str, Any]:
    return {"name": f"Feed {index}", "url": f"https://example.com/{index}.rss"}


_feed_tables = st.one_of(
    st.builds(lambda extra, i: {**_good_feed(i), **extra}, _table(_FEED_KEYS), st.integers(0, 3)),
    _table(_FEED_KEYS),
    _VALUES,
)
_tag_tables = st.one_of(
    st.builds(lambda extra: {"name": "t", "any": ["x"], **extra}, _table(_TAG_KEYS)),
    _table(_TAG_KEYS),
    _VALUES,
)
config_documents = st.fixed_dictionaries(
    {},
    optional={
        **{section: _table(keys) | _VALUES for section, keys in _SECTION_KEYS.items()},
        "feeds": st.lists(_feed_tables, max_size=4) | _VALUES,
        "tags": st.lists(_tag_tables, max_size=3) | _VALUES,
        "unknown": _VALUES,
    },
).flatmap(
    lambda document: st.dictionaries(st.text(max_size=10), _VALUES, max_size=2).map(
        lambda extra: {**extra, **document}
    )
)

# TOML-ish text: section headers, key = value lines with near-miss values, and garbage.
_TOML_VALUES = st.sampled_from(
    [
        '"15m"', '"5x"', "5x", "15", "-1", "0", "1e400", "nan", "inf", "-inf", "99999999999999999999",
        "9223372036854775807", "9" * 400, "true", "false", '"\\u0000"', '"a\\nb"', "[1, \"a\"]", "[[\"x\"], []]",
        "{a = 1}", "1979-05-27T07:32:00Z", "1979-05-27", "07:32:00", '"https://example.com/f"',
        '"ftp://x"', '""', "'''multi\nline'''", '"10MB"', '"' + "9" * 400 + 'MB"', "[", '"',
        '"١٥m"', '"both"', '"nope"', "[" * 200 + "]" * 200, "[" * 5000 + "]" * 5000, "{a=" * 2000, "{" * 100,
    ]
)  # fmt: skip
_TOML_KEYS = st.one_of(
    st.sampled_from(sorted(_ALL_FIELDS)),
    st.from_regex(r"[A-Za-z0-9_-]{1,10}", fullmatch=True),
    st.text(max_size=8).map(lambda key: '"' + key.replace("\\", "").replace('"', "") + '"'),
)
_TOML_LINES = st.one_of(
    st.sampled_from([f"[{section}]" for section in _SECTION_KEYS] + ["[[feeds]]", "[[tags]]"]),
    st.sampled_from(["[nope]", "[fetch.timeout]", "[[fetch]]", "[feeds]", "[[topic.all]]"]),
    st.builds(lambda key, value: f"{key} = {value}", _TOML_KEYS, _TOML_VALUES),
    st.builds(lambda key, value: f"{key} = {value}", _TOML_KEYS, st.text(max_size=20)),
    st.text(max_size=30),
)
toml_texts = st.lists(_TOML_LINES, max_size=12).map("\n".join)

_ENV_NAMES = st.one_of(
    st.sampled_from(
        [f"MONITOR_{section.upper()}__{key.upper()}" for section in _SECTION_KEYS
         for key in _SECTION_KEYS[section]]
        + ["MONITOR_DATABASE_URL", "MONITOR_FETCH__", "MONITOR___", "MONITOR_FEEDS__URL",
           "MONITOR_TOPIC__ALL", "MONITOR_FETCH__NOPE", "MONITOR_FETCH__TIMEOUT__X", "OTHER"]
    ),
    st.builds("MONITOR_{}__{}".format, st.text(max_size=8), st.text(max_size=8)),
)  # fmt: skip
_ENV_VALUES = st.one_of(_TOML_VALUES, _TRICKY_STRINGS, st.text(max_size=30))
environments = st.dictionaries(_ENV_NAMES, _ENV_VALUES, max_size=4)


def _key_paths(value: object, location: tuple[int | str, ...] = ()) -> Iterator[str]:
    """Every key path in a document, spelled by `key_path`, and for every table the paths
    of the fields a model may report missing."""
    if isinstance(value, dict):
        for field in _ALL_FIELDS:
            yield key_path((*location, field))
        for key, item in value.items():
            yield key_path((*location, key))
            yield from _key_paths(item, (*location, key))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield key_path((*location, index))
            yield from _key_paths(item, (*location, index))


def _problems(message: str, source: str) -> list[str]:
    """The problems a ConfigError reports, one per key."""
    assert message.startswith(f"{source}: "), message
    body = message.removeprefix(f"{source}: ")
    counted = re.match(r"(\d+) problems\n  ", body)
    if not counted:
        assert "\n" not in body, message
        return [body]
    problems = body[counted.end() :].split("\n  ")
    assert len(problems) == int(counted.group(1)) >= 2, message
    return problems


def assert_names_keys(error: ConfigError, source: str, document: object) -> None:
    """The message names the key of each problem, or says the file is not valid TOML."""
    message = str(error)
    if re.match(rf"{re.escape(source)}: (invalid TOML|not UTF-8 text)", message):
        return
    paths = set(_key_paths(document)) | {"(top level)"}
    for problem in _problems(message, source):
        starts = ("{}: ", "{} (feed ", "{} (set by MONITOR_")
        assert any(problem.startswith(tuple(s.format(path) for s in starts)) for path in paths), (
            f"{problem!r} names no key of the document"
        )


def _check_settings(settings_: Settings) -> None:
    """A configuration that validates can be run: every duration is finite and fits a
    datetime's range, and the feeds have http(s) URLs."""
    durations = [
        settings_.fetch.timeout,
        settings_.fetch.total_timeout,
        settings_.fetch.max_backoff,
        settings_.fetch.retry_delay,
        settings_.fetch.revalidate_after,
        settings_.health.stale_minimum,
        *(feed.interval for feed in settings_.feeds),
    ]
    for seconds in durations:
        assert math.isfinite(seconds) and seconds > 0
        assert datetime.now(UTC) + timedelta(seconds=seconds) > datetime.now(UTC)
    assert math.isfinite(settings_.fetch.per_host_delay) and settings_.fetch.per_host_delay >= 0
    assert math.isfinite(settings_.health.stale_after_gaps)
    assert timedelta(days=365) * settings_.health.stale_after_gaps >= timedelta(0)
    for feed in settings_.feeds:
        assert urlsplit(feed.url).scheme in ("http", "https")


@pytest.fixture(scope="module")
def config_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("config")


@examples(200)
@given(document=config_documents)
@example(document={"\n": []})  # a key with a newline broke the one-line-per-problem layout
@example(document={"fetch": {"timeout": math.nan, "max_backoff": 10**400}})
@example(document={"feeds": [{**_good_feed(0), "interval": 1e300}]})  # overflowed timedelta
@example(document={"fetch": {"max_response_size": "9" * 400 + "MB"}})  # OverflowError
@example(document={"health": {"stale_after_gaps": math.inf}})
def test_config_documents_raise_only_config_errors(document: dict[str, Any]) -> None:
    try:
        loaded = settings_from_document(document, source="test.toml", environ={})
    except ConfigError as error:
        assert_names_keys(error, "test.toml", document)
    else:
        _check_settings(loaded)


@examples(150)
@given(document=config_documents)
def test_config_files_raise_only_config_errors(config_dir: Path, document: dict[str, Any]) -> None:
    """The CLI's path: a TOML file read by `load_settings`."""
    path = config_dir / "config.toml"
    path.write_text(tomli_w.dumps(document), encoding="utf-8")
    try:
        loaded = load_settings(path, environ={})
    except ConfigError as error:
        assert_names_keys(error, str(path), tomllib.loads(path.read_text(encoding="utf-8")))
    else:
        _check_settings(loaded)


@examples(300)
@given(text=st.one_of(toml_texts, st.text(max_size=200)))
@example(text="a = " + "[" * 5000 + "]" * 5000)  # RecursionError in tomllib
def test_config_text_raises_only_config_errors(config_dir: Path, text: str) -> None:
    path = config_dir / "config.toml"
    path.write_text(text, encoding="utf-8")
    try:
        document: object = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, RecursionError):
        document = None
    try:
        loaded = load_settings(path, environ={})
    except ConfigError as error:
        if document is None:
            assert "invalid TOML" in str(error), str(error)
        assert_names_keys(error, str(path), document)
    else:
        _check_settings(loaded)


@examples(100)
@given(body=st.binary(max_size=200))
def test_config_bytes_raise_only_config_errors(config_dir: Path, body: bytes) -> None:
    path = config_dir / "config.toml"
    path.write_bytes(body)
    try:
        loaded = load_settings(path, environ={})
    except ConfigError as error:
        assert str(error).startswith(f"{path}: ")
    else:
        assert b"\xff" not in body  # never UTF-8
        _check_settings(loaded)


@examples(200)
@given(
    document=st.one_of(st.just({}), config_documents),
    environ=environments,
)
@example(document={}, environ={"MONITOR_FETCH__MAX_BACKOFF": "9" * 400})
@example(document={}, environ={"MONITOR_FETCH__TIMEOUT": "[" * 5000})
@example(document={}, environ={"MONITOR_HTTP__A\nB": "1"})
def test_environment_overrides_raise_only_config_errors(
    document: dict[str, Any], environ: dict[str, str]
) -> None:
    try:
        loaded = settings_from_document(document, source="environment", environ=environ)
    except ConfigError as error:
        if "that an environment variable sets" in str(error):  # a section monitor has not
            name = str(error).split(": no section")[0]
            section = name.removeprefix("MONITOR_").lower().partition("__")[0]
            assert name in environ and section not in _ENV_SECTIONS, str(error)
            return
        assert_names_keys(error, "environment", apply_environment(document, environ))
    else:
        _check_settings(loaded)


@examples(100)
@given(
    port=st.integers(0, 65535),
    seconds=st.integers(1, 86400),
    host=st.from_regex(r"h[a-z0-9]{0,9}(\.[a-z0-9]([a-z0-9-]{0,5}[a-z0-9])?){0,2}", fullmatch=True),
)
def test_environment_overrides_take_effect(port: int, seconds: int, host: str) -> None:
    environ = {
        "MONITOR_HTTP__PORT": str(port),
        "MONITOR_FETCH__TIMEOUT": f"{seconds}s",
        "MONITOR_HTTP__HOST": host,
    }
    loaded = settings_from_document({}, source="environment", environ=environ)
    assert (loaded.http.port, loaded.fetch.timeout, loaded.http.host) == (port, seconds, host)


@examples(300)
@given(
    value=st.one_of(
        _SCALARS, _TRICKY_STRINGS, st.from_regex(r"\s*[0-9.]{1,12}\s*[a-zA-Z ]{0,6}\s*")
    )
)
@example(value=10**400)
@example(value=math.nan)
@example(value=1e-300)  # formatted as "1e-300s", which does not parse
@example(value=1.8374734147433333e19)
@example(value="9" * 400 + "MB")
def test_durations_and_sizes_raise_only_value_errors(value: object) -> None:
    """The parsers behind every duration and size key: a ValueError (which validation
    turns into the key's problem) or a finite, positive number."""
    try:
        seconds = parse_duration(value)
    except ValueError as error:
        assert "duration" in str(error)
    else:
        assert math.isfinite(seconds) and seconds > 0
        assert parse_duration(format_duration(seconds)) == seconds
    try:
        size = parse_size(value)
    except ValueError as error:
        assert "size" in str(error)
    else:
        assert size > 0


@examples(200)
@given(seconds=st.floats(min_value=1e-6, max_value=365 * 86400))
@example(seconds=100000.5)  # was "100000s"
@example(seconds=999999.5)  # was "1e+06s"
def test_format_duration_says_the_duration_exactly(seconds: float) -> None:
    assert parse_duration(format_duration(seconds)) == seconds


# ---------------------------------------------------------------------------
# URL canonicalisation.

_hosts = st.one_of(
    domains(),
    st.sampled_from(
        ["127.0.0.1", "[::1]", "[2001:db8::1]", "EXAMPLE.COM", "www.Example.com", "xn--bcher-kva.example",
         "bücher.example", "例え.jp", " កម្ពុជា.com", "a..b", ".", "-a-.com", "localhost", "[::1", "999.1.1.1",
         "exa mple.com", "user@host.com", "host.com.", "%41.com", "😀.com", "\u200bexample.com"]
    ),
    st.text(min_size=1, max_size=12),
)  # fmt: skip
_ports = st.one_of(
    st.just(""),
    st.integers(0, 70000).map(lambda port: f":{port}"),
    st.sampled_from([":", ":80", ":443", ":-1", ":abc", ":٣", ":99999999999999999999"]),
)
_query_keys = st.one_of(
    st.sampled_from(
        ["utm_source", "utm_medium", "UTM_Campaign", "utm_", "fbclid", "gclid", "id", "p"]
    ),
    st.text(max_size=6),
)
_queries = st.lists(st.tuples(_query_keys, st.text(max_size=6)), max_size=4).map(
    lambda pairs: "&".join(f"{key}={value}" for key, value in pairs)
)
_shaped_urls = st.builds(
    lambda scheme, host, port, path, query, fragment: (
        f"{scheme}://{host}{port}{path}" + (f"?{query}" if query else "") + fragment
    ),
    st.sampled_from(["http", "https", "HTTP", "hTTps", "ftp", "javascript", "", "http:"]),
    _hosts,
    _ports,
    st.one_of(st.just(""), st.just("/"), st.text(max_size=20).map(lambda path: "/" + path)),
    _queries,
    st.one_of(st.just(""), st.text(max_size=10).map(lambda fragment: "#" + fragment)),
)
any_url = st.one_of(urls(), _shaped_urls, st.text(max_size=60))


def canonical_or_none(url: str) -> str | None:
    try:
        return canonical_url(url)
    except FetchError as error:
        assert error.reason == "invalid_url"
        return None


@examples(600)
@given(url=any_url)
@example(url="HTTPS://XN--00B:443")  # punycode was decoded only on the second pass
@example(url="HTTP://&#256;\x1b")  # courlan unescaped the host into one we refuse
def test_canonical_url_raises_only_fetch_errors(url: str) -> None:
    canonical = canonical_or_none(url)
    if canonical is None:
        return
    parts = urlsplit(canonical)
    assert parts.scheme in ("http", "https")
    assert parts.hostname
    assert not parts.fragment and "#" not in canonical
    assert not any(
        key.lower().startswith("utm_") for key, _ in parse_qsl(parts.query, keep_blank_values=True)
    )
    assert canonical_url(canonical) == canonical
    assert site_of(canonical) == site_of(canonical).lower()


_param_names = st.one_of(
    st.sampled_from(
        ["id", "p", "page", "q", "lang", "section", "notify", "copy", "reg", "para", "not", "amp", "lt",
         "gt", "times", "deg", "micro", "cent", "sect", "order", "sort", "year", "AMP", "Id"]
    ),
    st.from_regex(r"[A-Za-z][A-Za-z0-9]{0,7}", fullmatch=True),
).filter(lambda name: not TRACKERS_RE.search(name.lower()))  # fmt: skip
_param_values = st.from_regex(r"[A-Za-z0-9]{1,6}", fullmatch=True)


@examples(300)
@given(params=st.dictionaries(_param_names, _param_values, min_size=1, max_size=4))
@example(params={"id": "5", "section": "2"})  # read as "id=5§ion=2"
def test_canonical_url_keeps_every_other_parameter(params: dict[str, str]) -> None:
    query = "&".join(f"{name}={value}" for name, value in params.items())
    canonical = canonical_url(f"https://example.com/story?{query}&utm_source=rss")
    assert sorted(parse_qsl(urlsplit(canonical).query)) == sorted(params.items())


@examples(300)
@given(url=urls())
def test_every_http_url_has_a_canonical_form(url: str) -> None:
    """hypothesis's URLs are all valid http(s) URLs: none is refused."""
    assert canonical_or_none(url) is not None


# ---------------------------------------------------------------------------
# Text cleaning.


# Articles as auto-blogs wrap them: markers (nested too), trailing lines, repeats.
article_texts = st.one_of(
    any_text,
    st.lists(
        st.one_of(
            any_text,
            st.sampled_from(
                ["[ad_1]", "[/ad_2]", "[ ad3 ]", "[[ad_1]ad_2]", "[ [ad_1]ad1]", "Source link", "Source:",
                 "Original article.", "Tags: a, b", "- Tags:", "Advertisement", "e\u0301", "\u0301"]
            ),
            st.just("one two three four five six seven eight nine"),
        ),
        max_size=8,
    ).map("\n".join),
)  # fmt: skip


@examples(500)
@given(text=article_texts)
def test_clean_text_never_raises(text: str) -> None:
    cleaned, removed = clean_text(text)
    # What schema.md documents for `articles.text`: paragraphs separated by one
    # newline, whitespace collapsed, and the names of what was removed.
    assert cleaned == unicodedata.normalize("NFC", cleaned)
    paragraphs = cleaned.split("\n") if cleaned else []
    assert all(paragraph and paragraph == " ".join(paragraph.split()) for paragraph in paragraphs)
    assert cleaned.splitlines() == paragraphs
    assert set(removed) <= {
        "ad_markers",
        "source_link",
        "tags_line",
        "repeated_paragraphs",
        "inserts",
        "closing_lines",
    }
    assert len(set(removed)) == len(removed)
    assert not AD_MARKER.search(cleaned)
    assert clean_text(text) == (cleaned, removed)


@examples(300)
@given(text=article_texts)
@example(text="[ [ad_1]ad1]")  # removing the inner marker made an outer one
@example(
    text="one two three four five six seven eight\nSource link\none two three four five six seven eight"
)
def test_clean_text_leaves_nothing_to_clean(text: str) -> None:
    """What clean_text removes is gone: cleaning its output again removes nothing."""
    cleaned, _ = clean_text(text)
    assert clean_text(cleaned) == (cleaned, ())


# ---------------------------------------------------------------------------
# Tokenisation and shingling.

_signer = Signer()
token_texts = st.one_of(
    st.just(""),
    st.text(alphabet=" \t\n\r\u3000\u00a0", max_size=10),
    script_text,
    st.text(max_size=300),
    st.lists(st.sampled_from(["កម្ពុជា", "柬埔寨", "😀👍🏽", "e\u0301", "U.S.", "100,000", "Cambodia’s", "\n", " ", ". "]), max_size=30).map("".join),
)  # fmt: skip


@examples(500)
@given(text=token_texts)
def test_tokenize_never_raises_and_is_deterministic(text: str) -> None:
    tokens = tokenize(text)
    assert tokenize(text) == tokens
    for token in tokens:
        assert token.text
        assert not any(char.isspace() for char in token.text), token
        assert isinstance(token.role, Role)


@examples(300)
@given(text=token_texts, other=token_texts)
def test_features_and_signatures_never_raise(text: str, other: str) -> None:
    features = text_features(text)
    again = text_features(text)
    for name in ("words", "skeleton", "entities", "paragraph_shingles", "paragraph_ends"):
        assert np.array_equal(getattr(features, name), getattr(again, name)), name
    for shingles in (features.words, features.skeleton, features.entities):
        assert shingles.dtype == np.uint32
        assert np.array_equal(shingles, np.unique(shingles))
    ends = features.paragraph_ends
    assert (np.diff(ends) >= 0).all()
    assert (ends[-1] if ends.size else 0) == features.paragraph_shingles.size
    signature = _signer.signature(features.words)
    assert signature.shape == (NUM_PERM,) and signature.dtype == np.uint32
    assert np.array_equal(signature, Signer().signature(features.words))
    with_itself = compare(features, again)
    if features.words.size:
        assert with_itself.words.of_smaller == with_itself.words.of_larger == 1.0
    assert repr(compare(features, text_features(other)))  # every measure computes


# ---------------------------------------------------------------------------
# Feed parsing.

BASE = "https://news.example/feeds/rss"
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_feed_texts = st.one_of(
    st.text(max_size=40),
    script_text,
    st.sampled_from(
        ["<b>bold</b> title", "<script>alert(1)</script>", "]]>", "&amp;", "&nbsp;", "&bogus;", "<", "&#0;", "&#x1F600;",
         "\x00", "\x0b\x0c", "\ufffe", "<![CDATA[x]]>", "<?xml version='1.0'?>", "<!DOCTYPE x [<!ENTITY a 'b'>]>&a;"]
    ),
)  # fmt: skip
_links = st.one_of(
    any_url,
    st.sampled_from(
        ["/relative/path", "relative", "//other.example/x", "javascript:alert(1)", "mailto:a@b", "data:text/html,x",
         " https://news.example/a ", "https://news.example/a?utm_source=rss#frag", "?p=1", "#only", "", "http://"]
    ),
)  # fmt: skip
_dates = st.one_of(
    st.text(max_size=30),
    st.datetimes(timezones=st.timezones()).map(lambda moment: moment.isoformat()),
    st.datetimes().map(lambda moment: moment.strftime("%a, %d %b %Y %H:%M:%S +1400")),
    st.sampled_from(
        ["Thu, 18 Apr 2024 16:20:00 +0000", "Mon, 01 Jan 99999 00:00:00 GMT", "0001-01-01T00:00:00+14:00",
         "9999-12-31T23:59:59-14:00", "2024-02-30T00:00:00Z", "1970-01-01T00:00:00Z", "-1", "99999999999",
         "2024-13-45", "Tue, 31 Dec 9999 23:59:60 -1200", "today", ""]
    ),
)  # fmt: skip
_encodings = st.sampled_from(
    ["utf-8", "UTF-8", "iso-8859-1", "windows-1252", "utf-16", "utf-32", "shift_jis", "gb2312",
     "bogus-encoding", "", "ascii", "koi8-r"]
)  # fmt: skip
_entries = st.lists(
    st.fixed_dictionaries(
        {},
        optional={"title": _feed_texts, "link": _links, "guid": _links, "date": _dates, "category": _feed_texts},
    ),
    max_size=4,
)  # fmt: skip


def _element(tag: str, value: str | None, *, attribute: str | None = None) -> str:
    if value is None:
        return ""
    if attribute:
        return f"<{tag} {attribute}={quoteattr(value)}/>"
    return f"<{tag}>{escape(value)}</{tag}>"


def _rss(title: str, entries: list[dict[str, str]]) -> str:
    items = "".join(
        "<item>"
        + _element("title", entry.get("title"))
        + _element("link", entry.get("link"))
        + _element("guid", entry.get("guid"))
        + _element("pubDate", entry.get("date"))
        + _element("category", entry.get("category"))
        + "</item>"
        for entry in entries
    )
    return f'<rss version="2.0"><channel>{_element("title", title)}{items}</channel></rss>'


def _atom(title: str, entries: list[dict[str, str]]) -> str:
    items = "".join(
        "<entry>"
        + _element("title", entry.get("title"))
        + _element("link", entry.get("link"), attribute="href")
        + _element("id", entry.get("guid"))
        + _element("updated", entry.get("date"))
        + _element("category", entry.get("category"), attribute="term")
        + "</entry>"
        for entry in entries
    )
    return f'<feed xmlns="http://www.w3.org/2005/Atom">{_element("title", title)}{items}</feed>'


def _raw(title: str, entries: list[dict[str, str]]) -> str:
    """Unescaped: the hostile text goes straight into the markup."""
    items = "".join(
        f"<item><title>{entry.get('title', '')}</title><link>{entry.get('link', '')}</link>"
        f"<pubDate>{entry.get('date', '')}</pubDate></item>"
        for entry in entries
    )
    return f"<rss version='2.0'><channel><title>{title}</title>{items}</channel></rss>"


@st.composite
def feed_documents(draw: st.DrawFn) -> bytes:
    build: Callable[[str, list[dict[str, str]]], str] = draw(st.sampled_from([_rss, _atom, _raw]))
    markup = build(draw(_feed_texts), draw(_entries))
    declared = draw(_encodings)
    actual = draw(st.sampled_from([declared or "utf-8", "utf-8", "utf-16", "latin-1"]))
    prolog = draw(
        st.sampled_from(
            [f'<?xml version="1.0" encoding="{declared}"?>', "", "\ufeff", '<?xml version="1.0"?>']
        )
    )
    try:
        return (prolog + markup).encode(actual, errors="xmlcharrefreplace")
    except LookupError:
        return (prolog + markup).encode("utf-8", errors="surrogatepass")


_content_types = st.one_of(
    st.just(None),
    st.sampled_from(
        ["application/rss+xml", "text/xml; charset=utf-16", "text/html", "application/json",
         "text/plain; charset=bogus", "application/atom+xml; charset=iso-8859-1", ""]
    ),
)  # fmt: skip


def check_feed(body: bytes, content_type: str | None = None) -> None:
    headers = {"Content-Type": content_type} if content_type is not None else None
    try:
        document = parse_feed(body, url=BASE, headers=headers)
    except FeedParseError as error:
        assert error.reason in ("not_a_feed", "bad_encoding"), error.reason
        return
    assert document.skipped >= 0
    for entry in document.entries:
        link = urlsplit(entry.link)
        assert link.scheme in ("http", "https") and link.hostname, entry.link
        assert canonical_url(entry.url) == entry.url
        assert not urlsplit(entry.url).fragment
        if entry.published_at is not None:
            assert entry.published_at.utcoffset() == timedelta(0)
        # Plain text: no control characters (PostgreSQL refuses NUL), whitespace collapsed.
        for text in (entry.title, entry.guid, *entry.categories):
            assert text is None or (text and text == " ".join(text.split())), entry
            assert text is None or not _CONTROL.search(text), entry
        assert not _CONTROL.search(entry.link) and not _CONTROL.search(entry.url), entry
    for text in (document.title, document.language):
        assert text is None or (text and text == " ".join(text.split())), document
        assert text is None or not _CONTROL.search(text), document


@examples(300)
@given(body=st.binary(max_size=2000), content_type=_content_types)
def test_arbitrary_bytes_raise_only_feed_parse_errors(
    body: bytes, content_type: str | None
) -> None:
    check_feed(body, content_type)


@examples(300)
@given(body=feed_documents(), content_type=_content_types)
@example(body=b"<rss version='2.0'><channel><title>a\x00b</title><item><title>x\x00y\x07</title><link>https://a.example/1\x1f2</link><category>\x1b</category></item></channel></rss>", content_type=None)  # fmt: skip
def test_hostile_feeds_raise_only_feed_parse_errors(body: bytes, content_type: str | None) -> None:
    check_feed(body, content_type)


_json_values = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), _feed_texts, _links, _dates
)
_json_items = st.lists(
    st.one_of(
        st.fixed_dictionaries(
            {},
            optional={
                key: _json_values | st.lists(_json_values, max_size=2)
                for key in ("id", "url", "external_url", "title", "content_text", "date_published",
                            "date_modified", "tags")
            },
        ),
        _json_values,
    ),
    max_size=4,
)  # fmt: skip
json_feeds = st.one_of(
    st.fixed_dictionaries(
        {"version": st.sampled_from(["https://jsonfeed.org/version/1.1", "https://jsonfeed.org/version/1", ""])},
        optional={"title": _json_values, "items": _json_items | _json_values, "language": _json_values},
    ),
    st.lists(_json_values, max_size=3),
    _json_values,
)  # fmt: skip


@examples(150)
@given(prefix=st.sampled_from(["", "\ufeff", "<?xml version='1.0'?>"]), feed=json_feeds)
def test_json_feeds_raise_only_feed_parse_errors(prefix: str, feed: object) -> None:
    check_feed((prefix + json.dumps(feed, ensure_ascii=False)).encode(), "application/feed+json")
