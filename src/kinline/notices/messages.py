"""Emails of their own (not notices), in the recipient's language from the
notices' catalogs: the password reset link."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from babel.dates import format_datetime

from kinline.notices.render import catalog


def password_reset_email(
    language: str, *, name: str, link: str, expires_at: datetime, valid_for: timedelta
) -> tuple[str, str]:
    """The subject line and plain-text body of a password reset email."""
    _language, locale, _ = catalog(language)
    expiry = format_datetime(expires_at.astimezone(UTC), "long", tzinfo=UTC, locale=locale)
    minutes = int(valid_for.total_seconds() // 60)
    subject = _("Reset your kinline password")
    body = "\n\n".join(
        [
            _("Hello {name},").format(name=name),
            _(
                "Someone asked to reset the password of your kinline account. "
                "To choose a new password, open this link:"
            ),
            link,
            _(
                "The link works once and expires at {expiry}, {minutes} minutes "
                "after it was asked for."
            ).format(expiry=expiry, minutes=minutes),
            _("If you did not ask for this, ignore this message: your password stays as it is."),
        ]
    )
    return subject, body + "\n"
