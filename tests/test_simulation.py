"""Simulation: the reminder machinery run over a period on a simulated clock, into a Maildir."""

from __future__ import annotations

import email
import email.policy
import mailbox
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import ical.calendar_stream
import pytest

from eventwatch import inputs
from eventwatch.errors import OperationError
from eventwatch.simulation import simulate

from .conftest import SHIPPED_CONFIG

if TYPE_CHECKING:
    from pathlib import Path

    from .conftest import Runner

MINISTERS = "nato-2026/defence-ministers-2026-02@eventwatch"
SUMMIT = "nato-2026/summit-2026-07@eventwatch"
BELGIUM = "Brussels, Belgium)"


def at(text: str) -> datetime:
    """An instant in UTC written as ``2026-01-13T08:00``."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def loaded(tmp_path: Path) -> inputs.Inputs:
    """The shipped settings and NATO 2026 calendar, with a state folder of the test's own."""
    return inputs.load(SHIPPED_CONFIG, [f"state_dir={tmp_path / 'state'}"])


def _parsed(handle: object) -> email.message.EmailMessage:
    """A Maildir message parsed with the modern policy."""
    return email.message_from_binary_file(handle, policy=email.policy.default)  # type: ignore[arg-type, return-value]


def subjects(out: Path) -> list[str]:
    """The Subject of each message in the Maildir ``out``, in the order of their Date."""
    box = mailbox.Maildir(out, factory=_parsed, create=False)
    return [subject for _, subject in sorted((m["Date"].datetime, m["Subject"]) for m in box)]


def test_each_reminder_is_sent_at_its_due_instant(loaded: inputs.Inputs, tmp_path: Path) -> None:
    """Over the first half of 2026, the six shipped reminders are sent, each at its due instant."""
    timeline = simulate(loaded, at("2026-01-01T00:00"), at("2026-07-09T00:00"), tmp_path / "out")
    assert [(o.result, o.row.event_uid, o.row.offset) for o in timeline] == [
        ("sent", MINISTERS, "P30D"),
        ("sent", MINISTERS, "P7D"),
        ("sent", MINISTERS, "P1D"),
        ("sent", SUMMIT, "P30D"),
        ("sent", SUMMIT, "P7D"),
        ("sent", SUMMIT, "P1D"),
    ]
    assert all(o.at == o.row.due for o in timeline)


def test_the_period_includes_its_start_and_excludes_its_end(
    loaded: inputs.Inputs, tmp_path: Path
) -> None:
    """A reminder due at ``start`` is sent; one due at ``until`` is left for a later period."""
    timeline = simulate(loaded, at("2026-01-13T08:00"), at("2026-02-05T08:00"), tmp_path / "out")
    assert [(o.at, o.result, o.row.offset) for o in timeline] == [
        (at("2026-01-13T08:00"), "sent", "P30D"),
    ]


def test_a_period_before_the_first_reminder_does_nothing(
    loaded: inputs.Inputs, tmp_path: Path
) -> None:
    """Until the first reminder falls due there is nothing to send, skip or report."""
    assert simulate(loaded, at("2026-01-01T00:00"), at("2026-01-13T08:00"), tmp_path / "out") == []


def test_every_sent_reminder_is_a_message_in_the_maildir(
    loaded: inputs.Inputs, tmp_path: Path
) -> None:
    """The folder is made, and holds one message per reminder sent, dated when it was due."""
    out = tmp_path / "outbox"
    simulate(loaded, at("2026-06-01T00:00"), at("2026-07-09T00:00"), out)
    box = mailbox.Maildir(out, factory=_parsed, create=False)
    assert sorted(m["Date"].datetime.isoformat() for m in box) == [
        "2026-06-07T06:00:00+00:00",
        "2026-06-30T06:00:00+00:00",
        "2026-07-06T06:00:00+00:00",
    ]


def test_a_reminder_missed_within_catch_up_is_sent_late_at_the_start(
    loaded: inputs.Inputs, tmp_path: Path
) -> None:
    """Starting two hours after a reminder was due, it is sent at the start, marked late."""
    out = tmp_path / "out"
    (first,) = simulate(loaded, at("2026-01-13T10:00"), at("2026-01-14T00:00"), out)
    assert (first.result, first.at, first.row.due) == (
        "sent",
        at("2026-01-13T10:00"),
        at("2026-01-13T08:00"),
    )
    (subject,) = subjects(out)
    assert subject.startswith("Late reminder: NATO Defence Ministers' Meeting in 30 days")


def test_a_reminder_missed_beyond_catch_up_is_skipped(
    loaded: inputs.Inputs, tmp_path: Path
) -> None:
    """Starting a day after a reminder was due (catch_up is 6 h), it is skipped, saying why."""
    out = tmp_path / "out"
    (first,) = simulate(loaded, at("2026-01-14T00:00"), at("2026-01-15T00:00"), out)
    assert (first.result, first.row.offset) == ("skipped", "P30D")
    assert "catch_up is 6:00:00" in first.detail
    assert not list(mailbox.Maildir(out, create=True))


def test_the_state_folder_is_left_alone(loaded: inputs.Inputs, tmp_path: Path) -> None:
    """A simulation keeps its ledger to itself: the daemon's state folder is not even made."""
    simulate(loaded, at("2026-01-01T00:00"), at("2026-03-01T00:00"), tmp_path / "out")
    assert not (tmp_path / "state").exists()


