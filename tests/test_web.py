"""The HTTP server, spoken to over loopback: feeds, caching, compression, page and health."""

from __future__ import annotations

import email.utils
import gzip
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from eventwatch import web
from eventwatch.errors import OperationError
from eventwatch.metrics import Metrics
from eventwatch.reminders import Health

from .helpers import NOW, published, serving

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


@pytest.fixture
def state(tmp_path: Path) -> Iterator[web.State]:
    """A publication of the two calendars, with revisions in a real state database."""
    with published(tmp_path) as made:
        yield made


@pytest.fixture
def client(state: web.State) -> Iterator[httpx.Client]:
    """An HTTP client bound to the real server serving ``state``."""
    with serving(web.create_app(state, lambda: NOW)) as url, httpx.Client(base_url=url) as http:
        yield http


def plain(client: httpx.Client, path: str, **headers: Any) -> httpx.Response:  # noqa: ANN401
    """GET without asking for compression (httpx asks for gzip by default)."""
    return client.get(path, headers={"Accept-Encoding": "identity", **headers})


class TestFeeds:
    """Feed responses."""

    def test_feed_headers(self, client: httpx.Client, state: web.State) -> None:
        """Type, strong ETag, Last-Modified, caching and file name are set."""
        response = plain(client, "/feeds/alpha.ics")
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/calendar; charset=utf-8"
        assert response.headers["etag"] == state.publication.rendered["alpha"].etag
        assert not response.headers["etag"].startswith("W/")
        assert response.headers["cache-control"] == "public, max-age=300"
        assert response.headers["content-disposition"] == 'inline; filename="alpha.ics"'
        assert email.utils.parsedate_to_datetime(response.headers["last-modified"]) == NOW
        assert "content-encoding" not in response.headers
        assert response.content == state.publication.rendered["alpha"].body

    def test_all_feed_holds_every_calendar(self, client: httpx.Client) -> None:
        """The all feed has every event of every calendar."""
        body = plain(client, "/feeds/all.ics").text
        assert body.count("BEGIN:VEVENT") == 4
        assert "UID:beta/one@eventwatch" in body

    def test_if_none_match_gives_304(self, client: httpx.Client) -> None:
        """A client holding the current ETag gets 304 with no body.

        It carries what RFC 9110 (15.4.5) lists for a 304 and no representation metadata.
        """
        first = plain(client, "/feeds/alpha.ics")
        etag = first.headers["etag"]
        again = plain(client, "/feeds/alpha.ics", **{"If-None-Match": etag})
        assert again.status_code == 304
        assert again.content == b""
        assert again.headers["etag"] == etag
        assert again.headers["cache-control"] == first.headers["cache-control"]
        assert again.headers["vary"] == "Accept-Encoding"
        assert "content-disposition" not in again.headers
        assert "last-modified" not in again.headers

    def test_weak_and_listed_etags_match(self, client: httpx.Client) -> None:
        """If-None-Match compares weakly and accepts a list."""
        etag = plain(client, "/feeds/alpha.ics").headers["etag"]
        listed = plain(client, "/feeds/alpha.ics", **{"If-None-Match": f'"other", W/{etag}'})
        assert listed.status_code == 304

    def test_stale_etag_gives_200(self, client: httpx.Client) -> None:
        """An old ETag gets the full feed."""
        response = plain(client, "/feeds/alpha.ics", **{"If-None-Match": '"old"'})
        assert response.status_code == 200

    def test_if_modified_since(self, client: httpx.Client) -> None:
        """Not modified since the last change gives 304; an earlier date gives the feed."""
        stamp = email.utils.format_datetime(NOW, usegmt=True)
        earlier = email.utils.format_datetime(NOW - timedelta(seconds=1), usegmt=True)
        assert plain(client, "/feeds/alpha.ics", **{"If-Modified-Since": stamp}).status_code == 304
        assert (
            plain(client, "/feeds/alpha.ics", **{"If-Modified-Since": earlier}).status_code == 200
        )
        assert (
            plain(client, "/feeds/alpha.ics", **{"If-Modified-Since": "garbage"}).status_code == 200
        )

    def test_if_none_match_wins_over_if_modified_since(self, client: httpx.Client) -> None:
        """A stale ETag gets the feed even when the date says not modified."""
        stamp = email.utils.format_datetime(NOW, usegmt=True)
        headers = {"If-None-Match": '"old"', "If-Modified-Since": stamp}
        assert plain(client, "/feeds/alpha.ics", **headers).status_code == 200

    def test_head_has_headers_and_no_body(self, client: httpx.Client, state: web.State) -> None:
        """HEAD answers like GET without the body."""
        response = client.head("/feeds/alpha.ics", headers={"Accept-Encoding": "identity"})
        assert response.status_code == 200
        assert response.content == b""
        assert response.headers["etag"] == state.publication.rendered["alpha"].etag
        assert int(response.headers["content-length"]) == len(
            state.publication.rendered["alpha"].body
        )

    def test_gzip_only_when_asked(self, client: httpx.Client, state: web.State) -> None:
        """gzip is used when the client accepts it, with its own ETag, and never otherwise."""
        body = state.publication.rendered["alpha"].body
        raw = client.get("/feeds/alpha.ics", headers={"Accept-Encoding": "gzip"})
        assert raw.headers["content-encoding"] == "gzip"
        assert raw.headers["vary"] == "Accept-Encoding"
        assert raw.content == body  # httpx decodes it
        assert raw.headers["etag"] != state.publication.rendered["alpha"].etag
        refused = client.get("/feeds/alpha.ics", headers={"Accept-Encoding": "gzip;q=0, identity"})
        assert "content-encoding" not in refused.headers

    def test_gzip_setting_off(self, client: httpx.Client, state: web.State) -> None:
        """With gzip off, even a client asking for it gets the plain feed."""
        state.gzip = False
        response = client.get("/feeds/alpha.ics", headers={"Accept-Encoding": "gzip"})
        assert "content-encoding" not in response.headers
        assert "vary" not in response.headers

    def test_gzip_is_deterministic(self, state: web.State) -> None:
        """The compressed body is the same bytes every time (no timestamp inside)."""
        feed = state.publication.rendered["alpha"]
        assert gzip.decompress(state.compressed(feed)) == feed.body
        assert gzip.compress(feed.body, compresslevel=6, mtime=0) == state.compressed(feed)

    @pytest.mark.parametrize(
        ("query", "uids"),
        [
            ("category=summit", ["alpha/past@eventwatch"]),
            (
                "category=summit&category=ministerial",
                ["alpha/past@eventwatch", "alpha/soon@eventwatch"],
            ),
            ("category=none", []),
        ],
    )
    def test_category_filter(self, client: httpx.Client, query: str, uids: list[str]) -> None:
        """Repeated categories filter with "any of"; no match gives an empty, valid feed."""
        body = plain(client, f"/feeds/all.ics?{query}").text
        found = [line[4:] for line in body.split("\r\n") if line.startswith("UID:")]
        assert found == uids
        assert body.startswith("BEGIN:VCALENDAR")
        assert body.endswith("END:VCALENDAR\r\n")

    def test_unknown_calendar_is_404(self, client: httpx.Client) -> None:
        """An unknown calendar gets a short plain-text 404."""
        response = plain(client, "/feeds/gamma.ics")
        assert (response.status_code, response.text) == (404, "no calendar 'gamma'\n")
        assert response.headers["content-type"].startswith("text/plain")

    @pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
    def test_other_methods_are_405(self, client: httpx.Client, method: str) -> None:
        """Only GET and HEAD are served, and the answer says so."""
        response = client.request(method, "/feeds/alpha.ics")
        assert response.status_code == 405
        assert set(response.headers["allow"].replace(" ", "").split(",")) == {"GET", "HEAD"}


