"""A compliance report as a court reads it: JSON, CSV, a standalone HTML
document and a PDF, all written from one ``courts.report.ComplianceReport``
so every format says the same thing.

Times are the facility's wall time with its zone's abbreviation (a court
compares them with the facility's own records). The PDF uses fpdf2's core
Helvetica, as notices do (``notices.render``): a character outside
Windows-1252 is replaced by its plain letter or ``?``, never a crash. Its
timeline is the pages' chart (``kinline.charts``) drawn as PNG. The last page
says which signed audit checkpoint the report was built on, with its digest,
or that it is unsigned.
"""

from __future__ import annotations

import base64
import csv
import io
import unicodedata
from datetime import datetime
from zoneinfo import ZoneInfo

import orjson
from fpdf import FPDF
from fpdf.enums import XPos, YPos
from markupsafe import Markup

from kinline.charts import (
    PeriodFigures,
    TimelineItem,
    periods_svg,
    timeline_png,
    timeline_svg,
)
from kinline.courts.gc_pause import collector_paused
from kinline.courts.report import (
    EVIDENCE_WORDS,
    STATUS_WORDS,
    ComplianceReport,
    Evidence,
    Requirement,
    RequirementPeriod,
    Status,
)

PDF_ENCODING = "windows-1252"
CSV_COLUMNS = (
    "record",
    "requirement",
    "period",
    "period_start",
    "period_end",
    "entitled",
    "delivered",
    "within_policy",
    "outside_policy",
    "shortfall",
    "status",
    "evidence",
    "at",
    "until",
    "who",
    "detail",
    "rules",
    "by",
    "days",
)
UNSIGNED = (
    "Unsigned: no signing key was configured, so this report carries no signed audit checkpoint."
)


def when(moment: datetime, zone: ZoneInfo) -> str:
    """``2024-05-03 14:00 MDT``: the facility's wall time."""
    here = moment.astimezone(zone)
    return f"{here:%Y-%m-%d %H:%M} {here.tzname()}"


# --- JSON ----------------------------------------------------------------------


def as_json(report: ComplianceReport) -> dict[str, object]:
    """The report as JSON values, as ``json_bytes`` writes them (times in UTC,
    ISO 8601)."""
    found: dict[str, object] = orjson.loads(json_bytes(report))
    return found


def json_bytes(report: ComplianceReport) -> bytes:
    """The report as a JSON document in UTF-8, as the API answers it: instants
    in ISO 8601 (in UTC, as the report holds them; a period's bounds with
    their offset), dates as ``YYYY-MM-DD``. Written by orjson from the
    report's values, instants included: a report over years names thousands
    of pieces of evidence, and formatting each instant in Python cost more
    than all the rest of its JSON. Made with the cyclic garbage collector
    paused, as the report is built (``gc_pause``): thousands of dicts, none
    in a reference cycle."""
    with collector_paused():
        return orjson.dumps(_json_values(report))


def _json_values(report: ComplianceReport) -> dict[str, object]:
    """The report's JSON document as values orjson writes: instants and dates
    as they are."""
    signature: dict[str, object] | None = None
    if report.signature is not None:
        sig = report.signature
        signature = {
            "taken_at": sig.taken_at,
            "key_id": sig.key_id,
            "digest": sig.digest,
            "file_sha256": sig.file_sha256,
            "chains": sig.chains,
            "checkpoint": sig.checkpoint.decode("utf-8"),
        }
    return {
        "facility_id": report.facility_id,
        "order_id": report.order_id,
        "title": report.title,
        "case_number": report.case_number,
        "court": report.court,
        "judge": report.judge,
        "signed_on": report.signed_on,
        "person_id": report.person_id,
        "from": report.first,
        "to": report.last,
        "start": report.start,
        "end": report.end,
        "built_at": report.built_at,
        "status": str(report.status),
        "status_rule": {
            "compliant_percent": report.rule.compliant_percent,
            "partial_percent": report.rule.partial_percent,
        },
        "requirements": [_requirement_json(r) for r in report.requirements],
        "signature": signature,
    }