def test_simulate_writes_the_six_shipped_reminders(
    run: Runner, tmp_path: Path, shipped: tuple[str, ...]
) -> None:
    """simulate over the first half of 2026 writes 6 dated messages with the event attached."""
    out = tmp_path / "outbox"
    result = run(
        *shipped,
        "simulate",
        "--from",
        "2026-01-01T00:00:00Z",
        "--until",
        "2026-07-09T00:00:00Z",
        "--out",
        str(out),
    )
    assert result.code == 0, result.err
    assert result.out.splitlines()[-1] == f"6 messages written to {out}"
    box = mailbox.Maildir(out, factory=_parsed, create=False)
    found = sorted((m["Date"].datetime, m["Subject"], m) for m in box)
    ministerial = "NATO Defence Ministers' Meeting in {} (Thu 12 Feb 2026, NATO Headquarters, "
    summit = "NATO Summit 2026 in {} (Tue 7 Jul 2026, Ankara, Türkiye)"
    assert [(d.isoformat(), s) for d, s, _ in found] == [
        ("2026-01-13T08:00:00+00:00", "Reminder: " + ministerial.format("30 days") + BELGIUM),
        ("2026-02-05T08:00:00+00:00", "Reminder: " + ministerial.format("7 days") + BELGIUM),
        ("2026-02-11T08:00:00+00:00", "Reminder: " + ministerial.format("1 day") + BELGIUM),
        ("2026-06-07T06:00:00+00:00", "Reminder: " + summit.format("30 days")),
        ("2026-06-30T06:00:00+00:00", "Reminder: " + summit.format("7 days")),
        ("2026-07-06T06:00:00+00:00", "Reminder: " + summit.format("1 day")),
    ]
    for _, _, message in found:
        (attachment,) = list(message.iter_attachments())
        content = attachment.get_content()
        text = content.decode() if isinstance(content, bytes) else content
        (event,) = ical.calendar_stream.IcsCalendarStream.calendar_from_ics(text).events
        assert event.uid.startswith("nato-2026/")


def test_the_command_prints_a_line_per_reminder_then_the_count(
    run: Runner, tmp_path: Path, shipped: tuple[str, ...]
) -> None:
    """Each reminder is a line of the timeline (time, result, offset, recipient, event)."""
    out = tmp_path / "outbox"
    result = run(
        *shipped, "simulate", "--from", "2026-01-14T00:00:00Z", "--until", "2026-02-06T00:00:00Z",
        "--out", str(out),
    )  # fmt: skip
    assert result.code == 0, result.err
    skipped, sent, total = result.out.splitlines()
    recipient = "duty-officer@example.org"
    assert skipped.split()[:6] == ["2026-01-14", "00:00Z", "skipped", "P30D", recipient, MINISTERS]
    assert sent.split()[:6] == ["2026-02-05", "08:00Z", "sent", "P7D", recipient, MINISTERS]
    assert total == f"1 message written to {out}"


def test_the_command_refuses_an_end_before_the_start(
    run: Runner, tmp_path: Path, shipped: tuple[str, ...]
) -> None:
    """--until at or before --from is exit 2 with one line naming the option, and no run."""
    result = run(
        *shipped, "simulate", "--from", "2026-02-01T00:00:00Z", "--until", "2026-02-01T00:00:00Z",
        "--out", str(tmp_path / "outbox"),
    )  # fmt: skip
    assert (result.code, result.out) == (2, "")
    assert result.err == "--until: must be after --from\n"
    assert not (tmp_path / "outbox").exists()


def test_a_missing_out_folder_is_made_with_its_parents(
    loaded: inputs.Inputs, tmp_path: Path
) -> None:
    """--out under folders that do not exist yet is made, as export makes its folder."""
    out = tmp_path / "missing" / "parent" / "out"
    timeline = simulate(loaded, at("2026-01-13T00:00"), at("2026-01-14T00:00"), out)
    assert [o.result for o in timeline] == ["sent"]
    assert len(subjects(out)) == 1


def test_an_out_folder_that_cannot_be_made_is_one_line_and_exit_1(
    run: Runner, tmp_path: Path, shipped: tuple[str, ...]
) -> None:
    """--out under a plain file stops at once with one line naming it, no run, no traceback."""
    (tmp_path / "file").write_text("not a folder")
    out = tmp_path / "file" / "out"
    result = run(
        *shipped, "simulate", "--from", "2026-01-01T00:00:00Z", "--until", "2026-08-01T00:00:00Z",
        "--out", str(out),
    )  # fmt: skip
    assert (result.code, result.out) == (1, "")
    assert result.err == f"{tmp_path / 'file'}: cannot write: not a folder\n"


def test_an_existing_empty_out_folder_becomes_the_maildir(
    loaded: inputs.Inputs, tmp_path: Path
) -> None:
    """--out naming an empty folder that exists gets the messages, not endless retries."""
    out = tmp_path / "out"
    out.mkdir()
    timeline = simulate(loaded, at("2026-01-13T00:00"), at("2026-01-14T00:00"), out)
    assert [o.result for o in timeline] == ["sent"]
    assert len(subjects(out)) == 1


def test_out_naming_a_file_is_refused(loaded: inputs.Inputs, tmp_path: Path) -> None:
    """--out naming a plain file stops at once, naming it, before anything is sent."""
    out = tmp_path / "file"
    out.write_text("not a folder")
    with pytest.raises(OperationError, match="file: cannot write: not a folder"):
        simulate(loaded, at("2026-01-13T00:00"), at("2026-01-14T00:00"), out)
