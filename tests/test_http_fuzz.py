"""The HTTP routes under arbitrary requests: raw bytes on a socket, to the daemon's own server.

Raw sockets rather than httpx, which would normalise the very paths under test. One server
serves every example of the module; each example checks the answer and what the server logged.
"""

from __future__ import annotations

import logging
import re
import socket
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING
from urllib.parse import quote

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from eventwatch import feeds, publication, web
from eventwatch.ledger import Ledger
from eventwatch.metrics import Metrics
from eventwatch.models import ReminderPolicy

from .helpers import NOW, calendars, serving_as_daemon

if TYPE_CHECKING:
    from collections.abc import Iterator


class _Records(logging.Handler):
    """Every record at WARNING or above, from any thread."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@dataclass(frozen=True)
class Server:
    """The address of the server under test and what it has logged."""

    address: tuple[str, int]
    log: _Records

    def status(self, request: bytes) -> int:
        """Send ``request``, read the answer to its end, and give its status code.

        Fails the test if the answer is not HTTP, or if the server logged an error or a
        traceback meanwhile (a warning, such as uvicorn's one line for a bad request, is fine).
        """
        already = len(self.log.records)
        with socket.create_connection(self.address, timeout=5) as sock:
            sock.sendall(request)
            answer = b"".join(iter(lambda: sock.recv(65536), b""))
        found = re.match(rb"HTTP/1\.1 (\d{3}) ", answer)
        assert found, f"not an HTTP answer: {answer[:80]!r}"
        logged = self.log.records[already:]
        bad = [r.getMessage() for r in logged if r.levelno >= logging.ERROR or r.exc_info]
        assert not bad, f"{request[:200]!r} logged {bad}"
        return int(found[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The daemon's server for the two test calendars, with metrics on, for the whole module."""
    ledger = Ledger.in_folder(tmp_path_factory.mktemp("fuzz") / "state")
    options = publication.Options(timedelta(hours=1), alarms=False, defaults=ReminderPolicy())
    built = publication.build(calendars(), options, ledger, feeds.Renderer(), NOW)
    state = web.State(built, "https://cal.example.org/", max_age=300, gzip=True, last_reload=NOW)
    state.metrics = Metrics()
    log = _Records()
    root = logging.getLogger()
    root.addHandler(log)
    try:
        with serving_as_daemon(web.create_app(state, lambda: NOW)) as address:
            yield Server(address, log)
    finally:
        root.removeHandler(log)
        ledger.close()


def request(method: bytes, target: bytes, headers: dict[bytes, bytes] | None = None) -> bytes:
    """A whole request, asking the server to close the connection after answering."""
    lines = [method + b" " + target + b" HTTP/1.1", b"Host: 127.0.0.1", b"Connection: close"]
    lines += [name + b": " + value for name, value in (headers or {}).items()]
    return b"\r\n".join(lines) + b"\r\n\r\n"


ROUTES = ["/", "/healthz", "/metrics", "/feeds/all.ics", "/feeds/alpha.ics", "/feeds/beta.ics"]
"""Every route, each with something to serve."""

_TOKEN = re.compile(rb"[-!#$%&'*+.^_`|~0-9A-Za-z]+")
"""A method h11 reads (RFC 9110's token); anything else is a request line it cannot parse."""

# The pieces of a path that climbs out of its folder, in the encodings servers have fallen
# for: plain, percent-encoded (either case), double-encoded, overlong UTF-8, full-width dots,
# backslashes, NUL; raw bytes that are not ASCII make a request line h11 refuses.
_CLIMBS = [
    "..", "%2e%2e", "%2E%2E", ".%2e", "%2e.", "%252e%252e", "%25252e%25252e", "%c0%ae%c0%ae",
    "%e0%80%ae%e0%80%ae", "%ef%bc%8e%ef%bc%8e", "..%00", "%00..", "..;", "...", "\\..",
    "..\\", "..%5c", "%5c..", "..%255c", "\u2025", "..\x00", "%u002e%u002e",
]  # fmt: skip
_SEPARATORS = ["/", "//", "%2f", "%2F", "%252f", "%c0%af", "%e0%80%af", "\\", "%5c", ""]
_INTO = [
    "", "config", "config/eventwatch.toml", "calendars/nato", "state/eventwatch.db",
    "etc/passwd", "alpha", "all", "healthz", "metrics", "%00",
]  # fmt: skip
_ENDS = ["", "/", ".ics", ".ics/", ".toml", "%2eics"]

climbing_paths = st.builds(
    lambda start, steps, into, end: start + "".join(steps) + into + end,
    st.sampled_from(["/", "/feeds/", "/feeds/alpha/", "//", "/healthz/", "/static/"]),
    st.lists(
        st.builds(str.__add__, st.sampled_from(_CLIMBS), st.sampled_from(_SEPARATORS)),
        min_size=1,
        max_size=4,
    ),
    st.sampled_from(_INTO),
    st.sampled_from(_ENDS),
)


@given(path=climbing_paths, method=st.sampled_from([b"GET", b"HEAD"]))
@example(path="/feeds/../config", method=b"GET")
@example(path="/feeds/%2e%2e%2fconfig/eventwatch.toml", method=b"GET")
@example(path="/feeds/%252e%252e%252fall.ics", method=b"GET")
@example(path="/feeds/..%5c..%5cconfig", method=b"GET")
@example(path="/feeds/%c0%ae%c0%ae/alpha.ics", method=b"GET")
@example(path="/feeds/%2e%2e.ics/", method=b"GET")
def test_climbing_paths_are_404(server: Server, path: str, method: bytes) -> None:
    """A path that climbs out of its folder, in any encoding, is not found (400 if unreadable)."""
    status = server.status(request(method, path.encode()))
    expected = {404} if path.isascii() and "\x00" not in path else {400}
    assert status in expected


_METHODS = [
    b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"OPTIONS", b"PATCH", b"TRACE", b"CONNECT",
    b"get", b"Head", b"PROPFIND", b"REPORT", b"MKCALENDAR", b"BREW", b"GET\x00", b"G ET",
]  # fmt: skip

methods = st.one_of(
    st.sampled_from(_METHODS),
    st.from_regex(_TOKEN, fullmatch=True),
    st.binary(min_size=1, max_size=12).filter(lambda b: b" " not in b and b"\r\n" not in b),
)


@given(method=methods, path=st.sampled_from(ROUTES))
def test_only_get_and_head_are_served(server: Server, method: bytes, path: str) -> None:
    """Each route answers GET and HEAD; any other method is 405, one h11 cannot read 400."""
    status = server.status(request(method, path.encode()))
    if not _TOKEN.fullmatch(method):
        assert status == 400
    elif method in {b"GET", b"HEAD"}:
        assert status == 200
    else:
        assert status == 405


# Header values h11 accepts: visible characters and obs-text, spaces inside.
_VALUE = st.text(st.characters(codec="latin-1", exclude_categories=["Cc"]), max_size=60).map(
    lambda text: text.strip(" ").encode("latin-1")
)
_DATES = [
    b"Fri, 01 May 2026 12:00:00 GMT", b"Fri, 01 May 2026 12:00:00 +9999", b"garbage",
    b"Mon, 01 Jan 0001 00:00:00 GMT", b"Fri, 31 Dec 99999 23:59:59 GMT", b"0", b"",
]  # fmt: skip
_TAGS = [b"*", b'W/"x"', b'"x", W/"y"', b",,,", b'"', b"W/"]
_RANGES = [b"bytes=0-10", b"bytes=-1", b"bytes=10-0", b"bytes=0-0,1-1,2-2", b"lines=1-2"]
_CODINGS = [b"gzip", b"gzip;q=nan", b"gzip;q=inf", b"*;q=-1", b"gzip;q=1e999", b";;;", b"x-gzip"]


def _header(name: bytes, samples: list[bytes]) -> st.SearchStrategy[dict[bytes, bytes]]:
    return st.one_of(st.sampled_from(samples), _VALUE).map(lambda value: {name: value})


conditional_headers = st.lists(
    st.one_of(
        _header(b"If-None-Match", _TAGS),
        _header(b"If-Modified-Since", _DATES),
        _header(b"Range", _RANGES),
        _header(b"Accept-Encoding", _CODINGS),
    ),
    max_size=4,
).map(lambda found: {name: value for pair in found for name, value in pair.items()})


@given(
    headers=conditional_headers,
    path=st.sampled_from(ROUTES),
    method=st.sampled_from([b"GET", b"HEAD"]),
)
def test_any_conditional_header_is_served(
    server: Server, headers: dict[bytes, bytes], path: str, method: bytes
) -> None:
    """If-None-Match, If-Modified-Since, Range and Accept-Encoding of any value: 200 or 304."""
    assert server.status(request(method, path.encode(), headers)) in {200, 304}


queries = st.one_of(
    st.text(max_size=80).map(lambda text: quote(text, safe="=&;+")),
    st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=80),
    st.lists(st.text(max_size=20), max_size=5).map(
        lambda names: "&".join("category=" + quote(name, safe="") for name in names)
    ),
)


@given(query=queries, path=st.sampled_from(ROUTES))
def test_any_query_is_served(server: Server, query: str, path: str) -> None:
    """Any query string, category filters included, is served: a feed filters, a page ignores."""
    assert server.status(request(b"GET", f"{path}?{query}".encode())) == 200


_NAMES = [
    b"Content-Length", b"Transfer-Encoding", b"Expect", b"Upgrade", b"Connection", b"Host",
    b"Content-Type", b"Cookie", b"Authorization", b"X-Forwarded-For", b"If-Match",
    b"If-Unmodified-Since", b"If-Range", b"TE", b"Trailer",
]  # fmt: skip

header_names = st.one_of(st.sampled_from(_NAMES), st.from_regex(_TOKEN, fullmatch=True))


@given(
    name=header_names,
    value=st.one_of(st.sampled_from([b"chunked", b"-1", b"websocket", b"100-continue"]), _VALUE),
    path=st.sampled_from(ROUTES),
)
def test_any_other_header_is_served_or_refused(
    server: Server, name: bytes, value: bytes, path: str
) -> None:
    """Any header besides, of any value, is served or refused as a bad request."""
    assert server.status(request(b"GET", path.encode(), {name: value})) in {200, 304, 400}
