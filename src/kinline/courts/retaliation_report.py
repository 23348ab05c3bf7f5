"""The retaliation review as a PDF for counsel: the person, a timeline of
their protected activities and the adverse actions against them, then each
flag with its activity, its action, the days between, and the finding with
its reasoning.

The chart is drawn with the PDF's own lines and shapes (no image library): the
courts sit below the web pages in the layers, so they cannot use
``kinline.web.charts``, and vector strokes print sharply at any size.
Pure: it reads a ``PersonReview`` and writes bytes.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from kinline.courts.retaliation import PersonReview, ReviewedFlag
from kinline.notices.render import PDF_ENCODING, pdf_safe
from kinline.rules.periods import local

_ACTIVITY = {
    "pro_se_motion": "pro se motion",
    "grievance": "grievance",
    "lawsuit": "lawsuit",
    "complaint": "complaint",
    "appeal": "appeal",
}
_ACTION = {
    "impose_deny": "prohibition imposed",
    "impose_limit": "limit imposed",
    "impose_require": "condition imposed",
    "lift_grant": "permission lifted",
    "revoke": "approval revoked",
    "transfer": "transfer",
}
_FINDING = {
    "unfounded": "Unfounded",
    "substantiated": "Substantiated",
    "referred": "Referred",
}
BLUE = (37, 99, 160)
RED = (178, 34, 34)
GREY = (110, 110, 110)


def render_review_pdf(review: PersonReview, *, prepared: datetime) -> bytes:
    """The report, one or more Letter pages."""
    pdf = FPDF(format="Letter")
    pdf.core_fonts_encoding = PDF_ENCODING
    pdf.set_auto_page_break(auto=True, margin=18)
    pdf.set_margins(20, 18, 20)
    pdf.set_creator("kinline")
    pdf.set_title(pdf_safe(f"Retaliation review: {review.person_name}"))
    pdf.set_lang("en")
    pdf.add_page()
    zone = review.facility.zone
    _letterhead(pdf, review)
    pdf.set_font("Helvetica", "B", 15)
    _line(pdf, f"Retaliation review: {review.person_name} ({review.person_id})", 8)
    pdf.set_font("Helvetica", "", 10)
    _line(
        pdf,
        f"Prepared {_day(local(prepared, zone).date())} for counsel. A flag is an adverse "
        f"action taken within {review.facility.retaliation_window_days} days after one of the "
        "person's protected activities; it is a reason to look, not a finding. Each flag's "
        "finding, when a reviewer has recorded one, follows it with the reasoning given.",
        5,
    )
    pdf.ln(3)
    _chart(pdf, review)
    pdf.ln(4)
    pdf.set_font("Helvetica", "B", 12)
    count = len(review.flags)
    _line(pdf, f"{count} flag{'s' if count != 1 else ''}", 7)
    if not review.flags:
        pdf.set_font("Helvetica", "", 11)
        _line(pdf, "No adverse action followed a protected activity within the window.", 6)
    for number, flag in enumerate(review.flags, start=1):
        _flag(pdf, review, number, flag)
    return bytes(pdf.output())


def _letterhead(pdf: FPDF, review: PersonReview) -> None:
    pdf.set_font("Helvetica", "B", 13)
    _line(pdf, review.facility.name, 6, align="C")
    pdf.set_font("Helvetica", "", 10)
    for line in (review.address or "").splitlines():
        _line(pdf, line, 5, align="C")
    pdf.ln(1.5)
    pdf.set_draw_color(60, 60, 60)
    pdf.set_line_width(0.5)
    pdf.line(pdf.l_margin, pdf.get_y(), pdf.l_margin + pdf.epw, pdf.get_y())
    pdf.set_line_width(0.2)
    pdf.ln(4)


def _flag(pdf: FPDF, review: PersonReview, number: int, flag: ReviewedFlag) -> None:
    zone = review.facility.zone
    if pdf.will_page_break(60):
        pdf.add_page()
    pdf.ln(2)
    pdf.set_draw_color(*GREY)
    pdf.line(pdf.l_margin, pdf.get_y(), pdf.l_margin + pdf.epw, pdf.get_y())
    pdf.ln(2)
    pdf.set_font("Helvetica", "B", 11)
    _line(pdf, f"Flag {number}: {flag.days} days after the {_activity(flag.activity_kind)}", 6)
    rows = [
        (
            "Protected activity",
            f"{_activity(flag.activity_kind)} {flag.activity_id}, "
            f"{_moment(flag.activity_at.astimezone(zone))}",
        ),
        (
            "Adverse action",
            f"{flag.action_text} ({_ACTION.get(flag.action_kind, flag.action_kind)}; "
            f"{flag.action}), {_moment(flag.action_at.astimezone(zone))}",
        ),
    ]
    if flag.action_by:
        rows.append(("Taken by", flag.action_by))
    rows.append(("Days between", str(flag.days)))
    current = flag.finding
    if current is None:
        rows.append(("Finding", "None recorded yet"))
    else:
        rows.append(
            (
                "Finding",
                f"{_FINDING[current.finding]}, by {_reviewer(current.reviewer)} on "
                f"{_moment(current.recorded_at.astimezone(zone))}",
            )
        )
        rows.append(("Reasoning", current.reasoning))
        for earlier in flag.findings[-2::-1]:
            rows.append(
                (
                    "Earlier finding",
                    f"{_FINDING[earlier.finding]}, by {_reviewer(earlier.reviewer)} on "
                    f"{_moment(earlier.recorded_at.astimezone(zone))}: {earlier.reasoning}",
                )
            )
    for label, value in rows:
        pdf.set_font("Helvetica", "B", 10)
        top, page = pdf.get_y(), pdf.page
        pdf.multi_cell(38, 5.5, pdf_safe(label), new_x=XPos.RIGHT, new_y=YPos.TOP, align="L")
        pdf.set_font("Helvetica", "", 10.5)
        pdf.multi_cell(0, 5.5, pdf_safe(value), new_x=XPos.LMARGIN, new_y=YPos.NEXT, align="L")
        if pdf.page == page:
            pdf.set_y(max(pdf.get_y(), top + 5.5))
        pdf.ln(0.8)


def _chart(pdf: FPDF, review: PersonReview) -> None:
    """A timeline: activities above the axis (blue circles), adverse actions
    below (red squares), each flag a bracket from its activity to its action
    with the days between."""
    zone = review.facility.zone
    moments = [local(a.at, zone) for a in review.activities] + [
        local(a.at, zone) for a in review.actions
    ]
    height = 62
    if pdf.will_page_break(height):
        pdf.add_page()
    left, top, width = pdf.l_margin, pdf.get_y(), pdf.epw
    pdf.set_draw_color(*GREY)
    pdf.rect(left, top, width, height)
    pdf.set_font("Helvetica", "B", 9)
    pdf.set_xy(left + 2, top + 1.5)
    pdf.cell(0, 4, "Timeline: protected activities (above) and adverse actions (below)")
    if not moments:
        pdf.set_font("Helvetica", "", 9)
        pdf.set_xy(left + 2, top + height / 2)
        pdf.cell(0, 4, "Nothing recorded.")
        pdf.set_y(top + height)
        return
    start = min(moments).date() - timedelta(days=3)
    end = max(moments).date() + timedelta(days=3)
    span = max((end - start).days, 1)
    axis_y = top + height * 0.55
    x0, x1 = left + 8, left + width - 8

    origin = datetime.combine(start, datetime.min.time())

    def x_of(moment: datetime) -> float:
        days = (moment.replace(tzinfo=None) - origin).total_seconds() / 86400
        return x0 + (x1 - x0) * min(max(days / span, 0.0), 1.0)

    pdf.set_draw_color(40, 40, 40)
    pdf.set_line_width(0.4)
    pdf.line(x0, axis_y, x1, axis_y)
    pdf.set_line_width(0.2)
    pdf.set_font("Helvetica", "", 7)
    for tick in _ticks(start, end):
        x = x_of(datetime.combine(tick, datetime.min.time()))
        pdf.line(x, axis_y - 1, x, axis_y + 1)
        pdf.set_xy(x - 12, top + height - 6)
        pdf.cell(24, 4, tick.strftime("%d %b %Y"), align="C")
    flagged = {(f.action, f.action_at) for f in review.flags}
    for index, activity in enumerate(review.activities):
        x = x_of(local(activity.at, zone))
        y = axis_y - 9 - 6 * (index % 2)
        pdf.set_draw_color(*BLUE)
        pdf.line(x, y + 1.6, x, axis_y)
        pdf.set_fill_color(*BLUE)
        pdf.ellipse(x - 1.6, y - 1.6, 3.2, 3.2, style="F")
        pdf.set_text_color(*BLUE)
        pdf.set_xy(x - 20, y - 6)
        pdf.cell(40, 3.5, pdf_safe(activity.id), align="C")
    for index, action in enumerate(review.actions):
        x = x_of(local(action.at, zone))
        y = axis_y + 9 + 6 * (index % 2)
        color = RED if (action.action, action.at) in flagged else GREY
        pdf.set_draw_color(*color)
        pdf.line(x, axis_y, x, y - 1.6)
        pdf.set_fill_color(*color)
        pdf.rect(x - 1.6, y - 1.6, 3.2, 3.2, style="F")
        pdf.set_text_color(*color)
        pdf.set_xy(x - 20, y + 2)
        pdf.cell(40, 3.5, pdf_safe(_short(action.action)), align="C")
    pdf.set_text_color(0, 0, 0)
    pdf.set_font("Helvetica", "B", 7)
    for index, flag in enumerate(review.flags):
        a = x_of(local(flag.activity_at, zone))
        b = x_of(local(flag.action_at, zone))
        y = top + 11 + 3.5 * (index % 3)
        pdf.set_draw_color(*RED)
        pdf.line(a, y, b, y)
        pdf.line(a, y, a, y + 1.5)
        pdf.line(b, y, b, y + 1.5)
        pdf.set_text_color(*RED)
        pdf.set_xy(min(a, b), y - 3.2)
        pdf.cell(max(abs(b - a), 14), 3, f"{flag.days} days", align="C")
    pdf.set_text_color(0, 0, 0)
    pdf.set_draw_color(0, 0, 0)
    pdf.set_y(top + height)


def _ticks(start: date, end: date) -> list[date]:
    """About five dates on the axis: month starts for long spans, else even steps."""
    span = (end - start).days
    step = max(span // 5, 1)
    return [start + timedelta(days=day) for day in range(step, span, step)][:6]


def _short(action: str) -> str:
    return action if len(action) <= 24 else action[:22] + "..."


def _activity(kind: str) -> str:
    return _ACTIVITY.get(kind, kind or "activity")


def _reviewer(actor: str) -> str:
    parts = actor.split(":", 2)
    return parts[2] if len(parts) == 3 and parts[1].isdigit() else actor


def _day(day: date) -> str:
    return f"{day.strftime('%B')} {day.day}, {day.year}"


def _moment(moment: datetime) -> str:
    return f"{_day(moment.date())}, {moment.strftime('%H:%M')} {moment.tzname() or ''}".strip()


def _line(pdf: FPDF, text: str, height: float, *, align: str = "L") -> None:
    pdf.multi_cell(0, height, pdf_safe(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT, align=align)
