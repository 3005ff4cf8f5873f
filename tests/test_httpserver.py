"""The daemon's HTTP server: a deadline for each request, malformed bodies, the connection cap."""

from __future__ import annotations

import http.client
import logging
import re
import resource
import select
import socket
import time
from typing import TYPE_CHECKING

import httpx
import pytest

from eventwatch import httpserver, web

from .helpers import NOW, published, serving_as_daemon

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


@pytest.fixture
def state(tmp_path: Path) -> Iterator[web.State]:
    """A publication of the two test calendars, with revisions in a real state database."""
    with published(tmp_path) as made:
        yield made


BOUND = 1.0
"""The request timeout these tests serve with: short, so that the slow clients are quick."""


def until_closed(sock: socket.socket, *, began: float) -> tuple[float, bytes]:
    """Send a byte ("a") every 0.1 s until the server closes; the seconds since ``began``.

    Also what the server sent meanwhile. Fails the test if the server still holds on after 5 s.
    """
    received = b""
    while time.monotonic() - began < 5:
        readable, _, _ = select.select([sock], [], [], 0.1)
        try:
            if not readable:
                sock.sendall(b"a")
                continue
            got = sock.recv(65536)
        except (BrokenPipeError, ConnectionResetError):
            got = b""
        if not got:
            return time.monotonic() - began, received
        received += got
    pytest.fail(f"the server still holds the connection after {time.monotonic() - began:.1f} s")


def whole_answer(sock: socket.socket) -> bytes:
    """One answer read whole, head and body, however the server split it into packets."""
    answer = b""
    while b"\r\n\r\n" not in answer:
        answer += sock.recv(65536)
    head, _, body = answer.partition(b"\r\n\r\n")
    found = re.search(rb"(?im)^content-length: *(\d+)", head)
    assert found is not None, head
    while len(body) < int(found.group(1)):
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def warnings_and_worse(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """What the server logged at WARNING or above, once it has finished with the connection."""
    time.sleep(0.2)
    return [record for record in caplog.records if record.levelno >= logging.WARNING]


class TestSlowAndMalformedClients:
    """Clients that send slowly or send nonsense, against the daemon's own server."""

    def test_slow_request_head_is_dropped(self, state: web.State) -> None:
        """A client trickling its request head is cut off at the bound; others are served."""
        with serving_as_daemon(web.create_app(state, lambda: NOW), BOUND) as (host, port):
            began = time.monotonic()  # before the server's clock starts, at the connection
            slow = socket.create_connection((host, port))
            slow.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            assert httpx.get(f"http://{host}:{port}/healthz").status_code == 200
            seconds, answer = until_closed(slow, began=began)
            slow.close()
        assert BOUND <= seconds < BOUND + 1.5
        assert answer == b""

    def test_silent_connection_is_dropped(self, state: web.State) -> None:
        """A connection that never sends a byte is closed at the bound."""
        with serving_as_daemon(web.create_app(state, lambda: NOW), BOUND) as (host, port):
            began = time.monotonic()
            with socket.create_connection((host, port)) as silent:
                silent.settimeout(5)
                assert silent.recv(1) == b""
            seconds = time.monotonic() - began
        assert BOUND <= seconds < BOUND + 1.5

    def test_slow_request_body_is_dropped(self, state: web.State) -> None:
        """A client trickling a body its request announced is cut off at the bound."""
        with serving_as_daemon(web.create_app(state, lambda: NOW), BOUND) as (host, port):
            began = time.monotonic()
            slow = socket.create_connection((host, port))
            slow.sendall(b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
            seconds, answer = until_closed(slow, began=began)
            slow.close()
        assert BOUND <= seconds < BOUND + 1.5
        assert answer.startswith(b"HTTP/1.1 405 ")  # answered at once, then cut off all the same

    def test_keep_alive_outlasts_the_bound(self, state: web.State) -> None:
        """A kept-alive connection idles longer than the bound between requests, and lives on.

        The wait between requests is uvicorn's keep-alive timeout (5 s), not the bound.
        """
        with serving_as_daemon(web.create_app(state, lambda: NOW), BOUND) as (host, port):
            connection = http.client.HTTPConnection(host, port, timeout=5)
            connection.connect()
            first = connection.sock
            statuses = []
            for pause in (1.5 * BOUND, 0):
                connection.request("GET", "/healthz")
                with connection.getresponse() as response:
                    response.read()
                    statuses.append(response.status)
                time.sleep(pause)
            same = connection.sock is first  # http.client would have opened another
            connection.close()
        assert statuses == [200, 200]
        assert same

    @pytest.mark.parametrize(
        ("method", "path"),
        [("GET", "/"), ("POST", "/"), ("GET", "/feeds/alpha.ics"), ("POST", "/feeds/alpha.ics"),
         ("PUT", "/healthz"), ("GET", "/nowhere")],
    )  # fmt: skip
    def test_malformed_chunked_body_is_400(
        self, state: web.State, caplog: pytest.LogCaptureFixture, method: str, path: str
    ) -> None:
        """A bad chunk-size line answers 400, logged as one short warning with no traceback."""
        request = f"{method} {path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        with serving_as_daemon(web.create_app(state, lambda: NOW)) as address:
            with socket.create_connection(address, timeout=5) as sock:
                sock.sendall(request.encode() + b"zz\r\nabc\r\n0\r\n\r\n")
                answer = b"".join(iter(lambda: sock.recv(65536), b""))
            logged = warnings_and_worse(caplog)
        assert answer.startswith(b"HTTP/1.1 400 ")
        assert [r.getMessage() for r in logged] == ["Invalid HTTP request received."]
        assert not any(r.exc_info for r in logged)

    def test_malformed_chunk_after_the_answer_closes(
        self, state: web.State, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A bad chunk after the answer closes the connection, with one short warning."""
        request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        with serving_as_daemon(web.create_app(state, lambda: NOW)) as address:
            with socket.create_connection(address, timeout=5) as sock:
                sock.sendall(request)
                assert whole_answer(sock).startswith(b"HTTP/1.1 200 ")
                sock.sendall(b"zz\r\nabc\r\n0\r\n\r\n")
                rest = b"".join(iter(lambda: sock.recv(65536), b""))
            logged = warnings_and_worse(caplog)
        assert rest == b""
        assert [r.getMessage() for r in logged] == ["Invalid HTTP request received."]
        assert not any(r.exc_info for r in logged)


def test_connections_are_a_quarter_of_the_open_files() -> None:
    """The cap is a quarter of the soft open-files limit, between 16 and 10,000."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert httpserver.connections_at_most() == max(16, min(10_000, soft // 4))


def test_the_backlog_follows_the_cap(state: web.State) -> None:
    """The listen backlog is a quarter of the cap, 8 to 128: accepting cannot exhaust files."""
    made = httpserver.config(web.create_app(state, lambda: NOW))
    assert made.backlog == max(8, min(128, httpserver.connections_at_most() // 4))
    assert (made.access_log, made.server_header, made.ws) == (False, False, "none")


def test_raising_the_file_limit_never_lowers_it() -> None:
    """Raising the limit leaves a soft limit at least as high as before, never above the hard."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        raised = httpserver.raise_file_limit()
        assert raised >= soft
        assert hard == resource.RLIM_INFINITY or raised <= hard
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
