"""The command line: arguments in, calls to the functions the daemon uses, exit codes out."""

# Imports inside the commands, on purpose: each command loads only what it uses.
# ruff: noqa: PLC0415

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from eventwatch import __version__
from eventwatch.errors import EventwatchError, InvalidInputError, Problem

if TYPE_CHECKING:
    from collections.abc import Sequence

    from eventwatch import settings
    from eventwatch.models import Calendar

# ``--version``, ``check`` and ``list`` never load the daemon's HTTP server, scheduler, SMTP
# client or SQL toolkit: a test runs them with ``python -X importtime`` (tests/test_cli.py).


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        msg = f"{text!r} is not a date like 2026-07-07"
        raise argparse.ArgumentTypeError(msg) from None


def _address(text: str) -> str:
    from pydantic import TypeAdapter, ValidationError

    from eventwatch.models import EmailAddress

    try:
        return str(TypeAdapter(EmailAddress).validate_python(text))
    except ValidationError:
        msg = f"{text!r} is not an e-mail address"
        raise argparse.ArgumentTypeError(msg) from None


def _instant(text: str) -> datetime:
    """An aware instant: a date-time with ``Z`` or an offset, or a date meaning 00:00 UTC."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        msg = f"{text!r} is not a date-time like 2026-01-01T00:00:00Z"
        raise argparse.ArgumentTypeError(msg) from None
    if "T" not in text and " " not in text:
        return value.replace(tzinfo=UTC)
    if value.tzinfo is None:
        msg = f"{text!r} has no UTC offset: add Z or +01:00, say"
        raise argparse.ArgumentTypeError(msg)
    return value


class _Parser(argparse.ArgumentParser):
    """argparse, but its errors never repeat what was typed after the mistake.

    ``--set smtp.password hunter2`` (``=`` forgotten) would otherwise print ``invalid choice:
    'hunter2'`` or ``unrecognized arguments: hunter2``: the secret, into a terminal or a log.
    """

    def error(self, message: str) -> NoReturn:
        """Print the usage and a message without the words typed; exit 2."""
        for head in ("invalid choice", "unrecognized arguments"):
            if head in message:
                kept, _, rest = message.partition(head)
                choices = rest[rest.find("(choose from") :] if "(choose from" in rest else ""
                message = f"{kept}{head}, not repeated here as it may be a secret {choices}"
                break
        super().error(message.rstrip())


def _parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    # SUPPRESS lets the options stand before or after the command without one erasing the other.
    common.add_argument(
        "--config",
        type=Path,
        default=argparse.SUPPRESS,
        metavar="PATH",
        help="settings file (default: $EVENTWATCH_CONFIG, ./config/eventwatch.toml, "
        "/etc/eventwatch/eventwatch.toml)",
    )
    common.add_argument(
        "--set",
        action="append",
        default=argparse.SUPPRESS,
        metavar="KEY=VALUE",
        dest="overrides",
        help="override one setting, e.g. --set server.port=9000 (over the file and environment)",
    )
    parser = _Parser(
        prog="eventwatch",
        description="Calendar-and-reminder daemon: typed events, iCalendar feeds, reminders.",
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"eventwatch {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    commands.add_parser(
        "check",
        parents=[common],
        help="validate the settings and every calendar file",
        description="Validate the settings and every calendar file; print every problem found.",
    )

    listing = commands.add_parser(
        "list",
        parents=[common],
        help="list events in start order",
        description="List events in start order; dates are the events' own local dates.",
    )
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.add_argument(
        "--calendar",
        action="append",
        metavar="ID",
        help="only this calendar (repeatable)",
    )
    listing.add_argument(
        "--category",
        action="append",
        metavar="C",
        help="only events with this category (repeatable; any matches)",
    )
    listing.add_argument(
        "--from",
        dest="since",
        type=_date,
        metavar="DATE",
        help="only events that end on or after DATE",
    )
    listing.add_argument(
        "--until",
        type=_date,
        metavar="DATE",
        help="only events that start on or before DATE",
    )

    plan = commands.add_parser(
        "plan",
        parents=[common],
        help="show the reminders due from an instant on",
        description="Show the reminders due at or after --at (default now) and before --until.",
    )
    plan.add_argument("--json", action="store_true", help="print JSON")
    plan.add_argument(
        "--at",
        type=_instant,
        metavar="DATETIME",
        help="the instant to plan from, e.g. 2026-01-01T00:00:00Z (default: now)",
    )
    plan.add_argument(
        "--until",
        type=_instant,
        metavar="DATETIME",
        help="only reminders due before this instant",
    )
    commands.add_parser(
        "run",
        parents=[common],
        help="run the daemon: serve the feeds until stopped",
        description="Serve the feeds over HTTP and re-read the calendar files when they change.",
    )

    simulate = commands.add_parser(
        "simulate",
        parents=[common],
        help="run the reminders over a period on a simulated clock, into a Maildir",
        description="Run the planner, ledger and mail code from --from until --until on a "
        "simulated clock, with an empty ledger of its own; write every message it would send "
        "to the Maildir --out, dated at its simulated instant, and print the timeline.",
    )
    simulate.add_argument("--from", dest="since", type=_instant, required=True, metavar="DATETIME")
    simulate.add_argument("--until", type=_instant, required=True, metavar="DATETIME")
    simulate.add_argument("--out", type=Path, required=True, metavar="DIR", help="the Maildir")

    send_test = commands.add_parser(
        "send-test",
        parents=[common],
        help="send one test message through the configured delivery",
        description="Send one test message through the configured delivery and print the "
        "server's reply; exit 1 with the error if it is not accepted.",
    )
    send_test.add_argument("--to", type=_address, required=True, metavar="ADDRESS")

    export = commands.add_parser(
        "export",
        parents=[common],
        help="write the feeds and index page to a folder",
        description="Write all.ics, one CALENDAR.ics per calendar and index.html to a folder, "
        "each file replaced atomically, for static hosting.",
    )
    export.add_argument("--out", type=Path, required=True, metavar="DIR", help="the folder")

    migrate = commands.add_parser(
        "migrate-ledger",
        parents=[common],
        help="copy the SQLite ledger into an empty PostgreSQL database",
        description="Copy the SQLite ledger in state_dir (revisions, reminders, attempts) into "
        "an empty PostgreSQL database in one transaction, with no daemon running on the state "
        "folder. The SQLite file stays, as a backup (upgraded to this release's schema if "
        "older); then set [database] url and start the instances.",
    )
    migrate.add_argument(
        "--to",
        metavar="URL",
        help="the database, postgresql+psycopg://user@host:5432/database (default: [database] "
        "url); its password from [database] password_file or the database-password "
        "credential, as for the daemon",
    )
    return parser


def _load(args: argparse.Namespace) -> tuple[settings.Settings, tuple[Calendar, ...]]:
    """Settings and calendars, or every problem with either."""
    from eventwatch import inputs

    loaded = inputs.load(getattr(args, "config", None), getattr(args, "overrides", None))
    return loaded.settings, loaded.calendars


def _print_json(value: Any) -> None:  # noqa: ANN401 - any JSON value
    print(json.dumps(value, indent=2, ensure_ascii=False))


def _check(args: argparse.Namespace) -> int:
    _, found = _load(args)
    count = sum(len(c.events) for c in found)
    print(f"{len(found)} calendar{'s' * (len(found) != 1)}, {count} event{'s' * (count != 1)} OK")
    return 0


def _list(args: argparse.Namespace) -> int:
    from eventwatch import reports
    from eventwatch.models import in_start_order

    _, found = _load(args)
    wanted = args.calendar or []
    unknown = sorted(set(wanted) - {c.id for c in found})
    if unknown:
        have = ", ".join(c.id for c in found)
        message = f"no calendar {', '.join(map(repr, unknown))} (have: {have})"
        raise InvalidInputError([Problem("--calendar", "", message)])
    categories = set(args.category or [])
    events = [
        e
        for e in in_start_order(found)
        if (not wanted or e.calendar in wanted)
        and (not categories or categories & set(e.categories))
        and (args.since is None or e.last_day >= args.since)
        and (args.until is None or e.first_day <= args.until)
    ]
    if args.json:
        _print_json([reports.event_row(e) for e in events])
    else:
        for event in events:
            print(reports.event_line(event))
    return 0


def _plan(args: argparse.Namespace) -> int:
    from eventwatch import daemon, policy, reports

    loaded, found = _load(args)
    at = args.at or datetime.now(UTC)
    due = policy.plan(found, loaded.reminders, at, args.until)
    statuses = daemon.statuses(loaded)
    if args.json:
        _print_json([reports.reminder_row(r, statuses.get(r.key)) for r in due])
    elif not due:
        print(f"no reminders due at or after {at.astimezone(UTC):%Y-%m-%d %H:%M}Z")
    else:
        for reminder in due:
            print(reports.reminder_line(reminder, statuses.get(reminder.key)))
    return 0


def _run(args: argparse.Namespace) -> int:
    from eventwatch import daemon

    return daemon.run(getattr(args, "config", None), getattr(args, "overrides", None))


def _export(args: argparse.Namespace) -> int:
    from eventwatch import daemon, inputs

    loaded = inputs.load(getattr(args, "config", None), getattr(args, "overrides", None))
    written = daemon.export(loaded, args.out)
    for path in written:
        print(path)
    return 0


def _target_url(text: str | None, database: settings.DatabaseSettings) -> str:
    """``--to``, checked by the rules of ``[database] url``; that setting if not given."""
    from pydantic import ValidationError

    from eventwatch import problems, settings

    if text is None:
        if database.url is None:
            message = "required, as no [database] url is set: the database to move the ledger to"
            raise InvalidInputError([Problem("--to", "", message)])
        return database.url
    try:
        checked = settings.DatabaseSettings.model_validate({"url": text})
    except ValidationError as exc:
        found = problems.problems(
            exc, settings.DatabaseSettings, lambda _: ("--to", None), show_input=False
        )
        raise InvalidInputError([Problem("--to", "", p.message) for p in found]) from None
    if database.password is not None and checked.url_has_password:
        message = (
            f"{checked.shown_url!r} holds a password, and so do the settings "
            "(password, password_file or the database-password credential): give it once"
        )
        raise InvalidInputError([Problem("--to", "", message)])
    return str(checked.url)  # set: it was given


def _migrate_ledger(args: argparse.Namespace) -> int:
    from eventwatch import daemon, settings
    from eventwatch.ledger import DATABASE_FILE

    loaded = settings.load(getattr(args, "config", None), getattr(args, "overrides", None))
    url = _target_url(args.to, loaded.database)
    copied = daemon.migrate_ledger(loaded, url)
    for table, count in copied.items():
        print(f"{table}: {count} copied")
    backup = Path(os.path.normpath(loaded.state_dir / DATABASE_FILE))
    if url == loaded.database.url:
        step = "start eventwatch on every instance with these settings"
    else:
        step = f'set [database] url = "{settings.masked_url(url)}" and restart every instance'
    print(f"next: {step}; {backup} stays, as a backup (at this release's schema)")
    return 0


def _send_test(args: argparse.Namespace) -> int:
    from eventwatch import delivery, settings

    loaded = settings.load(getattr(args, "config", None), getattr(args, "overrides", None))
    reply = asyncio.run(delivery.send_test(loaded, args.to, datetime.now(UTC)))
    print(reply)
    return 0


def _simulate(args: argparse.Namespace) -> int:
    from eventwatch import inputs, reports, simulation

    if args.until <= args.since:
        raise InvalidInputError([Problem("--until", "", "must be after --from")])
    loaded = inputs.load(getattr(args, "config", None), getattr(args, "overrides", None))
    timeline = simulation.simulate(loaded, args.since, args.until, args.out)
    for outcome in timeline:
        print(reports.outcome_line(outcome))
    sent = sum(o.result == "sent" for o in timeline)
    print(f"{sent} message{'s' * (sent != 1)} written to {args.out}")
    return 0


_COMMANDS = {
    "check": _check,
    "list": _list,
    "plan": _plan,
    "run": _run,
    "export": _export,
    "simulate": _simulate,
    "send-test": _send_test,
    "migrate-ledger": _migrate_ledger,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; 0 on success, 1 on a runtime failure, 2 on bad usage or input."""
    args = _parser().parse_args(argv)
    try:
        return _COMMANDS[args.command](args)
    except EventwatchError as exc:
        print(exc, file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:
        # The reader went away (``eventwatch list | head``); nothing is left to say to it.
        sys.stderr.close()
        return 1
