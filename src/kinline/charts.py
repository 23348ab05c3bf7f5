"""Charts for the pages and the reports: drawn on the server by matplotlib
(Agg, no display) as SVG text a template puts inline (or PNG for a PDF), so
a page needs no script and a screen reader reads the chart's ``<title>``
and ``<desc>``. Every chart has a text table beside it (``timeline_table``,
``periods_table``): the chart shows the shape, the table holds every figure.

The SVG is the same for the same input: the hash salt is fixed, the metadata
(matplotlib's version, the date) left out, and every ``id`` is prefixed with a
digest of the drawing so that two charts on one page never share an id.
Text stays text (``svg.fonttype = none``): the browser draws it in the page's
font, and it can be read and searched.

matplotlib is not thread-safe and the pages draw in worker threads: one lock
serialises the drawing (a chart takes milliseconds). It is imported when a
chart is first drawn, not with the pages: a server worker starts without it.

Here, beside the features rather than in ``kinline.web``, so that a court's
report (``kinline.courts``, below the pages) draws the same charts;
``kinline.web.charts`` re-exports it.
"""

from __future__ import annotations

import hashlib
import io
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, Literal
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_skeleton, format_time
from markupsafe import Markup, escape

if TYPE_CHECKING:
    from matplotlib.figure import Figure

ItemKind = Literal["rule", "order", "call", "refusal", "visit", "activity"]
KINDS: tuple[ItemKind, ...] = ("order", "rule", "call", "refusal", "visit", "activity")
# Colours with at least 3:1 contrast on white (graphics, WCAG 1.4.11), told apart
# by their shape too (bars, crosses, squares, diamonds), never by colour alone.
COLOURS: dict[str, str] = {
    "order": "#4c2c92",
    "rule": "#1d4f91",
    "call": "#00703c",
    "refusal": "#b10e1e",
    "visit": "#7a5200",
    "activity": "#505a5f",
    "entitled": "#1d4f91",
    "delivered": "#00703c",
    "outside": "#7a5200",
    "refused": "#b10e1e",
}
MARKERS: dict[str, str] = {"call": "|", "refusal": "x", "visit": "s", "activity": "D"}

WORDS: dict[str, dict[str, str]] = {
    "en": {
        "order": "Court orders",
        "rule": "Rules",
        "call": "Calls",
        "refusal": "Refusals",
        "visit": "Visits",
        "activity": "Protected activities",
        "timeline": "Timeline, %(start)s to %(end)s",
        "nothing": "Nothing happened in this time.",
        "what": "What",
        "description": "Description",
        "from": "From",
        "until": "Until",
        "in_force": "still in force",
        "moment": "—",
        "period": "Period",
        "entitled": "Entitled",
        "delivered": "Delivered",
        "outside": "Delivered outside policy",
        "refused": "Refused",
        "shortfall": "Shortfall",
        "periods": "Entitled against delivered, by period",
        "sessions": "Sessions",
    },
    "es": {
        "order": "Órdenes judiciales",
        "rule": "Reglas",
        "call": "Llamadas",
        "refusal": "Rechazos",
        "visit": "Visitas",
        "activity": "Actividades protegidas",
        "timeline": "Cronología, del %(start)s al %(end)s",
        "nothing": "No ocurrió nada en este tiempo.",
        "what": "Qué",
        "description": "Descripción",
        "from": "Desde",
        "until": "Hasta",
        "in_force": "sigue en vigor",
        "moment": "—",
        "period": "Periodo",
        "entitled": "Debidas",
        "delivered": "Realizadas",
        "outside": "Realizadas fuera de la política",
        "refused": "Rechazadas",
        "shortfall": "Faltan",
        "periods": "Debidas frente a realizadas, por periodo",
        "sessions": "Sesiones",
    },
}

_LOCK = threading.Lock()


@cache
def _matplotlib() -> type[Figure]:
    """matplotlib's ``Figure``, set up once: no display (Agg), a fixed hash salt,
    text kept as text."""
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams["svg.hashsalt"] = "kinline"
    matplotlib.rcParams["svg.fonttype"] = "none"
    from matplotlib.figure import Figure

    return Figure


_ID = re.compile(r'\bid="([^"]+)"')


@dataclass(frozen=True, slots=True)
class TimelineItem:
    """One thing on a timeline. ``end`` None: for a rule or an order, still in
    force (drawn to the chart's end); for anything else, a moment."""

    kind: ItemKind
    label: str
    start: datetime
    end: datetime | None = None


