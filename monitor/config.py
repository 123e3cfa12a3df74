"""Operator settings: `config.toml` read once into frozen, validated objects.

Everything else in the daemon receives a `Settings`; nothing reads the file or
the environment again. A bad file raises one `ConfigError` that names the file,
each wrong key as a path (`feeds[3].interval`) and what is wrong with it.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
import tomllib
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import httpx
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from monitor import __version__
from monitor.addresses import parse_allowlist_entry
from monitor.errors import ConfigError, FetchError
from monitor.records import MAX_FEED_NAME_LENGTH, MAX_TAG_LENGTH, MAX_URL_LENGTH
from monitor.urls import canonical_url

CONFIG_ENV = "MONITOR_CONFIG"
DATABASE_URL_ENV = "MONITOR_DATABASE_URL"
DEFAULT_CONFIG_PATH = Path("config.toml")

_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
# The longest duration accepted: every interval and deadline stays far inside the range of
# a datetime, and no sensible setting comes near it.
MAX_DURATION = 365 * 86400.0
MIN_INTERVAL = 1.0
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)")
_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "kib": 1024,
    "mb": 1000**2,
    "mib": 1024**2,
    "gb": 1000**3,
    "gib": 1024**3,
}
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([a-z]*)")


def parse_delay(value: object) -> float:
    """Like `parse_duration`, but zero (no delay), in any unit, is allowed."""
    seconds = _duration_seconds(value)
    if seconds < 0:
        raise ValueError(f"delay {value!r} must not be negative (0 for none)")
    return 0.0 if seconds == 0 else _checked_duration(value, seconds)


def parse_duration(value: object) -> float:
    """Seconds from a number of seconds or a string such as "45s", "15m", "2h" or "1h30m"."""
    return _checked_duration(value, _duration_seconds(value))


def _checked_duration(value: object, seconds: float) -> float:
    if math.isnan(seconds) or seconds <= 0:
        raise ValueError(f"duration {value!r} must be greater than zero")
    if seconds > MAX_DURATION:
        raise ValueError(f'duration {value!r} is too long: at most 365 days ("365d")')
    return seconds


def _duration_seconds(value: object) -> float:
    if isinstance(value, bool):
        raise ValueError('expected a duration such as "45s", "15m" or "2h", not a boolean')
    if isinstance(value, int | float):
        try:
            seconds = float(value)
        except OverflowError:  # an integer too large for a float
            seconds = math.inf if value > 0 else -math.inf
    elif isinstance(value, str):
        text = value.strip().lower()
        if text.startswith("-") and text[1:].strip()[:1].isdigit():
            # Read, so that "-5m" is told it must be positive rather than how to write one.
            return -_duration_seconds(text[1:].strip())
        if re.fullmatch(r"\d+(?:\.\d+)?", text):
            seconds = float(text)
        elif text and re.fullmatch(rf"(?:{_DURATION_PART.pattern}\s*)+", text):
            seconds = sum(
                float(number) * _DURATION_UNITS[unit]
                for number, unit in _DURATION_PART.findall(text)
            )
        else:
            raise ValueError(
                f"invalid duration {value!r}: write a number of seconds or a number "
                'with a unit (ms, s, m, h, d), as in "45s", "15m", "2h" or "1h30m"'
            )
    else:
        raise ValueError(f'expected a duration such as "15m", got {type(value).__name__}')
    return seconds


def format_duration(seconds: float) -> str:
    """The shortest of "90s", "15m", "2h", "1d" that says `seconds` exactly (else the
    seconds with as many decimals as it takes: "0.25s", "100000.5s")."""
    for unit in ("d", "h", "m", "s"):
        size = _DURATION_UNITS[unit]
        count = seconds / size
        if seconds >= size and count.is_integer() and count * size == seconds:
            return f"{int(count)}{unit}"
    # repr() is the shortest text that reads back as the same float; Decimal spells it
    # without an exponent, which parse_duration would not read.
    return f"{Decimal(repr(float(seconds))):f}s"


def parse_size(value: object) -> int:
    """Bytes from an integer or a string such as "10MB" or "512KiB"."""
    if isinstance(value, bool):
        raise ValueError('expected a size such as "10MB", not a boolean')
    if isinstance(value, int):
        size = value
    elif isinstance(value, str) and (match := _SIZE.fullmatch(value.strip().lower())):
        number, unit = match.groups()
        if unit not in _SIZE_UNITS:
            raise ValueError(
                f"invalid size {value!r}: unknown unit {unit!r} (use B, KB, MB, KiB, MiB…)"
            )
        amount = float(number) * _SIZE_UNITS[unit]
        if not math.isfinite(amount):
            raise ValueError(f"invalid size {value!r}: too large")
        size = int(amount)
    else:
        raise ValueError(f'invalid size {value!r}: write a number of bytes or e.g. "10MB"')
    if size <= 0:
        raise ValueError(f"size {value!r} must be greater than zero")
    return size


Duration = Annotated[float, BeforeValidator(parse_duration)]
Delay = Annotated[float, BeforeValidator(parse_delay)]
Size = Annotated[int, BeforeValidator(parse_size)]


_HOST_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOST = re.compile(rf"(?=.{{1,253}}$){_HOST_LABEL}(?:\.{_HOST_LABEL})*\.?")


def _is_ip_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _check_http_url(value: str) -> str:
    try:
        url = httpx.URL(value.strip())
    except (httpx.InvalidURL, TypeError) as exc:
        raise ValueError(f"invalid URL {value!r}: {exc}") from exc
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError(f"invalid URL {value!r}: expected an absolute http:// or https:// URL")
    if url.port is not None and not 0 < url.port <= 65535:
        raise ValueError(f"invalid URL {value!r}: port {url.port} is not between 1 and 65535")
    if len(str(url)) > MAX_URL_LENGTH:
        raise ValueError(
            f"a URL of {len(str(url))} characters is too long: the database keeps at most"
            f" {MAX_URL_LENGTH}"
        )
    if url.userinfo:
        # Never quoted back: it holds a password.
        raise ValueError(
            "a feed URL must not hold a user name or password: it would be stored in the"
            " database and written to the logs"
        )
    return str(url)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class DatabaseSettings(_Section):
    """Where articles are stored.

    >>> DatabaseSettings(url="postgresql://monitor@db:5432/monitor")
    """

    url: str = Field(default="sqlite:///data/monitor.db", min_length=1)

    @field_validator("url")
    @classmethod
    def _url_is_a_database_url(cls, value: str) -> str:
        # The message never quotes the URL: it may hold a password.
        try:
            url = make_url(value)
        except (ArgumentError, ValueError) as exc:
            problem = "bad port" if "int()" in str(exc) else "not a database URL"
            raise ValueError(
                f"{problem}: expected e.g. sqlite:///data/monitor.db or"
                " postgresql://user:password@host:5432/database"
            ) from None
        authority = value.partition("://")[2].partition("/")[0]
        if authority.count("@") > 1:
            raise ValueError(
                "the user name or password holds an '@': write it as %40 (a URL ends its"
                " password at the first '@')"
            )
        if url.get_backend_name() not in ("sqlite", "postgresql", "postgres"):
            raise ValueError(
                f"unsupported database {url.get_backend_name()!r}: use sqlite or postgresql"
            )
        return value


class FetchSettings(_Section):
    """How feeds and pages are fetched."""

    user_agent: str = Field(
        default=f"monitor/{__version__} (news monitoring; +https://github.com/monitor-news/monitor)",
        min_length=1,
    )
    timeout: Duration = 20.0
    total_timeout: Duration = 60.0
    allow_private_addresses: StrictBool = False
    private_allowlist: tuple[str, ...] = ()
    max_redirects: StrictInt = Field(default=5, ge=0, le=30)
    max_response_size: Size = 10_000_000  # "10MB", as documented
    max_attempts: StrictInt = Field(default=3, ge=1, le=100)
    # Politeness.
    max_concurrent_polls: StrictInt = Field(default=4, ge=1, le=64)
    per_host_concurrency: StrictInt = Field(default=2, ge=1, le=16)
    per_host_delay: Delay = 1.0
    max_backoff: Duration = 6 * 3600.0
    # A page that failed for a passing reason (429, 5xx, timeout) waits this long before
    # its second attempt, four times as long before its third, and so on (monitor/retry.py).
    retry_delay: Duration = 15 * 60.0
    revalidate_after: Duration = 24 * 3600.0
    robots_txt: StrictBool = True

    @field_validator("private_allowlist")
    @classmethod
    def _allowlist_is_networks(cls, entries: tuple[str, ...]) -> tuple[str, ...]:
        for entry in entries:
            parse_allowlist_entry(entry)
        return entries


class ProcessingSettings(_Section):
    """How the CPU-heavy work (text extraction, near-duplicate features) is spread."""

    # Worker processes: "auto" is one per available core when there are two or more,
    # else none; 0 does the work in the polling threads.
    workers: StrictInt | Literal["auto"] = "auto"

    @field_validator("workers", mode="before")
    @classmethod
    def _workers_in_range(cls, value: object) -> object:
        # Checked before the union's two branches each report their own error.
        if value == "auto" or (type(value) is int and 0 <= value <= 64):
            return value
        raise ValueError(
            f'expected a number of worker processes from 0 to 64, or "auto"; got {value!r}'
        )


class HttpSettings(_Section):
    """The health and metrics endpoint (`/healthz`, `/metrics`); port 0 turns it off."""

    host: str = "127.0.0.1"
    port: StrictInt = Field(default=8080, ge=0, le=65535)

    @field_validator("host")
    @classmethod
    def _host_is_an_address_or_name(cls, host: str) -> str:
        if not host:
            # An unset variable in a compose file (MONITOR_HTTP__HOST=) would otherwise
            # open the endpoint on every interface without anyone asking for it.
            raise ValueError('empty: name an address ("127.0.0.1"; "0.0.0.0" for every one)')
        if _HOST.fullmatch(host) or _is_ip_address(host):
            return host
        raise ValueError(f"{host!r} is neither an IP address nor a host name")


class HealthSettings(_Section):
    """When a feed counts as stale."""

    # Stale: no new entry for this many of the feed's usual gaps between new entries.
    stale_after_gaps: float = Field(default=4.0, gt=0, le=1000, allow_inf_nan=False)
    # …and never before this long.
    stale_minimum: Duration = 6 * 3600.0


class FeedSettings(_Section):
    """One feed to poll."""

    name: str = Field(min_length=1, max_length=MAX_FEED_NAME_LENGTH)
    url: str
    interval: Duration = 900.0

    @field_validator("interval")
    @classmethod
    def _interval_is_polite(cls, seconds: float) -> float:
        if seconds < MIN_INTERVAL:
            raise ValueError(
                f"interval {format_duration(seconds)} is too short: at least"
                f" {format_duration(MIN_INTERVAL)} between polls of one feed"
            )
        return seconds

    tags: tuple[str, ...] = ()
    enabled: StrictBool = True
    # False for feeds that are already about the topic (a search-query feed).
    filter: StrictBool = True

    @field_validator("url")
    @classmethod
    def _url_is_http(cls, value: str) -> str:
        return _check_http_url(value)

    @field_validator("tags")
    @classmethod
    def _tags_are_words(cls, tags: tuple[str, ...]) -> tuple[str, ...]:
        cleaned = tuple(" ".join(tag.split()) for tag in tags)
        if any(not tag for tag in cleaned):
            raise ValueError("a tag must not be empty")
        if any(";" in tag for tag in cleaned):
            raise ValueError(_NO_SEMICOLON)
        if any(len(tag) > MAX_TAG_LENGTH for tag in cleaned):
            raise ValueError(f"a tag must be at most {MAX_TAG_LENGTH} characters")
        return tuple(dict.fromkeys(cleaned))


_NO_SEMICOLON = "a tag must not hold ';': it separates the tags of a CSV export"

# Where a rule looks for its phrases.
TextField = Literal["title", "text", "both"]


def _phrases_have_words(phrases: tuple[str, ...]) -> tuple[str, ...]:
    for phrase in phrases:
        if not phrase.strip():
            raise ValueError("a phrase must not be empty")
        # Rules match whole words; a phrase of punctuation alone would never match anything.
        if not any(character.isalnum() for character in phrase):
            raise ValueError(f"phrase {phrase!r} has no letter or digit: it can never match")
    return phrases


class TopicSettings(_Section):
    """What an article must be about to be kept (feeds with `filter = false` skip this).

    >>> TopicSettings(all=(("cambodia", "phnom penh"), ("human trafficking", "scam compound")))
    """

    all: tuple[tuple[str, ...], ...] = ()
    none: tuple[str, ...] = ()
    field: TextField = "both"

    @field_validator("all")
    @classmethod
    def _groups_have_phrases(
        cls, groups: tuple[tuple[str, ...], ...]
    ) -> tuple[tuple[str, ...], ...]:
        for index, group in enumerate(groups):
            if not group:
                raise ValueError(f"group {index} (topic.all[{index}]) lists no phrase")
            _phrases_have_words(group)
        return groups

    @field_validator("none")
    @classmethod
    def _none_has_words(cls, phrases: tuple[str, ...]) -> tuple[str, ...]:
        return _phrases_have_words(phrases)


class TagRule(_Section):
    """A tag given to articles whose title or text holds its phrases."""

    name: str = Field(min_length=1, max_length=MAX_TAG_LENGTH)
    any: tuple[str, ...] = ()
    all: tuple[str, ...] = ()
    none: tuple[str, ...] = ()
    field: TextField = "both"

    @field_validator("name")
    @classmethod
    def _name_is_collapsed(cls, name: str) -> str:
        # Stored as feed tags are: "theme:forced  labour" and "theme:forced labour" are one tag.
        if ";" in name:
            raise ValueError(_NO_SEMICOLON)
        return " ".join(name.split())

    @field_validator("any", "all", "none")
    @classmethod
    def _phrases(cls, phrases: tuple[str, ...]) -> tuple[str, ...]:
        return _phrases_have_words(phrases)

    @model_validator(mode="after")
    def _has_phrases(self) -> TagRule:
        if not self.any and not self.all:
            raise ValueError("a tag rule needs phrases in `any` or `all`")
        return self


class Settings(_Section):
    """The whole validated configuration."""

    database: DatabaseSettings = DatabaseSettings()
    fetch: FetchSettings = FetchSettings()
    processing: ProcessingSettings = ProcessingSettings()
    http: HttpSettings = HttpSettings()
    health: HealthSettings = HealthSettings()
    topic: TopicSettings = TopicSettings()
    tags: tuple[TagRule, ...] = ()
    feeds: tuple[FeedSettings, ...] = ()

    @property
    def enabled_feeds(self) -> tuple[FeedSettings, ...]:
        return tuple(feed for feed in self.feeds if feed.enabled)


def resolve_config_path(cli_path: Path | None, environ: Mapping[str, str] = os.environ) -> Path:
    """`--config PATH`, else `MONITOR_CONFIG`, else `./config.toml`."""
    if cli_path is not None:
        return cli_path
    if environ.get(CONFIG_ENV):
        return Path(environ[CONFIG_ENV])
    return DEFAULT_CONFIG_PATH


def load_settings(path: Path, environ: Mapping[str, str] = os.environ) -> Settings:
    """Read, validate and apply environment overrides; raise ConfigError on any problem."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror}") from None
    try:
        document = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}{_quoted_line(raw, exc)}") from None
    except RecursionError:
        raise ConfigError(f"{path}: invalid TOML: arrays or tables nested too deeply") from None
    return settings_from_document(document, source=str(path), environ=environ)


