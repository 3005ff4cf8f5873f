"""How messages leave: the Delivery interface and its implementations (Maildir now, SMTP next)."""

from __future__ import annotations

import asyncio
import mailbox
from typing import TYPE_CHECKING, Protocol

from eventwatch.errors import OperationError

if TYPE_CHECKING:
    from email.message import EmailMessage
    from pathlib import Path


class DeliveryError(OperationError):
    """A message was not accepted; ``permanent`` says whether trying again could help."""

    def __init__(self, reply: str, *, permanent: bool) -> None:
        """Keep the server's reply (never a password) and whether to retry."""
        super().__init__(reply)
        self.reply = reply
        self.permanent = permanent


class Delivery(Protocol):
    """Something that takes a message and says what became of it."""

    async def deliver(self, message: EmailMessage) -> str:
        """Hand ``message`` on; return the reply, or raise ``DeliveryError``."""
        ...


class MaildirDelivery:
    """Writes each message to a Maildir folder, where any mail client can read it."""

    def __init__(self, path: Path) -> None:
        """Deliver into the Maildir at ``path`` (created when first used)."""
        self.path = path

    def _add(self, message: EmailMessage) -> str:
        try:
            box = mailbox.Maildir(self.path, create=True)
            return f"maildir {box.add(message)}"
        except OSError as exc:
            # A full disk or a permission problem may pass; the message is tried again.
            raise DeliveryError(f"{self.path}: {exc.strerror}", permanent=False) from exc

    async def deliver(self, message: EmailMessage) -> str:
        """Write ``message`` in a worker thread; file I/O never blocks the event loop."""
        return await asyncio.to_thread(self._add, message)
