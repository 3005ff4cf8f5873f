"""How messages leave: the Delivery interface, a Maildir and SMTP (the only aiosmtplib import).

Also which delivery the settings name, and a test message sent through it. A delivery only
says whether a refusal is permanent (SMTP 5xx) or not; what follows (a retry after the
backoff, or giving up) is the reminder policy's decision: ``policy.after_failure``.
"""

from __future__ import annotations

import asyncio
import mailbox
import ssl
import threading
from typing import TYPE_CHECKING, Protocol

import aiosmtplib

from eventwatch import messages
from eventwatch.errors import DeliveryError

if TYPE_CHECKING:
    from datetime import datetime
    from pathlib import Path

    from eventwatch.messages import Outgoing
    from eventwatch.settings import Settings, SmtpSettings


class Delivery(Protocol):
    """Something that takes a message and says what became of it."""

    parallel: int
    """How many messages it can take at once."""

    async def deliver(self, message: Outgoing) -> str:
        """Hand ``message`` on; return the reply, or raise ``DeliveryError``."""
        ...

    def fits(self, settings: Settings) -> bool:
        """Whether it is still the delivery ``settings`` name (so it can be kept)."""
        ...

    async def close(self) -> None:
        """Let go of what it holds open (idle connections)."""
        ...


class MaildirDelivery:
    """Writes each message to a Maildir folder, where any mail client can read it."""

    def __init__(self, path: Path) -> None:
        """Deliver into the Maildir at ``path`` (created when first used)."""
        self.path = path
        self.parallel = 4
        self._box: mailbox.Maildir | None = None
        self._creating = threading.Lock()

    def _folder(self) -> mailbox.Maildir:
        """The Maildir, made under a lock: threads making it at once clash ("File exists").

        It is made again if someone removed it while the daemon runs.
        """
        with self._creating:
            if self._box is None or not (self.path / "tmp").is_dir():
                # mailbox makes tmp/new/cur only when it makes the folder: an existing empty
                # folder (made by hand, or by a mount) would refuse every message.
                for part in ("tmp", "new", "cur"):
                    (self.path / part).mkdir(mode=0o700, parents=True, exist_ok=True)
                self._box = mailbox.Maildir(self.path, create=False)
            return self._box

    def _add(self, message: Outgoing) -> str:
        try:
            # Maildir files end their lines the Unix way; the wire's CRLF is for SMTP.
            name = self._folder().add(message.data.replace(b"\r\n", b"\n"))
        except OSError as exc:
            # A full disk or a permission problem may pass; the message is tried again.
            raise DeliveryError(
                f"{self.path}: {exc.strerror}", permanent=False, reason="maildir"
            ) from exc
        except mailbox.Error as exc:  # a file name taken in the same microsecond
            raise DeliveryError(f"{self.path}: {exc}", permanent=False, reason="maildir") from exc
        return f"maildir {name}"

    async def deliver(self, message: Outgoing) -> str:
        """Write ``message`` in a worker thread; file I/O never blocks the event loop."""
        return await asyncio.to_thread(self._add, message)

    def fits(self, settings: Settings) -> bool:
        """Whether ``settings`` still deliver into a Maildir."""
        return settings.mail.delivery == "maildir"

    async def close(self) -> None:
        """Nothing to let go of: each message is a file written whole."""


