"""Library calls that can be ended from outside their thread: what lets a GCS call that reached its deadline (or a
backend being closed) stop the blocking request it started, instead of leaving it to run as long as the server
keeps it alive.

Contract:

* Every library call runs as one :class:`Job` on a pool thread (:meth:`Job.run`); the job knows the HTTP
  connections its requests use, because the client's connection pools are made of :func:`pool_classes`, whose
  connections register with the job of the thread that sends on them.
* :meth:`Job.abort` (from any thread) marks the job so that it never starts, and no further request of it is sent,
  and shuts down the sockets of the connections it is using: a request blocked on a server that trickles one byte
  a second, which no per-read timeout ends, fails at once, and its thread is free. A connection that has since
  passed to another job is left alone.
* Nothing here imports urllib3 until the first client is made.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable
from functools import cache
from typing import Any, TypeVar

T = TypeVar("T")

_current = threading.local()


class Aborted(Exception):
    """The job was aborted (its call ended by its deadline, or the backend closed) before this request."""


class Job:
    """One call's requests on pool threads, so that a deadline or ``aclose`` can end them mid-flight."""

    __slots__ = ("_connections", "_lock", "aborted")

    def __init__(self) -> None:
        self.aborted = False
        self._connections: list[Any] = []
        self._lock = threading.Lock()

    def run(self, work: Callable[[], T]) -> T:
        """Run ``work`` on this thread as this job (in a pool thread)."""
        if self.aborted:
            raise Aborted("the call ended before its request was sent")
        _current.job = self
        try:
            return work()
        finally:
            _current.job = None
            with self._lock:
                self._connections.clear()

    def sending_on(self, connection: Any) -> None:
        """A request of this job is about to be sent on ``connection``."""
        with self._lock:
            if self.aborted:
                raise Aborted("the call ended before this request was sent")
            connection.tierstore_job = self
            self._connections.append(connection)

    def abort(self) -> None:
        """End the job: no request of it is sent any more, and the sockets of those in flight are shut down."""
        with self._lock:
            self.aborted = True
            connections, self._connections = self._connections, []
        for connection in connections:
            sock = getattr(connection, "sock", None)
            if sock is not None and getattr(connection, "tierstore_job", None) is self:
                with contextlib.suppress(OSError):
                    socket.socket.shutdown(sock, socket.SHUT_RDWR)  # the plain socket's, under TLS too


def _sending(connection: Any) -> None:
    job = getattr(_current, "job", None)
    if job is not None:
        job.sending_on(connection)


def _connected(connection: Any) -> None:
    """A connection opened while its job was being aborted is shut here (abort found no socket to shut)."""
    job = getattr(connection, "tierstore_job", None)
    if job is not None and job.aborted:
        connection.close()
        raise Aborted("the call ended while its connection was being opened")


@cache
def pool_classes() -> dict[str, type]:
    """urllib3 connection pools, by scheme, whose connections register with the job of the sending thread."""
    from urllib3.connection import HTTPConnection, HTTPSConnection
    from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

    class Tracked(HTTPConnection):
        def request(self, *args: Any, **kwargs: Any) -> None:
            _sending(self)
            super().request(*args, **kwargs)

        def connect(self) -> None:
            super().connect()
            _connected(self)

    class Connection(Tracked):
        pass

    class SecureConnection(Tracked, HTTPSConnection):
        pass

    class Pool(HTTPConnectionPool):
        ConnectionCls = Connection

    class SecurePool(HTTPSConnectionPool):
        ConnectionCls = SecureConnection

    return {"http": Pool, "https": SecurePool}
