"""The HTTP connection the daemon serves: uvicorn's h11 protocol with a public server's limits.

uvicorn bounds the idle time between two requests (``timeout_keep_alive``), not the time a
request takes to arrive: each byte received cancels the keep-alive timer and nothing arms
another, and a new connection has no timer at all. A client that trickles a header byte every
few seconds (slowloris), or a body after the answer, holds its connection for ever.
``limit_concurrency`` only answers 503 to whole new requests, and
``h11_max_incomplete_event_size`` bounds a head's size, not its time; the protocol below adds
the missing deadline. This module and ``daemon.py`` are the only ones that know uvicorn.
"""

from __future__ import annotations

import contextlib
import resource
import socket
from typing import TYPE_CHECKING, ClassVar

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from eventwatch import logs

if TYPE_CHECKING:
    import asyncio

    from starlette.types import ASGIApp

log = logs.get("http")

REQUEST_TIMEOUT = 10.0
"""Seconds a client has to send a whole request, from its first byte (or from connecting).

A request here is a GET of a few hundred bytes, sent in one packet: it arrives at once, and in
under 8 s even when TCP must resend it three times (initial RTO 1 s, doubled each time, RFC 6298).
A slow client holds a connection for at most this long; the wait between two requests on a
kept-alive connection is uvicorn's ``timeout_keep_alive`` and does not count.
"""

_RECEIVING = frozenset({h11.IDLE, h11.SEND_BODY})
"""The client's states while its request is still arriving."""


class Protocol(H11Protocol):
    """h11 with a deadline for each request's arrival, and quiet about malformed bodies.

    h11 is chosen rather than uvicorn's "auto", so that installing httptools later cannot
    silently swap this protocol, and these limits with it, for another one.
    """

    request_timeout: ClassVar[float] = REQUEST_TIMEOUT
    max_connections: ClassVar[int] = 1024
    _deadline: asyncio.TimerHandle | None = None
    _received = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Start the clock: a client that connects must send its request in time.

        TCP_NODELAY too: the listening socket is made with ``socket.create_server``, whose
        sockets asyncio leaves to Nagle's algorithm, so each body waited ~40 ms for the
        client's delayed ACK behind its headers.
        """
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            # Over the cap, a connection is closed at once: files stay free for the ledger,
            # the calendars and SMTP, whatever a crowd of idle clients does.
            transport.close()
            return
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in {socket.AF_INET, socket.AF_INET6}:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        """Stop the clock."""
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        """Read as uvicorn does; the clock runs from a request's first byte to its last."""
        if self._deadline is None and self.conn.their_state is h11.IDLE:
            self._arm()  # a new request on a kept-alive connection
        self._received += len(data)
        super().data_received(data)
        if self.conn.their_state not in _RECEIVING:
            self._disarm()

    def send_400_response(self, msg: str) -> None:
        """Answer 400 to a request h11 cannot read, or close if the app has begun answering.

        A malformed chunk comes after the head, once the app is running: uvicorn's 400 then
        meets the app's own answer, and h11 refuses the second with a traceback in the log
        that any client can repeat. The app's answer is dropped as if the client had gone;
        uvicorn has already logged its one line ("Invalid HTTP request received.").
        """
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True
            cycle.message_event.set()
        if self.conn.our_state in {h11.IDLE, h11.SEND_RESPONSE}:
            super().send_400_response(msg)
        else:
            self.transport.close()

    def _arm(self) -> None:
        self._received = 0
        self._deadline = self.loop.call_later(self.request_timeout, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        if self._received:  # browsers open connections they never use: those close quietly
            client = "{}:{}".format(*self.client) if self.client else "unknown"
            log.info(
                "request too slow, connection closed",
                client=client,
                seconds=self.request_timeout,
                received=self._received,
            )
        self.transport.close()


def connections_at_most() -> int:
    """HTTP connections held at once: a quarter of the open files allowed, at most 10,000.

    So a crowd of clients can never take the files the ledger, the calendars and SMTP need.
    """
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return max(16, min(10_000, soft // 4))


def raise_file_limit() -> int:
    """Raise this process's open-files limit to its hard limit (at most 65,536); the new one.

    systemd and most shells start services with a soft limit of 1,024 and a much higher hard
    limit, which a process may take for itself.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 65_536 if hard == resource.RLIM_INFINITY else min(hard, 65_536)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def config(app: ASGIApp, *, request_timeout: float = REQUEST_TIMEOUT) -> uvicorn.Config:
    """How the daemon serves ``app``; tests shorten ``request_timeout``."""
    seconds = request_timeout
    most = connections_at_most()

    class Timed(Protocol):
        """The protocol with this server's deadline and connection cap."""

        request_timeout = seconds
        max_connections = most

    return uvicorn.Config(
        app,
        http=Timed,
        # How many connections asyncio accepts in one go, each an open file before the cap
        # above can close it: 2,048 at once exhausted a limit of 1,024 (EMFILE, a traceback
        # logged per attempt, SMTP and the calendars starved).
        backlog=max(8, min(128, most // 4)),
        ws="none",  # nothing here speaks WebSocket: an Upgrade header is not followed
        log_config=None,
        access_log=False,
        lifespan="off",
        server_header=False,
    )