def _quoted_line(raw: bytes, error: tomllib.TOMLDecodeError) -> str:
    """The line the error is at, quoted: "Cannot overwrite a value" names no key."""
    found = re.search(r"at line (\d+)", str(error))
    lines = raw.decode("utf-8", "replace").splitlines()
    if found is None or not 0 < int(found[1]) <= len(lines):
        return ""
    line = lines[int(found[1]) - 1].strip()
    return f": {line[:120]!r}" if line else ""


def load_http_settings(path: Path, environ: Mapping[str, str] = os.environ) -> HttpSettings:
    """Where the running daemon serves /healthz, as `monitor healthcheck` should ask it.

    A broken edit must not make a healthy daemon (which keeps its previous
    configuration) look unhealthy, and restarted by its container, on a file it cannot
    start with. So when the file does not validate, its `[http]` table is read on its
    own (the broken key is most often elsewhere: a feed, a rule), and when that fails
    too, the environment and the defaults.
    """
    try:
        return load_settings(path, environ).http
    except ConfigError:
        pass
    try:
        text = path.read_text(encoding="utf-8")
        try:
            http = tomllib.loads(text).get("http", {})
        except tomllib.TOMLDecodeError:
            # The TOML itself broken (an unclosed "[fetch" elsewhere): the [http] table's
            # own lines still say where the daemon listens.
            http = tomllib.loads(_table_lines(text, "http")).get("http", {})
        return settings_from_document({"http": http}, source=str(path), environ=environ).http
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, RecursionError, ConfigError):
        return settings_from_document({}, source="environment", environ=environ).http


