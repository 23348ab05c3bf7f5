"""Sending a notice by email over SMTP (the standard library's ``smtplib``).

One connection per worker pass; any failure to connect, to log in or to have
a message accepted is raised for the service to record as a failed attempt.
"""

from __future__ import annotations

import os
import smtplib
import ssl
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Protocol

DEFAULT_PORT = 25
DEFAULT_SENDER = "kinline@localhost"


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    host: str
    port: int = DEFAULT_PORT
    sender: str = DEFAULT_SENDER
    starttls: bool = False
    user: str | None = None
    password: str | None = None
    timeout: float = 30.0

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str] | None = None,
        *,
        host: str | None = None,
        port: int | None = None,
        sender: str | None = None,
        starttls: bool | None = None,
    ) -> SmtpSettings | None:
        """Options given win over ``KINLINE_SMTP_*``; None when no host is set
        (email deliveries then wait in the outbox)."""
        env = os.environ if env is None else env
        host = host or env.get("KINLINE_SMTP_HOST") or None
        if host is None:
            return None
        if starttls is None:
            starttls = env.get("KINLINE_SMTP_STARTTLS", "").lower() in ("1", "true", "yes", "on")
        return cls(
            host=host,
            port=port or int(env.get("KINLINE_SMTP_PORT") or DEFAULT_PORT),
            sender=sender or env.get("KINLINE_SMTP_FROM") or DEFAULT_SENDER,
            starttls=starttls,
            user=env.get("KINLINE_SMTP_USER") or None,
            password=env.get("KINLINE_SMTP_PASSWORD") or None,
        )


def refused_for_good(error: BaseException) -> bool:
    """Did the server refuse this message for good (a 5xx reply to its recipient
    or to its content)? Sending it again would be refused again, so it fails now.

    A refusal of the sender, the login or the connection is not counted: those
    are the facility's mail settings, and every message waits for them to be
    fixed; nor is a 4xx reply, which asks to try later.
    """
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _reply in error.recipients.values()]
        return bool(codes) and all(500 <= code < 600 for code in codes)
    if isinstance(error, smtplib.SMTPDataError):
        return 500 <= error.smtp_code < 600
    return False


class Mailer(Protocol):
    def send(self, message: EmailMessage) -> None: ...


class _SmtpMailer:
    def __init__(self, client: smtplib.SMTP) -> None:
        self._client = client

    def send(self, message: EmailMessage) -> None:
        # Raises unless the server accepted the message for every recipient.
        refused = self._client.send_message(message)
        if refused:
            raise smtplib.SMTPRecipientsRefused(refused)


@contextmanager
def smtp_mailer(settings: SmtpSettings) -> Iterator[Mailer]:
    """A connected, logged-in SMTP session; closed when the block ends."""
    client = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
    try:
        if settings.starttls:
            client.starttls(context=ssl.create_default_context())
        if settings.user:
            client.login(settings.user, settings.password or "")
        yield _SmtpMailer(client)
    finally:
        try:
            client.quit()
        except (smtplib.SMTPException, OSError):
            client.close()


def compose_email(
    *,
    sender: str,
    recipient: str,
    subject: str,
    body: str,
    message_id: str,
    sent_at: datetime,
    pdf: bytes | None = None,
    pdf_name: str = "notice.pdf",
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = recipient
    message["Subject"] = subject
    message["Message-ID"] = message_id
    message["Date"] = format_datetime(sent_at)
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(body)
    if pdf is not None:
        message.add_attachment(pdf, maintype="application", subtype="pdf", filename=pdf_name)
    return message
