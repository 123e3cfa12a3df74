"""Signals, from the process's first moment: what the daemon makes of SIGTERM, SIGINT
and SIGHUP, and what is heard before it can act on them.

Importing the command line takes about a second; until `monitor run` installs its own
handlers, a signal would do its default (SIGHUP and SIGTERM kill at once). The console
entry point (`monitor.__main__`) first calls `listen_early`, which remembers those
signals; `run` takes them up, every other command gets the default back
(`restore_defaults`), with the signals heard delivered again.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType

log = logging.getLogger(__name__)

HEARD: tuple[int, ...] = (signal.SIGHUP, signal.SIGTERM, signal.SIGINT)
_early: list[int] = []
_listening = False


def _remember(signum: int, _frame: FrameType | None) -> None:
    _early.append(signum)


def listen_early() -> None:
    """Remember SIGHUP, SIGTERM and SIGINT until a command decides what they mean."""
    global _listening
    for signum in HEARD:
        signal.signal(signum, _remember)
    _listening = True


def restore_defaults() -> None:
    """For the commands that are not the daemon: the signals do what they always do,
    including those heard while starting."""
    global _listening
    if not _listening:
        return
    _listening = False
    for signum in HEARD:
        signal.signal(
            signum, signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL
        )
    for signum in _take_early():
        signal.raise_signal(signum)


def _take_early() -> list[int]:
    heard = list(_early)
    _early.clear()
    return heard


class DaemonSignals:
    """The daemon's signals. SIGTERM or SIGINT: the first sets `stop` (the graceful stop),
    a second sets `hurry` (stop at once). SIGHUP: a reload, once `ready` is called;
    one that comes before is remembered and applied then."""

    def __init__(self, stop: threading.Event, hurry: threading.Event) -> None:
        self.stop = stop
        self.hurry = hurry
        self._reload: Callable[[], None] | None = None
        self._reload_pending = False

    def install(self) -> None:
        global _listening
        for signum in HEARD:
            signal.signal(signum, self.handle)
        _listening = False
        for signum in _take_early():
            self.handle(signum, None)

    def ready(self, reload: Callable[[], None]) -> None:
        """The daemon runs: SIGHUP calls `reload`, now if one came while starting."""
        self._reload = reload
        if self._reload_pending:
            self._reload_pending = False
            log.info("reading the configuration again, as asked by SIGHUP during start-up")
            reload()

    def handle(self, signum: int, _frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if signum == signal.SIGHUP:
            if self._reload is not None:
                self._reload()
            elif not self._reload_pending:
                self._reload_pending = True
                log.info("received SIGHUP while starting: reloading once running")
            return
        if not self.stop.is_set():
            log.info(
                "received %s: stopping after the entries in hand (%s again stops at once)",
                name,
                name,
            )
            self.stop.set()
        elif not self.hurry.is_set():
            log.warning(
                "received %s again: stopping at once; the entries in hand stay pending and"
                " are finished at the next start",
                name,
            )
            self.hurry.set()