class TestPages:
    """The index page and the health check."""

    def test_index_escapes_calendar_text(self, client: httpx.Client) -> None:
        """Text from calendar files is HTML-escaped."""
        page = client.get("/").text
        assert "<script>alert(1)</script>" not in page
        assert "Alpha &lt;script&gt;alert(1)&lt;/script&gt;" in page
        assert "Soon &lt;b&gt;" in page

    def test_index_has_subscribe_links(self, client: httpx.Client) -> None:
        """Each calendar has webcal, https and Google Calendar links built from public_url."""
        page = client.get("/").text
        assert 'href="webcal://cal.example.org/feeds/alpha.ics"' in page
        assert ">https://cal.example.org/feeds/alpha.ics</code>" in page
        assert (
            "calendar.google.com/calendar/render?cid=webcal%3A%2F%2Fcal.example.org%2Ffeeds%2Fbeta.ics"
            in page
        )

    def test_index_lists_upcoming_then_past(self, client: httpx.Client) -> None:
        """Upcoming events in start order, then recently past ones."""
        page = client.get("/").text
        upcoming, past = page.split("Recently past")
        assert upcoming.index("Soon") < upcoming.index("One") < upcoming.index("Later")
        assert "Past &amp; gone" in past
        assert "Past" not in upcoming.split("<h2>Upcoming</h2>")[1]

    def test_healthz(self, client: httpx.Client) -> None:
        """The health check counts calendars and events and reports the last reload."""
        body = client.get("/healthz").json()
        assert body["status"] == "ok"
        assert (body["calendars"], body["events"]) == (2, 4)
        assert body["last_reload"] == NOW.isoformat()
        assert body["last_reload_error"] is None


