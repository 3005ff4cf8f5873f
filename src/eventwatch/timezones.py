"""Pure: a zone's rules over a span of years, as the few yearly observances a VTIMEZONE needs.

Outlook accepts a VTIMEZONE only in the compact form (one STANDARD and one DAYLIGHT with yearly
RRULEs, as Windows describes zones), not the list of every transition other tools write. This
module finds the zone's transitions with zoneinfo and folds runs of years that follow the same
rule ("last Sunday of March at 02:00") into one observance each.
"""

from __future__ import annotations

import calendar
import functools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

_DAY = timedelta(days=1)
_WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")

UTC_NAMES = frozenset(
    {"UTC", "Etc/UTC", "Etc/UCT", "Etc/Universal", "Etc/Zulu", "UCT", "Universal", "Zulu"}
    | {"GMT", "Etc/GMT", "Etc/GMT+0", "Etc/GMT-0", "Etc/GMT0", "Etc/Greenwich"}
    | {"GMT+0", "GMT-0", "GMT0", "Greenwich"},
)
"""The zones that are UTC at every instant: the tz database's Etc/UTC and Etc/GMT and their links.

GMT is among them: in the tz database it is UTC under another name, with no summer time, and
icalendar's own writer gives it a Z too. As a TZID it would invite readers that map names to
Windows zones to take it for "GMT Standard Time", which is London's, summer time included.
"""


def is_utc(name: str) -> bool:
    """Tell whether zone ``name`` is UTC for all time, so its times can be written with a Z."""
    return name in UTC_NAMES


@dataclass(frozen=True, slots=True)
class Observance:
    """One STANDARD or DAYLIGHT sub-component: from ``start`` on, ``offset_to`` applies.

    ``start`` is the local wall time of the first onset, on the clock in force before it
    (``offset_from``), as RFC 5545 requires. ``byday`` (like ``-1SU``) and ``bymonth`` make it
    recur yearly, ``until`` (UTC) ends the recurrence; without ``byday`` it happens once.
    """

    daylight: bool
    start: datetime
    offset_from: timedelta
    offset_to: timedelta
    name: str
    bymonth: int | None = None
    byday: str | None = None
    until: datetime | None = None


@dataclass(frozen=True, slots=True)
class _Transition:
    at: datetime  # UTC
    offset_from: timedelta
    offset_to: timedelta
    daylight: bool
    name: str

    @property
    def wall(self) -> datetime:
        """The onset on the clock in force before it, naive."""
        return (self.at + self.offset_from).replace(tzinfo=None)

    @property
    def rule(self) -> tuple[object, ...]:
        """What must match for two years' transitions to be one yearly rule."""
        wall = self.wall
        last = wall.day + 7 > calendar.monthrange(wall.year, wall.month)[1]
        nth = -1 if last else (wall.day - 1) // 7 + 1
        return (
            self.daylight,
            self.name,
            self.offset_from,
            self.offset_to,
            wall.month,
            f"{nth}{_WEEKDAYS[wall.weekday()]}",
            wall.time(),
        )


def _state(zone: ZoneInfo, at: datetime) -> tuple[timedelta, bool, str]:
    local = at.astimezone(zone)
    return local.utcoffset() or timedelta(0), bool(local.dst()), local.tzname() or ""


def _transitions(zone: ZoneInfo, first_year: int, last_year: int) -> list[_Transition]:
    """Every change of offset, DST flag or name from ``first_year`` to ``last_year``."""
    found: list[_Transition] = []
    day = datetime(first_year, 1, 1, tzinfo=UTC)
    end = datetime(last_year + 1, 1, 1, tzinfo=UTC)
    before = _state(zone, day)
    while day < end:
        after = _state(zone, day + _DAY)
        if after != before:
            # Narrow the change down to the second: the first second in the new state.
            low, high = 0, 86400
            while high - low > 1:
                middle = (low + high) // 2
                if _state(zone, day + timedelta(seconds=middle)) == before:
                    low = middle
                else:
                    high = middle
            at = day + timedelta(seconds=high)
            found.append(_Transition(at, before[0], after[0], after[1], after[2]))
            before = after
        day += _DAY
    return found


def _fold(transitions: list[_Transition], last_year: int) -> list[Observance]:
    """Group each rule's transitions in consecutive years into one recurring observance."""
    runs: list[list[_Transition]] = []
    open_runs: dict[tuple[object, ...], list[_Transition]] = {}
    for transition in transitions:
        run = open_runs.get(transition.rule)
        if run is not None and run[-1].at.year == transition.at.year - 1:
            run.append(transition)
            continue
        run = [transition]
        runs.append(run)
        open_runs[transition.rule] = run
    observances = []
    for run in runs:
        first = run[0]
        recurs = len(run) > 1
        month, byday = first.wall.month, str(first.rule[5])
        observances.append(
            Observance(
                daylight=first.daylight,
                start=first.wall,
                offset_from=first.offset_from,
                offset_to=first.offset_to,
                name=first.name,
                bymonth=month if recurs else None,
                byday=byday if recurs else None,
                # A rule still in force in the last year recurs on: that is how zones are
                # written, and clients then handle later years the same way. A day's margin
                # keeps the last onset in for readers that compare UNTIL with local times.
                until=run[-1].at + _DAY if recurs and run[-1].at.year < last_year else None,
            ),
        )
    return sorted(observances, key=lambda o: o.start)


RULES_FIXED_FROM = 2200
"""A year after every zone's last listed transition (the tz data lists Casablanca's to 2087).

From its last listed transition on, a zone follows one yearly rule for ever (the POSIX rule at
the end of its tz file), so a span reaching further is written as if it ended here: the rule
then in force recurs without end. Scanning day by day up to year 9998 would take seconds.
"""


@functools.cache
def observances(name: str, first_year: int, last_year: int) -> tuple[Observance, ...]:
    """The observances that make zone ``name`` correct from ``first_year`` to ``last_year``.

    The year before is scanned too, so that the rule in force on 1 January of ``first_year``
    has its onset in the component list.
    """
    first_year = min(first_year, RULES_FIXED_FROM)
    last_year = min(last_year, RULES_FIXED_FROM)
    zone = ZoneInfo(name)
    found = _transitions(zone, first_year - 1, last_year)
    folded = _fold(found, last_year)
    start = datetime(first_year - 1, 1, 1, tzinfo=UTC)
    if not folded or found[0].at > start.replace(year=first_year):
        # No onset covers the start of the span (no transitions at all, as in Istanbul since
        # 2016, or the first one falls later): state the offset in force from then on.
        offset, daylight, tzname = _state(zone, start)
        initial = Observance(
            daylight=daylight,
            start=(start + offset).replace(tzinfo=None),
            offset_from=offset,
            offset_to=offset,
            name=tzname,
        )
        folded.insert(0, initial)
    return tuple(folded)
