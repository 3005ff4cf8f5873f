"""Reminder delivery benchmark: 10,000 reminders due at one instant, to a local SMTP sink.

eventwatch's dispatcher (claim, build, send, record each at once) beside bare aiosmtplib
sending the very same messages, built beforehand, over as many reused connections (the ceiling
of this stack), in the same run; both on asyncio's own loop and on uvloop when installed. Two
shapes: one event with 10,000 recipients, and 10,000 events with one recipient each. Sinks:
aiosmtpd in its own process (bench/sink.py, which also notes arrival times, so the lateness of
the first and last message after the due instant is measured), and Postfix's smtp-sink with
smtp-source (the C limit) where installed (Debian: apt-get install postfix).
"""

from __future__ import annotations

import asyncio
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiosmtplib

from eventwatch import messages, policy
from eventwatch.delivery import SmtpDelivery
from eventwatch.dispatch import Dispatcher
from eventwatch.ledger import Ledger
from eventwatch.models import Calendar, ReminderPolicy
from eventwatch.settings import SmtpSettings

COUNT = 10_000
CONNECTIONS = 4
PREPARE_LEAD = timedelta(seconds=75)  # longer than building 10,000 messages takes here
HERE = Path(__file__).resolve().parent
ICS = b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n"
SENDER = messages.Sender("eventwatch@example.org")

try:
    import uvloop
except ImportError:
    uvloop = None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def calendar(due: datetime, shape: str) -> Calendar:
    """COUNT reminders due at ``due``: one event x COUNT recipients, or COUNT events x one."""
    start = (due + timedelta(hours=1)).replace(tzinfo=None)
    end = start + timedelta(hours=1)
    if shape == "one event":
        events = [{"id": "e", "title": "Benchmark event", "start": start, "end": end}]
        recipients = [{"address": f"r{n}@example.org"} for n in range(COUNT)]
    else:
        events = [
            {
                "id": f"e{n}",
                "title": f"Benchmark event {n}",
                "start": start,
                "end": end,
                "reminders": {"recipients": [{"address": f"r{n}@example.org"}]},
            }
            for n in range(COUNT)
        ]
        recipients = []
    return Calendar.model_validate(
        {
            "id": "bench",
            "name": "Bench",
            "timezone": "UTC",
            "reminders": {"offsets": ["PT1H"], "recipients": recipients},
            "events": events,
        },
    )


async def eventwatch_run(port: int, shape: str, *, ahead: bool) -> dict[str, float]:
    """The dispatcher at the due instant; ``ahead``: as the daemon runs, messages built ahead.

    With ``ahead`` the reminders are planned PREPARE_LEAD before they are due and built then,
    as the daemon does for what falls due within 15 minutes; without, nothing is ready (as
    for reminders caught up at start).
    """
    lead = PREPARE_LEAD if ahead else timedelta(seconds=2)
    due = datetime.now(UTC).replace(microsecond=0) + lead
    plan = policy.reminders((calendar(due, shape),), ReminderPolicy())
    with tempfile.TemporaryDirectory() as state:
        ledger = Ledger.in_folder(Path(state))
        ledger.reconcile(policy.follow(plan), due - lead)
        settings = SmtpSettings(
            host="127.0.0.1", port=port, security="none", max_connections=CONNECTIONS
        )
        delivery = SmtpDelivery(settings)
        dispatcher = Dispatcher(
            ledger=ledger,
            delivery=delivery,
            sender=SENDER,
            catch_up=timedelta(hours=6),
            plan={r.key: r for r in plan},
            attachment=lambda _event: ICS,
        )
        began = time.perf_counter()
        if ahead:
            await dispatcher.prepare_ahead(datetime.now(UTC))
        prepared, preparing = len(dispatcher.prepared), time.perf_counter() - began
        await asyncio.sleep(max(0.0, due.timestamp() - time.time()))
        start = time.perf_counter()
        while await dispatcher.run_due(datetime.now(UTC)):
            pass
        seconds = time.perf_counter() - start
        await delivery.close()
        ledger.close()
    return {
        "rate": COUNT / seconds,
        "due": due.timestamp(),
        "prepared": prepared,
        "preparing": preparing,
    }


async def bare_run(port: int, shape: str, *, flat: bool = False) -> dict[str, float]:
    """The same messages eventwatch sends, built beforehand, sent over reused connections.

    As EmailMessage objects with ``send_message`` (the issue's ceiling), or with ``flat``
    already flattened to bytes and sent with ``sendmail``, as eventwatch's prepared ones are.
    """
    due = datetime.now(UTC).replace(microsecond=0)
    plan = policy.reminders((calendar(due, shape),), ReminderPolicy())
    made = [messages.build(r, SENDER, sent_at=due, ics=ICS) for r in plan]
    flattened = [messages.outgoing(m) for m in made] if flat else []

    async def worker(k: int) -> None:
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False)
        await client.connect()
        if flat:
            for out in flattened[k::CONNECTIONS]:
                await client.sendmail(out.sender, [out.recipient], out.data)
        else:
            for message in made[k::CONNECTIONS]:
                await client.send_message(message)
        await client.quit()

    start = time.perf_counter()
    await asyncio.gather(*(worker(k) for k in range(CONNECTIONS)))
    return {"rate": COUNT / (time.perf_counter() - start)}


