"""Fixtures shared by every tier: fresh databases on SQLite and PostgreSQL, each a
copy of a template built once per run.

Each test gets its own database, copied from a template (on SQLite a file copy,
on PostgreSQL CREATE DATABASE ... TEMPLATE), so tests never share state and every
schema is the one the Alembic migrations build. The templates are the migrated
schema and, built on a copy of it, every loaded state a test starts from (a
``DbTemplate``, tests/integration/_databases.py): a module whose tests all start
from one state overrides the ``db_template`` fixture, and a fixture that needs
another asks ``fresh_db``. Templates are built once per session, which under
pytest-xdist is once per worker; database names carry a uuid, so workers and
concurrent runs never meet.

Marked here by file name, in ``pytest_collection_modifyitems``: every test in a
file named test_calls_race.py or test_ledger_race*.py (SLOW_FILES) is ``slow``:
real servers raced and killed. Other long kill tests carry the mark themselves
(test_delivery.py's killed worker). ``make test`` runs them all; ``pytest -m "not
slow"`` leaves them out.

Under pytest-xdist (``make test`` runs ``-n 2 --dist loadgroup``) the scheduler
here keeps together on one worker the tests of a file in SHARED_FIXTURE_FILES
that run on the same backend (their first parameter): they share a module-scoped
fixture per backend (a server, a database), which that worker then sets up once.
(The ``xdist_group`` mark cannot do this: pytest 9.2's structured node ids ignore
the suffix xdist 3.8 adds, pytest-xdist issue #1386.)
"""

from __future__ import annotations

import itertools
import os
import shutil
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from fnmatch import fnmatch
from pathlib import Path
from typing import Any, Protocol

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from kinline.db.engine import Database
from kinline.db.migrate import upgrade

POSTGRES_URL = os.environ.get("KINLINE_TEST_POSTGRES_URL")
MIGRATED = "migrated"
SLOW_FILES = ("test_calls_race.py", "test_ledger_race*.py")
SHARED_FIXTURE_FILES = ("test_audit_log.py", "test_ledger_race*.py")
_counter = itertools.count()


class Template(Protocol):
    """A database state and how to build it on a migrated database (a
    ``DbTemplate`` of tests/integration/_databases.py)."""

    @property
    def name(self) -> str: ...

    @property
    def build(self) -> Callable[[Database], object]: ...


def _postgres_missing_reason() -> str:
    return "KINLINE_TEST_POSTGRES_URL is not set: PostgreSQL tests skipped"


