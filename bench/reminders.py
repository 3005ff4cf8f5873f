"""Reminder delivery benchmark: 10,000 reminders due at one instant, to a local SMTP sink.

eventwatch's dispatcher (claim, build, send, record) beside bare aiosmtplib sending pre-built
messages over reused connections (the ceiling of this stack), measured in the same run.
"""

from __future__ import annotations

import asyncio
import platform
import resource
import socket
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiosmtplib
from aiosmtpd.controller import Controller

from eventwatch import messages, planner
from eventwatch.delivery import SmtpDelivery
from eventwatch.dispatch import Dispatcher
from eventwatch.ledger import Ledger
from eventwatch.models import Calendar, ReminderPolicy
from eventwatch.settings import SmtpSettings

COUNT = 10_000


class Sink:
    """Accepts every message and notes when each arrived."""

    def __init__(self) -> None:
        self.arrived: list[float] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802, ANN401, ARG002
        with self.lock:
            self.arrived.append(time.time())
        return "250 OK"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def calendar(due: datetime) -> Calendar:
    """One event an hour after ``due``, with COUNT recipients reminded an hour before."""
    start = (due + timedelta(hours=1)).replace(tzinfo=None)
    return Calendar.model_validate(
        {
            "id": "bench",
            "name": "Bench",
            "timezone": "UTC",
            "reminders": {
                "offsets": ["PT1H"],
                "recipients": [{"address": f"r{n}@example.org"} for n in range(COUNT)],
            },
            "events": [{"id": "e", "title": "Benchmark event", "start": start, "end": start + timedelta(hours=1)}],
        },
    )


async def eventwatch_run(port: int, sink: Sink, state: Path) -> dict[str, float]:
    due = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2)
    plan = planner.reminders((calendar(due),), ReminderPolicy())
    ledger = Ledger.in_folder(state)
    ledger.reconcile(plan, due - timedelta(seconds=2))
    delivery = SmtpDelivery(SmtpSettings(host="127.0.0.1", port=port, security="none", max_connections=4))
    dispatcher = Dispatcher(
        ledger=ledger,
        delivery=delivery,
        sender=messages.Sender("eventwatch@example.org"),
        catch_up=timedelta(hours=6),
        plan={r.key: r for r in plan},
        attachment=lambda _event: b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n",
    )
    await asyncio.sleep(max(0.0, due.timestamp() - time.time()))
    start = time.perf_counter()
    while await dispatcher.run_due(datetime.now(UTC)):
        pass
    seconds = time.perf_counter() - start
    await delivery.close()
    ledger.close()
    first, last = min(sink.arrived), max(sink.arrived)
    return {"seconds": seconds, "rate": COUNT / seconds, "first": first - due.timestamp(), "last": last - due.timestamp()}


async def bare_run(port: int, connections: int) -> dict[str, float]:
    """The same messages eventwatch sends, built beforehand, sent over reused connections."""
    due = datetime.now(UTC).replace(microsecond=0)
    plan = planner.reminders((calendar(due),), ReminderPolicy())
    sender = messages.Sender("eventwatch@example.org")
    ics = b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n"
    made = [messages.build(r, sender, sent_at=due, ics=ics) for r in plan]

    async def worker(share: list[EmailMessage]) -> None:
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False)
        await client.connect()
        for message in share:
            await client.send_message(message)
        await client.quit()

    start = time.perf_counter()
    await asyncio.gather(*(worker(made[k::connections]) for k in range(connections)))
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "rate": COUNT / seconds}


def main() -> None:
    port = free_port()
    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        with tempfile.TemporaryDirectory() as folder:
            ours = asyncio.run(eventwatch_run(port, sink, Path(folder)))
        bare_one = asyncio.run(bare_run(port, 1))
        bare_four = asyncio.run(bare_run(port, 4))
    finally:
        controller.stop()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"# reminders, {COUNT} due at one instant, aiosmtpd sink on loopback, "
          f"{platform.node()} ({platform.python_version()}), {time.strftime('%Y-%m-%d %H:%M %Z')}")
    print(f"eventwatch (max_connections=4)   : {ours['rate']:7.0f} msg/s  "
          f"first {ours['first']:.3f} s after due, last {ours['last']:.1f} s after due")
    print(f"bare aiosmtplib, 1 connection:        {bare_one['rate']:7.0f} msg/s")
    print(f"bare aiosmtplib, 4 connections:       {bare_four['rate']:7.0f} msg/s")
    print(f"ratio eventwatch / bare (1 connection): {ours['rate'] / bare_one['rate']:.2f}")
    print(f"ratio eventwatch / bare (4 connections): {ours['rate'] / bare_four['rate']:.2f}")
    print(f"peak memory of the whole run: {peak:.0f} MB")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