def _requirement_json(requirement: Requirement) -> dict[str, object]:
    return {
        "rule_id": requirement.rule_id,
        "text": requirement.text,
        "channel": requirement.channel,
        "count": requirement.count,
        "per": requirement.per,
        "contacts": requirement.contacts,
        "entitled": requirement.entitled,
        "delivered": requirement.delivered,
        "outside_policy": requirement.outside_policy,
        "shortfall": requirement.shortfall,
        "status": str(requirement.status),
        "periods": [
            {
                "period": p.key,
                "start": p.start,
                "end": p.end,
                "entitled": p.entitled,
                "delivered": p.delivered,
                "within_policy": p.within_policy,
                "outside_policy": p.outside_policy,
                "shortfall": p.shortfall,
                "status": str(p.status),
                "evidence": _evidence_json(p.evidence),
            }
            for p in requirement.periods
        ],
    }


def _evidence_json(evidence: tuple[Evidence, ...]) -> list[dict[str, object]]:
    """A period's evidence as JSON values, made in one pass: a report over
    years names thousands."""
    return [
        {
            "kind": kind,
            "at": at,
            "until": until,
            "who": who,
            "detail": detail,
            "rules": rules,
            "by": by,
            "days": days,
        }
        for kind, at, who, detail, rules, by, until, days in evidence
    ]


# --- CSV -----------------------------------------------------------------------


def as_csv(report: ComplianceReport) -> str:
    """One ``period`` row per requirement and period (figures and status), each
    followed by its ``evidence`` rows (kind, when, who, detail, rules, by);
    times in the facility's wall time."""
    zone = ZoneInfo(report.zone)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for requirement in report.requirements:
        for p in requirement.periods:
            figures = [
                requirement.rule_id,
                p.key,
                when(p.start, zone),
                when(p.end, zone),
                p.entitled,
                p.delivered,
                p.within_policy,
                p.outside_policy,
                p.shortfall,
                str(p.status),
            ]
            writer.writerow(["period", *figures, *([""] * 8)])
            for e in p.evidence:
                writer.writerow(
                    [
                        "evidence",
                        requirement.rule_id,
                        p.key,
                        *([""] * 8),
                        e.kind,
                        when(e.at, zone),
                        when(e.until, zone) if e.until else "",
                        _cell(e.who),
                        _cell(e.detail),
                        " ".join(e.rules),
                        _cell(e.by or ""),
                        "" if e.days is None else e.days,
                    ]
                )
    return out.getvalue()


