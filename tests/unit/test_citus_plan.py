"""The Citus plan: derived from the models, in an order Citus accepts, and the
one docs/scaling.md shows."""

from __future__ import annotations

import re
from pathlib import Path

from kinline.db.base import Base
from kinline.db.citus import ANCHOR, COORDINATOR_ONLY, citus_plan
from kinline.db.sharding import REFERENCE_TABLES, distributed_table_names

CALL = re.compile(r"SELECT create_(reference|distributed)_table\('([a-z_]+)'")


def _calls() -> list[tuple[str, str]]:
    return [
        (match.group(1), match.group(2))
        for statement in citus_plan()
        if (match := CALL.match(statement)) is not None
    ]


def test_every_table_is_placed_once() -> None:
    calls = _calls()
    names = [name for _, name in calls]
    assert len(names) == len(set(names))
    placed = set(names)
    every = {table.name for table in Base.metadata.sorted_tables}
    assert placed == every - COORDINATOR_ONLY
    assert {name for kind, name in calls if kind == "distributed"} == distributed_table_names(
        Base.metadata
    )
    assert {name for kind, name in calls if kind == "reference"} == (set(REFERENCE_TABLES) & every)


def test_reference_tables_first_then_parents_before_children() -> None:
    calls = _calls()
    position = {name: index for index, (_, name) in enumerate(calls)}
    kinds = [kind for kind, _ in calls]
    assert kinds == sorted(kinds, key=lambda kind: kind != "reference")
    for table in Base.metadata.sorted_tables:
        for key in table.foreign_key_constraints:
            parent = key.referred_table.name
            if parent != table.name:
                assert position[parent] < position[table.name], (table.name, parent)


def test_every_distributed_table_is_colocated_with_people() -> None:
    distributed = [s for s in citus_plan() if "create_distributed_table" in s]
    assert distributed[0] == f"SELECT create_distributed_table('{ANCHOR}', 'facility_id');"
    for statement in distributed[1:]:
        assert statement.endswith(f"'facility_id', colocate_with => '{ANCHOR}');"), statement


def test_the_scaling_page_shows_this_plan() -> None:
    page = (Path(__file__).parents[2] / "docs" / "scaling.md").read_text(encoding="utf-8")
    block = re.search(r"```sql\n(.*?)```", page, re.DOTALL)
    assert block is not None
    assert block.group(1).splitlines() == citus_plan()
