"""The reminder policy: what is planned, what happens when a reminder's turn comes, notices."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventwatch import calendars, policy
from eventwatch.models import Calendar, Offset, Recipient, ReminderPolicy
from eventwatch.policy import Fail, Kind, Retry, Send, Skip, Standing, Status
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
    def plan(self) -> list[policy.Reminder]:
        """The whole plan of the shipped calendars with the embedded defaults."""
        return policy.reminders(calendars.load(SHIPPED_CALENDARS), ReminderDefaults())

    def test_six_reminders_for_the_ministerial_and_the_summit(
        self,
        plan: list[policy.Reminder],
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
        plan: list[policy.Reminder],
    ) -> None:
        """All six go to the one recipient at 09:00 on the event's own clock."""
        assert {r.recipient.address for r in plan} == {"duty-officer@example.org"}
        assert {r.due_local.time() for r in plan} == {time(9)}

    def test_plan_from_an_instant_drops_what_is_past(self) -> None:
        """From 1 March 2026, only the summit's three reminders remain."""
        found = calendars.load(SHIPPED_CALENDARS)
        later = policy.plan(found, ReminderDefaults(), at=utc(2026, 3, 1))
        assert [r.event.id for r in later] == ["summit-2026-07"] * 3

    def test_nothing_is_due_after_both_events(self) -> None:
        """Today both events are past, so a plan from now is empty."""
        found = calendars.load(SHIPPED_CALENDARS)
        assert policy.plan(found, ReminderDefaults(), at=utc(2026, 11, 23)) == []


class TestPolicy:
    """How the levels of policy combine."""

    def test_plan_across_dst_keeps_nine_local(self) -> None:
        """Reminders a day and a week before an all-day event on 30 March are at 09:00 Brussels."""
        cal = calendar(
            [{"id": "e", "title": "E", "start": date(2026, 3, 30)}], offsets=["P7D", "P1D"]
        )
        dues = [r.due for r in policy.reminders((cal,), NO_DEFAULTS)]
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
        found = policy.reminders((cal,), NO_DEFAULTS)
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
        found = policy.reminders((cal,), defaults)
        assert [r.recipient.address for r in found] == [
            "admin@example.org",
            "chair@example.org",
            "ops@example.org",
        ]

    def test_defaults_apply_where_the_calendar_is_silent(self) -> None:
        """Offsets and the all-day anchor fall back to the settings' defaults."""
        cal = calendar([{"id": "a", "title": "A", "start": date(2026, 5, 1)}])
        defaults = ReminderDefaults(offsets=(Offset.parse("PT1H"),), all_day_at=time(8))
        found = policy.reminders((cal,), defaults)
        assert [r.due for r in found] == [utc(2026, 5, 1, 5)]  # 08:00 CEST less one hour

    def test_cancelled_events_have_no_reminders(self) -> None:
        """A cancelled event keeps its place in the feed but reminds no one."""
        cal = calendar(
            [{"id": "a", "title": "A", "start": date(2026, 5, 1), "status": "cancelled"}],
            offsets=["P1D"],
        )
        assert policy.reminders((cal,), NO_DEFAULTS) == []

    def test_until_is_exclusive(self) -> None:
        """A reminder due exactly at ``until`` is left for the next window."""
        cal = calendar([{"id": "a", "title": "A", "start": date(2026, 5, 2)}], offsets=["P1D"])
        due = utc(2026, 5, 1, 7)
        assert policy.plan((cal,), NO_DEFAULTS, at=due, until=due) == []
        assert len(policy.plan((cal,), NO_DEFAULTS, at=due)) == 1