@dataclass(frozen=True, slots=True)
class PeriodFigures:
    """One period of an order: what it entitles, what was delivered within
    policy, delivered outside it (imported calls the engine would refuse), and
    refused attempts."""

    label: str
    entitled: int
    delivered: int
    refused: int = 0
    outside_policy: int = 0

    @property
    def shortfall(self) -> int:
        """As SPEC 7 counts it: every completed session counts, outside policy too."""
        return max(0, self.entitled - self.delivered - self.outside_policy)


def words(language: str) -> dict[str, str]:
    return WORDS.get(language, WORDS["en"])


def _day(moment: datetime, zone: ZoneInfo, language: str) -> str:
    return format_date(moment.astimezone(zone).date(), "medium", locale=language)


def _when(moment: datetime, zone: ZoneInfo, language: str) -> str:
    local = moment.astimezone(zone)
    day = format_date(local.date(), "medium", locale=language)
    return f"{day} {format_time(local, 'short', tzinfo=zone, locale=language)}"


def _ticks(
    start: datetime, end: datetime, zone: ZoneInfo, language: str
) -> list[tuple[float, str]]:
    """Tick positions (days since ``start``) at local midnights, or local hours
    for a span of two days or less, at most about eight, labelled in the
    reader's language."""
    span_days = (end - start).total_seconds() / 86400
    local_start = start.astimezone(zone)
    ticks: list[tuple[float, str]] = []
    if span_days <= 2:
        step_hours = next(h for h in (1, 2, 3, 6, 12, 24) if span_days * 24 / h <= 8)
        moment = local_start.replace(minute=0, second=0, microsecond=0)
        while moment <= end:
            if moment >= start and moment.hour % step_hours == 0:
                ticks.append(
                    (
                        (moment - start).total_seconds() / 86400,
                        format_time(moment, "short", tzinfo=zone, locale=language),
                    )
                )
            moment = (moment + timedelta(hours=1)).astimezone(zone)
        return ticks
    if span_days > 62:
        return _month_ticks(start, end, zone, language)
    step = next((d for d in (1, 2, 7, 14, 28) if span_days / d <= 8), 56)
    day = local_start.date()
    if local_start.time() != datetime.min.time():
        day += timedelta(days=1)
    index = 0
    while True:
        midnight = datetime.combine(day, datetime.min.time(), tzinfo=zone)
        if midnight >= end:
            return ticks
        if index % step == 0:
            ticks.append(
                (
                    (midnight - start).total_seconds() / 86400,
                    format_skeleton("MMMd", day, locale=language),
                )
            )
        day += timedelta(days=1)
        index += 1


def _month_ticks(
    start: datetime, end: datetime, zone: ZoneInfo, language: str
) -> list[tuple[float, str]]:
    """Ticks at the first of every month (or every 2, 3, 6, 12 months, at most
    about eight), labelled with the month and year."""
    local_start = start.astimezone(zone)
    months = (end.year - start.year) * 12 + end.month - start.month + 1
    step = next((m for m in (1, 2, 3, 6, 12, 24, 60) if months / m <= 8), 120)
    year, month = local_start.year, local_start.month
    if (local_start.day, local_start.time()) != (1, datetime.min.time()):
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    ticks: list[tuple[float, str]] = []
    while True:
        first = datetime(year, month, 1, tzinfo=zone)
        if first >= end:
            return ticks
        if (year * 12 + month - 1) % step == 0:
            ticks.append(
                (
                    (first - start).total_seconds() / 86400,
                    format_skeleton("yMMM", first.date(), locale=language),
                )
            )
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)


def _svg(figure: Figure, title: str, description: str) -> str:
    """The figure as inline SVG: no XML prolog, a ``<title>`` and ``<desc>``
    named by ``aria-labelledby``, ids unique to this drawing, width fluid."""
    out = io.StringIO()
    figure.savefig(
        out,
        format="svg",
        metadata={"Date": None, "Creator": None, "Format": None, "Type": None},
    )
    text = out.getvalue()
    text = text[text.index("<svg") :]
    prefix = "c" + hashlib.sha256(f"{title}\n{description}\n{text}".encode()).hexdigest()[:10]
    text = _ID.sub(lambda m: f'id="{prefix}-{m.group(1)}"', text)
    text = text.replace("url(#", f"url(#{prefix}-").replace('href="#', f'href="#{prefix}-')
    title_id, desc_id = f"{prefix}-title", f"{prefix}-desc"
    text = re.sub(
        r'<svg ([^>]*?)width="[^"]*" height="[^"]*"',
        rf'<svg \1role="img" aria-labelledby="{title_id} {desc_id}" class="chart"'
        r' preserveAspectRatio="xMinYMin meet" style="width:100%;height:auto"',
        text,
        count=1,
    )
    head = (
        f'<title id="{title_id}">{escape(title)}</title>'
        f'<desc id="{desc_id}">{escape(description)}</desc>'
    )
    return text.replace(">", ">" + head, 1).strip() + "\n"


