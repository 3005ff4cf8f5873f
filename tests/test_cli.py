"""The command line: exit codes, output shapes, and no traceback for bad input."""

from __future__ import annotations

import email
import email.policy
import json
import mailbox
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from eventwatch import __version__, inputs, policy
from eventwatch.ledger import Ledger
from eventwatch.models import ReminderPolicy
from eventwatch.revisions import Revision

from .conftest import MINIMAL_CALENDAR, SHIPPED_CONFIG, Site
from .helpers import COMMAND, HOSTILE_CALENDAR, free_port

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from .conftest import Runner


class TestShipped:
    """The commands on the shipped config, as the issue's acceptance lists them."""

    def test_check_passes(self, run: Runner, shipped: tuple[str, ...]) -> None:
        """The check command counts the calendars and events and exits 0."""
        result = run(*shipped, "check")
        assert (result.code, result.out, result.err) == (0, "1 calendar, 3 events OK\n", "")

    def test_list_json_gives_the_three_events(self, run: Runner, shipped: tuple[str, ...]) -> None:
        """Dates are ISO, the summit's end is its last day, and zones are the events' own."""
        result = run(*shipped, "list", "--json")
        assert result.code == 0
        rows = json.loads(result.out)
        assert [(r["id"], r["start"], r["end"], r["all_day"], r["timezone"]) for r in rows] == [
            ("defence-ministers-2026-02", "2026-02-12", "2026-02-12", True, "Europe/Brussels"),
            ("nato-ukraine-council-2026-02", "2026-02-12", "2026-02-12", True, "Europe/Brussels"),
            ("summit-2026-07", "2026-07-07", "2026-07-08", True, "Europe/Istanbul"),
        ]
        assert set(rows[0]) == {
            "uid", "calendar", "id", "title", "start", "end", "all_day",
            "timezone", "location", "categories", "status",
        }  # fmt: skip
        assert rows[2]["uid"] == "nato-2026/summit-2026-07@eventwatch"
        assert rows[2]["location"] == "Ankara, Türkiye"

    def test_plan_json_gives_six_reminders(self, run: Runner, shipped: tuple[str, ...]) -> None:
        """From 1 January 2026: three reminders for each event, due at 09:00 local, in UTC."""
        result = run(*shipped, "plan", "--json", "--at", "2026-01-01T00:00:00Z")
        assert result.code == 0
        rows = json.loads(result.out)
        assert len(rows) == 6
        assert set(rows[0]) == {
            "event_uid", "title", "recipient", "offset", "due", "due_local", "status",
        }  # fmt: skip
        assert {r["status"] for r in rows} == {"unplanned"}  # no daemon has run on this state
        dues = {(r["event_uid"], r["offset"]): (r["due"], r["due_local"]) for r in rows}
        assert dues[("nato-2026/defence-ministers-2026-02@eventwatch", "P1D")] == (
            "2026-02-11T08:00:00Z",
            "2026-02-11T09:00:00+01:00",
        )
        assert dues[("nato-2026/summit-2026-07@eventwatch", "P1D")] == (
            "2026-07-06T06:00:00Z",
            "2026-07-06T09:00:00+03:00",
        )
        assert [r["due"] for r in rows] == sorted(r["due"] for r in rows)

    def test_plan_text_shows_both_clocks(self, run: Runner, shipped: tuple[str, ...]) -> None:
        """A plan line gives UTC, the local time and zone, the offset, recipient and title."""
        result = run(*shipped, "plan", "--at", "2026-07-01", "--until", "2026-07-07T00:00:00+03:00")
        assert result.out.splitlines() == [
            (
                "2026-07-06 06:00Z (2026-07-06 09:00 Europe/Istanbul)    P1D before  unplanned  "
                "duty-officer@example.org  NATO Summit 2026"
            ),
        ]

    def test_plan_from_now_says_nothing_is_due(self, run: Runner, shipped: tuple[str, ...]) -> None:
        """Both events are past, so the plan from an instant after them is empty, and says so."""
        result = run(*shipped, "plan", "--at", "2026-11-23T00:00:00Z")
        assert (result.code, result.out) == (0, "no reminders due at or after 2026-11-23 00:00Z\n")

    def test_list_filters_by_category_and_dates(
        self, run: Runner, shipped: tuple[str, ...]
    ) -> None:
        """--category and --from/--until narrow the list; an event overlapping the range counts."""
        summit = run(*shipped, "list", "--json", "--category", "summit")
        assert [r["id"] for r in json.loads(summit.out)] == ["summit-2026-07"]
        second_day = run(
            *shipped, "list", "--json", "--from", "2026-07-08", "--until", "2026-07-08"
        )
        assert [r["id"] for r in json.loads(second_day.out)] == ["summit-2026-07"]
        february = run(*shipped, "list", "--json", "--until", "2026-03-01")
        assert len(json.loads(february.out)) == 2

    def test_list_text(self, run: Runner, shipped: tuple[str, ...]) -> None:
        """Text lines show dates, zone, calendar/id, title and place."""
        lines = run(*shipped, "list").out.splitlines()
        assert lines[2] == (
            "2026-07-07 to 2026-07-08 (all day) Europe/Istanbul  nato-2026/summit-2026-07  "
            "NATO Summit 2026, Ankara, Türkiye"
        )


