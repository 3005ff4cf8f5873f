"""The ASGI app: the feeds, the index page and the health check."""

from __future__ import annotations

import email.utils
import functools
import gzip
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers, QueryParams
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from eventwatch import __version__, pages
from eventwatch.errors import OperationError

if TYPE_CHECKING:
    from collections.abc import Callable

    from starlette.requests import Request
    from starlette.types import ASGIApp, Receive, Scope, Send

    from eventwatch.feeds import Feed
    from eventwatch.metrics import Metrics
    from eventwatch.publication import Publication
    from eventwatch.reminders import Health

_GZIP_KEPT = 16  # compressed bodies kept, newest first
_HEADERS_KEPT = 256  # header sets kept (feeds x gzip x filters)
_CALENDAR = b"text/calendar; charset=utf-8"
_READ = frozenset({"GET", "HEAD"})
_Headers = list[tuple[bytes, bytes]]


@dataclass
class State:
    """What the app serves; the daemon replaces ``publication`` when calendars change."""

    publication: Publication
    base_url: str
    max_age: int
    gzip: bool
    last_reload: datetime
    last_reload_error: str | None = None
    health: Callable[[], Health] | None = None
    """The reminders' health, read in a worker; raises ``OperationError`` if the ledger fails."""
    metrics: Metrics | None = None
    _compressed: dict[str, bytes] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def compressed(self, feed: Feed) -> bytes:
        """The gzip form of ``feed``, made once per feed and kept while it is recent."""
        with self._lock:
            found = self._compressed.get(feed.etag)
        if found is not None:
            return found
        # mtime=0 keeps the bytes the same on every instance, like the uncompressed feed.
        body = gzip.compress(feed.body, compresslevel=6, mtime=0)
        with self._lock:
            self._compressed[feed.etag] = body
            while len(self._compressed) > _GZIP_KEPT:
                self._compressed.pop(next(iter(self._compressed)))
        return body


def accepts_gzip(header: str) -> bool:
    """Whether an Accept-Encoding value admits gzip (``gzip;q=0`` and ``*;q=0`` refuse it)."""
    weights: dict[str, float] = {}
    for item in header.split(","):
        coding, *params = (part.strip() for part in item.split(";"))
        weight = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        if coding:
            weights[coding.lower()] = weight
    return weights.get("gzip", weights.get("x-gzip", weights.get("*", 0.0))) > 0


def _matches(header: str, etag: str) -> bool:
    """If-None-Match uses weak comparison: ``W/"x"`` matches ``"x"``."""
    candidates = {tag.strip().removeprefix("W/") for tag in header.split(",")}
    return "*" in candidates or etag in candidates


def not_modified(
    if_none_match: str | None,
    if_modified_since: str | None,
    etag: str,
    last_modified: datetime | None,
) -> bool:
    """Whether the client's copy is current (If-None-Match wins over If-Modified-Since)."""
    if if_none_match is not None:
        return _matches(if_none_match, etag)
    if if_modified_since is None or last_modified is None:
        return False
    try:
        stamp = email.utils.parsedate_to_datetime(if_modified_since)
    except (TypeError, ValueError):
        return False
    if stamp.tzinfo is None:
        return False
    return last_modified <= stamp