def _lanes(events: Sequence[TimelineItem]) -> list[str]:
    present = {item.kind for item in events}
    return [kind for kind in KINDS if kind in present] or ["rule"]


def timeline_svg(
    events: Sequence[TimelineItem],
    *,
    start: datetime,
    end: datetime,
    zone: ZoneInfo,
    language: str,
) -> str:
    """A timeline from ``start`` to ``end``: one lane per kind present (orders,
    rules, calls, refusals, visits, protected activities); spans as bars,
    moments as marks; dates on the axis in ``zone`` and ``language``. Items
    outside the range are left out, spans are cut at its edges."""
    with _LOCK:
        figure, title, description = _timeline_figure(events, start, end, zone, language)
        svg = _svg(figure, title, description)
    return svg


def timeline_png(
    events: Sequence[TimelineItem],
    *,
    start: datetime,
    end: datetime,
    zone: ZoneInfo,
    language: str,
    dpi: int = 150,
) -> bytes:
    """The timeline of ``timeline_svg`` as a PNG image (for a PDF)."""
    with _LOCK:
        figure, _title, _description = _timeline_figure(events, start, end, zone, language)
        out = io.BytesIO()
        figure.savefig(out, format="png", dpi=dpi, metadata={"Software": None})
    return out.getvalue()


def _timeline_figure(
    events: Sequence[TimelineItem],
    start: datetime,
    end: datetime,
    zone: ZoneInfo,
    language: str,
) -> tuple[Figure, str, str]:
    """The timeline drawn (the caller holds ``_LOCK``), its title and description."""
    if end <= start:
        raise ValueError("a timeline's end must come after its start")
    said = words(language)
    total = (end - start).total_seconds() / 86400
    shown = [item for item in events if _overlaps(item, start, end)]
    lanes = _lanes(shown)
    height = 0.9 + 0.45 * len(lanes)
    figure = _matplotlib()(figsize=(9, height), dpi=72, layout="constrained")
    axes = figure.add_subplot()
    for row, lane in enumerate(lanes):
        y = len(lanes) - 1 - row
        mine = [item for item in shown if item.kind == lane]
        spans = [
            _span(item, start, end, total)
            for item in mine
            if item.end is not None or item.kind in ("rule", "order")
        ]
        if spans:
            axes.broken_barh(
                spans,
                (y - 0.3, 0.6),
                facecolors=COLOURS[lane],
                edgecolors="#ffffff",
                linewidth=0.5,
            )
        moments = [
            (item.start - start).total_seconds() / 86400
            for item in mine
            if item.end is None and item.kind not in ("rule", "order")
        ]
        if moments:
            axes.plot(
                moments,
                [y] * len(moments),
                linestyle="none",
                marker=MARKERS.get(lane, "o"),
                markersize=9,
                markeredgewidth=2,
                color=COLOURS[lane],
            )
    axes.set_xlim(0, total)
    axes.set_ylim(-0.6, len(lanes) - 0.4)
    axes.set_yticks(range(len(lanes)), [said[lane] for lane in reversed(lanes)], fontsize=11)
    positions = _ticks(start, end, zone, language)
    axes.set_xticks([p for p, _ in positions], [label for _, label in positions], fontsize=10)
    axes.grid(axis="x", color="#b1b4b6", linewidth=0.6)
    axes.set_axisbelow(True)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    title = said["timeline"] % {
        "start": _day(start, zone, language),
        "end": _day(end - timedelta(microseconds=1), zone, language),
    }
    counts = "; ".join(
        f"{said[lane]}: {sum(1 for item in shown if item.kind == lane)}"
        for lane in KINDS
        if any(item.kind == lane for item in shown)
    )
    return figure, title, counts + "." if counts else said["nothing"]


def _overlaps(item: TimelineItem, start: datetime, end: datetime) -> bool:
    if item.end is None and item.kind not in ("rule", "order"):
        return start <= item.start < end
    finish = item.end if item.end is not None else end
    return (item.start < end and finish > start) or (item.start == finish and start <= item.start)


def _span(item: TimelineItem, start: datetime, end: datetime, total: float) -> tuple[float, float]:
    begin = max(item.start, start)
    finish = min(item.end if item.end is not None else end, end)
    left = (begin - start).total_seconds() / 86400
    width = max((finish - begin).total_seconds() / 86400, total / 400)  # a short call stays visible
    return (left, width)


