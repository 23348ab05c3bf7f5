"""Asking for a password reset: the one-time token (``identity``) and the email
that carries its link (the ``notices`` outbox) commit together or not at all.

Identity sits below notices, so the use case that needs both lives here, in
the orchestration layer. The plain token leaves this transaction only inside
the queued email's body; the audit log holds neither the token nor the body.
"""

from __future__ import annotations

from datetime import datetime
from urllib.parse import quote

from kinline.audit.service import facility_chain, record_event
from kinline.db.engine import Database
from kinline.identity.credentials import RESET_VALID
from kinline.identity.signin import SIGNIN_ACTOR, issue_password_reset
from kinline.notices.delivery.outbox import enqueue_message
from kinline.notices.messages import password_reset_email

RESET_PATH = "/reset"


def reset_link(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}{RESET_PATH}?token={quote(token, safe='')}"


def request_password_reset(
    db: Database,
    login_or_email: str,
    *,
    at: datetime,
    base_url: str,
    actor: str = SIGNIN_ACTOR,
) -> bool:
    """In one transaction: when a subject with that login (or only that email)
    exists, is not disabled and has an email, a reset token and an email with
    its link in the subject's language, queued in the outbox. Returns whether
    an email was queued; a caller answering the public says the same either
    way, so the answer does not tell who has an account."""
    with db.transaction() as session:
        issued = issue_password_reset(session, login_or_email, at=at)
        if issued is None:
            return False
        subject, body = password_reset_email(
            issued.language,
            name=issued.name,
            link=reset_link(base_url, issued.token),
            expires_at=issued.expires_at,
            valid_for=RESET_VALID,
        )
        delivery_id = enqueue_message(
            session,
            facility_id=issued.facility_id,
            recipient=issued.email,
            subject=subject,
            body=body,
            at=at,
        )
        record_event(
            session,
            facility_id=issued.facility_id,
            chain=facility_chain(issued.facility_id),
            actor=actor,
            tag="delivery:message:queued",
            payload={
                "delivery_id": delivery_id,
                "kind": "password_reset",
                "subject_id": issued.subject_id,
                "recipient": issued.email,
            },
            at=at,
        )
        return True
