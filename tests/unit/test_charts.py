"""The pages' charts: inline SVG that a screen reader can name, the same for the
same input, ids that two charts on one page never share, and a text table
with every figure beside each chart."""

from __future__ import annotations

import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from kinline.web.charts import (
    PeriodFigures,
    TimelineItem,
    periods_svg,
    periods_table,
    timeline_svg,
    timeline_table,
)

DENVER = ZoneInfo("America/Denver")
START = datetime(2026, 3, 1, 7, tzinfo=UTC)  # midnight in Denver (MST)
END = datetime(2026, 4, 1, 6, tzinfo=UTC)  # midnight in Denver (MDT, after the change)
SVG = "{http://www.w3.org/2000/svg}"

EVENTS = [
    TimelineItem("order", "Order 17: four calls a month", datetime(2026, 1, 1, tzinfo=UTC)),
    TimelineItem(
        "rule",
        "Lockdown <unit B>",
        datetime(2026, 3, 10, tzinfo=UTC),
        datetime(2026, 3, 15, tzinfo=UTC),
    ),
    TimelineItem(
        "call",
        "Call with A. Salazar",
        datetime(2026, 3, 3, 18, tzinfo=UTC),
        datetime(2026, 3, 3, 18, 15, tzinfo=UTC),
    ),
    TimelineItem("refusal", "Refused: the lockdown", datetime(2026, 3, 12, 18, tzinfo=UTC)),
    TimelineItem("activity", "Grievance filed", datetime(2026, 3, 9, 18, tzinfo=UTC)),
    # Outside the range: left out of the chart.
    TimelineItem("visit", "Visit in February", datetime(2026, 2, 20, 18, tzinfo=UTC)),
]


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # noqa: S314 (our own drawing)


def test_timeline_is_named_svg_with_title_and_description() -> None:
    svg = timeline_svg(EVENTS, start=START, end=END, zone=DENVER, language="en")
    assert svg.startswith("<svg ")
    root = parse(svg)
    assert root.get("role") == "img"
    title_id, desc_id = (root.get("aria-labelledby") or "").split()
    title = root.find(f"{SVG}title")
    desc = root.find(f"{SVG}desc")
    assert title is not None and title.get("id") == title_id
    assert desc is not None and desc.get("id") == desc_id
    assert title.text == "Timeline, Mar 1, 2026 to Mar 31, 2026"
    # One of each kind inside the range; the February visit is not counted.
    assert desc.text == (
        "Court orders: 1; Rules: 1; Calls: 1; Refusals: 1; Protected activities: 1."
    )
    # No prolog, no metadata with a version or a date.
    assert "<?xml" not in svg and "<metadata" not in svg and "2026-12" not in svg


def test_timeline_lanes_and_axis_in_spanish() -> None:
    svg = timeline_svg(EVENTS, start=START, end=END, zone=DENVER, language="es")
    texts = [t.text for t in parse(svg).iter(f"{SVG}text") if t.text]
    for lane in ("Órdenes judiciales", "Reglas", "Llamadas", "Rechazos"):
        assert lane in texts
    assert "Visitas" not in texts  # no visit in the range: no lane
    assert "1 mar" in texts and "8 mar" in texts  # weekly ticks at Denver midnights
    assert "Cronología, del 1 mar 2026 al 31 mar 2026" in svg


def test_timeline_is_the_same_for_the_same_input() -> None:
    first = timeline_svg(EVENTS, start=START, end=END, zone=DENVER, language="en")
    second = timeline_svg(list(EVENTS), start=START, end=END, zone=DENVER, language="en")
    assert first == second


def test_two_charts_share_no_id() -> None:
    one = timeline_svg(EVENTS, start=START, end=END, zone=DENVER, language="en")
    other = timeline_svg(EVENTS[:2], start=START, end=END, zone=DENVER, language="en")
    ids_one = set(re.findall(r'\bid="([^"]+)"', one))
    ids_other = set(re.findall(r'\bid="([^"]+)"', other))
    assert ids_one and ids_other
    assert not ids_one & ids_other
    # Every reference points at an id of the same drawing.
    for ref in re.findall(r'(?:url\(#|href="#)([^")]+)', one):
        assert ref in ids_one


