"""The only prometheus-client import: what ``/metrics`` says, in the Prometheus text format.

Counters and histograms are updated where things happen (a delivery, a feed request, a
render); the reminders by status are read from the ledger at each scrape, so they are the
ledger's truth and not a second count that could drift from it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from eventwatch.errors import OperationError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

    from prometheus_client.metrics_core import Metric

# The *_created series (a start time per counter) add a line per counter that no dashboard
# here uses; the process start is in the journal.
disable_created_metrics()  # type: ignore[no-untyped-call]

_LATENESS_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 6 * 3600)
_RENDER_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class _Ledger(Collector):
    """Reminders by status and whether the ledger answers, read at each scrape."""

    def __init__(self, counts: Callable[[], Mapping[str, int]]) -> None:
        self.counts = counts

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("eventwatch_ledger_up", "1 if the ledger answered this scrape")
        try:
            counts = self.counts()
        except OperationError:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        family = GaugeMetricFamily(
            "eventwatch_reminders", "Reminders in the ledger by status", labels=["status"]
        )
        for status, count in sorted(counts.items()):
            family.add_metric([status], count)
        yield family


class Metrics:
    """Every metric of one daemon, in a registry of its own (tests run several)."""

    content_type = CONTENT_TYPE_LATEST
    """The media type of ``exposition``."""

    def __init__(self) -> None:
        """Create the metrics; the ledger's are added by ``watch_ledger``."""
        self.registry = CollectorRegistry()
        registry = self.registry
        self.attempts = Counter(
            "eventwatch_delivery_attempts",
            "Reminder delivery attempts by result (sent, retry, failed)",
            ["result"],
            registry=registry,
        )
        self.failures = Counter(
            "eventwatch_delivery_failures",
            "Failed delivery attempts by reason",
            ["reason"],
            registry=registry,
        )
        self.lateness = Histogram(
            "eventwatch_delivery_lateness_seconds",
            "Seconds from a reminder's due instant until the server accepted it",
            buckets=_LATENESS_BUCKETS,
            registry=registry,
        )
        self.feed_requests = Counter(
            "eventwatch_feed_requests",
            "Feed requests by HTTP status code",
            ["code"],
            registry=registry,
        )
        self.render = Histogram(
            "eventwatch_render_seconds",
            "Seconds to render every feed after a start or a reload",
            buckets=_RENDER_BUCKETS,
            registry=registry,
        )
        self.last_reload = Gauge(
            "eventwatch_last_reload_timestamp_seconds",
            "Unix time of the last attempt to load settings and calendars",
            registry=registry,
        )
        self.last_reload_success = Gauge(
            "eventwatch_last_reload_success",
            "1 if the last load of settings and calendars succeeded, 0 if the last good ones "
            "are still served",
            registry=registry,
        )
        self.events = Gauge("eventwatch_events", "Events loaded", registry=registry)
        self.calendars = Gauge("eventwatch_calendars", "Calendars loaded", registry=registry)
        for result in ("sent", "retry", "failed"):
            self.attempts.labels(result)
        self._feed_children: dict[int, Counter] = {}

    def feed_request(self, code: int) -> None:
        """Count one feed response with status ``code`` (the children are kept: a hot path)."""
        child = self._feed_children.get(code)
        if child is None:
            child = self._feed_children[code] = self.feed_requests.labels(str(code))
        child.inc()

    def watch_ledger(self, counts: Callable[[], Mapping[str, int]]) -> None:
        """Report reminders by status from ``counts`` at each scrape."""
        self.registry.register(_Ledger(counts))

    def reloaded(self, at: float, *, success: bool) -> None:
        """Record a load of settings and calendars at Unix time ``at``."""
        self.last_reload.set(at)
        self.last_reload_success.set(1 if success else 0)

    def loaded(self, calendars: int, events: int) -> None:
        """Record what is being served."""
        self.calendars.set(calendars)
        self.events.set(events)

    def exposition(self) -> bytes:
        """Every metric in the Prometheus text format."""
        return generate_latest(self.registry)
