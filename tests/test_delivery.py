"""Delivery through a real SMTP server (aiosmtpd) on loopback, with and without TLS."""

from __future__ import annotations

import asyncio
import mailbox
import shutil
from email.message import EmailMessage
from typing import TYPE_CHECKING, Any

import pytest
import trustme

from eventwatch import messages
from eventwatch.delivery import DeliveryError, MaildirDelivery, SmtpDelivery
from eventwatch.settings import SmtpSettings

from .helpers import SECRET, Recorder, Server, free_port, server_context

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from .conftest import Runner, Site


def message(to: str = "duty@example.org") -> messages.Outgoing:
    """A small message."""
    made = EmailMessage()
    made["From"] = "eventwatch@example.org"
    made["To"] = to
    made["Subject"] = "Reminder: test"
    made["Message-ID"] = "<test@example.org>"
    made.set_content("Hello")
    return messages.outgoing(made)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    """A certificate authority for the test servers."""
    return trustme.CA()


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> Path:
    """The CA's certificate as a PEM file."""
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


@pytest.fixture
def recorder() -> Recorder:
    """A fresh handler."""
    return Recorder()


@pytest.fixture
def plain(recorder: Recorder) -> Iterator[Server]:
    """A server without TLS, accepting AUTH in clear (a local relay)."""
    server = Server(recorder, auth_require_tls=False)
    yield server
    server.stop()


@pytest.fixture
def starttls(recorder: Recorder, ca: trustme.CA) -> Iterator[Server]:
    """A server that offers STARTTLS and requires it."""
    server = Server(recorder, tls_context=server_context(ca), require_starttls=True)
    yield server
    server.stop()


@pytest.fixture
def implicit(recorder: Recorder, ca: trustme.CA) -> Iterator[Server]:
    """A server speaking TLS from the first byte."""
    server = Server(recorder, ssl_context=server_context(ca))
    yield server
    server.stop()


def smtp(port: int, **values: Any) -> SmtpDelivery:  # noqa: ANN401 - any setting
    """A delivery to 127.0.0.1:``port`` with ``values`` as settings."""
    return SmtpDelivery(SmtpSettings.model_validate({"host": "127.0.0.1", "port": port} | values))


def send(delivery: SmtpDelivery, *outgoing: messages.Outgoing) -> list[str]:
    """Deliver each message, then close the connections."""

    async def run() -> list[str]:
        try:
            return [await delivery.deliver(m) for m in outgoing]
        finally:
            await delivery.close()

    return asyncio.run(run())


def test_local_relay_without_tls(plain: Server, recorder: Recorder) -> None:
    """security = none delivers to a local relay and returns its reply."""
    (reply,) = send(smtp(plain.port, security="none"), message())
    assert "accepted" in reply
    (envelope,) = recorder.received
    assert envelope.rcpt_tos == ["duty@example.org"]
    assert b"Subject: Reminder: test" in envelope.content


def test_starttls_with_verified_certificate_and_auth(
    starttls: Server,
    recorder: Recorder,
    ca_file: Path,
) -> None:
    """STARTTLS against a certificate from the configured CA, then AUTH, then the message."""
    delivery = smtp(starttls.port, security="starttls", ca_file=str(ca_file),
                    username="eventwatch", password=SECRET)  # fmt: skip
    send(delivery, message())
    assert recorder.logins == [("eventwatch", SECRET)]
    assert len(recorder.received) == 1


def test_implicit_tls(implicit: Server, recorder: Recorder, ca_file: Path) -> None:
    """security = tls speaks TLS from the first byte."""
    send(smtp(implicit.port, security="tls", ca_file=str(ca_file)), message())
    assert len(recorder.received) == 1


def test_untrusted_certificate_is_refused(starttls: Server, recorder: Recorder) -> None:
    """A certificate the system store does not trust stops delivery before AUTH."""
    delivery = smtp(starttls.port, security="starttls", username="eventwatch", password=SECRET)
    with pytest.raises(DeliveryError) as exc:
        send(delivery, message())
    assert not exc.value.permanent
    assert "CERTIFICATE_VERIFY_FAILED" in exc.value.reply
    assert recorder.logins == []
    assert recorder.received == []


def test_no_starttls_means_no_auth(plain: Server, recorder: Recorder) -> None:
    """A server that offers no STARTTLS gets neither AUTH nor the message."""
    delivery = smtp(plain.port, security="starttls", username="eventwatch", password=SECRET)
    with pytest.raises(DeliveryError) as exc:
        send(delivery, message())
    assert "STARTTLS" in exc.value.reply
    assert SECRET not in exc.value.reply
    assert recorder.logins == []
    assert recorder.received == []


def test_wrong_password_is_permanent(plain: Server) -> None:
    """A 535 is a 5xx: no use retrying; the reply never shows the password."""
    delivery = smtp(plain.port, security="none", username="eventwatch", password="wrong")  # noqa: S106
    with pytest.raises(DeliveryError) as exc:
        send(delivery, message())
    assert exc.value.permanent
    assert exc.value.reply.startswith("535")
    assert "wrong" not in exc.value.reply