class TestKeys:
    """Reminder keys, which the ledger will rely on."""

    def test_key_survives_unrelated_edits(self) -> None:
        """A new title or description keeps every key."""
        before = calendar([{"id": "a", "title": "A", "start": date(2026, 5, 1)}], offsets=["P1D"])
        after = calendar(
            [{"id": "a", "title": "Renamed", "description": "More", "start": date(2026, 5, 1)}],
            offsets=["P1D"],
        )
        keys = [[r.key for r in policy.reminders((c,), NO_DEFAULTS)] for c in (before, after)]
        assert keys[0] == keys[1] == ["cal/a@eventwatch|20260501T070000Z|P1D|ops@example.org"]

    def test_key_changes_when_the_event_moves(self) -> None:
        """A moved event's reminders are new reminders."""
        keys = {
            policy.reminders(
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
        (reminder,) = policy.reminders((cal,), NO_DEFAULTS)
        assert reminder.due == due

    @pytest.mark.parametrize("day", ["2026-03-29", "2026-10-25"])
    def test_an_all_day_reminder_at_0230_on_a_change_night_is_due_once(self, day: str) -> None:
        """An all-day event's PT1M reminder anchored at 02:30 local is due once that night."""
        cal = calendar(
            [{"id": "e", "title": "E", "start": day}], offsets=["PT1M"], all_day_at="02:30"
        )
        (reminder,) = policy.reminders((cal,), NO_DEFAULTS)
        expected = {"2026-03-29": utc(2026, 3, 29, 1, 29), "2026-10-25": utc(2026, 10, 25, 0, 29)}
        assert reminder.due == expected[day]


CATCH_UP = timedelta(hours=6)
SUMMIT = [
    {"id": "summit", "title": "Summit", "start": "2026-07-07T10:00:00", "end": "2026-07-07T12:00"}
]
DUE = utc(2026, 7, 6, 8)


def summit_reminder(offset: str = "P1D") -> policy.Reminder:
    """The ``offset`` reminder of a Brussels summit at 10:00 on 7 July 2026 to ops@."""
    (found,) = policy.reminders((calendar(SUMMIT, offsets=[offset]),), NO_DEFAULTS)
    return found


A_ROW = policy.Row(
    key="k",
    event_uid="cal/summit",
    recipient="ops@example.org",
    kind=Kind.REMINDER,
    offset="P1D",
    sequence=None,
    due=DUE,
    status=Status.SENDING,
    attempts=1,
    next_attempt=None,
    last_error=None,
    message_id=None,
    sent_at=None,
)


def claimed(**changes: Any) -> policy.Row:  # noqa: ANN401
    """A ledger row as the policy reads it, made without a database."""
    return replace(A_ROW, **changes)


class TestOnClaim:
    """What happens to a claimed row when its turn comes."""

    def test_on_time_is_sent_and_not_late(self) -> None:
        """A first attempt at its due instant is sent, not marked late."""
        row = claimed(due=summit_reminder().due)
        assert policy.on_claim(row, summit_reminder(), row.due, CATCH_UP) == Send(late=False)

    def test_late_after_ten_seconds(self) -> None:
        """Sent more than LATE_AFTER after its due instant, a reminder says it is late."""
        row = claimed(due=summit_reminder().due)
        now = row.due + policy.LATE_AFTER + timedelta(seconds=1)
        assert policy.on_claim(row, summit_reminder(), now, CATCH_UP) == Send(late=True)

    def test_exactly_late_after_is_on_time(self) -> None:
        """At exactly LATE_AFTER past due a reminder is still on time."""
        row = claimed(due=summit_reminder().due)
        now = row.due + policy.LATE_AFTER
        assert policy.on_claim(row, summit_reminder(), now, CATCH_UP) == Send(late=False)

    def test_a_row_an_older_plan_lacks_is_released(self) -> None:
        """A row not planned here, from an older file than another instance's, is given back."""
        row = claimed(due=DUE)
        assert policy.on_claim(row, None, DUE, CATCH_UP, current=False) == policy.Release()

    def test_a_row_the_plan_dropped_is_skipped(self) -> None:
        """A claimed row with no planned reminder is skipped as no longer planned."""
        assert policy.on_claim(claimed(), None, utc(2026, 7, 6, 8), CATCH_UP) == Skip(
            "no longer planned"
        )

    def test_first_attempt_after_the_start_is_skipped(self) -> None:
        """Nothing is sent once the event has begun; a first attempt is skipped."""
        reminder = summit_reminder()
        row = claimed(due=reminder.due)
        assert policy.on_claim(row, reminder, reminder.starts, CATCH_UP) == Skip(
            "the event had begun"
        )

    def test_retry_after_the_start_fails_with_its_last_error(self) -> None:
        """A retry whose event has begun fails, keeping the last error in the ledger."""
        reminder = summit_reminder()
        row = claimed(due=reminder.due, attempts=3, last_error="451 busy")
        decision = policy.on_claim(row, reminder, reminder.starts, CATCH_UP)
        assert decision == Fail("the event had begun; last error: 451 busy", "the event had begun")

    def test_missed_longer_than_catch_up_is_skipped(self) -> None:
        """A first attempt due longer ago than catch_up (eventwatch was down) is skipped."""
        reminder = summit_reminder()
        row = claimed(due=reminder.due)
        now = reminder.due + CATCH_UP + timedelta(seconds=1)
        decision = policy.on_claim(row, reminder, now, CATCH_UP)
        assert decision == Skip("due 6:00:01 before it could be sent (catch_up is 6:00:00)")

    def test_missed_by_exactly_catch_up_is_sent_late(self) -> None:
        """Due exactly catch_up ago, a reminder is still caught up, marked late."""
        reminder = summit_reminder()
        now = reminder.due + CATCH_UP
        assert policy.on_claim(claimed(due=reminder.due), reminder, now, CATCH_UP) == Send(
            late=True
        )

    def test_a_retry_is_never_too_late_for_catch_up(self) -> None:
        """A second attempt long after its due instant is still sent while the event is ahead."""
        reminder = summit_reminder()
        now = reminder.due + CATCH_UP * 2
        row = claimed(due=reminder.due, attempts=2)
        assert policy.on_claim(row, reminder, now, CATCH_UP) == Send(late=True)

    def test_a_notice_is_never_too_late_nor_late(self) -> None:
        """A notice long after it was queued is sent, and never says it is late."""
        event = summit_reminder().event
        notice = policy.notice(event, Kind.CHANGED, 2, "ops@example.org", utc(2026, 7, 1), {})
        row = claimed(kind=Kind.CHANGED, due=notice.due)
        now = notice.due + CATCH_UP * 2
        assert policy.on_claim(row, notice, now, CATCH_UP) == Send(late=False)

    def test_a_message_that_cannot_be_made_fails_at_once(self) -> None:
        """A message that cannot be made is failed, not retried, saying why."""
        why = "the message cannot be made: ValueError: bad"
        assert policy.cannot_make("ValueError: bad") == Fail(why, why)


class TestRetries:
    """What happens after the server refused a message."""

    @pytest.mark.parametrize(
        ("attempts", "minutes"),
        [(1, 1), (2, 2), (3, 4), (6, 32), (7, 60), (20, 60)],
    )
    def test_backoff_doubles_to_an_hour(self, attempts: int, minutes: int) -> None:
        """1 minute, doubling, never more than an hour."""
        assert policy.backoff(attempts) == timedelta(minutes=minutes)

    @given(attempts=st.integers(min_value=0, max_value=10**12))
    def test_backoff_stays_within_a_minute_and_an_hour(self, attempts: int) -> None:
        """However many attempts a row has had, the wait is 1 minute to 1 hour, never an error."""
        assert policy.FIRST_RETRY <= policy.backoff(attempts) <= policy.LAST_RETRY

    def test_a_permanent_refusal_is_final(self) -> None:
        """A 5xx reply fails the reminder at once with the server's words."""
        reminder = summit_reminder()
        decision = policy.after_failure(
            claimed(), reminder, reminder.due, permanent=True, reply="550 no such user"
        )
        assert decision == Fail("550 no such user", "550 no such user")

    def test_a_transient_refusal_is_retried_after_the_backoff(self) -> None:
        """A 4xx reply is tried again one backoff later, and the log says when."""
        reminder = summit_reminder()
        now = reminder.due
        decision = policy.after_failure(
            claimed(attempts=2), reminder, now, permanent=False, reply="451 busy"
        )
        at = now + timedelta(minutes=2)
        assert decision == Retry(at, "451 busy", f"451 busy; next attempt {at:%H:%M:%S}Z")

    def test_no_retry_that_would_come_after_the_start(self) -> None:
        """A retry that would fall at or after the event's start fails instead."""
        reminder = summit_reminder("PT1M")
        decision = policy.after_failure(
            claimed(), reminder, reminder.due, permanent=False, reply="451 busy"
        )
        assert decision == Fail("451 busy; no time left to retry", "451 busy")


class TestReconcile:
    """How the ledger follows a new plan."""

    NOW = utc(2026, 6, 1)

    def test_planned_and_unknown_is_fresh(self) -> None:
        """A planned reminder the ledger does not hold is added."""
        reminder = summit_reminder()
        changes = policy.reconcile({}, [reminder], self.NOW)
        assert (changes.fresh, changes.cancel, changes.revive) == ((reminder,), (), ())

    def test_known_is_not_added_again(self) -> None:
        """A planned reminder the ledger holds already, in any status, is not added again."""
        reminder = summit_reminder()
        for status in Status:
            known = {reminder.key: Standing(status, Kind.REMINDER)}
            assert policy.reconcile(known, [reminder], self.NOW).fresh == ()

    def test_pending_reminder_the_plan_dropped_is_cancelled(self) -> None:
        """A pending reminder no longer planned (its event moved or went) is cancelled."""
        known = {"gone": Standing(Status.PENDING, Kind.REMINDER)}
        assert policy.reconcile(known, [], self.NOW).cancel == ("gone",)

    @pytest.mark.parametrize("status", [s for s in Status if s is not Status.PENDING])
    def test_only_pending_rows_are_cancelled(self, status: Status) -> None:
        """Sent, failed, skipped, sending and cancelled rows are never cancelled."""
        known = {"gone": Standing(status, Kind.REMINDER)}
        assert policy.reconcile(known, [], self.NOW).cancel == ()

    def test_a_pending_notice_is_never_cancelled(self) -> None:
        """A notice announces a change that happened: the plan does not cancel it."""
        known = {"n": Standing(Status.PENDING, Kind.CHANGED)}
        assert policy.reconcile(known, [], self.NOW).cancel == ()

    def test_cancelled_and_planned_again_is_revived_while_ahead(self) -> None:
        """A cancelled reminder planned again (the event moved back) is pending again."""
        reminder = summit_reminder()
        known = {reminder.key: Standing(Status.CANCELLED, Kind.REMINDER)}
        assert policy.reconcile(known, [reminder], self.NOW).revive == (reminder.key,)

    def test_cancelled_and_planned_again_but_past_stays_cancelled(self) -> None:
        """A cancelled reminder whose due instant is past by now is not revived."""
        reminder = summit_reminder()
        known = {reminder.key: Standing(Status.CANCELLED, Kind.REMINDER)}
        assert policy.reconcile(known, [reminder], reminder.due).revive == ()

    def test_a_deferred_calendar_is_left_as_it_is(self) -> None:
        """A calendar another instance has a newer file of: nothing added, cancelled, revived."""
        reminder = summit_reminder()
        calendar_id = reminder.event.calendar
        known = {
            f"{calendar_id}/gone@eventwatch|x|P1D|a@b": Standing(Status.PENDING, Kind.REMINDER),
            "other/gone@eventwatch|x|P1D|a@b": Standing(Status.PENDING, Kind.REMINDER),
            "moved": Standing(Status.CANCELLED, Kind.REMINDER),
        }
        changes = policy.reconcile(known, [reminder], self.NOW, deferred={calendar_id})
        assert (changes.fresh, changes.cancel, changes.revive) == (
            (),
            ("other/gone@eventwatch|x|P1D|a@b",),
            (),
        )

    def test_follow_is_reconcile_with_the_plan_given(self) -> None:
        """``follow`` decides what ``reconcile`` decides, for the ledger to run."""
        reminder = summit_reminder()
        known = {"gone": Standing(Status.PENDING, Kind.REMINDER)}
        assert policy.follow([reminder])(known, self.NOW) == policy.reconcile(
            known, [reminder], self.NOW
        )


class TestNotices:
    """When a change notice is owed, and to whom."""

    NOW = utc(2026, 7, 1)

    def test_a_notice_goes_to_each_recipient_sent_a_reminder(self) -> None:
        """Recipients sent a reminder of the event get a notice; the others do not."""
        event = summit_reminder().event
        rows = [
            claimed(recipient="b@example.org", status=Status.SENT),
            claimed(recipient="a@example.org", status=Status.SENT),
            claimed(recipient="a@example.org", status=Status.SENT),
            claimed(recipient="c@example.org", status=Status.PENDING),
            claimed(recipient="d@example.org", status=Status.FAILED),
        ]
        owed = policy.notices(event, 2, rows, self.NOW, {})
        assert [n.address for n in owed] == ["a@example.org", "b@example.org"]

    def test_a_notice_sent_is_not_a_reminder(self) -> None:
        """Someone sent only a notice is not owed another notice of the next change."""
        event = summit_reminder().event
        rows = [claimed(recipient="a@example.org", status=Status.SENT, kind=Kind.CHANGED)]
        assert policy.notices(event, 3, rows, self.NOW, {}) == []

    def test_a_changed_event_owes_a_changed_notice(self) -> None:
        """A confirmed event that changed owes ``changed`` notices, due now."""
        event = summit_reminder().event
        (owed,) = policy.notices(event, 2, [claimed(status=Status.SENT)], self.NOW, {})
        assert (owed.kind, owed.sequence, owed.due, owed.offset) == (
            Kind.CHANGED,
            2,
            self.NOW,
            None,
        )

    def test_a_cancelled_event_owes_a_cancelled_notice(self) -> None:
        """An event whose status became cancelled owes ``cancelled`` notices."""
        (event,) = calendar([{**SUMMIT[0], "status": "cancelled"}]).events
        assert policy.notice_kind(event) is Kind.CANCELLED

    def test_a_notice_key_names_the_sequence_it_announces(self) -> None:
        """Each change is announced once: the key holds the kind and the SEQUENCE."""
        event = summit_reminder().event
        first = policy.notice(event, Kind.CHANGED, 2, "Ops@Example.org", self.NOW, {})
        again = policy.notice(event, Kind.CHANGED, 3, "ops@example.org", self.NOW, {})
        assert first.key == f"{event.uid}|changed|2|ops@example.org"
        assert again.key != first.key

    def test_a_notice_greets_the_recipient_as_the_plan_names_them(self) -> None:
        """The plan's entry for the address (name, zone) is used; else the bare address."""
        event = summit_reminder().event
        named = Recipient(address="ops@example.org", name="Ops Desk")
        known = {(event.uid, "ops@example.org"): named}
        assert (
            policy.notice(event, Kind.CHANGED, 2, "OPS@example.org", self.NOW, known).recipient
            == named
        )
        bare = policy.notice(event, Kind.CHANGED, 2, "x@example.org", self.NOW, known).recipient
        assert bare == Recipient(address="x@example.org")

    def test_a_notice_of_an_all_day_event_stops_at_its_midnight(self) -> None:
        """An all-day event counts as begun at its first midnight for a notice."""
        cal = calendar([{"id": "d", "title": "Day", "start": "2026-07-07"}], offsets=["P1D"])
        event = cal.events[0]
        found = policy.notice(event, Kind.CHANGED, 2, "ops@example.org", self.NOW, {})
        assert found.starts == datetime(2026, 7, 7, tzinfo=event.zone)

    def test_recipients_are_known_by_event_and_lower_case_address(self) -> None:
        """The plan's recipients are looked up by event uid and lower-cased address."""
        reminder = summit_reminder()
        assert policy.recipients([reminder]) == {
            (reminder.event.uid, "ops@example.org"): reminder.recipient
        }


def _named(cid: str, events: list[dict[str, Any]], offset: str) -> Calendar:
    return Calendar.model_validate(
        {
            "id": cid,
            "name": cid,
            "timezone": "Europe/Brussels",
            "reminders": {"offsets": [offset], "recipients": [{"address": f"{cid}@example.org"}]},
            "events": events,
        },
    )


_ROUND = st.tuples(
    st.sampled_from(["keep", "same content", "edited", "gone"]),  # what happens to calendar a
    st.sampled_from(["P1D", "PT2H"]),  # calendar b's offset (b is made anew each round)
    st.sampled_from([(), ("all@example.org",)]),  # the defaults' recipients
)


@given(st.lists(_ROUND, min_size=1, max_size=5))
def test_planning_from_the_last_plan_is_planning_from_scratch(rounds: list[Any]) -> None:
    """Reusing the reminders of calendars unchanged since the last plan changes nothing.

    Whatever happens between plans: a calendar kept as the same record, read again equal,
    edited or gone, another one changed, the defaults changed.
    """
    known = policy.Known()
    a = _named("a", [{"id": "x", "title": "X", "start": date(2026, 5, 1)}], "P1D")
    for fate, offset, defaults in rounds:
        if fate == "same content":
            a = a.model_copy()
        elif fate == "edited":
            a = _named("a", [{"id": "x", "title": "Y", "start": date(2026, 5, 2)}], "P2D")
        b = _named("b", [{"id": "y", "title": "Y", "start": date(2026, 6, 1)}], offset)
        cals = (b,) if fate == "gone" else (a, b)
        given_defaults = ReminderPolicy.model_validate(
            {"recipients": [{"address": address} for address in defaults]}
        )
        assert policy.reminders(cals, given_defaults, known) == policy.reminders(
            cals, given_defaults
        )
        assert sorted(known.calendars) == sorted(c.id for c in cals)
