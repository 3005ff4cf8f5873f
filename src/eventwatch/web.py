"""The ASGI app: the feeds, the index page and the health check."""

from __future__ import annotations

import email.utils
import gzip
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from eventwatch import __version__, pages

if TYPE_CHECKING:
    from collections.abc import Callable

    from starlette.requests import Request

    from eventwatch.feeds import Feed
    from eventwatch.publication import Publication

_GZIP_KEPT = 16  # compressed bodies kept, newest first


@dataclass
class State:
    """What the app serves; the daemon replaces ``publication`` when calendars change."""

    publication: Publication
    base_url: str
    max_age: int
    gzip: bool
    last_reload: datetime
    last_reload_error: str | None = None
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


def not_modified(request: Request, etag: str, last_modified: datetime | None) -> bool:
    """Whether the client's copy is current (If-None-Match wins over If-Modified-Since)."""
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None:
        return _matches(if_none_match, etag)
    since = request.headers.get("if-modified-since")
    if since is None or last_modified is None:
        return False
    try:
        stamp = email.utils.parsedate_to_datetime(since)
    except (TypeError, ValueError):
        return False
    if stamp.tzinfo is None:
        return False
    return last_modified <= stamp


def create_app(state: State, clock: Callable[[], datetime]) -> Starlette:
    """The app serving ``state``; ``clock`` gives the time the index page lists events from."""

    async def feed(request: Request) -> Response:
        name = request.path_params["name"]
        categories = frozenset(request.query_params.getlist("category"))
        publication = state.publication
        found = (
            await run_in_threadpool(publication.feed, name, categories)
            if categories
            else publication.feed(name)
        )
        if found is None:
            return PlainTextResponse(f"no calendar {name!r}\n", status_code=404)
        use_gzip = state.gzip and accepts_gzip(request.headers.get("accept-encoding", ""))
        etag = f'{found.etag[:-1]}-gzip"' if use_gzip else found.etag
        headers = {
            "ETag": etag,
            "Cache-Control": f"public, max-age={state.max_age}",
            "Content-Disposition": f'inline; filename="{name}.ics"',
        }
        if state.gzip:
            headers["Vary"] = "Accept-Encoding"
        if found.last_modified is not None:
            headers["Last-Modified"] = email.utils.format_datetime(found.last_modified, usegmt=True)
        if not_modified(request, etag, found.last_modified):
            return Response(status_code=304, headers=headers)
        body = found.body
        if use_gzip:
            body = await run_in_threadpool(state.compressed, found)
            headers["Content-Encoding"] = "gzip"
        return Response(body, media_type="text/calendar; charset=utf-8", headers=headers)

    async def index(request: Request) -> Response:
        del request
        page = await run_in_threadpool(pages.render, state.publication, state.base_url, clock())
        return HTMLResponse(page, headers={"Cache-Control": "no-cache"})

    async def healthz(request: Request) -> Response:
        del request
        publication = state.publication
        body = {
            "status": "degraded" if state.last_reload_error else "ok",
            "version": __version__,
            "calendars": len(publication.calendars),
            "events": publication.event_count,
            "last_reload": state.last_reload.astimezone(UTC).isoformat(),
            "last_reload_error": state.last_reload_error,
        }
        return JSONResponse(body, headers={"Cache-Control": "no-store"})

    return Starlette(
        routes=[
            Route("/", index, methods=["GET", "HEAD"]),
            Route("/feeds/{name}.ics", feed, methods=["GET", "HEAD"]),
            Route("/healthz", healthz, methods=["GET", "HEAD"]),
        ],
    )