class TestHealthAndMetrics:
    """/healthz with the reminders' side, and /metrics."""

    def test_ledger_unreachable_is_503_degraded(self, state: web.State) -> None:
        """A ledger that does not answer makes the service degraded, HTTP 503."""

        def broken() -> Health:
            msg = "state/eventwatch.db: the state database does not answer: disk I/O error"
            raise OperationError(msg)

        state.health = broken
        with serving(web.create_app(state, lambda: NOW)) as url:
            answer = httpx.get(f"{url}/healthz")
        assert answer.status_code == 503
        body = answer.json()
        assert (body["status"], body["ledger"]) == ("degraded", "unreachable")
        assert "disk I/O error" in body["ledger_error"]

    def test_reminders_in_health(self, state: web.State) -> None:
        """Scheduler state, next reminder and counts come from the reminders' health."""
        due = datetime(2026, 7, 6, 6, tzinfo=UTC)
        state.health = lambda: Health("running", due, failed=2, pending=5)
        with serving(web.create_app(state, lambda: NOW)) as url:
            answer = httpx.get(f"{url}/healthz")
        assert answer.status_code == 200
        body = answer.json()
        assert body["scheduler"] == "running"
        assert body["next_reminder"] == "2026-07-06T06:00:00+00:00"
        assert (body["pending_reminders"], body["failed_reminders"]) == (5, 2)

    def test_failed_reload_is_503_degraded(self, state: web.State, client: httpx.Client) -> None:
        """A failed reload is reported, and the feeds are still served."""
        state.last_reload_error = "calendars/x.toml:3: events[0].start: bad"
        answer = client.get("/healthz")
        assert (answer.status_code, answer.json()["status"]) == (503, "degraded")
        assert plain(client, "/feeds/all.ics").status_code == 200

    def test_metrics_count_feed_requests_by_code(self, state: web.State) -> None:
        """Feed requests are counted by status code; the exposition parses as Prometheus text."""
        state.metrics = Metrics()
        state.metrics.watch_ledger(lambda: {"pending": 4, "sent": 2})
        with serving(web.create_app(state, lambda: NOW)) as url, httpx.Client(base_url=url) as http:
            etag = plain(http, "/feeds/all.ics").headers["ETag"]
            plain(http, "/feeds/all.ics", **{"If-None-Match": etag})
            plain(http, "/feeds/all.ics", **{"If-None-Match": etag})
            plain(http, "/feeds/nope.ics")
            answer = http.get("/metrics")
        assert answer.headers["content-type"].startswith("text/plain; version=")  # text format
        samples = {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(answer.text)
            for s in family.samples
        }
        requests = "eventwatch_feed_requests_total"
        assert samples[(requests, (("code", "200"),))] == 1
        assert samples[(requests, (("code", "304"),))] == 2
        assert samples[(requests, (("code", "404"),))] == 1
        assert samples[("eventwatch_reminders", (("status", "pending"),))] == 4
        assert samples[("eventwatch_ledger_up", ())] == 1

    def test_metrics_say_when_the_ledger_does_not_answer(self, state: web.State) -> None:
        """A failing ledger is eventwatch_ledger_up 0, not a failed scrape."""

        def broken() -> dict[str, int]:
            msg = "no database"
            raise OperationError(msg)

        state.metrics = Metrics()
        state.metrics.watch_ledger(broken)
        with serving(web.create_app(state, lambda: NOW)) as url:
            answer = httpx.get(f"{url}/metrics")
        assert answer.status_code == 200
        assert "eventwatch_ledger_up 0.0" in answer.text


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("gzip", True),
        ("gzip, deflate, br", True),
        ("GZIP;q=0.5", True),
        ("gzip;q=0", False),
        ("*", True),
        ("*;q=0", False),
        ("br, *;q=0", False),
        ("identity", False),
        ("", False),
        ("gzip;q=bogus", False),
    ],
)
def test_accepts_gzip(header: str, expected: bool) -> None:  # noqa: FBT001
    """Accept-Encoding is read with its weights."""
    assert web.accepts_gzip(header) is expected
