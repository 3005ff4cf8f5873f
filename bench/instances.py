"""Several instances on one PostgreSQL ledger (issue 12): delivery rate and claim round-trips.

    python bench/instances.py

COUNT reminders (EVENTS events x RECIPIENTS recipients) fall due at one instant a few seconds
after the daemons are ready; real ``eventwatch run`` processes send them over SMTP to an
aiosmtpd sink in its own process (bench/sink.py's, here also noting each Message-ID). Three
cases in one run, each with a fresh ledger and sink:

- one daemon on the SQLite ledger in its state folder (the baseline of the ratios);
- one daemon on PostgreSQL;
- two daemons on PostgreSQL (a state folder and HTTP port each, the same calendars).

PostgreSQL is a throw-away server started here as tests/conftest.py starts it (Debian's
initdb and pg_ctl, as the ``postgres`` user when run as root, a temporary folder, a free
loopback port), with ``fsync=off`` and pg_stat_statements loaded. Without PostgreSQL only the
SQLite case runs, and the output says so.

For each case: messages/s from the due instant to the last arrival at the sink, the lateness
of the first and last message, and whether every reminder arrived exactly once (distinct
Message-IDs == COUNT == messages received, every ledger row ``sent``); a case that fails this
prints FAIL with the daemons' warning and error lines, and the script exits 1. On PostgreSQL
also the round-trips: statements per reminder from pg_stat_statements over the delivery window
(claims, all statements with BEGIN and COMMIT, transactions), claim batches from the
``attempts`` table, and pg_stat_database's xact_commit delta as a cross-check.

``python bench/instances.py --sink PORT OUT COUNTFILE`` is the sink process itself.
"""

from __future__ import annotations

import collections
import contextlib
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

EVENTS, RECIPIENTS = 20, 100
COUNT = EVENTS * RECIPIENTS
LEAD = 10.0  # seconds from launching the daemons to the due instant: ready, planned, built ahead
GRACE = 2.0  # seconds to wait after the last expected message: a copy sent twice comes now
TIMEOUT = 60.0  # seconds after due by which every message must have arrived
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from provenance import machine, revision  # noqa: E402 - from this folder, on the path above
COMMAND = Path(sys.executable).parent / "eventwatch"
MESSAGE_ID = re.compile(rb"^Message-ID:[ \t]*(\S+)", re.IGNORECASE | re.MULTILINE)


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- the sink: bench/sink.py's, also noting each message's Message-ID ------------------------


def run_sink(port: int, out: Path, counter: Path) -> None:
    """Accept every message; keep COUNTFILE at the number received; write OUT on SIGTERM."""
    sys.path.insert(0, str(HERE))
    from aiosmtpd.controller import Controller
    from sink import Sink

    class IdSink(Sink):
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802, ANN401, ARG002
            head = envelope.content.split(b"\r\n\r\n", 1)[0]
            found = MESSAGE_ID.search(head)
            with self.lock:
                self.arrived.append(
                    (time.time(), f"{envelope.rcpt_tos[0]} {found[1].decode() if found else '-'}")
                )
            return "250 OK"

    sink = IdSink()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    controller.start()
    print("ready", flush=True)
    # The benchmark polls this file rather than the database: its own queries would count.
    while not done.wait(0.05):
        with sink.lock:
            n = len(sink.arrived)
        counter.with_suffix(".tmp").write_text(str(n))
        counter.with_suffix(".tmp").replace(counter)
    controller.stop()
    with sink.lock:
        out.write_text("".join(f"{t:.6f} {rest}\n" for t, rest in sink.arrived))


@contextlib.contextmanager
def sink_process(folder: Path) -> Iterator[tuple[int, Path, Path, int]]:
    """The sink in its own process; yield its port, arrivals file, count file and pid."""
    port, out, counter = free_port(), folder / "arrivals.txt", folder / "count"
    process = subprocess.Popen(
        [sys.executable, __file__, "--sink", str(port), str(out), str(counter)],
        stdout=subprocess.PIPE,
    )
    assert process.stdout is not None
    if process.stdout.readline().strip() != b"ready":
        raise SystemExit("the SMTP sink did not start")
    try:
        yield port, out, counter, process.pid
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


# -- PostgreSQL, as tests/conftest.py starts it ----------------------------------------------