class _Feeds:
    """The feed endpoint as a plain ASGI app: feeds are polled often, so it skips the framework.

    Starlette still routes everything else (and answers 405 for other methods on feeds);
    requests and query strings are read with its data structures, bodies sent as ASGI says.
    """

    def __init__(self, state: State) -> None:
        self.state = state
        self._headers: dict[tuple[str, str, bool, int, bool], tuple[_Headers, _Headers]] = {}

    def _fixed_headers(self, feed: Feed, name: str, use_gzip: bool) -> tuple[_Headers, _Headers]:  # noqa: FBT001
        """The headers of a 304 and those a 200 adds to them, built once per feed and kept.

        A 304 carries ETag, Cache-Control and Vary only: RFC 9110 (15.4.5) asks a server not
        to repeat representation metadata there, and every header costs on the busiest path.
        """
        state = self.state
        key = (feed.etag, name, use_gzip, state.max_age, state.gzip)
        found = self._headers.get(key)
        if found is not None:
            return found
        etag = f'{feed.etag[:-1]}-gzip"' if use_gzip else feed.etag
        short = [
            (b"etag", etag.encode()),
            (b"cache-control", f"public, max-age={state.max_age}".encode()),
        ]
        if state.gzip:
            short.append((b"vary", b"Accept-Encoding"))
        full = [*short, (b"content-disposition", f'inline; filename="{name}.ics"'.encode())]
        if feed.last_modified is not None:
            stamp = email.utils.format_datetime(feed.last_modified, usegmt=True)
            full.append((b"last-modified", stamp.encode()))
        if len(self._headers) > _HEADERS_KEPT:
            self._headers.clear()
        self._headers[key] = (short, full)
        return short, full

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        name = path.removeprefix("/feeds/").removesuffix(".ics")
        query = scope.get("query_string", b"")
        categories = frozenset(QueryParams(query).getlist("category")) if query else frozenset()
        publication = self.state.publication
        found = (
            await run_in_threadpool(publication.feed, name, categories)
            if categories
            else publication.feed(name)
        )
        metrics = self.state.metrics
        if found is None:
            missing = PlainTextResponse(f"no calendar {name!r}\n", status_code=404)
            await missing(scope, receive, send)
            if metrics is not None:
                metrics.feed_request(404)
            return
        request = Headers(scope=scope)
        use_gzip = self.state.gzip and accepts_gzip(request.get("accept-encoding", ""))
        short, headers = self._fixed_headers(found, name, use_gzip)
        etag = short[0][1].decode()
        fresh = not_modified(
            request.get("if-none-match"),
            request.get("if-modified-since"),
            etag,
            found.last_modified,
        )
        if fresh:
            await send({"type": "http.response.start", "status": 304, "headers": short})
            await send({"type": "http.response.body", "body": b""})
            if metrics is not None:
                metrics.feed_request(304)
            return
        body = await run_in_threadpool(self.state.compressed, found) if use_gzip else found.body
        extra = [(b"content-type", _CALENDAR), (b"content-length", str(len(body)).encode())]
        if use_gzip:
            extra.append((b"content-encoding", b"gzip"))
        await send({"type": "http.response.start", "status": 200, "headers": headers + extra})
        await send(
            {"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body},
        )
        if metrics is not None:
            metrics.feed_request(200)


def _reminders_health(state: State) -> dict[str, object]:
    """The reminders' part of the health check; the ledger is asked in a worker."""
    if state.health is None:
        return {}
    try:
        found = state.health()
    except OperationError as exc:
        return {"ledger": "unreachable", "ledger_error": str(exc)}
    next_due = found.next_due.astimezone(UTC).isoformat() if found.next_due else None
    return {
        "ledger": "ok",
        "scheduler": found.scheduler,
        "next_reminder": next_due,
        "pending_reminders": found.pending,
        "failed_reminders": found.failed,
        "sending_error": found.problem,
    }


def _metrics(state: State, request: Request) -> Response:
    """Prometheus text format; a plain function, so Starlette runs it in a worker."""
    del request
    if state.metrics is None:
        return PlainTextResponse("metrics are off\n", status_code=404)
    return Response(
        state.metrics.exposition(),
        media_type=state.metrics.content_type,
        headers={"Cache-Control": "no-store"},
    )


def create_app(state: State, clock: Callable[[], datetime]) -> ASGIApp:
    """The app serving ``state``; ``clock`` gives the time the index page lists events from."""
    feeds = _Feeds(state)

    pages_made: dict[tuple[datetime, str, datetime], bytes] = {}

    def page() -> bytes:
        """The index page, made at most once a minute per publication (it lists by time)."""
        minute = clock().replace(second=0, microsecond=0)
        key = (state.publication.built, state.base_url, minute)
        found = pages_made.get(key)
        if found is None:
            found = pages.render(state.publication, state.base_url, minute)
            pages_made.clear()
            pages_made[key] = found
        return found

    async def index(request: Request) -> Response:
        del request
        body = await run_in_threadpool(page)
        return HTMLResponse(body, headers={"Cache-Control": "no-cache"})

    async def healthz(request: Request) -> Response:
        del request
        publication = state.publication
        body: dict[str, object] = {
            "status": "ok",
            "version": __version__,
            "calendars": len(publication.calendars),
            "events": publication.event_count,
            "last_reload": state.last_reload.astimezone(UTC).isoformat(),
            "last_reload_error": state.last_reload_error,
        }
        body |= await run_in_threadpool(_reminders_health, state)
        degraded = (
            state.last_reload_error is not None
            or body.get("ledger") == "unreachable"
            or body.get("sending_error") is not None
        )
        if degraded:
            body["status"] = "degraded"
        return JSONResponse(
            body, status_code=503 if degraded else 200, headers={"Cache-Control": "no-store"}
        )

    framework = Starlette(
        routes=[
            Route("/", index, methods=["GET", "HEAD"]),
            Route("/feeds/{name}.ics", feeds, methods=["GET", "HEAD"]),
            Route("/healthz", healthz, methods=["GET", "HEAD"]),
            Route("/metrics", functools.partial(_metrics, state), methods=["GET", "HEAD"]),
        ],
    )
    # No redirect for a trailing slash: the four addresses have none, and Starlette would build
    # the redirect from the client's Host header and answer 307 to /feeds/%2e%2e.ics/ too.
    framework.router.redirect_slashes = False

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] in _READ
            and scope["path"].startswith("/feeds/")
            and scope["path"].endswith(".ics")
            and scope["path"].count("/") == 2  # noqa: PLR2004 - /feeds/NAME.ics, nothing deeper
        ):
            await feeds(scope, receive, send)
        else:
            await framework(scope, receive, send)

    return app
