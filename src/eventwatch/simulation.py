"""A run of the reminder machinery over a past or future period, on a simulated clock.

The same policy, ledger, message and dispatch code as the daemon, with an empty ledger of its
own and a Maildir for the messages: how a person sees today what the daemon did or will do.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from eventwatch import feeds, policy, publication
from eventwatch.delivery import MaildirDelivery
from eventwatch.dispatch import Dispatcher, Outcome
from eventwatch.errors import OperationError
from eventwatch.ledger import Ledger

if TYPE_CHECKING:
    from datetime import datetime

    from eventwatch.inputs import Inputs
    from eventwatch.models import Event


async def _run(
    dispatcher: Dispatcher, ledger: Ledger, start: datetime, until: datetime
) -> list[Outcome]:
    timeline: list[Outcome] = []
    clock = start
    while (due := ledger.next_due()) is not None and due < until:
        clock = max(clock, due)
        timeline += await dispatcher.run_due(clock)
    return timeline


def simulate(loaded: Inputs, start: datetime, until: datetime, out: Path) -> list[Outcome]:
    """Send, into the Maildir ``out``, every reminder due from ``start`` until ``until``.

    ``out`` is made as a Maildir if need be; ``OperationError`` if it names a file.
    """
    settings = loaded.settings
    for place in (out, *out.parents):
        if place.exists() and not place.is_dir():
            raise OperationError(f"{place}: cannot write: not a folder")
    with tempfile.TemporaryDirectory(prefix="eventwatch-simulate-") as folder:
        ledger = Ledger.in_folder(Path(folder))
        try:
            renderer = feeds.Renderer()
            options = publication.Options.of(settings)
            built = publication.build(loaded.calendars, options, ledger, renderer, start)
            plan = policy.reminders(loaded.calendars, settings.reminders)
            ledger.reconcile(policy.follow(plan), start)

            def attachment(event: Event) -> bytes:
                return built.attachment(event.uid)

            dispatcher = Dispatcher.of(
                settings, ledger, MaildirDelivery(out), {r.key: r for r in plan}, attachment
            )
            return asyncio.run(_run(dispatcher, ledger, start, until))
        finally:
            ledger.close()