def postgres_program(name: str) -> str | None:
    """A PostgreSQL server program from Debian's package (not on PATH), if installed."""
    found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    return str(found[-1]) if found else shutil.which(name)


@dataclass
class Postgres:
    """The throw-away server: its port, version line and data folder."""

    port: int
    version: str
    data: Path

    def processes(self) -> list[int]:
        """The postmaster and its children."""
        postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
        return [postmaster, *children(postmaster)]

    def admin(self) -> Any:  # noqa: ANN401 - a psycopg connection
        """An autocommit connection to the ``postgres`` database, for creating and counting."""
        import psycopg

        return psycopg.connect(
            host="127.0.0.1", port=self.port, user="eventwatch", dbname="postgres", autocommit=True
        )

    def url(self, database: str) -> str:
        """The URL a daemon's ``[database] url`` names ``database`` by."""
        return f"postgresql+psycopg://eventwatch@127.0.0.1:{self.port}/{database}"


@contextlib.contextmanager
def postgres() -> Iterator[Postgres | str]:
    """A throw-away server, or why there is none."""
    initdb, pg_ctl = postgres_program("initdb"), postgres_program("pg_ctl")
    if initdb is None or pg_ctl is None:
        yield "PostgreSQL is not installed (no initdb; Debian: apt-get install postgresql)"
        return
    try:
        import psycopg  # noqa: F401
    except ImportError:
        yield "psycopg is not installed (pip install 'eventwatch[postgres]')"
        return
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    folder = Path(tempfile.mkdtemp(prefix="eventwatch-bench-pg-"))
    if as_user:
        shutil.chown(folder, "postgres", "postgres")
    data, port = folder / "data", free_port()
    options = (
        f"-k {folder} -p {port} -c listen_addresses=127.0.0.1 -c fsync=off "
        "-c shared_preload_libraries=pg_stat_statements"
    )
    started = False
    try:
        subprocess.run(
            [*as_user, initdb, "-D", str(data), "-U", "eventwatch", "--auth=trust", "-E",
             "UTF8", "--no-locale", "--no-sync"],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        subprocess.run(
            [*as_user, pg_ctl, "-D", str(data), "-l", str(folder / "log"), "-w", "-o", options,
             "start"],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        started = True
        version = subprocess.run(
            [postgres_program("postgres") or "postgres", "--version"],
            capture_output=True, text=True, check=False,
        ).stdout.strip()  # fmt: skip
        yield Postgres(port, version, data)
    except subprocess.CalledProcessError as exc:
        log = folder / "log"
        tail = log.read_text()[-600:] if log.exists() else ""
        yield f"PostgreSQL did not start: {exc.stderr.decode()[-600:]}{tail}"
    finally:
        if started:
            subprocess.run(
                [*as_user, pg_ctl, "-D", str(data), "-m", "fast", "stop"],
                check=False, capture_output=True, timeout=60,
            )  # fmt: skip
        shutil.rmtree(folder, ignore_errors=True)


def statements(server: Postgres, database: str) -> dict[str, int]:
    """pg_stat_statements' calls per statement text, and xact_commit, for ``database``."""
    with server.admin() as connection:
        rows = connection.execute(
            "SELECT s.query, sum(s.calls)::bigint FROM pg_stat_statements s "
            "JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = %s GROUP BY s.query",
            (database,),
        ).fetchall()
        (commits,) = connection.execute(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = %s", (database,)
        ).fetchone()
    return {query: int(calls) for query, calls in rows} | {"\0xact_commit": int(commits)}


# -- the daemons -----------------------------------------------------------------------------


def stamp(instant: datetime) -> str:
    """A TOML local date-time in UTC, to the second."""
    return instant.astimezone(UTC).replace(tzinfo=None, microsecond=0).isoformat()


def calendar(due: datetime) -> str:
    """EVENTS events whose P1D reminder to each of RECIPIENTS falls due at ``due``."""
    listed = "".join(f'  {{ address = "r{n:03d}@example.org" }},\n' for n in range(RECIPIENTS))
    text = 'name = "Bench"\ntimezone = "UTC"\n[reminders]\noffsets = ["P1D"]\n'
    text += f"recipients = [\n{listed}]\n"
    start = due + timedelta(days=1)
    for n in range(EVENTS):
        text += (
            f'\n[[events]]\nid = "e{n:02d}"\ntitle = "Event {n}"\n'
            f"start = {stamp(start)}\nend = {stamp(start + timedelta(hours=1))}\n"
        )
    return text


@dataclass
class Daemon:
    """One ``eventwatch run`` process and its site."""

    name: str
    root: Path
    port: int
    process: subprocess.Popen[bytes]
    ready: float = float("nan")

    @property
    def log(self) -> Path:
        """Where its stderr goes."""
        return self.root / "daemon.log"


def launch(root: Path, name: str, smtp: int, url: str | None, due: datetime) -> Daemon:
    """``eventwatch run`` on a site of its own: settings, the calendar, a state folder."""
    (root / "calendars").mkdir(parents=True)
    (root / "calendars" / "bench.toml").write_text(calendar(due))
    port = free_port()
    text = (
        'calendars_dir = "calendars"\nstate_dir = "state"\n'
        f'[server]\nhost = "127.0.0.1"\nport = {port}\n'
        '[mail]\ndelivery = "smtp"\nfrom = "eventwatch <eventwatch@example.org>"\n'
        f'[smtp]\nhost = "127.0.0.1"\nport = {smtp}\nsecurity = "none"\n'
    )
    if url is not None:
        text += f'[database]\nurl = "{url}"\ninstance = "{name}"\n'
    (root / "eventwatch.toml").write_text(text)
    environ = {
        k: v
        for k, v in os.environ.items()
        if not k.upper().startswith("EVENTWATCH_")
        and k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS")
    }
    with (root / "daemon.log").open("wb") as log:
        process = subprocess.Popen(
            [str(COMMAND), "--config", str(root / "eventwatch.toml"), "run"],
            stderr=log,
            env=environ,
        )
    return Daemon(name, root, port, process)


def wait_ready(daemons: list[Daemon], began: float) -> None:
    """Poll each daemon's /healthz until it answers 200; note seconds from launch."""
    deadline = time.monotonic() + 30
    for daemon in daemons:
        while True:
            if daemon.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"daemon {daemon.name} did not start:\n{daemon.log.read_text()[-2000:]}"
                )
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{daemon.port}/healthz", timeout=1):
                    daemon.ready = time.monotonic() - began
                    break
            except OSError:
                time.sleep(0.02)


def stop(daemon: Daemon) -> int:
    """SIGTERM, as systemd stops it; its exit code (-9 if it had to be killed)."""
    if daemon.process.poll() is None:
        daemon.process.send_signal(signal.SIGTERM)
    try:
        return daemon.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        daemon.process.kill()
        daemon.process.wait()
        return -9


TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU seconds the processes have used so far (those still there)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICK


def children(parent: int) -> list[int]:
    """The processes whose parent is ``parent``: a postmaster's backends and workers."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == parent:
                    found.append(int(entry.name))
    return found


def count_of(counter: Path) -> int:
    """The number of messages the sink has received, as its count file says."""
    try:
        return int(counter.read_text() or 0)
    except (FileNotFoundError, ValueError):
        return 0


# -- one case --------------------------------------------------------------------------------


@dataclass
class Result:
    """What one case measured, and what went wrong in it."""

    case: str
    instances: int
    rate: float = float("nan")
    first: float = float("nan")
    last: float = float("nan")
    received: int = 0
    distinct: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    sent_by: dict[str, int] = field(default_factory=dict)
    batches: dict[str, int] = field(default_factory=dict)
    ready: list[float] = field(default_factory=list)
    stats: dict[str, float] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)
    others: float = float("nan")
    """Cores other processes on the machine kept busy over the window, on average."""
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    logs: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether every reminder arrived exactly once and every daemon behaved."""
        return not self.problems


def ledger_figures(connection: Any, result: Result) -> None:  # noqa: ANN401 - DB-API
    """Statuses, reminders sent per instance, claim batches per instance: from the ledger."""
    cursor = connection.cursor()
    cursor.execute("SELECT status, count(*) FROM reminders GROUP BY status")
    result.statuses = {status: int(n) for status, n in cursor.fetchall()}
    cursor.execute(
        "SELECT instance, count(*) FROM attempts WHERE result = 'sent' GROUP BY instance"
    )
    result.sent_by = {instance: int(n) for instance, n in cursor.fetchall()}
    # Claims are stamped to the second: two claims of one instance in one second count once.
    cursor.execute("SELECT instance, count(DISTINCT claimed_at) FROM attempts GROUP BY instance")
    result.batches = {instance: int(n) for instance, n in cursor.fetchall()}


def cpu(daemons: list[Daemon], sink: int, server: Postgres | None) -> dict[str, float]:
    """CPU seconds used so far by the daemons, the sink, PostgreSQL and the whole machine."""
    # /proc/stat's first line: user nice system idle iowait irq softirq steal, in ticks.
    ticks = [int(n) for n in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return {
        "daemons": cpu_seconds([d.process.pid for d in daemons]),
        "sink": cpu_seconds([sink]),
        "postgres": cpu_seconds(server.processes()) if server else 0.0,
        "machine": (sum(ticks) - ticks[3] - ticks[4]) / TICK,
        "wall": time.monotonic(),
    }


def run_case(  # noqa: C901, PLR0912, PLR0915 - one case, read top to bottom
    case: str, instances: int, folder: Path, server: Postgres | None, database: str | None
) -> Result:
    """Run ``instances`` daemons on SQLite (no ``server``) or ``database``, to a fresh sink."""
    from eventwatch.ledger import DATABASE_FILE

    result = Result(case, instances)
    folder.mkdir()
    url = server.url(database) if server and database else None
    with sink_process(folder) as (smtp, arrivals, counter, sink_pid):
        began = time.monotonic()
        due = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=LEAD + 1)
        names = ["a", "b"][:instances]
        daemons = [launch(folder / name, name, smtp, url, due) for name in names]
        try:
            wait_ready(daemons, began)
            result.ready = [d.ready for d in daemons]
            if time.time() > due.timestamp() - 1:
                result.problems.append(
                    "the daemons were ready less than 1 s before the due instant: raise LEAD"
                )
            # The window measured opens just before the due instant, after building ahead.
            time.sleep(max(0.0, due.timestamp() - 1.3 - time.time()))
            busy = cpu_seconds([d.process.pid for d in daemons])
            time.sleep(max(0.0, due.timestamp() - 0.3 - time.time()))
            before = statements(server, database) if server and database else {}
            cpu_before = cpu(daemons, sink_pid, server)
            busy = cpu_before["daemons"] - busy
            if busy > 0.3:  # a third of a core: more than waiting takes
                result.notes.append(
                    f"the daemons used {busy:.2f} CPU-s in the second before due: still "
                    "building ahead? (their sends may have built messages anew)"
                )
            deadline = due.timestamp() + TIMEOUT
            while count_of(counter) < COUNT and time.time() < deadline:
                if any(d.process.poll() is not None for d in daemons):
                    result.problems.append("a daemon exited during the run")
                    break
                time.sleep(0.05)
            time.sleep(GRACE)
            after = statements(server, database) if server and database else {}
            cpu_after = cpu(daemons, sink_pid, server)
            spent = {k: cpu_after[k] - cpu_before[k] for k in cpu_after}
            wall = spent.pop("wall")
            ours = spent["daemons"] + spent["sink"] + spent["postgres"]
            result.others = max(0.0, spent.pop("machine") - ours) / wall
            result.cpu = {k: v / COUNT * 1000 for k, v in spent.items()}
        finally:
            codes = [stop(d) for d in daemons]
        if server and database:
            # A backend adds to xact_commit lazily, and surely when it exits: read it now,
            # with the daemons' few transactions at their stop.
            after["\0xact_commit"] = statements(server, database)["\0xact_commit"]
    for daemon, code in zip(daemons, codes, strict=True):
        if code != 0:
            result.problems.append(f"daemon {daemon.name} exited with {code}")
    lines = [line.split(" ", 2) for line in arrivals.read_text().splitlines()]
    times = sorted(float(t) for t, _, _ in lines)
    ids = collections.Counter(mid for _, _, mid in lines)
    result.received, result.distinct = len(lines), len(ids)
    if times:
        result.first, result.last = times[0] - due.timestamp(), times[-1] - due.timestamp()
        result.rate = COUNT / result.last if result.last > 0 else float("nan")
    if server and database:
        import psycopg

        with psycopg.connect(
            host="127.0.0.1", port=server.port, user="eventwatch", dbname=database
        ) as connection:
            ledger_figures(connection, result)
        result.stats = round_trips(before, after)
    else:
        path = folder / "a" / "state" / DATABASE_FILE
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            ledger_figures(connection, result)
        finally:
            connection.close()
    # Exactly once: as many messages as reminders, each Message-ID once, every row sent.
    if result.received != COUNT:
        result.problems.append(f"{result.received} messages arrived for {COUNT} reminders")
    if result.distinct != COUNT:
        result.problems.append(f"{result.distinct} distinct Message-IDs for {COUNT} reminders")
    twice = [mid for mid, n in ids.items() if n > 1]
    if twice:
        result.problems.append(f"{len(twice)} Message-IDs arrived more than once: {twice[:5]}")
    if result.statuses != {"sent": COUNT}:
        result.problems.append(f"ledger statuses {result.statuses}, not all {COUNT} sent")
    for daemon in daemons:
        for line in daemon.log.read_text(errors="replace").splitlines():
            if not line.startswith("INFO") and "reminder sent" not in line:
                result.logs.append(f"[{daemon.name}] {line}")
    return result


def round_trips(before: dict[str, int], after: dict[str, int]) -> dict[str, float]:
    """Per reminder: claims, statements, transactions, pings and round-trips on PostgreSQL.

    pg_stat_statements counts every statement but the pool's pre-ping (SQLAlchemy sends an
    empty query, ";", in autocommit): those are xact_commit less the COMMIT statements.
    psycopg pipelines ``executemany`` (the attempts of one claim), one round-trip a batch.
    """
    delta = {q: n - before.get(q, 0) for q, n in after.items()}
    commits = delta.pop("\0xact_commit")
    calls = sum(delta.values())
    claims = sum(n for q, n in delta.items() if "SKIP LOCKED" in q.upper())
    ends = sum(n for q, n in delta.items() if q.strip().upper() == "COMMIT")
    inserts = sum(n for q, n in delta.items() if q.startswith("INSERT INTO attempts"))
    pings = max(0, commits - ends)
    return {
        "claims": claims / COUNT,
        "statements": calls / COUNT,
        "transactions": ends / COUNT,
        "pings": pings / COUNT,
        "round_trips": (calls - max(0, inserts - claims) + pings) / COUNT,
    }


# -- the report ------------------------------------------------------------------------------


def report(results: list[Result], pg_note: str) -> None:  # noqa: C901 - one table after another
    """Print the tables, ratios to the first case (SQLite), and every failure with its logs."""
    base = results[0]
    print(
        f"# eventwatch instances: {COUNT} reminders ({EVENTS} events x {RECIPIENTS} recipients) "
        f"due at one instant, SMTP to an aiosmtpd sink in its own process"
    )
    print(f"# {machine()}; {time.strftime('%Y-%m-%d %H:%M %Z')}; code at {revision()}")
    print(f"# {pg_note}")
    print()
    print(
        f"{'case':<26}{'msg/s':>7}{'vs SQLite':>10}{'first late':>12}{'last late':>11}"
        f"{'received':>10}{'distinct':>10}  exactly once"
    )
    for r in results:
        print(
            f"{r.case:<26}{r.rate:>7.0f}{r.rate / base.rate:>9.2f}x{r.first:>11.3f}s"
            f"{r.last:>10.2f}s{r.received:>10}{r.distinct:>10}  {'yes' if r.ok else 'FAIL'}"
        )
    print()
    print(
        f"Per case: seconds from launch to ready (due {LEAD + 1:.0f} s or less after launch); "
        "from the ledger's attempts table,"
    )
    print(
        "reminders sent by each instance, and the seconds in which each claimed (claimed_at is "
        "stamped to the second)"
    )
    for r in results:
        ready = ", ".join(f"{s:.2f}" for s in r.ready)
        print(f"  {r.case:<26} ready {ready}; sent {r.sent_by}; seconds with a claim {r.batches}")
    measured = [r for r in results if r.stats]
    if measured:
        print()
        print(
            "PostgreSQL per reminder sent, from 0.3 s before due to "
            f"{GRACE:.0f} s after the last message:"
        )
        print(
            f"{'case':<26}{'claims':>8}{'statements':>12}{'COMMITs':>9}"
            f"{'pings':>7}{'round-trips':>13}"
        )
        for r in measured:
            s = r.stats
            print(
                f"{r.case:<26}{s['claims']:>8.3f}{s['statements']:>12.2f}"
                f"{s['transactions']:>9.2f}{s['pings']:>7.2f}{s['round_trips']:>13.2f}"
            )
        print(
            "  claims: claim statements (one WITH ... FOR UPDATE SKIP LOCKED ... UPDATE), from "
            "pg_stat_statements, empty ones included"
        )
        print(
            "  statements: every statement pg_stat_statements saw (BEGIN, SELECT now(), "
            "UPDATE/INSERT, COMMIT...)"
        )
        print(
            "  pings: SQLAlchemy's pool pre-ping (an empty query, unseen by pg_stat_statements), "
            "as pg_stat_database"
        )
        print("         xact_commit (read after the daemons stopped) less COMMIT statements")
        print(
            "  round-trips: statements + pings, an executemany of attempts counted once a "
            "claim (psycopg pipelines it)"
        )
    print()
    print(
        "CPU milliseconds per reminder over the same window (/proc utime+stime; 2 cores give "
        "at most 2 CPU-seconds a second):"
    )
    print(
        f"{'case':<26}{'daemons':>9}{'postgres':>10}{'sink':>7}{'total':>8}{'cores busy':>12}"
        f"{'others':>8}"
    )
    for r in (r for r in results if r.cpu):
        c = r.cpu
        total = sum(c.values())
        busy = total * COUNT / 1000 / r.last if r.last > 0 else float("nan")
        print(
            f"{r.case:<26}{c['daemons']:>9.2f}{c['postgres']:>10.2f}{c['sink']:>7.2f}"
            f"{total:>8.2f}{busy:>12.2f}{r.others:>8.2f}"
        )
    print(
        "  cores busy: total CPU over the seconds from due to the last arrival; others: cores "
        "that other processes"
    )
    print("  on the machine kept busy meanwhile (/proc/stat less ours): the noise of a shared host")
    for r in results:
        for note in r.notes:
            print(f"NOTE: {r.case}: {note}")
    failed = [r for r in results if not r.ok]
    for r in failed:
        print()
        print(f"FAIL: {r.case}: " + "; ".join(r.problems))
        for line in r.logs[:60]:
            print(f"  {line}")
    for r in results:
        if r.ok and r.logs:
            print(f"\n{r.case}: {len(r.logs)} log lines above INFO (first 10):")
            for line in r.logs[:10]:
                print(f"  {line}")


def main() -> int:
    """Run the three cases (or be the sink); 1 if any reminder was not sent exactly once."""
    if len(sys.argv) == 5 and sys.argv[1] == "--sink":
        run_sink(int(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]))
        return 0
    if not COMMAND.exists():
        raise SystemExit(f"{COMMAND} is missing: run make bench (it installs eventwatch)")
    results: list[Result] = []

    def run(case: str, n: int, folder: Path, server: Postgres | None, db: str | None) -> None:
        try:
            results.append(run_case(case, n, folder, server, db))
        except RuntimeError as exc:  # a daemon that did not start: its log says why
            results.append(Result(case, n, problems=[str(exc)]))

    with tempfile.TemporaryDirectory(prefix="eventwatch-bench-") as name, postgres() as server:
        folder = Path(name)
        run("SQLite, 1 instance", 1, folder / "sqlite", None, None)
        if isinstance(server, str):
            note = f"no PostgreSQL figures: {server}"
            print(note, flush=True)
        else:
            note = (
                f"{server.version}, throw-away server on loopback TCP, fsync=off "
                "(SQLite: WAL, synchronous=NORMAL)"
            )
            with server.admin() as admin:
                admin.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
                for database in ("bench_one", "bench_two"):
                    admin.execute(f'CREATE DATABASE "{database}"')
            for case, n, database in (
                ("PostgreSQL, 1 instance", 1, "bench_one"),
                ("PostgreSQL, 2 instances", 2, "bench_two"),
            ):
                run(case, n, folder / database, server, database)
    report(results, note)
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