_TABLE_HEADER = re.compile(r"^\s*\[")


def _table_lines(text: str, table: str) -> str:
    """The lines of `[table]` in a TOML text, up to the next table header."""
    lines = text.splitlines()
    header = re.compile(rf"^\s*\[\s*{re.escape(table)}\s*\]\s*(#.*)?$")
    for start, line in enumerate(lines):
        if header.match(line):
            end = next(
                (n for n in range(start + 1, len(lines)) if _TABLE_HEADER.match(lines[n])),
                len(lines),
            )
            return "\n".join(lines[start:end])
    return ""


ENV_PREFIX = "MONITOR_"
# Sections an environment variable may set a key of (lists of tables come only from files).
_ENV_SECTIONS = ("database", "fetch", "processing", "http", "health")


def apply_environment(document: dict[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """The document with MONITOR_<SECTION>__<KEY> variables applied (MONITOR_FETCH__TIMEOUT=30s).

    A value that reads as a TOML value (`true`, `5`, `"x"`) is taken as one; anything
    else as a string. MONITOR_DATABASE_URL, the older name of MONITOR_DATABASE__URL,
    wins when both are set.
    """
    merged = {
        key: dict(value) if isinstance(value, dict) else value for key, value in document.items()
    }
    variables = dict(environ)
    if variables.get(DATABASE_URL_ENV):
        # The older name wins: it is the one an operator sets over an image's default.
        variables[f"{ENV_PREFIX}DATABASE__URL"] = variables[DATABASE_URL_ENV]
    for name, raw in sorted(variables.items()):
        section, separator, key = name.removeprefix(ENV_PREFIX).lower().partition("__")
        if name.startswith(f"{ENV_PREFIX}_"):
            section, separator, key = "", "__", name.removeprefix(f"{ENV_PREFIX}_").lower()
        if not name.startswith(ENV_PREFIX) or not separator:
            continue  # not ours, or another program's (MONITOR_PORT, set by Kubernetes)
        if section not in _ENV_SECTIONS:
            # Only monitor writes MONITOR_<SECTION>__<KEY>: a misspelt section would be
            # ignored without a word, as a misspelt key is not.
            raise ConfigError(
                f"{name}: no section {section!r} that an environment variable sets"
                f" (MONITOR_<SECTION>__<KEY>, SECTION one of {', '.join(_ENV_SECTIONS)})"
            )
        table = merged.setdefault(section, {})
        if isinstance(table, dict):
            table[key] = _env_value(raw)
    return merged


def _env_value(raw: str) -> Any:
    try:
        return tomllib.loads(f"value = {raw}")["value"]
    except (tomllib.TOMLDecodeError, RecursionError):
        return raw


def settings_from_document(
    document: dict[str, Any], *, source: str, environ: Mapping[str, str] = os.environ
) -> Settings:
    """Validate an already parsed TOML document (see `load_settings`), with environment
    overrides applied (an error in one names the variable's key like a file's)."""
    document = apply_environment(document, environ)
    problems = []
    try:
        settings = Settings.model_validate(document)
    except ValidationError as exc:
        problems = [_describe(error, document, environ) for error in exc.errors()]
    problems += _duplicate_feeds(document)
    if problems:
        raise ConfigError(_report(source, problems))
    return settings


def _report(source: str, problems: list[str]) -> str:
    if len(problems) == 1:
        return f"{source}: {problems[0]}"
    lines = "\n".join(f"  {problem}" for problem in problems)
    return f"{source}: {len(problems)} problems\n{lines}"


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def key_path(location: tuple[int | str, ...]) -> str:
    """("feeds", 3, "interval") -> "feeds[3].interval"; a key that is not a bare TOML
    key is quoted as in TOML (`fetch."time out"`), so a message stays on one line."""
    path = ""
    for part in location:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            key = part if _BARE_KEY.fullmatch(part) else _quoted_key(part)
            path += f".{key}" if path else key
    return path or "(top level)"


def _quoted_key(key: str) -> str:
    """A TOML quoted key, with what does not print (newlines, bidi controls) escaped."""
    escaped = (char if char.isprintable() and char not in '"\\' else _escape(char) for char in key)
    return f'"{"".join(escaped)}"'


def _escape(char: str) -> str:
    if char in '"\\':
        return f"\\{char}"
    return f"\\u{ord(char):04X}" if ord(char) <= 0xFFFF else f"\\U{ord(char):08X}"


def _feed_label(location: tuple[int | str, ...], document: dict[str, Any]) -> str:
    if len(location) >= 2 and location[0] == "feeds" and isinstance(location[1], int):
        feeds = document.get("feeds")
        if isinstance(feeds, list) and location[1] < len(feeds):
            feed = feeds[location[1]]
            if isinstance(feed, dict) and isinstance(feed.get("name"), str):
                return f" (feed {_shortened(feed['name'])})"
    return ""


def _shortened(value: object, limit: int = 80) -> str:
    """A value as written back in a message: its repr, cut short (a 300-character name
    was quoted in full, twice)."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 1]}… ({len(str(value))} characters)"


def _environment_variable(
    location: tuple[int | str, ...], environ: Mapping[str, str]
) -> str | None:
    """The variable that set the key at `location`, if one did."""
    if len(location) < 2 or not all(isinstance(part, str) for part in location[:2]):
        return None
    section, key = str(location[0]), str(location[1])
    if (section, key) == ("database", "url") and environ.get(DATABASE_URL_ENV):
        return DATABASE_URL_ENV
    wanted = f"{section}__{key}"
    for name in environ:
        if name.startswith(ENV_PREFIX) and name.removeprefix(ENV_PREFIX).lower() == wanted:
            return name
    return None


def _describe(error: ErrorDetails, document: dict[str, Any], environ: Mapping[str, str]) -> str:
    location = tuple(error["loc"])
    kind = error["type"]
    variable = _environment_variable(location, environ)
    shown = "".join(c if c.isprintable() else _escape(c) for c in variable or "")
    origin = f" (set by {shown})" if variable else ""
    if kind == "extra_forbidden":
        what = "unknown key"
        near = _known_keys(location)
        if near:
            what += f" (expected one of: {', '.join(near)})"
    elif kind == "missing":
        what = "required key is missing"
    elif kind == "value_error":
        what = str(error["ctx"]["error"]) if "ctx" in error else error["msg"]
    elif kind in ("tuple_type", "list_type"):
        got = error["input"]
        if isinstance(got, dict) and len(location) == 1:
            what = f"expected a list of tables: write [[{location[0]}]], not [{location[0]}]"
        else:
            what = f'expected a list, as in ["a", "b"], got {_shortened(got)}'
    elif kind == "string_too_short" and isinstance(error["input"], str):
        what = "must not be empty or blank"
    else:
        what = f"{error['msg'][0].lower()}{error['msg'][1:]}, got {_shortened(error['input'])}"
    return f"{key_path(location)}{_feed_label(location, document)}{origin}: {what}"


def _known_keys(location: tuple[int | str, ...]) -> list[str]:
    model: type[BaseModel] = Settings
    for part in location[:-1]:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        if field is None:
            return []
        # A section is a model; a list of tables ([[feeds]], [[tags]]) a tuple of one.
        sections = [
            candidate
            for candidate in (field.annotation, *get_args(field.annotation))
            if isinstance(candidate, type) and issubclass(candidate, BaseModel)
        ]
        if not sections:
            return []
        model = sections[0]
    return sorted(model.model_fields)


def _duplicate_feeds(document: dict[str, Any]) -> list[str]:
    """Two feeds with one URL (after canonicalisation) or one name."""
    feeds = document.get("feeds")
    if not isinstance(feeds, list):
        return []
    problems = []
    first_by_url: dict[str, int] = {}
    first_by_name: dict[str, int] = {}
    for index, feed in enumerate(feeds):
        if not isinstance(feed, dict):
            continue
        url, name = feed.get("url"), feed.get("name")
        if isinstance(url, str):
            key = _url_key(url)
            if key in first_by_url:
                problems.append(
                    f"feeds[{index}].url{_feed_label(('feeds', index), document)}: duplicate feed "
                    f"URL, already configured as feeds[{first_by_url[key]}]"
                )
            first_by_url.setdefault(key, index)
        if isinstance(name, str):
            key = " ".join(name.split()).casefold()
            if key in first_by_name:
                problems.append(
                    f"feeds[{index}].name: duplicate feed name {name!r}, "
                    f"already used by feeds[{first_by_name[key]}]"
                )
            first_by_name.setdefault(key, index)
    return problems


def _url_key(url: str) -> str:
    try:
        return canonical_url(url)
    except FetchError:
        return url.strip()
