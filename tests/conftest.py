"""Fixtures shared by every tier: fresh, migrated databases on SQLite and PostgreSQL.

Each test gets its own database, copied from a template migrated once per run
(on PostgreSQL with CREATE DATABASE ... TEMPLATE), so tests never share state
and every schema is the one the Alembic migrations build.
"""

from __future__ import annotations

import itertools
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from kinline.db.engine import Database
from kinline.db.migrate import upgrade

POSTGRES_URL = os.environ.get("KINLINE_TEST_POSTGRES_URL")
_counter = itertools.count()


def _postgres_missing_reason() -> str:
    return "KINLINE_TEST_POSTGRES_URL is not set: PostgreSQL tests skipped"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if POSTGRES_URL:
        return
    if os.environ.get("CI") == "true":
        raise pytest.UsageError("CI=true: PostgreSQL tests must run; set KINLINE_TEST_POSTGRES_URL")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(pytest.mark.skip(reason=_postgres_missing_reason()))


class PostgresTemplates:
    """Creates and drops databases on the test server."""

    def __init__(self, url: str) -> None:
        self.url = make_url(url)
        self.admin = create_engine(self.url.set(database="postgres"), isolation_level="AUTOCOMMIT")
        self.template = f"kinline_tmpl_{uuid.uuid4().hex[:10]}"
        self._create(self.template, None)
        upgrade(self.url_for(self.template))

    def url_for(self, name: str) -> str:
        return self.url.set(database=name).render_as_string(hide_password=False)

    def _create(self, name: str, template: str | None) -> None:
        clause = f" TEMPLATE {template}" if template else ""
        with self.admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"{clause}'))

    def drop(self, name: str) -> None:
        with self.admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    def fresh(self) -> str:
        name = f"kinline_t_{uuid.uuid4().hex[:12]}"
        self._create(name, self.template)
        return name

    def close(self) -> None:
        self.drop(self.template)
        self.admin.dispose()


@pytest.fixture(scope="session")
def postgres_templates() -> Iterator[PostgresTemplates]:
    if not POSTGRES_URL:
        pytest.skip(_postgres_missing_reason())
    templates = PostgresTemplates(POSTGRES_URL)
    yield templates
    templates.close()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a fresh, migrated database: once on SQLite, once on PostgreSQL."""
    if request.param == "sqlite":
        path = tmp_path / f"kinline-{next(_counter)}.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    templates: PostgresTemplates = request.getfixturevalue("postgres_templates")
    name = templates.fresh()
    yield templates.url_for(name)
    templates.drop(name)


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database(db_url)
    yield database
    database.dispose()
