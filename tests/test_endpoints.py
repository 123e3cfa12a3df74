"""The daemon's record of where it serves /healthz (the health check's side is tested
with the real daemon in tests/test_service.py)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from monitor.endpoints import (
    EndpointRecord,
    EndpointRecorder,
    healthz_url,
    read_record,
    record_path,
    runtime_dir,
)
from monitor.observability import HttpEndpoint, Metrics


@pytest.fixture
def environ(tmp_path: Path) -> dict[str, str]:
    return {"XDG_RUNTIME_DIR": str(tmp_path / "run")}


def test_the_runtime_directory() -> None:
    assert runtime_dir({"XDG_RUNTIME_DIR": "/run/user/1000"}) == Path("/run/user/1000/monitor")
    # Unset, or not absolute (the XDG specification says to ignore it then).
    for environ in ({}, {"XDG_RUNTIME_DIR": "run"}):
        assert runtime_dir(environ).name.startswith("monitor-")


def test_one_record_per_configuration_file(tmp_path: Path, environ: dict[str, str]) -> None:
    first, second = tmp_path / "first.toml", tmp_path / "second.toml"
    assert record_path(first, environ) != record_path(second, environ)
    # The same file however it is named.
    assert record_path(tmp_path / "x" / ".." / "first.toml", environ) == record_path(first, environ)


def test_a_configmap_swap_keeps_the_files_record(tmp_path: Path, environ: dict[str, str]) -> None:
    # An operator audit: after a ConfigMap edit (`..data` pointed at a new directory),
    # `monitor healthcheck` named another file than the daemon had, and failed for good.
    for version in ("v1", "v2"):
        (tmp_path / version).mkdir()
        (tmp_path / version / "config.toml").write_text("", encoding="utf-8")
    (tmp_path / "..data").symlink_to("v1")
    config = tmp_path / "config.toml"
    config.symlink_to("..data/config.toml")
    before = record_path(config, environ)
    (tmp_path / "..data_tmp").symlink_to("v2")
    (tmp_path / "..data_tmp").replace(tmp_path / "..data")
    assert config.resolve() == (tmp_path / "v2" / "config.toml").resolve()
    assert record_path(config, environ) == before


def test_an_idle_client_does_not_hold_up_healthz() -> None:
    # An operator audit: one connection that sent nothing kept /healthz from answering
    # anyone else until it closed (a server of one request at a time, with no timeout).
    endpoint = HttpEndpoint(
        "127.0.0.1", 0, Metrics(), lambda: {"status": "ok"}, instance="test:instance"
    )
    endpoint.start()
    try:
        with socket.create_connection(("127.0.0.1", endpoint.port)):
            answer = httpx.get(f"http://127.0.0.1:{endpoint.port}/healthz", timeout=5)
        assert answer.status_code == 200 and answer.json() == {"status": "ok"}
    finally:
        endpoint.stop()


def test_the_record_follows_the_endpoint_and_goes_with_it(
    tmp_path: Path, environ: dict[str, str]
) -> None:
    config = tmp_path / "config.toml"
    recorder = EndpointRecorder(config, environ)
    recorder.serving("0.0.0.0", 8080)
    record = read_record(config, environ)
    assert record is not None
    assert (record.url, record.instance) == ("http://127.0.0.1:8080/healthz", recorder.instance)
    assert (recorder.path.parent.stat().st_mode & 0o777) == 0o700
    recorder.serving("127.0.0.1", 9090)
    assert read_record(config, environ) == EndpointRecord(
        pid=record.pid,
        url="http://127.0.0.1:9090/healthz",
        instance=recorder.instance,
        config=str(config.resolve()),
    )
    recorder.stopped()
    assert read_record(config, environ) is None


def test_a_second_daemons_record_is_not_removed_by_the_first(
    tmp_path: Path, environ: dict[str, str]
) -> None:
    config = tmp_path / "config.toml"
    first, second = EndpointRecorder(config, environ), EndpointRecorder(config, environ)
    first.serving("127.0.0.1", 8080)
    second.serving("127.0.0.1", 8081)
    first.stopped()
    record = read_record(config, environ)
    assert record is not None and record.instance == second.instance


def test_a_record_whose_process_is_gone_is_cleared_at_start(
    tmp_path: Path, environ: dict[str, str]
) -> None:
    config = tmp_path / "config.toml"
    EndpointRecorder(config, environ).serving("127.0.0.1", 8080)
    path = record_path(config, environ)
    exited = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    path.write_text(
        json.dumps({**json.loads(path.read_text()), "pid": int(exited.stdout)}), encoding="utf-8"
    )
    EndpointRecorder(config, environ).clear_stale()
    assert not path.exists()


def test_a_record_others_could_have_written_is_ignored(
    tmp_path: Path, environ: dict[str, str]
) -> None:
    config = tmp_path / "config.toml"
    recorder = EndpointRecorder(config, environ)
    recorder.serving("127.0.0.1", 8080)
    recorder.path.parent.chmod(0o777)
    assert read_record(config, environ) is None
    recorder.path.parent.chmod(0o700)
    assert read_record(config, environ) is not None


@pytest.mark.parametrize(
    "text",
    ["", "{", "[]", '{"pid": "1", "url": "u", "instance": "i", "config": "c"}', '{"pid": 1}'],
)
def test_a_damaged_record_is_none(text: str) -> None:
    assert EndpointRecord.from_json(text) is None


def test_a_record_that_cannot_be_written_is_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the directory would be", encoding="utf-8")
    recorder = EndpointRecorder(tmp_path / "config.toml", {"XDG_RUNTIME_DIR": str(blocked)})
    recorder.serving("127.0.0.1", 8080)
    recorder.serving("127.0.0.1", 8081)
    assert caplog.text.count("cannot record the endpoint's address") == 1


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("127.0.0.1", "http://127.0.0.1:8080/healthz"),
        ("0.0.0.0", "http://127.0.0.1:8080/healthz"),
        ("", "http://127.0.0.1:8080/healthz"),
        ("::", "http://127.0.0.1:8080/healthz"),
        ("::1", "http://[::1]:8080/healthz"),
        ("monitor.internal", "http://monitor.internal:8080/healthz"),
    ],
)
def test_the_url_to_ask(host: str, url: str) -> None:
    assert healthz_url(host, 8080) == url