def on_loop(loop: str, job: Callable[[], Coroutine[Any, Any, dict[str, float]]]) -> dict[str, float]:
    if loop == "uvloop":
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(job())
    return asyncio.run(job())


def aiosmtpd_sink(port: int, out: Path) -> subprocess.Popen[bytes]:
    sink = subprocess.Popen(
        [sys.executable, str(HERE / "sink.py"), str(port), str(out)], stdout=subprocess.PIPE
    )
    assert sink.stdout is not None
    sink.stdout.readline()
    return sink


def postfix_sink(port: int) -> subprocess.Popen[bytes]:
    # smtp-sink refuses to run as root without -u: drop to nobody there.
    user = ["-u", "nobody"] if os.geteuid() == 0 else []
    sink = subprocess.Popen(["smtp-sink", *user, f"127.0.0.1:{port}", "1024"])
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return sink
        except OSError:
            time.sleep(0.05)
    raise SystemExit("smtp-sink did not start")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)


def smtp_source(port: int, size: int) -> float:
    """Postfix's smtp-source: COUNT messages of ``size`` bytes over CONNECTIONS sessions."""
    start = time.perf_counter()
    subprocess.run(
        ["smtp-source", "-d", "-s", str(CONNECTIONS), "-m", str(COUNT), "-l", str(size),
         "-f", "eventwatch@example.org", "-t", "r@example.org", f"127.0.0.1:{port}"],
        check=True,
    )
    return COUNT / (time.perf_counter() - start)


def main() -> None:
    loops = ["asyncio"] + (["uvloop"] if uvloop is not None else [])
    postfix = shutil.which("smtp-sink") and shutil.which("smtp-source")
    due = datetime.now(UTC).replace(microsecond=0)
    size = len(messages.build(
        policy.reminders((calendar(due, "one event"),), ReminderPolicy())[0],
        SENDER, sent_at=due, ics=ICS,
    ).as_bytes())
    print(f"# reminders: {COUNT} due at one instant, {CONNECTIONS} connections, "
          f"{size}-byte messages; {platform.node()} ({platform.python_version()}, "
          f"{os.cpu_count()} cores), {time.strftime('%Y-%m-%d %H:%M %Z')}")
    for shape in ("one event", "10,000 events"):
        for loop in loops:
            port = free_port()
            sink = aiosmtpd_sink(port, Path(os.devnull))
            try:
                bare = on_loop(loop, lambda: bare_run(port, shape))
                flat = on_loop(loop, lambda: bare_run(port, shape, flat=True))
            finally:
                stop(sink)
            for ahead in (True, False):
                with tempfile.TemporaryDirectory() as folder:
                    arrivals = Path(folder) / "arrivals.txt"
                    sink = aiosmtpd_sink(port, arrivals)
                    try:
                        ours = on_loop(loop, lambda: eventwatch_run(port, shape, ahead=ahead))
                    finally:
                        stop(sink)
                    times = [float(line.split()[0]) for line in arrivals.read_text().splitlines()]
                how = (
                    f"built ahead ({ours['prepared']:.0f} in {ours['preparing']:.1f} s)"
                    if ahead
                    else "nothing built ahead"
                )
                print(
                    f"aiosmtpd, {shape}, {loop}, {how}: eventwatch {ours['rate']:.0f} msg/s; "
                    f"bare aiosmtplib send_message {bare['rate']:.0f} (ratio "
                    f"{ours['rate'] / bare['rate']:.2f}), sendmail of bytes {flat['rate']:.0f} "
                    f"(ratio {ours['rate'] / flat['rate']:.2f}); first "
                    f"{min(times) - ours['due']:.3f} s, last {max(times) - ours['due']:.1f} s "
                    "after due",
                    flush=True,
                )
    if not postfix:
        print("Postfix's smtp-sink/smtp-source not installed: skipped")
        return
    port = free_port()
    sink = postfix_sink(port)
    try:
        ours = asyncio.run(eventwatch_run(port, "one event", ahead=True))
        bare = asyncio.run(bare_run(port, "one event"))
        source = smtp_source(port, size)
    finally:
        stop(sink)
    print(
        f"smtp-sink, one event, asyncio, built ahead: eventwatch {ours['rate']:.0f} msg/s; "
        f"bare aiosmtplib send_message {bare['rate']:.0f} (ratio {ours['rate'] / bare['rate']:.2f}); "
        f"Postfix smtp-source {source:.0f} msg/s",
    )

if __name__ == "__main__":
    main()
