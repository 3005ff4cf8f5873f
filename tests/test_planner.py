"""The reminder plan: which reminders, for whom, due when."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any

import pytest

from eventwatch import calendars, planner
from eventwatch.models import Calendar, Offset, ReminderPolicy
from eventwatch.settings import ReminderDefaults

from .conftest import SHIPPED_CALENDARS

NO_DEFAULTS = ReminderPolicy()


def utc(*parts: int) -> datetime:
    """A UTC instant."""
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def calendar(events: list[dict[str, Any]], **policy: Any) -> Calendar:  # noqa: ANN401
    """A Brussels calendar ``cal`` with one recipient and the given policy and events."""
    reminders = {"recipients": [{"address": "ops@example.org"}]} | policy
    return Calendar.model_validate(
        {
            "id": "cal",
            "name": "Cal",
            "timezone": "Europe/Brussels",
            "reminders": reminders,
            "events": events,
        },
    )


class TestSeedCalendar:
    """The shipped NATO calendar's reminders."""

    @pytest.fixture
    def plan(self) -> list[planner.Reminder]:
        """The whole plan of the shipped calendars with the embedded defaults."""
        return planner.reminders(calendars.load(SHIPPED_CALENDARS), ReminderDefaults())

    def test_six_reminders_for_the_ministerial_and_the_summit(
        self,
        plan: list[planner.Reminder],
    ) -> None:
        """P30D, P7D and P1D for each of the two events; the Council session has none."""
        assert [(r.event.id, str(r.offset), r.due) for r in plan] == [
            ("defence-ministers-2026-02", "P30D", utc(2026, 1, 13, 8)),
            ("defence-ministers-2026-02", "P7D", utc(2026, 2, 5, 8)),
            ("defence-ministers-2026-02", "P1D", utc(2026, 2, 11, 8)),
            ("summit-2026-07", "P30D", utc(2026, 6, 7, 6)),
            ("summit-2026-07", "P7D", utc(2026, 6, 30, 6)),
            ("summit-2026-07", "P1D", utc(2026, 7, 6, 6)),
        ]

    def test_reminders_go_to_the_duty_officer_at_nine_local(
        self,
        plan: list[planner.Reminder],
    ) -> None:
        """All six go to the one recipient at 09:00 on the event's own clock."""
        assert {r.recipient.address for r in plan} == {"duty-officer@example.org"}
        assert {r.due_local.time() for r in plan} == {time(9)}

    def test_plan_from_an_instant_drops_what_is_past(self) -> None:
        """From 1 March 2026, only the summit's three reminders remain."""
        found = calendars.load(SHIPPED_CALENDARS)
        later = planner.plan(found, ReminderDefaults(), at=utc(2026, 3, 1))
        assert [r.event.id for r in later] == ["summit-2026-07"] * 3

    def test_nothing_is_due_after_both_events(self) -> None:
        """Today both events are past, so a plan from now is empty."""
        found = calendars.load(SHIPPED_CALENDARS)
        assert planner.plan(found, ReminderDefaults(), at=utc(2026, 11, 23)) == []