def test_451_is_transient_then_succeeds(plain: Server, recorder: Recorder) -> None:
    """A 451 on DATA is transient; the next try on a new connection is accepted."""
    recorder.data_replies.append("451 4.3.0 try again later")
    delivery = smtp(plain.port, security="none")
    with pytest.raises(DeliveryError) as exc:
        send(delivery, message())
    assert (exc.value.permanent, exc.value.reply) == (False, "451 4.3.0 try again later")
    send(delivery, message())
    assert len(recorder.received) == 1


def test_550_is_permanent(plain: Server, recorder: Recorder) -> None:
    """A 550 on RCPT is permanent."""
    recorder.rcpt_replies.append("550 5.1.1 no such user")
    with pytest.raises(DeliveryError) as exc:
        send(smtp(plain.port, security="none"), message())
    assert exc.value.permanent
    assert "550 5.1.1 no such user" in exc.value.reply


def test_refused_connection_is_transient() -> None:
    """Nothing listening is transient: the server may come back."""
    with pytest.raises(DeliveryError) as exc:
        send(smtp(free_port(), security="none", timeout=2), message())
    assert not exc.value.permanent


def test_connection_is_reused(plain: Server, recorder: Recorder) -> None:
    """Messages sent together share one connection."""
    send(smtp(plain.port, security="none"), message("a@example.org"), message("b@example.org"))
    assert len(recorder.received) == 2
    assert recorder.ehlos == 1


def test_maildir_is_readable(tmp_path: Path) -> None:
    """The Maildir delivery writes a message any mail client reads."""
    reply = asyncio.run(MaildirDelivery(tmp_path / "box").deliver(message()))
    (found,) = list(mailbox.Maildir(tmp_path / "box", create=False))
    assert reply.startswith("maildir ")
    assert found["Subject"] == "Reminder: test"
    (path,) = (tmp_path / "box" / "new").iterdir()
    assert b"\r\n" not in path.read_bytes()  # Unix line ends, as Maildir readers expect


@pytest.mark.parametrize("made", ["nothing", "the empty folder"])
def test_maildir_is_made_where_needed(tmp_path: Path, made: str) -> None:
    """A Maildir under folders not made yet, or in an empty folder, takes the message."""
    box = tmp_path / "state" / "outbox"
    if made == "the empty folder":
        box.mkdir(parents=True)
    asyncio.run(MaildirDelivery(box).deliver(message()))
    assert len(list(mailbox.Maildir(box, create=False))) == 1


def test_maildir_takes_parallel_messages_into_a_new_folder(tmp_path: Path) -> None:
    """Messages written at once into a Maildir not yet made all land; none clashes."""
    delivery = MaildirDelivery(tmp_path / "box")

    async def run() -> list[str]:
        return await asyncio.gather(
            *(delivery.deliver(message(f"r{n}@example.org")) for n in range(16))
        )

    replies = asyncio.run(run())
    assert len(set(replies)) == 16
    assert len(list(mailbox.Maildir(tmp_path / "box", create=False))) == 16


def test_maildir_removed_is_made_again(tmp_path: Path) -> None:
    """A Maildir removed while the daemon runs is made again for the next message."""
    delivery = MaildirDelivery(tmp_path / "box")
    asyncio.run(delivery.deliver(message()))
    shutil.rmtree(tmp_path / "box")
    asyncio.run(delivery.deliver(message()))
    assert len(list(mailbox.Maildir(tmp_path / "box", create=False))) == 1


def test_send_test_command(plain: Server, recorder: Recorder, site: Site, run: Runner) -> None:
    """send-test delivers one message through the configured server and prints its reply."""
    site.write_config(
        f'[mail]\ndelivery = "smtp"\nfrom = "eventwatch@example.org"\n'
        f'[smtp]\nhost = "127.0.0.1"\nport = {plain.port}\nsecurity = "none"\n',
    )
    result = run("--config", str(site.config), "send-test", "--to", "ops@example.org")
    assert (result.code, result.err) == (0, "")
    assert "accepted" in result.out
    (envelope,) = recorder.received
    assert envelope.rcpt_tos == ["ops@example.org"]
    assert b"Subject: eventwatch test message" in envelope.content


def test_send_test_reports_failure(site: Site, run: Runner) -> None:
    """With no server listening, send-test prints the error and exits 1."""
    site.write_config(
        f'[mail]\ndelivery = "smtp"\nfrom = "eventwatch@example.org"\n'
        f'[smtp]\nhost = "127.0.0.1"\nport = {free_port()}\nsecurity = "none"\ntimeout = 2\n',
    )
    result = run("--config", str(site.config), "send-test", "--to", "ops@example.org")
    assert result.code == 1
    assert "SMTPConnectError" in result.err
    assert "Traceback" not in result.err


def test_a_server_without_smtputf8_refuses_a_unicode_address_for_good(recorder: Recorder) -> None:
    """An address that needs SMTPUTF8, to a server without it, fails at once: no retry helps."""
    server = Server(recorder, auth_require_tls=False, enable_SMTPUTF8=False)
    try:
        with pytest.raises(DeliveryError) as caught:
            send(smtp(server.port, security="none"), message("bädi@example.org"))
    finally:
        server.stop()
    assert caught.value.permanent
    assert "SMTPUTF8" in caught.value.reply
    assert recorder.received == []
