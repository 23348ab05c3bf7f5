"""Starting states for test databases, built once per session and copied per test.

A ``DbTemplate`` names a database state and how to build it on a freshly migrated
database. tests/conftest.py builds each template once per session (per xdist
worker) and backend, and gives every test that asks for it a copy of its own: an
SQLite file copied, or a PostgreSQL ``CREATE DATABASE ... TEMPLATE``. A module
whose tests all start from one state overrides the ``db_template`` fixture; a
fixture that needs another state asks ``fresh_db`` for one.

The name says what the state is: two templates with the same name are taken to
be the same state, and the first one asked for is built.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from kinline.db.engine import Database
from kinline.scenario import load_into

SHARED = Path(__file__).resolve().parents[3] / "shared" / "scenarios"


@dataclass(frozen=True)
class DbTemplate:
    name: str  # lower-case letters, digits and underscores: part of a database name
    build: Callable[[Database], object] = field(compare=False)


def scenario_template(source: Path | str) -> DbTemplate:
    """The state ``kinline scenario load`` leaves: ``source`` is a scenario file, or
    the YAML text of one. Named by the content, so the same scenario is built once."""
    text = source.read_text() if isinstance(source, Path) else source
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]

    def build(db: Database) -> None:
        if isinstance(source, Path):
            load_into(str(source), db)
            return
        with tempfile.TemporaryDirectory(prefix="kinline-template-") as folder:
            path = Path(folder) / "scenario.yaml"
            path.write_text(text)
            load_into(str(path), db)

    return DbTemplate(f"scenario_{digest}", build)


# The supermax scenario after its whole timeline, calls included.
SUPERMAX = scenario_template(SHARED / "supermax-family-contact.yaml")
