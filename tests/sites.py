"""Sites for the daemon tests: settings and a calendar whose P1D reminders fall due when told.

The daemon reads the real clock, so the tests travel in time by writing events whose
reminders fall due at instants relative to now.
"""

from __future__ import annotations

from datetime import UTC, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from datetime import datetime
    from pathlib import Path


def write_settings(root: Path, smtp_port: int | None = None, **smtp: object) -> Path:
    """``root/config/eventwatch.toml``: SMTP without TLS to ``smtp_port``, else the Maildir.

    ``smtp`` adds ``[smtp]`` settings (``timeout``, ``max_connections``); the calendars and
    the state folder are ``root/calendars`` and ``root/state``.
    """
    text = 'calendars_dir = "../calendars"\nstate_dir = "../state"\n'
    if smtp_port is not None:
        text += '[mail]\ndelivery = "smtp"\nfrom = "eventwatch <eventwatch@example.org>"\n'
        text += f'[smtp]\nhost = "127.0.0.1"\nport = {smtp_port}\nsecurity = "none"\n'
        text += "".join(f"{key} = {value}\n" for key, value in smtp.items())
    path = root / "config" / "eventwatch.toml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    return path


def write_calendar(
    root: Path,
    events: Iterable[tuple[str, str, datetime]],
    recipients: Sequence[str] = ("duty@example.org",),
) -> Path:
    """``root/calendars/test.toml``: one hour-long event per (id, title, due), in UTC.

    Each event starts a day after its instant, so that its P1D reminder to every recipient
    falls due then.
    """
    text = 'name = "Test"\ntimezone = "UTC"\n[reminders]\noffsets = ["P1D"]\n'
    listed = "".join(f'  {{ address = "{address}" }},\n' for address in recipients)
    text += f"recipients = [\n{listed}]\n"
    for event_id, title, due in events:
        start = (due + timedelta(days=1)).astimezone(UTC).replace(tzinfo=None, microsecond=0)
        text += (
            f'\n[[events]]\nid = "{event_id}"\ntitle = "{title}"\n'
            f"start = {start.isoformat()}\nend = {(start + timedelta(hours=1)).isoformat()}\n"
        )
    path = root / "calendars" / "test.toml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    return path


def numbered(dues: Iterable[datetime], digits: int = 0) -> list[tuple[str, str, datetime]]:
    """Events ``e0``, ``e1``... titled ``Event 0``... due at ``dues`` (ids zero-padded)."""
    return [(f"e{n:0{digits}d}", f"Event {n}", due) for n, due in enumerate(dues)]