def timeline_table(
    events: Sequence[TimelineItem], *, zone: ZoneInfo, language: str, caption: str | None = None
) -> Markup:
    """The timeline's every item as an HTML table (kind, description, from,
    until), in time order, dates in ``zone`` and ``language``."""
    said = words(language)
    rows = []
    for item in sorted(events, key=lambda i: (i.start, KINDS.index(i.kind), i.label)):
        if item.end is not None:
            until = _when(item.end, zone, language)
        elif item.kind in ("rule", "order"):
            until = said["in_force"]
        else:
            until = said["moment"]
        rows.append(
            Markup("<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>").format(
                said[item.kind], item.label, _when(item.start, zone, language), until
            )
        )
    head = Markup(
        '<thead><tr><th scope="col">{}</th><th scope="col">{}</th>'
        '<th scope="col">{}</th><th scope="col">{}</th></tr></thead>'
    ).format(said["what"], said["description"], said["from"], said["until"])
    cap = Markup("<caption>{}</caption>").format(caption) if caption else Markup("")
    return Markup('<table class="chart-table">{}{}<tbody>{}</tbody></table>').format(
        cap, head, Markup("").join(rows)
    )


def periods_svg(
    periods: Sequence[PeriodFigures], *, language: str, title: str | None = None
) -> str:
    """Bars per period: entitled (an outlined bar, the order's band), delivered
    within policy (solid), delivered outside policy (stacked, hatched) and
    refused attempts (crosses); the shortfall is the gap between the outline
    and the solid bar."""
    said = words(language)
    title = title or said["periods"]
    with _LOCK:
        figure = _matplotlib()(figsize=(9, 3.6), dpi=72, layout="constrained")
        axes = figure.add_subplot()
        xs = list(range(len(periods)))
        axes.bar(
            xs,
            [p.entitled for p in periods],
            width=0.7,
            fill=False,
            edgecolor=COLOURS["entitled"],
            linewidth=2,
            label=said["entitled"],
        )
        axes.bar(
            xs,
            [p.delivered for p in periods],
            width=0.5,
            color=COLOURS["delivered"],
            label=said["delivered"],
        )
        if any(p.outside_policy for p in periods):
            axes.bar(
                xs,
                [p.outside_policy for p in periods],
                width=0.5,
                bottom=[p.delivered for p in periods],
                color="#ffffff",
                edgecolor=COLOURS["outside"],
                hatch="//",
                label=said["outside"],
            )
        if any(p.refused for p in periods):
            refused = [(x, p.refused) for x, p in zip(xs, periods, strict=True) if p.refused]
            axes.plot(
                [x for x, _ in refused],
                [count for _, count in refused],
                linestyle="none",
                marker="x",
                markersize=10,
                markeredgewidth=2.5,
                color=COLOURS["refused"],
                label=said["refused"],
            )
        axes.set_xticks(xs, [p.label for p in periods], fontsize=10)
        top = max(
            [1] + [max(p.entitled, p.delivered + p.outside_policy, p.refused) for p in periods]
        )
        axes.set_ylim(0, top * 1.15 + 0.5)
        axes.set_ylabel(said["sessions"], fontsize=11)
        from matplotlib.ticker import MaxNLocator

        axes.yaxis.set_major_locator(MaxNLocator(integer=True))
        axes.grid(axis="y", color="#b1b4b6", linewidth=0.6)
        axes.set_axisbelow(True)
        for side in ("top", "right"):
            axes.spines[side].set_visible(False)
        axes.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=10, frameon=False)
        description = " ".join(
            f"{p.label}: {said['entitled']} {p.entitled}, {said['delivered']} {p.delivered}"
            + (f", {said['outside']} {p.outside_policy}" if p.outside_policy else "")
            + f", {said['refused']} {p.refused}, {said['shortfall']} {p.shortfall}."
            for p in periods
        )
        svg = _svg(figure, title, description or said["nothing"])
    return svg


def periods_table(
    periods: Sequence[PeriodFigures], *, language: str, caption: str | None = None
) -> Markup:
    """The bars' figures as an HTML table, one row per period."""
    said = words(language)
    keys = ("entitled", "delivered", "outside", "refused", "shortfall")
    head = Markup('<thead><tr><th scope="col">{}</th>{}</tr></thead>').format(
        said["period"],
        Markup("").join(Markup('<th scope="col">{}</th>').format(said[k]) for k in keys),
    )
    rows = Markup("").join(
        Markup('<tr><th scope="row">{}</th>{}</tr>').format(
            p.label,
            Markup("").join(
                Markup('<td class="number">{}</td>').format(v)
                for v in (p.entitled, p.delivered, p.outside_policy, p.refused, p.shortfall)
            ),
        )
        for p in periods
    )
    cap = Markup("<caption>{}</caption>").format(caption) if caption else Markup("")
    return Markup('<table class="chart-table">{}{}<tbody>{}</tbody></table>').format(
        cap, head, rows
    )