def test_short_timeline_has_hour_ticks() -> None:
    day = datetime(2026, 3, 3, 7, tzinfo=UTC)
    svg = timeline_svg(
        EVENTS, start=day, end=datetime(2026, 3, 4, 7, tzinfo=UTC), zone=DENVER, language="en"
    )
    texts = [t.text for t in parse(svg).iter(f"{SVG}text") if t.text]
    assert "12:00\u202fAM" in texts or "12:00 AM" in texts
    assert "Calls" in texts and "Rules" not in texts  # the lockdown is later


def test_empty_timeline_says_so() -> None:
    svg = timeline_svg([], start=START, end=END, zone=DENVER, language="es")
    assert "No ocurrió nada en este tiempo." in svg


def test_timeline_needs_its_end_after_its_start() -> None:
    with pytest.raises(ValueError, match="end must come after"):
        timeline_svg(EVENTS, start=END, end=START, zone=DENVER, language="en")


def test_timeline_table_lists_every_item_in_order_escaped() -> None:
    html = str(timeline_table(EVENTS, zone=DENVER, language="en", caption="Salazar & family"))
    assert "<caption>Salazar &amp; family</caption>" in html
    assert "Lockdown &lt;unit B&gt;" in html and "<unit B>" not in html
    assert html.count('<th scope="col">') == 4
    rows = re.findall(r"<tr><td>([^<]+)</td><td>([^<]+)</td>", html)
    assert [kind for kind, _ in rows] == [
        "Court orders",
        "Visits",
        "Calls",
        "Protected activities",
        "Rules",
        "Refusals",
    ]
    assert "still in force" in html  # the order has no end
    assert "Mar 3, 2026 11:00\u202fAM" in html or "Mar 3, 2026 11:00 AM" in html  # Denver time


def test_periods_chart_and_table() -> None:
    periods = [
        PeriodFigures("Mar 2026", entitled=4, delivered=1, refused=3, outside_policy=1),
        PeriodFigures("Apr 2026", entitled=4, delivered=5),
    ]
    assert [p.shortfall for p in periods] == [2, 0]  # the call outside policy counts
    svg = periods_svg(periods, language="en")
    desc = parse(svg).find(f"{SVG}desc")
    assert desc is not None
    assert desc.text == (
        "Mar 2026: Entitled 4, Delivered 1, Delivered outside policy 1, Refused 3, Shortfall 2. "
        "Apr 2026: Entitled 4, Delivered 5, Refused 0, Shortfall 0."
    )
    texts = [t.text for t in parse(svg).iter(f"{SVG}text") if t.text]
    assert {"Entitled", "Delivered", "Refused", "Mar 2026", "Apr 2026"} <= set(texts)
    table = str(periods_table(periods, language="es"))
    assert '<th scope="row">Mar 2026</th>' in table
    cells = re.findall(r'<td class="number">(\d+)</td>', table)
    assert cells == ["4", "1", "1", "3", "2", "4", "5", "0", "0", "0"]
    assert "Faltan" in table


def test_a_long_timeline_has_month_ticks() -> None:
    start = datetime(2024, 3, 1, 7, tzinfo=UTC)  # midnight in Denver
    end = datetime(2024, 7, 1, 6, tzinfo=UTC)
    svg = timeline_svg(EVENTS, start=start, end=end, zone=DENVER, language="es")
    texts = [t.text for t in parse(svg).iter(f"{SVG}text") if t.text]
    assert [t for t in texts if "2024" in t] == ["mar 2024", "abr 2024", "may 2024", "jun 2024"]


def test_periods_chart_marks_no_refusal_where_there_was_none() -> None:
    one = periods_svg(
        [PeriodFigures("A", 2, 0, refused=1), PeriodFigures("B", 2, 0)], language="en"
    )
    two = periods_svg(
        [PeriodFigures("A", 2, 0, refused=1), PeriodFigures("B", 2, 0, refused=1)], language="en"
    )
    # A cross for each period with refusals, none at zero for the other.
    assert two.count("<use ") - one.count("<use ") == 1


def test_the_pages_load_without_matplotlib_until_a_chart_is_drawn() -> None:
    """A server worker starts without matplotlib (half a second on a loaded machine)."""
    probe = (
        "import sys, kinline.web.charts as charts; print('matplotlib' in sys.modules); "
        "charts.periods_svg([], language='en'); print('matplotlib' in sys.modules)"
    )
    ran = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert ran.stdout.split() == ["False", "True"]
