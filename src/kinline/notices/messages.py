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


def visit_email(
    language: str,
    *,
    name: str,
    video: bool,
    booking_id: int,
    cancelled: bool,
    reason: str | None,
    facility_time: str,
    own_time: str | None,
    invitation: str,
) -> tuple[str, str]:
    """The subject line and plain-text body telling a visitor their visit is
    booked or cancelled: on the facility's clock and their own, with the
    iCalendar invitation (or its cancellation) below."""
    _language, _locale, _ = catalog(language)
    if cancelled:
        subject = (
            _("Video visit {id} cancelled: {when}") if video else _("Visit {id} cancelled: {when}")
        )
        news = (
            _("Your video visit {id} has been cancelled: {reason}")
            if video
            else _("Your visit {id} has been cancelled: {reason}")
        )
    else:
        subject = _("Video visit {id} booked: {when}") if video else _("Visit {id} booked: {when}")
        news = _("Your video visit {id} is booked.") if video else _("Your visit {id} is booked.")
    lines = [
        _("Hello {name},").format(name=name),
        "",
        news.format(id=booking_id, reason=reason or ""),
        _("Facility time: {when}").format(when=facility_time),
    ]
    if own_time is not None:
        lines.append(_("Your time: {when}").format(when=own_time))
    lines += ["", _("Calendar invitation (iCalendar):"), "", invitation]
    return subject.format(id=booking_id, when=facility_time), "\n".join(lines)
