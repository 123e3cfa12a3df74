"""Where a running daemon serves /healthz, recorded for `monitor healthcheck`.

While `monitor run` serves its endpoint it keeps one small JSON file per configuration
file in the runtime directory (`runtime_dir()`): its pid, the URL and the instance
token it sends with every /healthz answer. It rewrites the file when the endpoint
moves and removes it at exit. The health check asks the recorded URL, not the file's
`[http]`, which an edit may have changed while the endpoint stayed where it was.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import stat
import tempfile
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from monitor.processes import process_alive

log = logging.getLogger(__name__)

# Sent with every /healthz answer: "<config key>:<random>", the daemon's instance.
INSTANCE_HEADER = "X-Monitor-Instance"


def runtime_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """`$XDG_RUNTIME_DIR/monitor`, else `monitor-<uid>` in the temporary directory."""
    base = environ.get("XDG_RUNTIME_DIR", "")
    if Path(base).is_absolute():
        return Path(base) / "monitor"
    return Path(tempfile.gettempdir()) / f"monitor-{os.geteuid()}"


def config_key(config: Path) -> str:
    """One configuration file's name in the runtime directory and in the instance token.

    The path as named, made absolute, with its symbolic links left as they are: a
    Kubernetes ConfigMap is `config.toml -> ..data/config.toml` with `..data` swapped
    to a new directory at each edit, and the daemon and its health check must still
    agree on the file after one."""
    absolute = os.path.abspath(config)  # noqa: PTH100 - resolve() would follow the links
    return hashlib.sha256(absolute.encode()).hexdigest()[:16]


def healthz_url(host: str, port: int) -> str:
    """The URL to ask for an endpoint listening on `host`: a wildcard address is where
    it listens, not one to connect to."""
    wildcard = host in ("0.0.0.0", "::", "")  # noqa: S104
    address = "127.0.0.1" if wildcard else host
    shown = f"[{address}]" if ":" in address else address
    return f"http://{shown}:{port}/healthz"


@dataclass(frozen=True, kw_only=True, slots=True)
class EndpointRecord:
    """What a running daemon serves, as its record says."""

    pid: int
    url: str
    instance: str
    config: str

    @classmethod
    def from_json(cls, text: str) -> EndpointRecord | None:
        """None for anything but a record as `EndpointRecorder` writes it."""
        try:
            fields = json.loads(text)
        except ValueError:
            return None
        kinds = {"pid": int, "url": str, "instance": str, "config": str}
        if not isinstance(fields, dict) or not all(
            isinstance(fields.get(name), kind) for name, kind in kinds.items()
        ):
            return None
        return cls(**{name: fields[name] for name in kinds})


def record_path(config: Path, environ: Mapping[str, str] = os.environ) -> Path:
    return runtime_dir(environ) / f"{config_key(config)}.json"


def read_record(config: Path, environ: Mapping[str, str] = os.environ) -> EndpointRecord | None:
    """The record of the daemon serving `config`, if one is left (its process may be
    gone); None when there is none, or it is in a directory others could have written."""
    return _read(record_path(config, environ))


def _read(path: Path) -> EndpointRecord | None:
    if not _private(path.parent):
        return None
    try:
        return EndpointRecord.from_json(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        return None


class EndpointRecorder:
    """The daemon's side: records each address it serves on, removes it at the end."""

    def __init__(self, config: Path, environ: Mapping[str, str] = os.environ) -> None:
        self.config = config.resolve()
        self.path = record_path(config, environ)
        self.instance = f"{config_key(config)}:{uuid.uuid4().hex}"
        self._warned = False

    def clear_stale(self) -> None:
        """At a start: drop a record its process left (kill -9, a crash, the container's
        previous run, whose pid this process may have been given again)."""
        record = _read(self.path)
        if record is not None and (record.pid == os.getpid() or not process_alive(record.pid)):
            self._remove()

    def serving(self, host: str, port: int) -> None:
        record = EndpointRecord(
            pid=os.getpid(),
            url=healthz_url(host, port),
            instance=self.instance,
            config=str(self.config),
        )
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            if not _private(self.path.parent):
                raise PermissionError(f"{self.path.parent} is not this user's alone")
            temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}")
            temporary.write_text(json.dumps(asdict(record)) + "\n", encoding="utf-8")
            temporary.replace(self.path)
        except OSError as error:
            if not self._warned:
                log.warning(
                    "cannot record the endpoint's address in %s (%s): `monitor healthcheck`"
                    " asks the address in the configuration file instead",
                    self.path,
                    error,
                )
                self._warned = True

    def stopped(self) -> None:
        """The endpoint is off or this process ends: remove the record if it is ours (a
        second daemon on the same file may have written its own since)."""
        record = _read(self.path)
        if record is not None and record.instance == self.instance:
            self._remove()

    def _remove(self) -> None:
        try:
            self.path.unlink(missing_ok=True)
        except OSError as error:
            log.warning("cannot remove %s: %s", self.path, error)


def _private(directory: Path) -> bool:
    """A directory of this user's that nobody else may write to (in a shared /tmp,
    another user could otherwise plant a record pointing the health check elsewhere)."""
    try:
        status = directory.lstat()
    except OSError:
        return False
    return (
        stat.S_ISDIR(status.st_mode)
        and status.st_uid == os.geteuid()
        and not status.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    )