def work_unit(nodeid: str) -> str:
    """What xdist hands one worker whole: a test of a SHARED_FIXTURE_FILES file goes
    with the others of its file on its backend (``path::test[sqlite-...]`` ->
    ``path[sqlite]``); any other test goes alone."""
    path, _, name = nodeid.partition("::")
    if "[" not in name or not any(fnmatch(Path(path).name, p) for p in SHARED_FIXTURE_FILES):
        return nodeid
    backend = name.split("[", 1)[1].split("-", 1)[0].removesuffix("]")
    return f"{path}[{backend}]"


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist loadgroup``, and the work units of ``work_unit``."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadGroupScheduling

    class Scheduling(LoadGroupScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            if nodeid.rfind("@") > nodeid.rfind("]"):  # an xdist_group mark that took
                return str(super()._split_scope(nodeid))
            return work_unit(nodeid)

    return Scheduling(config, log)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if any(fnmatch(item.path.name, pattern) for pattern in SLOW_FILES):
            item.add_marker(pytest.mark.slow)
    if POSTGRES_URL:
        return
    if os.environ.get("CI") == "true":
        raise pytest.UsageError("CI=true: PostgreSQL tests must run; set KINLINE_TEST_POSTGRES_URL")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(pytest.mark.skip(reason=_postgres_missing_reason()))


def _build(template: Template, url: str) -> None:
    database = Database(url)
    try:
        template.build(database)
    finally:
        database.dispose()


class PostgresTemplates:
    """Creates and drops databases on the test server: a template database per
    starting state, each built once, and fresh copies of them.

    One thread works beside the tests: while a test runs it makes the next copy
    of the template that test started from, and it drops the databases of the
    tests that ended (``drop_later``), so no test waits for either."""

    def __init__(self, url: str) -> None:
        self.url = make_url(url)
        self.admin = create_engine(self.url.set(database="postgres"), isolation_level="AUTOCOMMIT")
        self.prefix = f"kinline_tmpl_{uuid.uuid4().hex[:10]}"
        self._templates: dict[str, str] = {}
        self._background = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kinline-pg")
        self._next: dict[str, Future[str]] = {}  # template database: its next copy
        self._drops: list[tuple[str, Future[None]]] = []
        self.template = self.template_for(None)

    def url_for(self, name: str) -> str:
        return self.url.set(database=name).render_as_string(hide_password=False)

    def _create(self, name: str, template: str | None) -> None:
        clause = f" TEMPLATE {template}" if template else ""
        with self.admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"{clause}'))

    def drop(self, name: str) -> None:
        with self.admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    def template_for(self, template: Template | None) -> str:
        """The template database of ``template`` (None: the migrated schema), built
        the first time it is asked for."""
        key = MIGRATED if template is None else template.name
        if key not in self._templates:
            name = f"{self.prefix}_{key}"
            try:
                if template is None:
                    self._create(name, None)
                    upgrade(self.url_for(name))
                else:
                    self._create(name, self.template_for(None))
                    _build(template, self.url_for(name))
            except BaseException:
                self.drop(name)
                raise
            self._templates[key] = name
        return self._templates[key]

    def _copy(self, source: str) -> str:
        name = f"kinline_t_{uuid.uuid4().hex[:12]}"
        self._create(name, source)
        return name

    def fresh(self, template: Template | None = None) -> str:
        """A new database holding ``template``'s state (None: just migrated)."""
        source = self.template_for(template)
        ready = self._next.pop(source, None)
        name = ready.result() if ready is not None else self._copy(source)
        self._next[source] = self._background.submit(self._copy, source)
        return name

    def drop_later(self, name: str) -> None:
        """Drop ``name`` soon, on the thread beside the tests."""
        self._drops = [(n, f) for n, f in self._drops if not f.done() or f.exception()]
        self._drops.append((name, self._background.submit(self.drop, name)))

    def close(self) -> None:
        self._background.shutdown(wait=True)
        left = [name for name, dropped in self._drops if dropped.exception() is not None]
        left += [ready.result() for ready in self._next.values() if ready.exception() is None]
        for name in [*left, *self._templates.values()]:
            self.drop(name)
        self.admin.dispose()


class SqliteTemplates:
    """Template files, each built once, copied for every test that starts from one."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._paths: dict[str, Path] = {}

    def template_for(self, template: Template | None) -> Path:
        key = MIGRATED if template is None else template.name
        if key not in self._paths:
            path = self.folder / f"{key}.db"
            if template is None:
                upgrade(f"sqlite:///{path}")
            else:
                shutil.copyfile(self.template_for(None), path)
                try:
                    _build(template, f"sqlite:///{path}")
                except BaseException:
                    path.unlink(missing_ok=True)
                    raise
            # Everything in the main file, so a copy of the file alone is whole.
            with sqlite3.connect(path) as connection:
                connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            connection.close()
            self._paths[key] = path
        return self._paths[key]

    def fresh(self, template: Template | None, folder: Path) -> str:
        path = folder / f"kinline-{next(_counter)}.db"
        shutil.copyfile(self.template_for(template), path)
        return f"sqlite:///{path}"


@pytest.fixture(scope="session")
def postgres_templates() -> Iterator[PostgresTemplates]:
    if not POSTGRES_URL:
        pytest.skip(_postgres_missing_reason())
    templates = PostgresTemplates(POSTGRES_URL)
    yield templates
    templates.close()


@pytest.fixture(scope="session")
def sqlite_templates(tmp_path_factory: pytest.TempPathFactory) -> SqliteTemplates:
    return SqliteTemplates(tmp_path_factory.mktemp("templates"))


@pytest.fixture(scope="session")
def sqlite_template(sqlite_templates: SqliteTemplates) -> Path:
    """The migrated SQLite file every fresh SQLite database is copied from."""
    return sqlite_templates.template_for(None)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_backend(request: pytest.FixtureRequest) -> str:
    """Each database test runs once on SQLite and once on PostgreSQL."""
    return str(request.param)


@pytest.fixture
def fresh_url(
    db_backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[[Template | None], str]]:
    """Makes the URL of a new database on this test's backend holding a template's
    state (None: just migrated); each is dropped when the test ends."""
    if db_backend == "sqlite":
        sqlite: SqliteTemplates = request.getfixturevalue("sqlite_templates")
        yield lambda template=None: sqlite.fresh(template, tmp_path)
        return
    postgres: PostgresTemplates = request.getfixturevalue("postgres_templates")
    made: list[str] = []

    def fresh(template: Template | None = None) -> str:
        made.append(postgres.fresh(template))
        return postgres.url_for(made[-1])

    yield fresh
    for name in made:
        postgres.drop_later(name)


@pytest.fixture
def fresh_db(fresh_url: Callable[[Template | None], str]) -> Iterator[Callable[..., Database]]:
    """Makes a new database (as ``fresh_url``), disposed of when the test ends."""
    opened: list[Database] = []

    def fresh(template: Template | None = None) -> Database:
        database = Database(fresh_url(template))
        opened.append(database)
        return database

    yield fresh
    for database in opened:
        database.dispose()


@pytest.fixture
def db_template() -> Template | None:
    """What a test's ``db`` holds when it starts: None, the migrated schema only.
    A module whose tests all start from one loaded state overrides this fixture."""
    return None


@pytest.fixture
def db_url(fresh_url: Callable[[Template | None], str], db_template: Template | None) -> str:
    """The URL of a fresh database holding ``db_template``: once on SQLite, once on
    PostgreSQL."""
    return fresh_url(db_template)


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database(db_url)
    yield database
    database.dispose()
