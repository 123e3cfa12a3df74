"""Feed leases: which process polls a feed, when several share one database.

A process holds a feed while it polls it (`feeds.lease_owner`, `lease_until`); the
others skip it. A lease lasts `LEASE_HOLD` seconds and the holder renews all of its
leases every `RENEW_EVERY`, so a process that dies (kill -9, out of memory) stops
renewing and its feeds are free again within `LEASE_HOLD`, not at the end of the
longest poll it might have been in.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from types import TracebackType

import sqlalchemy as sa

from monitor.processes import process_alive
from monitor.storage.database import within
from monitor.storage.store import Store

log = logging.getLogger(__name__)

LEASE_HOLD = 120.0
RENEW_EVERY = 30.0
# Giving the leases back at the end waits no longer: they expire anyway. With the
# stop's grace (monitor.daemon) the exit comes within 10 s, a second to spare for a
# database that stalls (an audit measured 10.5 s with 3 here).
RELEASE_SECONDS = 2.0


def process_identity() -> str:
    """host:pid:random, unique to this process even where pids repeat (containers)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def free_leases_of_the_dead(store: Store, me: str) -> None:
    """At a start: give back the leases of processes of this host that are gone (a run
    killed with -9, the container's previous run), rather than wait for them to expire.
    A process of this host is gone when its pid runs nothing, or runs us."""
    host, pid, _ = me.split(":", 2)
    dead = set()
    for owner in store.lease_holders():
        their_host, _, rest = owner.partition(":")
        their_pid = rest.partition(":")[0]
        if their_host != host or owner == me or not their_pid.isdigit():
            continue
        if their_pid == pid or not process_alive(int(their_pid)):
            dead.add(owner)
    if dead and (count := store.release_leases_of(dead)):
        log.info("gave back %d feed leases of processes no longer running", count)


class LeaseKeeper:
    """Renews every lease of `owner` from a thread while in use; gives them all back
    on exit."""

    def __init__(self, store: Store, owner: str, *, every: float = RENEW_EVERY) -> None:
        self.store = store
        self.owner = owner
        self.every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew, name="lease-keeper", daemon=True)

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._stop.set()
        # Not waited for long: a renewal stuck on an unanswering database must not hold
        # up the exit (the lease then expires by itself).
        self._thread.join(timeout=1.0)
        try:
            within(RELEASE_SECONDS, lambda: self.store.release_leases_of([self.owner]))
        except (sa.exc.DBAPIError, TimeoutError) as failure:
            log.warning("could not give back the feed leases (they expire): %s", failure)

    def _renew(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.store.renew_leases(owner=self.owner, hold=LEASE_HOLD)
            except sa.exc.DBAPIError as failure:
                # The polls meet the same database and say so; a lease not renewed in
                # time only lets another process poll the feed too early.
                log.debug("lease renewal failed: %s", failure)
