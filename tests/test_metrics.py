"""/metrics: every counter and gauge of one daemon, in the Prometheus text format."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from eventwatch.errors import OperationError
from eventwatch.metrics import Metrics

from .helpers import metric


def exposed(metrics: Metrics) -> str:
    """The exposition as text, as a scrape reads it."""
    return metrics.exposition().decode()


def families(metrics: Metrics) -> dict[str, str]:
    """Each metric family in the exposition, with its type."""
    return {f.name: f.type for f in text_string_to_metric_families(exposed(metrics))}


def test_every_metric_is_exposed_with_its_type() -> None:
    """A fresh daemon's scrape lists each counter, histogram and gauge by name and type."""
    assert families(Metrics()) == {
        "eventwatch_delivery_attempts": "counter",
        "eventwatch_delivery_failures": "counter",
        "eventwatch_delivery_lateness_seconds": "histogram",
        "eventwatch_feed_requests": "counter",
        "eventwatch_render_seconds": "histogram",
        "eventwatch_last_reload_timestamp_seconds": "gauge",
        "eventwatch_last_reload_success": "gauge",
        "eventwatch_events": "gauge",
        "eventwatch_calendars": "gauge",
    }


def test_the_content_type_is_prometheus_text() -> None:
    """The scrape is served as Prometheus text in UTF-8, not as OpenMetrics."""
    assert Metrics.content_type.startswith("text/plain; version=")
    assert Metrics.content_type.endswith("; charset=utf-8")


def test_delivery_attempts_start_at_zero_for_each_result() -> None:
    """sent, retry and failed are there from the start, so that a rate has a series to work on."""
    text = exposed(Metrics())
    for result in ("sent", "retry", "failed"):
        assert metric(text, "eventwatch_delivery_attempts_total", result=result) == 0


def test_counters_count() -> None:
    """An attempt or a failure counted shows in the next scrape under its label."""
    metrics = Metrics()
    metrics.attempts.labels("sent").inc()
    metrics.attempts.labels("sent").inc()
    metrics.failures.labels("connection").inc()
    text = exposed(metrics)
    assert metric(text, "eventwatch_delivery_attempts_total", result="sent") == 2
    assert metric(text, "eventwatch_delivery_failures_total", reason="connection") == 1


def test_feed_requests_are_counted_by_status_code() -> None:
    """Each feed response counts under its status code, each code apart."""
    metrics = Metrics()
    for code in (200, 304, 200):
        metrics.feed_request(code)
    text = exposed(metrics)
    assert metric(text, "eventwatch_feed_requests_total", code="200") == 2
    assert metric(text, "eventwatch_feed_requests_total", code="304") == 1


def test_lateness_is_counted_in_buckets_up_to_six_hours() -> None:
    """A reminder sent 0.3 s late falls in the 0.5 s bucket; the last finite bucket is 6 h."""
    metrics = Metrics()
    metrics.lateness.observe(0.3)
    text = exposed(metrics)
    name = "eventwatch_delivery_lateness_seconds_bucket"
    assert metric(text, name, le="0.25") == 0
    assert metric(text, name, le="0.5") == 1
    assert metric(text, name, le="21600.0") == 1


def test_a_reload_records_when_and_whether_it_succeeded() -> None:
    """A failed reload sets success to 0 and the time; the next good one sets it back to 1."""
    metrics = Metrics()
    metrics.reloaded(1_780_000_000.0, success=False)
    text = exposed(metrics)
    assert metric(text, "eventwatch_last_reload_timestamp_seconds") == 1_780_000_000.0
    assert metric(text, "eventwatch_last_reload_success") == 0
    metrics.reloaded(1_780_000_060.0, success=True)
    assert metric(exposed(metrics), "eventwatch_last_reload_success") == 1


def test_what_is_served_is_counted() -> None:
    """The calendars and events loaded are two gauges."""
    metrics = Metrics()
    metrics.loaded(calendars=2, events=31)
    text = exposed(metrics)
    assert (metric(text, "eventwatch_calendars"), metric(text, "eventwatch_events")) == (2, 31)


def test_reminders_by_status_are_read_from_the_ledger_at_each_scrape() -> None:
    """The counts are the ledger's at the time of the scrape, not a second tally."""
    counts = {"pending": 3, "sent": 1}
    metrics = Metrics()
    metrics.watch_ledger(lambda: counts)
    text = exposed(metrics)
    assert metric(text, "eventwatch_ledger_up") == 1
    assert metric(text, "eventwatch_reminders", status="pending") == 3
    counts.update(pending=2, sent=2)
    assert metric(exposed(metrics), "eventwatch_reminders", status="sent") == 2


def test_a_ledger_that_does_not_answer_is_down_not_an_error() -> None:
    """When the ledger cannot be read, the scrape says ledger_up 0 and shows no reminder counts."""

    def unreadable() -> dict[str, int]:
        raise OperationError("database is locked")

    metrics = Metrics()
    metrics.watch_ledger(unreadable)
    assert metric(exposed(metrics), "eventwatch_ledger_up") == 0
    assert "eventwatch_reminders" not in families(metrics)


def test_no_created_series() -> None:
    """No ``*_created`` line per counter: the start time is in the journal, not in each scrape."""
    assert "_created" not in exposed(Metrics())


def test_each_daemon_has_its_own_registry() -> None:
    """Two Metrics count apart, as two daemons in one test process must."""
    first, second = Metrics(), Metrics()
    first.feed_request(200)
    assert metric(exposed(first), "eventwatch_feed_requests_total", code="200") == 1
    assert "eventwatch_feed_requests_total{" not in exposed(second)