def _cell(text: str) -> str:
    """A text cell a spreadsheet will not run as a formula (OWASP CSV injection)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


# --- charts --------------------------------------------------------------------


def timeline_items(report: ComplianceReport) -> list[TimelineItem]:
    return [TimelineItem(m.kind, m.label, m.start, m.end) for m in report.timeline]


def period_figures(requirement: Requirement) -> list[PeriodFigures]:
    return [
        PeriodFigures(
            p.key,
            entitled=p.entitled,
            delivered=p.within_policy,
            refused=p.refused,
            outside_policy=p.outside_policy,
        )
        for p in requirement.periods
    ]


# --- HTML ----------------------------------------------------------------------

_STYLE = """
body{font-family:"Source Sans Pro",Helvetica,Arial,sans-serif;color:#1b1b1b;max-width:60rem;
margin:2rem auto;padding:0 1rem;line-height:1.45}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.25rem;margin-top:2rem}
table{border-collapse:collapse;width:100%;margin:.5rem 0 1rem}
th,td{border:1px solid #a9aeb1;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#f0f0f0}td.number{text-align:right}
.status{font-weight:bold;padding:.1rem .4rem;border-radius:.2rem}
.compliant{background:#ecf3ec;color:#00703c}.partial{background:#faf3d1;color:#5c4400}
.non_compliant{background:#f4e3db;color:#b10e1e}.not_due{background:#f0f0f0;color:#505a5f}
.meta dt{font-weight:bold;float:left;clear:left;width:11rem}.meta dd{margin-left:12rem}
.signature{border-top:2px solid #1b1b1b;margin-top:2rem;padding-top:1rem;word-break:break-all}
svg.chart{max-width:100%}
"""


def as_html(report: ComplianceReport) -> str:
    """The report as one standalone HTML document (styles and charts inline,
    nothing fetched); every value escaped."""
    zone = ZoneInfo(report.zone)
    parts: list[Markup] = []
    add = parts.append
    add(Markup("<h1>Court-order compliance report</h1>"))
    add(Markup("<p>{}</p>").format(report.title))
    add(Markup('<dl class="meta">'))
    for label, value in _facts(report, zone):
        add(Markup("<dt>{}</dt><dd>{}</dd>").format(label, value))
    add(Markup("</dl>"))
    add(Markup("<p>Overall status: {}</p>").format(_badge(report.status)))
    add(Markup("<p>{}</p>").format(report.rule.words()))
    add(Markup("<h2>Timeline</h2>"))
    timeline = timeline_svg(
        timeline_items(report), start=report.start, end=report.end, zone=zone, language="en"
    )
    # matplotlib's SVG, whose every text it escapes itself: markup, not text.
    add(Markup(timeline))  # noqa: S704
    for requirement in report.requirements:
        add(Markup("<h2>Requirement {}: {}</h2>").format(requirement.rule_id, requirement.text))
        add(
            Markup("<p>{} {} per {} on {}, with {}. Status: {}</p>").format(
                requirement.count,
                "sessions" if requirement.count != 1 else "session",
                requirement.per,
                requirement.channel,
                requirement.contacts,
                _badge(requirement.status),
            )
        )
        add(Markup(periods_svg(period_figures(requirement), language="en")))  # noqa: S704
        add(_periods_table(requirement))
        add(_evidence_tables(requirement, zone))
    add(_signature_html(report))
    body = Markup("").join(parts)
    title = f"Compliance report: {report.order_id} ({report.first} to {report.last})"
    document = Markup(
        '<html lang="en"><head><meta charset="utf-8"><title>{}</title>'
        "<style>{}</style></head><body><main>{}</main></body></html>\n"
    ).format(title, Markup(_STYLE), body)  # noqa: S704 (a constant)
    # str() first: a str added to Markup would be escaped.
    return "<!DOCTYPE html>\n" + str(document)


def _facts(report: ComplianceReport, zone: ZoneInfo) -> list[tuple[str, str]]:
    facts = [
        ("Facility", f"{report.facility_name} ({report.facility_id})"),
        ("Order", report.order_id),
    ]
    if report.court:
        facts.append(("Court", report.court))
    if report.case_number:
        facts.append(("Case number", report.case_number))
    if report.judge:
        signed = f", signed {report.signed_on.isoformat()}" if report.signed_on else ""
        facts.append(("Judge", f"{report.judge}{signed}"))
    facts += [
        ("Person", report.person_id or "everyone at the facility"),
        ("Months", f"{report.first} to {report.last}"),
        ("Times", f"the facility's wall time ({report.zone})"),
        ("Built", when(report.built_at, zone)),
    ]
    return facts


def _badge(status: Status) -> Markup:
    return Markup('<span class="status {}">{}</span>').format(status, STATUS_WORDS[status])


def _periods_table(requirement: Requirement) -> Markup:
    head = Markup("").join(
        Markup('<th scope="col">{}</th>').format(h)
        for h in (
            "Period",
            "Entitled",
            "Delivered",
            "Within policy",
            "Outside policy",
            "Refused",
            "Shortfall",
            "Status",
        )
    )
    rows = Markup("").join(
        Markup('<tr><th scope="row">{}</th>{}<td>{}</td></tr>').format(
            p.key,
            Markup("").join(
                Markup('<td class="number">{}</td>').format(v)
                for v in (
                    p.entitled,
                    p.delivered,
                    p.within_policy,
                    p.outside_policy,
                    p.refused,
                    p.shortfall,
                )
            ),
            _badge(p.status),
        )
        for p in requirement.periods
    )
    total = Markup(
        '<tr><th scope="row">Total</th><td class="number">{}</td><td class="number">{}</td>'
        '<td class="number">{}</td><td class="number">{}</td><td class="number">{}</td>'
        '<td class="number">{}</td><td>{}</td></tr>'
    ).format(
        requirement.entitled,
        requirement.delivered,
        requirement.delivered - requirement.outside_policy,
        requirement.outside_policy,
        sum(p.refused for p in requirement.periods),
        requirement.shortfall,
        _badge(requirement.status),
    )
    return Markup(
        "<table><caption>Entitled against delivered, by period</caption>"
        "<thead><tr>{}</tr></thead><tbody>{}{}</tbody></table>"
    ).format(head, rows, total)


def _evidence_tables(requirement: Requirement, zone: ZoneInfo) -> Markup:
    shown = [p for p in requirement.periods if p.evidence]
    if not shown:
        return Markup(
            "<p>The record holds no refusal, override, lapsed hold, cancelled "
            "visit or call outside policy in these months.</p>"
        )
    parts = [Markup("<h3>Evidence</h3>")]
    for p in shown:
        rows = Markup("").join(
            Markup(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>"
            ).format(
                EVIDENCE_WORDS[e.kind],
                _span_words(e, zone),
                e.who,
                e.detail,
                " ".join(e.rules),
                e.by or "",
            )
            for e in p.evidence
        )
        parts.append(
            Markup(
                "<table><caption>{} ({}, shortfall {})</caption><thead><tr>"
                '<th scope="col">What</th><th scope="col">When</th><th scope="col">Who</th>'
                '<th scope="col">Detail</th><th scope="col">Rules</th>'
                '<th scope="col">By</th></tr></thead><tbody>{}</tbody></table>'
            ).format(p.key, STATUS_WORDS[p.status], p.shortfall, rows)
        )
    return Markup("").join(parts)


def _span_words(evidence: Evidence, zone: ZoneInfo) -> str:
    if evidence.until is None:
        return when(evidence.at, zone)
    days = f" ({evidence.days} days)" if evidence.days is not None else ""
    return f"{when(evidence.at, zone)} to {when(evidence.until, zone)}{days}"


def _signature_html(report: ComplianceReport) -> Markup:
    sig = report.signature
    if sig is None:
        return Markup(
            '<section class="signature"><h2>Audit checkpoint</h2><p>{}</p></section>'
        ).format(UNSIGNED)
    encoded = base64.b64encode(sig.checkpoint).decode("ascii")
    return Markup(
        '<section class="signature"><h2>Audit checkpoint</h2>'
        "<p>Built on the signed audit checkpoint taken {}, over {} chains, signed with key "
        "{}.</p><p>Digest of every chain head: <code>{}</code></p>"
        "<p>SHA-256 of the checkpoint file: <code>{}</code></p>"
        '<p><a download="checkpoint.json" href="data:application/json;base64,{}">'
        "The checkpoint file</a> (check it with <code>kinline audit verify "
        "--checkpoint</code>).</p></section>"
    ).format(sig.taken_at, sig.chains, sig.key_id, sig.digest, sig.file_sha256, encoded)


# --- PDF -----------------------------------------------------------------------


class _ReportPdf(FPDF):
    def __init__(self, footer_text: str) -> None:
        super().__init__(format="Letter")
        self.footer_text = footer_text

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font("Helvetica", "", 8)
        self.set_text_color(80, 80, 80)
        self.cell(0, 5, _safe(f"{self.footer_text}  -  page {self.page_no()}/{{nb}}"), align="C")
        self.set_text_color(0, 0, 0)


def as_pdf(report: ComplianceReport) -> bytes:
    """The report as a PDF letter: the facts and overall status, the timeline,
    each requirement's periods and evidence, and on the last page the audit
    checkpoint it was built on (or "unsigned")."""
    zone = ZoneInfo(report.zone)
    pdf = _ReportPdf(f"Compliance report {report.order_id}, {report.first} to {report.last}")
    pdf.core_fonts_encoding = PDF_ENCODING
    pdf.set_auto_page_break(auto=True, margin=18)
    pdf.set_margins(18, 16, 18)
    pdf.set_creator("kinline")
    pdf.set_title(_safe(f"Compliance report: {report.order_id}"))
    pdf.set_lang("en")
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 17)
    _line(pdf, "Court-order compliance report", 9)
    pdf.set_font("Helvetica", "", 11)
    _line(pdf, report.title, 6)
    pdf.ln(2)
    for label, value in _facts(report, zone):
        pdf.set_font("Helvetica", "B", 10)
        pdf.cell(38, 5.5, _safe(label))
        pdf.set_font("Helvetica", "", 10)
        pdf.multi_cell(0, 5.5, _safe(value), align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(2)
    pdf.set_font("Helvetica", "B", 12)
    _status_line(pdf, "Overall status: ", report.status)
    pdf.set_font("Helvetica", "", 9.5)
    _line(pdf, report.rule.words(), 5)
    pdf.ln(3)
    pdf.set_font("Helvetica", "B", 12)
    _line(pdf, "Timeline", 7)
    image = timeline_png(
        timeline_items(report), start=report.start, end=report.end, zone=zone, language="en"
    )
    pdf.image(io.BytesIO(image), w=pdf.epw)
    pdf.set_font("Helvetica", "", 8.5)
    _line(
        pdf,
        "The order's band; completed calls (bars); refused attempts (crosses); rules imposed "
        "or lifted in these months; cancelled visits (squares); protected activities "
        "(diamonds).",
        4.5,
    )
    for requirement in report.requirements:
        _requirement_pdf(pdf, requirement, zone)
    _signature_pdf(pdf, report)
    return bytes(pdf.output())


def _requirement_pdf(pdf: FPDF, requirement: Requirement, zone: ZoneInfo) -> None:
    pdf.ln(4)
    pdf.set_font("Helvetica", "B", 12)
    _line(pdf, f"Requirement {requirement.rule_id}", 7)
    pdf.set_font("Helvetica", "", 10)
    _line(
        pdf,
        f"{requirement.text} ({requirement.count} per {requirement.per} on "
        f"{requirement.channel}, with {requirement.contacts}.)",
        5.5,
    )
    pdf.set_font("Helvetica", "B", 10.5)
    _status_line(pdf, "Status: ", requirement.status)
    pdf.ln(1)
    pdf.set_font("Helvetica", "", 9)
    head = ("Period", "Entitled", "Delivered", "Outside policy", "Refused", "Shortfall", "Status")
    widths = (0.16, 0.12, 0.13, 0.15, 0.12, 0.13, 0.19)
    with pdf.table(
        col_widths=widths,
        text_align=("LEFT", "RIGHT", "RIGHT", "RIGHT", "RIGHT", "RIGHT", "LEFT"),
        line_height=5,
        first_row_as_headings=True,
        headings_style=_headings(),
    ) as table:
        table.row(head)
        for p in requirement.periods:
            table.row(
                (
                    p.key,
                    str(p.entitled),
                    str(p.delivered),
                    str(p.outside_policy),
                    str(p.refused),
                    str(p.shortfall),
                    STATUS_WORDS[p.status],
                )
            )
        table.row(
            (
                "Total",
                str(requirement.entitled),
                str(requirement.delivered),
                str(requirement.outside_policy),
                str(sum(p.refused for p in requirement.periods)),
                str(requirement.shortfall),
                STATUS_WORDS[requirement.status],
            )
        )
    shown = [p for p in requirement.periods if p.evidence]
    pdf.ln(2)
    pdf.set_font("Helvetica", "B", 11)
    _line(pdf, "Evidence", 6)
    if not shown:
        pdf.set_font("Helvetica", "", 9.5)
        _line(pdf, "The record holds nothing that stood in the order's way in these months.", 5)
        return
    for p in shown:
        _evidence_pdf(pdf, p, zone)


def _evidence_pdf(pdf: FPDF, period: RequirementPeriod, zone: ZoneInfo) -> None:
    pdf.set_font("Helvetica", "B", 9.5)
    _line(
        pdf,
        f"{period.key}: entitled {period.entitled}, delivered {period.delivered}, "
        f"shortfall {period.shortfall} ({STATUS_WORDS[period.status]})",
        5.5,
    )
    pdf.set_font("Helvetica", "", 8)
    with pdf.table(
        col_widths=(0.14, 0.2, 0.13, 0.29, 0.13, 0.11),
        line_height=4,
        text_align="LEFT",
        first_row_as_headings=True,
        headings_style=_headings(),
    ) as table:
        table.row(("What", "When", "Who", "Detail", "Rules", "By"))
        for e in period.evidence:
            table.row(
                tuple(
                    _safe(cell)
                    for cell in (
                        EVIDENCE_WORDS[e.kind],
                        _span_words(e, zone),
                        e.who,
                        e.detail,
                        " ".join(e.rules),
                        _who(e.by),
                    )
                )
            )
    pdf.ln(1)


def _who(actor: str | None) -> str:
    """An audit actor (``staff:3:J. Ortiz``) as a reader names them."""
    if not actor:
        return ""
    parts = actor.split(":", 2)
    return parts[2] if len(parts) == 3 else actor


def _signature_pdf(pdf: FPDF, report: ComplianceReport) -> None:
    pdf.ln(5)
    pdf.set_draw_color(27, 27, 27)
    pdf.line(pdf.l_margin, pdf.get_y(), pdf.l_margin + pdf.epw, pdf.get_y())
    pdf.ln(3)
    pdf.set_font("Helvetica", "B", 12)
    _line(pdf, "Audit checkpoint", 7)
    pdf.set_font("Helvetica", "", 10)
    sig = report.signature
    if sig is None:
        _line(pdf, UNSIGNED, 5.5)
        return
    _line(
        pdf,
        f"This report was built on the signed audit checkpoint taken {sig.taken_at}, over "
        f"{sig.chains} chains, signed with the Ed25519 key {sig.key_id}.",
        5.5,
    )
    pdf.ln(1)
    pdf.set_font("Helvetica", "B", 10)
    _line(pdf, "Digest of every chain head (SHA-256):", 5.5)
    pdf.set_font("Courier", "", 9.5)
    _line(pdf, sig.digest, 5)
    pdf.set_font("Helvetica", "B", 10)
    _line(pdf, "SHA-256 of the checkpoint file:", 5.5)
    pdf.set_font("Courier", "", 9.5)
    _line(pdf, sig.file_sha256, 5)
    pdf.set_font("Helvetica", "", 9)
    pdf.ln(1)
    _line(
        pdf,
        "The checkpoint file is attached to this PDF (checkpoint.json). Anyone holding the "
        "public key can check that the audit log still agrees with it: kinline audit verify "
        "--checkpoint checkpoint.json --public-key KEY.pub.",
        4.8,
    )
    pdf.embed_file(basename="checkpoint.json", bytes=sig.checkpoint, desc="audit checkpoint")


def _headings() -> object:
    from fpdf.fonts import FontFace

    return FontFace(emphasis="BOLD", fill_color=(240, 240, 240))


def _status_line(pdf: FPDF, label: str, status: Status) -> None:
    colours = {
        Status.COMPLIANT: (0, 112, 60),
        Status.PARTIAL: (92, 68, 0),
        Status.NON_COMPLIANT: (177, 14, 30),
        Status.NOT_DUE: (80, 90, 95),
    }
    pdf.cell(pdf.get_string_width(label) + 1, 6, _safe(label))
    pdf.set_text_color(*colours[status])
    pdf.cell(0, 6, STATUS_WORDS[status], new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_text_color(0, 0, 0)


def _line(pdf: FPDF, text: str, height: float) -> None:
    pdf.multi_cell(0, height, _safe(text), align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _safe(text: str) -> str:
    """``text`` with every character the core fonts cannot draw replaced by its
    plain form or ``?``."""
    try:
        text.encode(PDF_ENCODING)
    except UnicodeEncodeError:
        return "".join(_char(c) for c in text)
    return text


def _char(char: str) -> str:
    try:
        char.encode(PDF_ENCODING)
    except UnicodeEncodeError:
        plain = "".join(
            part for part in unicodedata.normalize("NFKD", char) if not unicodedata.combining(part)
        )
        try:
            plain.encode(PDF_ENCODING)
        except UnicodeEncodeError:
            return "?"
        return plain or "?"
    return char