class TestPolicy:
    """How the levels of policy combine."""

    def test_plan_across_dst_keeps_nine_local(self) -> None:
        """Reminders a day and a week before an all-day event on 30 March are at 09:00 Brussels."""
        cal = calendar(
            [{"id": "e", "title": "E", "start": date(2026, 3, 30)}], offsets=["P7D", "P1D"]
        )
        dues = [r.due for r in planner.reminders((cal,), NO_DEFAULTS)]
        # 23 March is winter time (UTC+1), 29 March summer time (UTC+2).
        assert dues == [utc(2026, 3, 23, 8), utc(2026, 3, 29, 7)]

    def test_event_offsets_replace_the_calendar_offsets(self) -> None:
        """An event's own list wins, and an empty list means no reminders."""
        cal = calendar(
            [
                {
                    "id": "a",
                    "title": "A",
                    "start": date(2026, 5, 1),
                    "reminders": {"offsets": ["PT2H"]},
                },
                {"id": "b", "title": "B", "start": date(2026, 5, 1), "reminders": {"offsets": []}},
            ],
            offsets=["P1D"],
        )
        found = planner.reminders((cal,), NO_DEFAULTS)
        assert [(r.event.id, str(r.offset)) for r in found] == [("a", "PT2H")]

    def test_event_recipients_add_to_the_calendar_and_defaults(self) -> None:
        """Recipients from defaults, calendar and event all get reminders, each address once."""
        cal = calendar(
            [
                {
                    "id": "a",
                    "title": "A",
                    "start": date(2026, 5, 1),
                    "reminders": {
                        "recipients": [
                            {"address": "chair@example.org"},
                            {"address": "OPS@example.org"},
                        ],
                    },
                },
            ],
            offsets=["P1D"],
        )
        defaults = ReminderPolicy.model_validate({"recipients": [{"address": "admin@example.org"}]})
        found = planner.reminders((cal,), defaults)
        assert [r.recipient.address for r in found] == [
            "admin@example.org",
            "chair@example.org",
            "ops@example.org",
        ]

    def test_defaults_apply_where_the_calendar_is_silent(self) -> None:
        """Offsets and the all-day anchor fall back to the settings' defaults."""
        cal = calendar([{"id": "a", "title": "A", "start": date(2026, 5, 1)}])
        defaults = ReminderDefaults(offsets=(Offset.parse("PT1H"),), all_day_at=time(8))
        found = planner.reminders((cal,), defaults)
        assert [r.due for r in found] == [utc(2026, 5, 1, 5)]  # 08:00 CEST less one hour

    def test_cancelled_events_have_no_reminders(self) -> None:
        """A cancelled event keeps its place in the feed but reminds no one."""
        cal = calendar(
            [{"id": "a", "title": "A", "start": date(2026, 5, 1), "status": "cancelled"}],
            offsets=["P1D"],
        )
        assert planner.reminders((cal,), NO_DEFAULTS) == []

    def test_until_is_exclusive(self) -> None:
        """A reminder due exactly at ``until`` is left for the next window."""
        cal = calendar([{"id": "a", "title": "A", "start": date(2026, 5, 2)}], offsets=["P1D"])
        due = utc(2026, 5, 1, 7)
        assert planner.plan((cal,), NO_DEFAULTS, at=due, until=due) == []
        assert len(planner.plan((cal,), NO_DEFAULTS, at=due)) == 1


class TestKeys:
    """Reminder keys, which the ledger will rely on."""

    def test_key_survives_unrelated_edits(self) -> None:
        """A new title or description keeps every key."""
        before = calendar([{"id": "a", "title": "A", "start": date(2026, 5, 1)}], offsets=["P1D"])
        after = calendar(
            [{"id": "a", "title": "Renamed", "description": "More", "start": date(2026, 5, 1)}],
            offsets=["P1D"],
        )
        keys = [[r.key for r in planner.reminders((c,), NO_DEFAULTS)] for c in (before, after)]
        assert keys[0] == keys[1] == ["cal/a@eventwatch|20260501T070000Z|P1D|ops@example.org"]

    def test_key_changes_when_the_event_moves(self) -> None:
        """A moved event's reminders are new reminders."""
        keys = {
            planner.reminders(
                (calendar([{"id": "a", "title": "A", "start": day}], offsets=["P1D"]),),
                NO_DEFAULTS,
            )[0].key
            for day in (date(2026, 5, 1), date(2026, 5, 2))
        }
        assert len(keys) == 2


class TestDaylightSaving:
    """Reminders due at 02:30 on the nights Brussels changes its clocks: one each, by a rule."""

    @pytest.mark.parametrize(
        ("start", "due"),
        [
            # 02:30 on 29 March does not exist (02:00 -> 03:00): read on the clock before the
            # change, +01:00, it is 01:30 UTC (03:30 summer time), an hour after 01:30 local.
            ("2026-03-30T02:30:00", utc(2026, 3, 29, 1, 30)),
            # 02:30 on 25 October happens twice (03:00 -> 02:00): the first, in summer time.
            ("2026-10-26T02:30:00", utc(2026, 10, 25, 0, 30)),
        ],
    )
    def test_a_wall_time_the_clocks_skip_or_repeat_is_due_once(
        self, start: str, due: datetime
    ) -> None:
        """A P1D reminder at 02:30 on a change night is due once, at the documented instant."""
        end = start.replace("02:30", "03:30")
        cal = calendar([{"id": "e", "title": "E", "start": start, "end": end}], offsets=["P1D"])
        (reminder,) = planner.reminders((cal,), NO_DEFAULTS)
        assert reminder.due == due

    @pytest.mark.parametrize("day", ["2026-03-29", "2026-10-25"])
    def test_an_all_day_reminder_at_0230_on_a_change_night_is_due_once(self, day: str) -> None:
        """An all-day event's PT1M reminder anchored at 02:30 local is due once that night."""
        cal = calendar(
            [{"id": "e", "title": "E", "start": day}], offsets=["PT1M"], all_day_at="02:30"
        )
        (reminder,) = planner.reminders((cal,), NO_DEFAULTS)
        expected = {"2026-03-29": utc(2026, 3, 29, 1, 29), "2026-10-25": utc(2026, 10, 25, 0, 29)}
        assert reminder.due == expected[day]