class TestUsage:
    """Arguments and exit codes."""

    def test_version(self, run: Runner) -> None:
        """--version prints the package version."""
        result = run("--version")
        assert (result.code, result.out) == (0, f"eventwatch {__version__}\n")

    def test_unknown_calendar_is_bad_input(self, run: Runner, shipped: tuple[str, ...]) -> None:
        """Filtering on a calendar that does not exist is exit 2 with the known ids."""
        result = run(*shipped, "list", "--calendar", "nato-2025")
        assert (result.code, result.err) == (
            2,
            "--calendar: no calendar 'nato-2025' (have: nato-2026)\n",
        )

    @pytest.mark.parametrize(
        ("argv", "message"),
        [
            (("plan", "--at", "2026-01-01T00:00:00"), "has no UTC offset"),
            (("plan", "--at", "soon"), "is not a date-time"),
            (("list", "--from", "July"), "is not a date like 2026-07-07"),
            (("frobnicate",), "invalid choice"),
            ((), "required: COMMAND"),
        ],
    )
    def test_bad_arguments_exit_2(
        self, run: Runner, argv: tuple[str, ...], message: str, shipped: tuple[str, ...]
    ) -> None:
        """Malformed arguments are usage errors."""
        result = run(*shipped, *argv)
        assert result.code == 2
        assert message in result.err

    def test_options_may_follow_the_command(self, run: Runner, site: Site) -> None:
        """--config works after the command too."""
        result = run("check", "--config", str(site.config))
        assert (result.code, result.out) == (0, "1 calendar, 1 event OK\n")

    def test_runs_as_a_module(self, shipped: tuple[str, ...]) -> None:
        """Running ``python -m eventwatch`` is the same command."""
        done = subprocess.run(
            [sys.executable, "-m", "eventwatch", *shipped, "check"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert (done.returncode, done.stdout) == (0, "1 calendar, 3 events OK\n")


# Each of the bad inputs, run through the installed command: exit 2, the file named,
# one line per problem, and never a traceback.
CAL = MINIMAL_CALENDAR
SECOND_EVENT = CAL[CAL.index("[[events]]") :]
BAD_INPUTS = {
    "toml syntax": ("calendar", "name = \n", "calendars/test.toml:1: TOML syntax error"),
    "unknown key": (
        "calendar",
        CAL + "colour = 1\n",
        "calendars/test.toml:13: events[0].colour: unknown key",
    ),
    "wrong type": (
        "calendar",
        CAL.replace('title = "Meeting"', "title = 7"),
        "calendars/test.toml:10: events[0].title: Input should be a valid string",
    ),
    "unknown timezone": (
        "calendar",
        CAL.replace("Europe/Brussels", "Europe/Brusels"),
        "calendars/test.toml:2: timezone: 'Europe/Brusels' is not an IANA time zone",
    ),
    "end before start": (
        "calendar",
        CAL.replace("12:00:00", "09:00:00"),
        "calendars/test.toml:12: events[0].end: 2026-05-04T09:00:00+02:00 is before start",
    ),
    "duplicate id": (
        "calendar",
        CAL + SECOND_EVENT,
        "calendars/test.toml:14: events[1].id: 'meeting' repeats events[0].id",
    ),
    "malformed address": (
        "calendar",
        CAL.replace("ops@example.org", "ops.example.org"),
        "calendars/test.toml:6: reminders.recipients[0].address: 'ops.example.org' is not",
    ),
    "malformed duration": (
        "calendar",
        CAL.replace('"P1D"', '"1 day"'),
        "calendars/test.toml:5: reminders.offsets[0]: '1 day' is not a duration",
    ),
    "dangling related_to": (
        "calendar",
        CAL + 'related_to = "summit"\n',
        "calendars/test.toml:13: events[0].related_to: 'summit' names no event",
    ),
    "control character": (
        "calendar",
        CAL.replace('title = "Meeting"', 'title = "Meet\\u0000ing"'),
        "calendars/test.toml:10: events[0].title: control character U+0000",
    ),
    "empty folder": ("empty", "", "calendars: no calendar files (*.toml) in this folder"),
    "missing --config": (
        "missing-config",
        "",
        "nowhere.toml: settings file given by --config does not exist",
    ),
    "bad setting": (
        "settings",
        "[server]\nport = 0\n",
        "config/eventwatch.toml:4: server.port: Input should be greater than or equal to 1",
    ),
}


@pytest.mark.parametrize(("kind", "text", "expected"), BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
def test_bad_input_exits_2_naming_the_file(site: Site, kind: str, text: str, expected: str) -> None:
    """The installed command prints the problem line on stderr, exits 2, and shows no traceback."""
    config = site.config
    if kind == "calendar":
        site.write_calendar("test", text)
    elif kind == "empty":
        (site.calendars / "test.toml").unlink()
    elif kind == "missing-config":
        config = site.root / "nowhere.toml"
    else:
        site.write_config(text)
    done = subprocess.run(
        [str(COMMAND), "--config", str(config), "check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(expected), lines[0]
    assert "Traceback" not in done.stderr


def test_plan_shows_ledger_status(run: Runner, shipped: tuple[str, ...], tmp_path: Path) -> None:
    """After the daemon's ledger has taken the plan, plan shows each reminder's status there."""
    loaded = inputs.load(SHIPPED_CONFIG, [f"state_dir={tmp_path / 'state'}"])
    ledger = Ledger.in_folder(loaded.settings.state_dir)
    plan = policy.reminders(loaded.calendars, loaded.settings.reminders)
    ledger.reconcile(policy.follow(plan), datetime(2026, 1, 1, tzinfo=UTC))
    (first, *_) = ledger.claim_due(datetime(2026, 1, 13, 8, tzinfo=UTC)).rows
    ledger.mark_sent(first.key, "<x@example.org>", datetime(2026, 1, 13, 8, tzinfo=UTC))
    ledger.close()
    rows = json.loads(run(*shipped, "plan", "--json", "--at", "2026-01-01T00:00:00Z").out)
    assert [r["status"] for r in rows] == ["sent"] + ["pending"] * 5


def test_simulate_sends_to_every_hostile_recipient_with_only_its_own_headers(
    run: Runner, site: Site, tmp_path: Path
) -> None:
    """The inputs that once added headers or stopped a batch: every message goes, intact."""
    site.write_calendar("test", HOSTILE_CALENDAR)
    out = tmp_path / "outbox"
    result = run(
        "--config", str(site.config), "simulate",
        "--from", "2026-05-01T00:00:00Z", "--until", "2026-05-05T00:00:00Z", "--out", str(out),
    )  # fmt: skip
    assert result.code == 0, result.err
    assert result.out.splitlines()[-1] == f"4 messages written to {out}"
    found = {}
    box = mailbox.Maildir(out, create=False)
    for key in box.iterkeys():
        # SMTPUTF8 headers are UTF-8 on the wire: read them as such.
        message = email.message_from_string(
            box.get_bytes(key).decode(), policy=email.policy.default
        )
        assert sorted(k.lower() for k in message) == sorted(
            ["from", "to", "subject", "date", "message-id", "auto-submitted", "mime-version",
             "content-type"]
        )  # fmt: skip
        (address,) = message["To"].addresses
        found[address.addr_spec] = message["Subject"]
    assert sorted(found) == [
        "bad@xn--bcher-kva.example", "bädi@example.org", "ok@example.org",
        "user@xn--bcher-kva.example",
    ]  # fmt: skip
    subject = (
        "Reminder: Delta =?UTF-8?Q?=0A?=Bcc: x@evil.example check in 1 day "
        "(Mon 4 May 2026 10:00 CEST, x =?UTF-8?Q?=0A=0A?=Reply-To: y@evil.example)"
    )
    assert set(found.values()) == {subject}


def _overwrite_pages(db: Path) -> None:
    """Overwrite the middle of the file, as a failing disk or a stray write would."""
    data = bytearray(db.read_bytes())
    data[4096:8192] = b"\xa5" * 4096
    db.write_bytes(bytes(data))


def _run_sql(db: Path, statement: str) -> None:
    """Change the database behind eventwatch's back."""
    connection = sqlite3.connect(db)
    with connection:
        connection.execute(statement)
    connection.close()


LEDGER_DAMAGE = {
    "pages overwritten": (_overwrite_pages, "database disk image is malformed"),
    "truncated": (lambda db: db.write_bytes(db.read_bytes()[:5000]), "damaged"),
    "not a database": (lambda db: db.write_bytes(b"hello " * 2000), "not a database"),
    "missing column": (
        lambda db: _run_sql(db, "ALTER TABLE reminders DROP COLUMN message_id"),
        "table reminders lacks column message_id",
    ),
    "unknown status": (
        lambda db: _run_sql(
            db,
            'INSERT INTO reminders (key, event_uid, recipient, "offset", due, status, attempts)'
            " VALUES ('k', 'u', 'r@example.org', 'P1D', 0, 'lost', 0)",
        ),
        "a status eventwatch does not know: ['lost']",
    ),
    "unknown kind": (
        lambda db: _run_sql(
            db,
            "INSERT INTO reminders (key, event_uid, recipient, kind, due, status, attempts)"
            " VALUES ('k', 'u', 'r@example.org', 'postcard', 0, 'pending', 0)",
        ),
        "a kind eventwatch does not know: ['postcard']",
    ),
    "instant out of range": (
        lambda db: _run_sql(db, "UPDATE reminders SET due = 9223372036854775807"),
        "reminders.due values are not instants eventwatch wrote",
    ),
    "instant not a number": (
        lambda db: _run_sql(db, "UPDATE reminders SET next_attempt = 'abc'"),
        "reminders.next_attempt values are not instants eventwatch wrote",
    ),
    "sequence not a number": (
        lambda db: _run_sql(db, "INSERT INTO revisions VALUES ('u', 'x', 'm', 'c', 0)"),
        "revisions.sequence values are not instants eventwatch wrote",
    ),
}


@pytest.mark.parametrize("command", ["plan", "export", "run"])
@pytest.mark.parametrize(("damage", "expected"), LEDGER_DAMAGE.values(), ids=LEDGER_DAMAGE.keys())
def test_a_damaged_ledger_exits_2_naming_the_file_and_is_kept(
    site: Site, command: str, damage: Callable[[Path], None], expected: str
) -> None:
    """A damaged ledger stops each command with one line naming it; the file is left as it was."""
    state = site.root / "state"
    ledger = Ledger.in_folder(state)
    plan = policy.reminders(inputs.load(site.config).calendars, ReminderPolicy())
    ledger.reconcile(policy.follow(plan), datetime(2026, 1, 1, tzinfo=UTC))
    ledger.close()
    db = state / "eventwatch.db"
    for extra in ("eventwatch.db-wal", "eventwatch.db-shm"):
        (state / extra).unlink(missing_ok=True)
    with sqlite3.connect(db) as connection:  # enough rows for the pages a damage needs
        connection.execute("CREATE TABLE IF NOT EXISTS padding (x)")
        connection.executemany("INSERT INTO padding VALUES (?)", [("x" * 500,)] * 40)
    connection.close()
    damage(db)
    before = db.read_bytes()
    extra = ["--out", str(site.root / "out")] if command == "export" else []
    done = subprocess.run(
        [str(COMMAND), "--config", str(site.config), command, *extra],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    logged = ("DEBUG ", "INFO ", "WARNING ", "ERROR ")  # the daemon's log lines before it
    (line,) = [x for x in done.stderr.splitlines() if not x.startswith(logged)]
    assert line.startswith(f"{os.path.normpath(db)}: cannot use the state database: "), line
    assert expected in line
    assert db.read_bytes() == before


@pytest.fixture
def shared_site() -> Iterator[Site]:
    """A site that another user may read (pytest's own folders are closed to all but us)."""
    root = Path(tempfile.mkdtemp(prefix="eventwatch-shared-"))
    root.chmod(0o755)
    made = Site(root)
    made.write_config()
    made.write_calendar("test", MINIMAL_CALENDAR)
    yield made
    shutil.rmtree(root)


def _as_someone_else(argv: list[str]) -> list[str]:
    """``argv`` run by a user who may not write the state folder: nobody, when we are root."""
    if os.geteuid() == 0:
        return ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *argv]
    return argv


@pytest.mark.parametrize("command", ["run", "plan"])
def test_a_state_folder_it_may_not_write_exits_2_naming_the_file(
    shared_site: Site, command: str
) -> None:
    """A state folder (or ledger) eventwatch may not write stops it with one line, exit 2."""
    state = shared_site.root / "state"
    Ledger.in_folder(state).close()
    for path in [state, *state.iterdir()]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    done = subprocess.run(
        _as_someone_else([str(COMMAND), "--config", str(shared_site.config), command]),
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    logged = ("DEBUG ", "INFO ", "WARNING ", "ERROR ")
    (line,) = [x for x in done.stderr.splitlines() if not x.startswith(logged)]
    assert line.startswith(str(state)), line
    assert "Permission denied" in line or "readonly" in line or "read-only" in line, line


@pytest.mark.parametrize(
    "argv",
    [
        ["--set", "smtp.password", "hunter2-canary", "check"],
        ["check", "--set", "smtp.password", "hunter2-canary"],
        ["check", "hunter2-canary"],
    ],
)
def test_a_mistyped_command_line_never_repeats_what_was_typed(argv: list[str]) -> None:
    """A forgotten ``=`` turns a password into a stray word; the usage error leaves it out."""
    done = subprocess.run([str(COMMAND), *argv], capture_output=True, text=True, check=False)
    assert done.returncode == 2
    assert "hunter2-canary" not in done.stdout + done.stderr
    assert "not repeated here as it may be a secret" in done.stderr


def _sqlite_ledger(site: Site) -> Path:
    """The site's SQLite ledger with its one reminder sent and one revision; its file."""
    state = site.root / "state"
    ledger = Ledger.in_folder(state)
    plan = policy.reminders(inputs.load(site.config).calendars, ReminderPolicy())
    ledger.reconcile(policy.follow(plan), datetime(2026, 1, 1, tzinfo=UTC))
    due = datetime(2026, 5, 3, 8, tzinfo=UTC)
    (row,) = ledger.claim_due(due).rows
    ledger.mark_sent(row.key, "<sent@example.org>", due)
    ledger.save_revisions([Revision(plan[0].event_uid, 0, "m", "c", due)])
    ledger.close()
    return state / "eventwatch.db"


class TestMigrateLedger:
    """migrate-ledger: the SQLite ledger into an empty PostgreSQL, or one line saying why not."""

    def test_the_installed_command_moves_the_ledger_and_says_what_next(
        self, site: Site, postgres_database: str
    ) -> None:
        """One line per table with its count, then the next step, naming the backup left."""
        db = _sqlite_ledger(site)
        done = subprocess.run(
            [str(COMMAND), "--config", str(site.config), "migrate-ledger", "--to",
             postgres_database],
            capture_output=True, text=True, check=False, timeout=60,
        )  # fmt: skip
        assert (done.returncode, done.stderr) == (0, "")
        assert done.stdout.splitlines() == [
            "revisions: 1 copied",
            "reminders: 1 copied",
            "attempts: 1 copied",
            (
                f'next: set [database] url = "{postgres_database}" and restart every instance; '
                f"{db} stays, as a backup (at this release's schema)"
            ),
        ]
        moved = Ledger(postgres_database)
        assert [str(r.status) for r in moved.rows().values()] == ["sent"]
        moved.close()

    def test_without_to_the_settings_url_is_the_target(
        self, run: Runner, site: Site, postgres_database: str
    ) -> None:
        """With [database] url set and no --to, the ledger moves there; next is to start."""
        db = _sqlite_ledger(site)
        site.write_config(f'[database]\nurl = "{postgres_database}"\n')
        result = run("--config", str(site.config), "migrate-ledger")
        assert (result.code, result.err) == (0, "")
        assert result.out.splitlines()[-1] == (
            "next: start eventwatch on every instance with these settings; "
            f"{db} stays, as a backup (at this release's schema)"
        )
        moved = Ledger(postgres_database)
        assert len(moved.rows()) == 1
        moved.close()

    @pytest.mark.parametrize(
        ("url", "expected"),
        [
            ("mysql://eventwatch:hunter2@db/eventwatch", "is not a PostgreSQL URL"),
            ("postgresql+asyncpg://eventwatch@db/eventwatch", "names a driver other than psycopg"),
            ("postgresql://eventwatch:hunter2@db:5432", "it names no database"),
            ("postgresql://eventwatch@db/eventwatch?password=hunter2", "use password_file"),
        ],
    )
    def test_a_bad_url_is_one_line_and_exit_2(
        self, run: Runner, site: Site, url: str, expected: str
    ) -> None:
        """--to is held to the rules of [database] url: one line naming --to, no password."""
        _sqlite_ledger(site)
        result = run("--config", str(site.config), "migrate-ledger", "--to", url)
        assert (result.code, result.out) == (2, "")
        (line,) = result.err.splitlines()
        assert line.startswith("--to: "), line
        assert expected in line
        assert "hunter2" not in line

    def test_a_password_in_the_url_and_the_settings_is_refused(
        self, run: Runner, site: Site, tmp_path: Path
    ) -> None:
        """A password in --to beside the one the settings give is one line, exit 2, not shown."""
        _sqlite_ledger(site)
        secret = tmp_path / "database-password"
        secret.write_text("from-the-file\n", encoding="utf-8")
        site.write_config(
            f'[database]\nurl = "postgresql://eventwatch@db/eventwatch"\n'
            f'password_file = "{secret}"\n'
        )
        url = "postgresql://eventwatch:hunter2@elsewhere/eventwatch"
        result = run("--config", str(site.config), "migrate-ledger", "--to", url)
        assert result.code == 2
        assert result.err == (
            "--to: 'postgresql+psycopg://eventwatch:***@elsewhere/eventwatch' holds a password, "
            "and so do the settings (password, password_file or the database-password "
            "credential): give it once\n"
        )

    def test_no_url_at_all_is_one_line_and_exit_2(self, run: Runner, site: Site) -> None:
        """Without --to and without [database] url there is nowhere to move to: exit 2."""
        _sqlite_ledger(site)
        result = run("--config", str(site.config), "migrate-ledger")
        assert (result.code, result.err) == (
            2,
            "--to: required, as no [database] url is set: the database to move the ledger to\n",
        )

    def test_a_server_that_does_not_answer_is_one_line(self, site: Site) -> None:
        """Nobody listening on the port: one line naming the database, exit 1, no traceback."""
        _sqlite_ledger(site)
        url = f"postgresql+psycopg://eventwatch@127.0.0.1:{free_port()}/eventwatch"
        done = subprocess.run(
            [str(COMMAND), "--config", str(site.config), "migrate-ledger", "--to", url],
            capture_output=True, text=True, check=False, timeout=60,
        )  # fmt: skip
        assert (done.returncode, done.stdout) == (1, "")
        (line,) = done.stderr.splitlines()
        assert line.startswith(f"{url}: the database cannot be reached: "), line

    def test_a_state_folder_without_a_ledger_is_one_line_and_exit_2(
        self, run: Runner, site: Site
    ) -> None:
        """A state_dir with no SQLite file names the file it looked for, and makes none."""
        url = "postgresql://eventwatch@db/eventwatch"
        result = run("--config", str(site.config), "migrate-ledger", "--to", url)
        db = site.root / "state" / "eventwatch.db"
        assert (result.code, result.err) == (
            2,
            f"{db}: no SQLite ledger to move (is state_dir right?)\n",
        )
        assert not db.exists()


DAEMON_ONLY = ("uvicorn", "starlette", "sqlalchemy", "psycopg", "apscheduler", "aiosmtplib")
"""What only ``run`` (and the commands that open the ledger or send) need loaded."""


@pytest.mark.parametrize("argv", [["--version"], ["check"], ["list"], ["list", "--json"]])
def test_the_quick_commands_load_nothing_of_the_daemon(argv: list[str]) -> None:
    """``--version``, ``check`` and ``list`` import no server, SQL, scheduler or SMTP library.

    Measured as a user runs them: the installed command, with Python's import log.
    """
    found = subprocess.run(
        [str(COMMAND), *argv, "--config", str(SHIPPED_CONFIG)],
        env=os.environ | {"PYTHONPROFILEIMPORTTIME": "1"},
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    imported = {line.rsplit("|", 1)[-1].strip() for line in found.stderr.splitlines()}
    assert "eventwatch.cli" in imported  # the log is there to read
    loaded = sorted(m for m in imported if m.split(".")[0] in DAEMON_ONLY)
    assert loaded == []