class SmtpDelivery:
    """Sends through an SMTP server, reusing up to ``max_connections`` connections.

    ``security = "starttls"`` insists on STARTTLS before anything else is said (aiosmtplib
    would otherwise carry on in clear text, AUTH included), ``"tls"`` is TLS from the first
    byte, ``"none"`` is for a relay on the same machine. Certificates are always checked.
    """

    def __init__(self, settings: SmtpSettings) -> None:
        """Connect lazily with ``settings``; nothing happens until the first message."""
        self.settings = settings
        self.parallel = settings.max_connections
        self._idle: list[aiosmtplib.SMTP] = []
        self._slots = asyncio.Semaphore(settings.max_connections)

    def _client(self) -> aiosmtplib.SMTP:
        settings = self.settings
        context = ssl.create_default_context(
            cafile=str(settings.ca_file) if settings.ca_file else None,
        )
        password = settings.password.get_secret_value() if settings.password else None
        return aiosmtplib.SMTP(
            hostname=settings.host,
            port=settings.effective_port,
            username=settings.username,
            password=password if settings.username else None,
            timeout=settings.timeout,
            use_tls=settings.security == "tls",
            start_tls=settings.security == "starttls",
            tls_context=context if settings.security != "none" else None,
            validate_certs=True,
        )

    async def deliver(self, message: Outgoing) -> str:
        """Send ``message`` on an idle connection or a new one; raise ``DeliveryError``."""
        async with self._slots:
            client = self._idle.pop() if self._idle else self._client()
            try:
                if not client.is_connected:
                    await client.connect()
                errors, reply = await client.sendmail(
                    message.sender,
                    [message.recipient],
                    message.data,
                    mail_options=["SMTPUTF8"] if message.utf8 else None,
                )
            except aiosmtplib.SMTPRecipientsRefused as exc:
                self._idle.append(client)  # the connection is fine; the recipient is not
                refused = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients)
                permanent = all(r.code >= 500 for r in exc.recipients)  # noqa: PLR2004
                raise DeliveryError(refused, permanent=permanent) from exc
            except aiosmtplib.SMTPResponseException as exc:
                await _close(client)
                raise DeliveryError(f"{exc.code} {exc.message}", permanent=exc.code >= 500) from exc  # noqa: PLR2004
            except aiosmtplib.SMTPNotSupported as exc:
                # A server without SMTPUTF8 will never take this address: final, as a 5xx.
                # Without STARTTLS it may be fixed, so that is tried again (below).
                await _close(client)
                permanent = message.utf8 and "SMTPUTF8" in str(exc)
                raise DeliveryError(
                    f"{type(exc).__name__}: {exc}",
                    permanent=permanent,
                    reason="rejected" if permanent else _reason(exc),
                ) from exc
            except asyncio.CancelledError:
                client.close()  # given up mid-transaction at shutdown: drop the connection
                raise
            except (aiosmtplib.SMTPException, OSError, ssl.SSLError) as exc:
                # Refused connections, time-outs, TLS failures and a server without
                # STARTTLS: nothing was accepted; the server may be fixed, so try again.
                await _close(client)
                raise DeliveryError(
                    f"{type(exc).__name__}: {exc}", permanent=False, reason=_reason(exc)
                ) from exc
            self._idle.append(client)
        if errors:
            refused = "; ".join(f"{rcpt}: {r.code} {r.message}" for rcpt, r in errors.items())
            raise DeliveryError(refused, permanent=all(r.code >= 500 for r in errors.values()))  # noqa: PLR2004
        return reply

    def fits(self, settings: Settings) -> bool:
        """Whether ``settings`` name this same server, account and security."""
        return settings.mail.delivery == "smtp" and self.settings == settings.smtp

    async def close(self) -> None:
        """Say QUIT on every idle connection."""
        while self._idle:
            await _close(self._idle.pop())


def _reason(exc: BaseException) -> str:
    """``timeout``, ``tls`` or ``connection``: what kept a message from being accepted."""
    if isinstance(exc, aiosmtplib.SMTPTimeoutError | TimeoutError):
        return "timeout"
    if isinstance(exc, ssl.SSLError) or isinstance(exc.__cause__, ssl.SSLError):
        return "tls"
    return "tls" if "tls" in str(exc).lower() else "connection"


async def _close(client: aiosmtplib.SMTP) -> None:
    if client.is_connected:
        try:
            await client.quit()
        except (aiosmtplib.SMTPException, OSError):
            client.close()
    else:
        # A connection that failed half-way (a refused certificate) may still hold a socket.
        client.close()


def delivery_for(settings: Settings) -> Delivery:
    """The delivery the settings name."""
    if settings.mail.delivery == "smtp":
        return SmtpDelivery(settings.smtp)
    return MaildirDelivery(settings.state_dir / "outbox")


async def send_test(settings: Settings, to: str, now: datetime) -> str:
    """Send one test message to ``to`` through the configured delivery; the server's reply."""
    delivery = delivery_for(settings)
    sender = messages.Sender(settings.mail.from_address, settings.mail.templates_dir)
    try:
        return await delivery.deliver(messages.outgoing(messages.test_message(sender, to, now)))
    finally:
        await delivery.close()
