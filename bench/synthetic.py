"""Synthetic calendars for the benchmarks: a realistic mix of events, the same every run."""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, timedelta

from eventwatch.models import Calendar, Event

ZONES = ("Europe/Brussels", "America/New_York")
WORDS = (
    "ministers", "summit", "défense", "Brüssel", "Ankara", "Türkiye", "délégation", "agenda",
    "deterrence", "KFOR", "Kyiv", "Київ", "sécurité", "cooperation", "industrial", "€5bn",
)  # fmt: skip
STAMP = datetime(2026, 1, 1, tzinfo=UTC)


def description(rng: random.Random) -> str:
    """About 300 characters with commas, semicolons and non-ASCII text."""
    parts: list[str] = []
    while sum(len(p) for p in parts) < 290:
        words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 7)))
        parts.append(words + rng.choice([", ", "; ", ". "]))
    return "".join(parts).strip()


def events(count: int, seed: int = 7, *, lazily: bool = False) -> Iterable[dict[str, object]]:
    """``count`` event tables: timed in two zones, every tenth all-day (a list, or one by one)."""
    made = _tables(count, seed)
    return made if lazily else list(made)


def _tables(count: int, seed: int) -> Iterator[dict[str, object]]:
    rng = random.Random(seed)  # noqa: S311 - repeatable test data, not security
    first = date(2026, 1, 1)
    for n in range(count):
        day = first + timedelta(days=n % 730)
        event: dict[str, object] = {
            "id": f"event-{n}",
            "title": f"Meeting {n}: {rng.choice(WORDS)}, {rng.choice(WORDS)}",
            "description": description(rng),
            "location": f"Room {n % 50}; {rng.choice(WORDS)}",
            "categories": [rng.choice(["summit", "ministerial", "defence"])],
        }
        if n % 10 == 0:
            event["start"] = day
        else:
            start = datetime(day.year, day.month, day.day, 8 + n % 9, (n % 4) * 15)
            event["start"] = start
            event["end"] = start + timedelta(hours=1, minutes=30)
            event["timezone"] = ZONES[n % 2]
        yield event


def calendar(count: int) -> Calendar:
    """One calendar of ``count`` synthetic events, validated one event at a time.

    Building each record from its table as it is made keeps the input of every implementation
    to the records themselves, so peak memory measures what rendering adds.
    """
    records = [
        Event.model_validate({"calendar": "bench", "timezone": "Europe/Brussels", **table})
        for table in events(count, lazily=True)
    ]
    return Calendar.model_validate(
        {"id": "bench", "name": "Benchmark", "timezone": "Europe/Brussels", "events": records},
    )


def toml(count: int) -> str:
    """The same events as a calendar file (strings in JSON form, which TOML reads the same)."""
    return toml_of(events(count))


def toml_of(tables: Iterable[dict[str, object]]) -> str:
    """Event tables as a calendar file named Benchmark, in Brussels, with no reminders."""
    lines = ['name = "Benchmark"', 'timezone = "Europe/Brussels"', "", "[reminders]", "offsets = []"]
    for event in tables:
        lines.append("\n[[events]]")
        for key, value in event.items():
            if isinstance(value, str | list):
                rendered = json.dumps(value, ensure_ascii=False)
            else:
                rendered = value.isoformat()  # type: ignore[attr-defined]
            lines.append(f"{key} = {rendered}")
    return "\n".join(lines) + "\n"
