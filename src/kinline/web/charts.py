"""Charts for the pages: ``kinline.charts``, where the reports draw them too."""

from __future__ import annotations

from kinline.charts import (
    COLOURS,
    KINDS,
    MARKERS,
    WORDS,
    ItemKind,
    PeriodFigures,
    TimelineItem,
    periods_svg,
    periods_table,
    timeline_png,
    timeline_svg,
    timeline_table,
    words,
)

__all__ = [
    "COLOURS",
    "KINDS",
    "MARKERS",
    "WORDS",
    "ItemKind",
    "PeriodFigures",
    "TimelineItem",
    "periods_svg",
    "periods_table",
    "timeline_png",
    "timeline_svg",
    "timeline_table",
    "words",
]
