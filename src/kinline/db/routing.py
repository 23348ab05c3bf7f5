"""Every statement on a facility's data routes to that facility's shard.

Sharded by facility (Citus, docs/scaling.md), a statement reaches one shard
only when it filters a distributed table by ``facility_id``; one that does not
is sent to every shard, which at a national operator's scale is the difference
between one node's work and all of them. So each statement that touches a
facility table must say which facility (a WHERE or JOIN ON predicate
``facility_id = <value>`` or ``facility_id IN (<values>)`` on that table, or an
equality on ``facility_id`` with a table that does; an INSERT names
``facility_id`` among its columns), unless it runs inside a cross-facility
operation declared here, in ``CROSS_FACILITY``, with its reason.

``check_statement`` decides, from the statement as sent to the driver, parsed
by sqlglot; ``install`` puts the check on an engine (kinline's engine factory
does when ``KINLINE_ROUTING_CHECK=1``, as the integration suite sets it): a
statement that fails raises ``UnroutedStatement`` naming it and its tables.
With ``KINLINE_ROUTING_REPORT`` set to a file, failing statements are appended
there as JSON lines (statement, tables, the kinline frames that ran it) and run
anyway: a way to list them all in one run.
"""

from __future__ import annotations

import json
import os
import re
import sys
import traceback
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final

import sqlglot
from sqlalchemy import Engine, event
from sqlglot import exp
from sqlglot.errors import SqlglotError

from kinline.db.sharding import DISTRIBUTION_COLUMN

FACILITY_COLUMN: Final = DISTRIBUTION_COLUMN

# Operations that read or write every facility's rows on purpose, and why. A
# statement run inside ``cross_facility(name)`` is not checked; every name used
# must be here.
CROSS_FACILITY: Final[dict[str, str]] = {
    "migrations": "Alembic migrations change the schema and rows of every facility at once",
    "audit-verify": (
        "verifying the audit log reads every chain of every facility from one snapshot"
    ),
    "audit-checkpoint": (
        "a signed checkpoint covers the head of every chain of every facility at once,"
        " and verifying against one reads them all"
    ),
    "notice-delivery": (
        "the delivery worker serves one queue for every facility: it claims the due"
        " emails, and finds the housing units with paper notices waiting, everywhere"
    ),
    "appeal-sweep": (
        "the appeals sweep finds, at every facility, the pending appeals whose answer"
        " window has closed (each is then answered at its own facility)"
    ),
    "visit-sweep": (
        "the visits sweep finds, at every facility, lapsed reservations and requests"
        " left unanswered (each is then handled at its own facility)"
    ),
    "call-sweep": (
        "the call sweep finds, at every facility, holds and calls whose time is up"
        " (each is then ended at its own facility)"
    ),
    "outbox-publisher": (
        "the publisher sends every facility's domain events to NATS in the order they"
        " were recorded, and every live webhook its events"
    ),
    "test-fixture": (
        "tests set up, count and tamper with rows directly (a forged audit event, a"
        " deleted head) to prove what the service does with them"
    ),
}

_declared: ContextVar[str | None] = ContextVar("kinline_cross_facility", default=None)


class UnroutedStatement(RuntimeError):
    """A statement on a facility table without a facility predicate, outside any
    declared cross-facility operation."""


@contextmanager
def cross_facility(name: str) -> Iterator[None]:
    """Run the block as the declared cross-facility operation ``name`` (a key of
    ``CROSS_FACILITY``): its statements may span facilities."""
    if name not in CROSS_FACILITY:
        raise KeyError(f"{name!r} is not a declared cross-facility operation (CROSS_FACILITY)")
    token = _declared.set(name)
    try:
        yield
    finally:
        _declared.reset(token)


def declared_operation() -> str | None:
    """The cross-facility operation the caller runs in, if any."""
    return _declared.get()


_KINLINE = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
_THIS = os.path.abspath(__file__)
_declared_code: dict[str, str] = {}  # a directory: the operation its statements run as


def declare_code(directory: str, name: str) -> None:
    """Statements that code under ``directory`` sends itself, not through
    kinline, run as the declared operation ``name``: the integration tests'
    own counting and tampering ("test-fixture"). What kinline's code sends for
    them is checked as ever."""
    if name not in CROSS_FACILITY:
        raise KeyError(f"{name!r} is not a declared cross-facility operation (CROSS_FACILITY)")
    _declared_code[os.path.abspath(directory) + os.sep] = name


def forget_code(directory: str) -> None:
    """Undo ``declare_code(directory, ...)``."""
    _declared_code.pop(os.path.abspath(directory) + os.sep, None)


def _sent_by_declared_code() -> bool:
    """Whether the nearest caller outside the libraries is declared code (the
    first frame in kinline, or in a declared directory, decides)."""
    if not _declared_code:
        return False
    frame: Any = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename
        if filename.startswith(_KINLINE) and filename != _THIS:
            return False
        if any(filename.startswith(directory) for directory in _declared_code):
            return True
        frame = frame.f_back
    return False


@dataclass(frozen=True)
class Verdict:
    """What the check found: the facility tables a statement reaches without a
    facility predicate (none: it routes), and why, in words."""

    unrouted: tuple[str, ...] = ()
    reason: str = ""

    @property
    def routes(self) -> bool:
        return not self.unrouted


ROUTES: Final = Verdict()

# Statements that touch no table: transaction control, session settings.
_NO_TABLES = re.compile(
    r"\s*(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE|SET|SHOW|RESET|PRAGMA|END|"
    r"ANALYZE|VACUUM|LISTEN|NOTIFY|DISCARD)\b",
    re.IGNORECASE,
)
_DDL = (exp.Create, exp.Drop, exp.Alter, exp.Pragma, exp.Transaction)


def facility_tables() -> frozenset[str]:
    """The tables that hold a facility's data (distributed by facility_id)."""
    from kinline.db import tables  # noqa: F401  (registers every table)
    from kinline.db.base import Base
    from kinline.db.sharding import distributed_table_names

    return distributed_table_names(Base.metadata)


def check_statement(statement: str, dialect: str, tables: frozenset[str]) -> Verdict:
    """Whether ``statement`` (as sent to a ``dialect`` driver: "sqlite" or
    "postgresql") constrains every reference to one of ``tables`` by facility."""
    return _check_cached(statement, dialect, tables)


@lru_cache(maxsize=8192)
def _check_cached(statement: str, dialect: str, tables: frozenset[str]) -> Verdict:
    if _NO_TABLES.match(statement):
        return ROUTES
    sqlglot_dialect = "postgres" if dialect.startswith("postgres") else dialect
    try:
        parsed = sqlglot.parse(statement, dialect=sqlglot_dialect)
    except SqlglotError as error:
        return _unparsed(statement, tables, str(error).splitlines()[0])
    unrouted: list[str] = []
    for expression in parsed:
        if expression is None or isinstance(expression, _DDL):
            continue
        if isinstance(expression, exp.Command):
            return _unparsed(statement, tables, "sqlglot read it as an opaque command")
        _Walk(tables, unrouted).statement(expression)
    if not unrouted:
        return ROUTES
    names = tuple(dict.fromkeys(unrouted))
    return Verdict(names, "no facility_id predicate on " + ", ".join(names))


def _unparsed(statement: str, tables: frozenset[str], why: str) -> Verdict:
    """A statement the parser cannot read routes only if it names no facility table."""
    named = sorted(t for t in tables if re.search(rf"\b{t}\b", statement, re.IGNORECASE))
    if not named:
        return ROUTES
    return Verdict(tuple(named), f"it could not be parsed ({why}) and names " + ", ".join(named))


class _Scope:
    """The tables of one query level: alias -> table name (None: a derived
    table or CTE, which routes or not as a whole), and the aliases a facility
    predicate constrains."""

    def __init__(self, parent: _Scope | None, tables: frozenset[str]) -> None:
        self.parent = parent
        self.tables = tables
        self.sources: dict[str, str | None] = {}
        self.derived_routes: set[str] = set()
        self.constrained: set[str] = set()

    def resolve(self, column: exp.Column) -> tuple[_Scope, str] | None:
        """The scope and alias whose ``facility_id`` ``column`` is."""
        qualifier = column.table.lower()
        scope: _Scope | None = self
        while scope is not None:
            if qualifier:
                if qualifier in scope.sources:
                    return scope, qualifier
            else:
                # An unqualified facility_id is the one table's that has it.
                found = [a for a, t in scope.sources.items() if t is None or t in scope.tables]
                if len(scope.sources) == 1 or len(found) == 1:
                    return scope, (found or list(scope.sources))[0]
                if found:
                    return None
            scope = scope.parent
        return None


class _Walk:
    def __init__(self, tables: frozenset[str], unrouted: list[str]) -> None:
        self.tables = tables
        self.unrouted = unrouted
        self.ctes: dict[str, bool] = {}

    # -- statements ---------------------------------------------------------

    def statement(self, node: exp.Expr) -> None:
        if isinstance(node, exp.Query):
            self.query(node, None)
        elif isinstance(node, exp.Insert):
            self.insert(node)
        elif isinstance(node, (exp.Update, exp.Delete)):
            self.update_or_delete(node)
        elif isinstance(node, exp.TruncateTable):
            for table in node.expressions:
                if isinstance(table, exp.Table) and table.name.lower() in self.tables:
                    self.unrouted.append(table.name.lower())
        else:
            self.nested(node, _Scope(None, self.tables), skip=set())

    def with_clause(self, node: exp.Expr, parent: _Scope | None) -> None:
        with_ = node.args.get("with_")
        if not isinstance(with_, exp.With):
            return
        for cte in with_.expressions:
            name = cte.alias_or_name.lower()
            self.ctes[name] = True  # a recursive CTE reads itself
            body = cte.this
            if isinstance(body, exp.Query):
                self.ctes[name] = self.query(body, parent)
            else:  # a data-modifying CTE: checked as a statement of its own
                self.statement(body)
                self.ctes[name] = False

    def insert(self, node: exp.Insert) -> None:
        self.with_clause(node, None)
        target = node.this
        columns: list[str] | None = None
        if isinstance(target, exp.Schema):
            columns = [c.name.lower() for c in target.expressions]
            target = target.this
        name = target.name.lower() if isinstance(target, exp.Table) else ""
        if name in self.tables and columns is not None and FACILITY_COLUMN not in columns:
            self.unrouted.append(name)
        source = node.expression
        scope = _Scope(None, self.tables)
        if isinstance(source, exp.Query):
            self.query(source, None)
        elif source is not None:
            self.nested(source, scope, skip=set())
        for key in ("conflict", "returning", "where"):
            part = node.args.get(key)
            if isinstance(part, exp.Expr):
                self.nested(part, scope, skip=set())

    def update_or_delete(self, node: exp.Update | exp.Delete) -> None:
        self.with_clause(node, None)
        scope = _Scope(None, self.tables)
        skip: set[int] = set()
        sources: list[exp.Expr] = [node.this]
        from_ = node.args.get("from_")
        if isinstance(from_, exp.From):
            sources.append(from_.this)
        sources.extend(node.args.get("using") or [])
        sources.extend(node.args.get("tables") or [])
        for source in sources:
            self.source(source, scope, skip)
        conditions = [node.args.get("where")]
        for join in (from_.args.get("joins") if isinstance(from_, exp.From) else None) or []:
            self.source(join.this, scope, skip)
            conditions.append(join.args.get("on"))
        self.settle(scope, conditions)
        self.nested(node, scope, skip=skip)

    # -- queries ------------------------------------------------------------

    def query(self, node: exp.Query, parent: _Scope | None) -> bool:
        """Check a SELECT or set operation; whether all its rows come from
        constrained facility tables (so joining it on facility_id routes)."""
        self.with_clause(node, parent)
        if isinstance(node, exp.SetOperation):
            left = node.this
            right = node.expression
            routes = [
                self.query(side, parent) for side in (left, right) if isinstance(side, exp.Query)
            ]
            return bool(routes) and all(routes)
        if isinstance(node, exp.Subquery):
            inner = node.this
            return self.query(inner, parent) if isinstance(inner, exp.Query) else False
        if not isinstance(node, exp.Select):
            self.nested(node, _Scope(parent, self.tables), skip=set())
            return False
        if _is_next_id(node):
            return False
        scope = _Scope(parent, self.tables)
        skip: set[int] = set()
        from_ = node.args.get("from_")
        if isinstance(from_, exp.From):
            self.source(from_.this, scope, skip)
        conditions: list[exp.Expr | None] = [node.args.get("where")]
        for join in node.args.get("joins") or []:
            self.source(join.this, scope, skip)
            conditions.append(join.args.get("on"))
            using = join.args.get("using") or []
            if any(_name(u) == FACILITY_COLUMN for u in using):
                right = join.this.alias_or_name.lower()
                conditions.append(_using_edges(right, scope))
        before = len(self.unrouted)
        self.settle(scope, conditions)
        self.nested(node, scope, skip=skip)
        routed_facility = any(
            scope.sources[a] in self.tables or a in scope.derived_routes for a in scope.sources
        )
        return routed_facility and len(self.unrouted) == before

    def source(self, node: exp.Expr, scope: _Scope, skip: set[int]) -> None:
        """Add a FROM or JOIN item to ``scope``."""
        skip.add(id(node))
        if isinstance(node, exp.Table):
            name = node.name.lower()
            alias = node.alias_or_name.lower()
            if name in self.ctes and not node.args.get("db"):
                scope.sources[alias] = None
                if self.ctes[name]:
                    scope.derived_routes.add(alias)
            else:
                scope.sources[alias] = name
            return
        if isinstance(node, exp.Subquery):
            alias = node.alias_or_name.lower()
            scope.sources[alias] = None
            inner = node.this
            if isinstance(inner, exp.Query) and self.query(inner, scope.parent):
                scope.derived_routes.add(alias)
            return
        if isinstance(node, exp.Lateral):
            self.nested(node, scope, skip=set())
        # table functions (json_each, unnest) hold no facility rows

    def settle(self, scope: _Scope, conditions: Iterable[exp.Expr | None]) -> None:
        """Find the constrained aliases of ``scope`` and record the facility
        tables left unconstrained."""
        whole: exp.Expr | None = None
        for condition in conditions:
            if condition is None:
                continue
            if isinstance(condition, exp.Where):
                condition = condition.this
            whole = condition if whole is None else exp.And(this=whole, expression=condition)
        seeds = set(scope.derived_routes)
        scope.constrained = _closure(whole, scope, seeds) if whole is not None else seeds
        for alias, name in scope.sources.items():
            if name in self.tables and alias not in scope.constrained:
                self.unrouted.append(name)

    def nested(self, node: exp.Expr, scope: _Scope, skip: set[int]) -> None:
        """Check the subqueries inside ``node`` (outside its FROM items), each
        seeing ``scope`` as its outer query."""
        for child in _children(node):
            if id(child) in skip or isinstance(child, exp.With):
                continue
            if isinstance(child, exp.Query):
                self.query(child, scope)
            else:
                self.nested(child, scope, skip)


def _is_next_id(select: exp.Select) -> bool:
    """SQLite's id of a new row, ``(SELECT coalesce(max(rowid), 0) + 1 FROM t)``
    (kinline.db.ids): what PostgreSQL's ``nextval`` is, made by the coordinator
    under Citus, not a read of a facility's rows."""
    projections = select.expressions
    return (
        len(projections) == 1
        and not select.args.get("where")
        and projections[0].sql().lower() == "coalesce(max(rowid), 0) + 1"
    )


def _children(node: exp.Expr) -> Iterator[exp.Expr]:
    for value in node.args.values():
        if isinstance(value, exp.Expr):
            yield value
        elif isinstance(value, list):
            yield from (v for v in value if isinstance(v, exp.Expr))


def _name(node: exp.Expr) -> str:
    return node.name.lower()


def _using_edges(right: str, scope: _Scope) -> exp.Expr:
    """``JOIN t USING (facility_id)`` as equalities between ``t`` and the tables
    before it."""
    edges: exp.Expr | None = None
    for alias in scope.sources:
        if alias == right:
            continue
        equality = exp.EQ(
            this=exp.column(FACILITY_COLUMN, table=right),
            expression=exp.column(FACILITY_COLUMN, table=alias),
        )
        edges = equality if edges is None else exp.And(this=edges, expression=equality)
    return edges if edges is not None else exp.true()


def _closure(condition: exp.Expr, scope: _Scope, seeds: set[str]) -> set[str]:
    direct, edges = _constraints(condition, scope, seeds)
    constrained = seeds | direct
    changed = True
    while changed:
        changed = False
        for a, b in edges:
            if (a in constrained) != (b in constrained):
                constrained |= {a, b}
                changed = True
    return constrained


def _constraints(
    node: exp.Expr, scope: _Scope, seeds: set[str]
) -> tuple[set[str], list[tuple[str, str]]]:
    """The aliases of ``scope`` that ``node`` pins to given facilities when it
    holds, and the facility_id equalities between aliases it asserts."""
    if isinstance(node, exp.Paren):
        return _constraints(node.this, scope, seeds)
    if isinstance(node, exp.And):
        left, left_edges = _constraints(node.this, scope, seeds)
        right, right_edges = _constraints(node.expression, scope, seeds)
        return left | right, left_edges + right_edges
    if isinstance(node, exp.Or):
        # Each branch must pin the table for the whole to pin it.
        left = _closure(node.this, scope, seeds)
        right = _closure(node.expression, scope, seeds)
        return left & right, []
    if isinstance(node, exp.EQ):
        left_alias = _facility_alias(node.this, scope)
        right_alias = _facility_alias(node.expression, scope)
        if left_alias and right_alias:
            return set(), [(left_alias, right_alias)]
        if left_alias and _fixed(node.expression, scope):
            return {left_alias}, []
        if right_alias and _fixed(node.this, scope):
            return {right_alias}, []
        return set(), []
    if isinstance(node, exp.In) and isinstance(node.this, exp.Tuple):
        # (facility_id, id) IN ((?, ?), ...): the facility of each tuple given
        rows = node.expressions
        if len(rows) == 1 and isinstance(rows[0], exp.Values):  # SQLite: IN (VALUES ...)
            rows = rows[0].expressions
        for place, column in enumerate(node.this.expressions):
            alias = _facility_alias(column, scope)
            if alias and rows and all(_fixed(_at(row, place), scope) for row in rows):
                return {alias}, []
        return set(), []
    if isinstance(node, exp.In):
        alias = _facility_alias(node.this, scope)
        values = node.expressions
        if (
            alias
            and values
            and not node.args.get("query")
            and all(_fixed(v, scope) for v in values)
        ):
            return {alias}, []
        return set(), []
    return set(), []


def _at(row: exp.Expr, place: int) -> exp.Expr:
    """The ``place``-th value of a tuple of values (a NULL if there is none)."""
    values = row.expressions if isinstance(row, exp.Tuple) else []
    return values[place] if place < len(values) else exp.Column()


def _facility_alias(node: exp.Expr, scope: _Scope) -> str | None:
    """The alias of this scope whose facility_id ``node`` is, if it is one."""
    if not isinstance(node, exp.Column) or node.name.lower() != FACILITY_COLUMN:
        return None
    found = scope.resolve(node)
    if found is None or found[0] is not scope:
        return None
    return found[1]


_VALUES = (exp.Placeholder, exp.Literal, exp.Parameter, exp.Null)


def _fixed(node: exp.Expr, scope: _Scope) -> bool:
    """A value that names facilities: a bound parameter, a literal, an array of
    them (``= ANY(:ids)``), or the facility_id of a constrained outer table."""
    if isinstance(node, _VALUES):
        return True
    if isinstance(node, (exp.Cast, exp.Paren, exp.Any)):
        return _fixed(node.this, scope)
    if isinstance(node, exp.Array):
        return all(_fixed(v, scope) for v in node.expressions)
    if isinstance(node, exp.Column) and node.name.lower() == FACILITY_COLUMN:
        found = scope.resolve(node)
        return found is not None and found[0] is not scope and found[1] in found[0].constrained
    return False


# -- the hook -----------------------------------------------------------------


def install(engine: Engine, *, tables: frozenset[str] | None = None) -> None:
    """Check every statement ``engine`` runs (``before_cursor_execute``)."""
    checked = facility_tables() if tables is None else tables
    report = os.environ.get("KINLINE_ROUTING_REPORT")
    event.listen(engine, "before_cursor_execute", _listener(checked, report))


def installed_from_environment(engine: Engine) -> None:
    """``install`` when ``KINLINE_ROUTING_CHECK=1`` (the integration suite)."""
    if os.environ.get("KINLINE_ROUTING_CHECK") == "1":
        install(engine)


def _listener(tables: frozenset[str], report: str | None) -> Callable[..., None]:
    def before_cursor_execute(
        connection: Any,
        _cursor: Any,
        statement: str,
        _parameters: Any,
        _context: Any,
        _executemany: bool,
    ) -> None:
        if _declared.get() is not None:
            return
        verdict = check_statement(statement, connection.dialect.name, tables)
        if verdict.routes or _sent_by_declared_code():
            return
        if report:
            _append_report(report, statement, verdict)
            return
        raise UnroutedStatement(
            f"{verdict.reason}: a statement on a facility table must filter by facility_id"
            " (or run inside a cross_facility() operation declared in"
            f" kinline.db.routing.CROSS_FACILITY): {statement}"
        )

    return before_cursor_execute


def _append_report(path: str, statement: str, verdict: Verdict) -> None:
    frames = [
        f"{frame.filename.split('/src/')[-1]}:{frame.lineno} {frame.name}"
        for frame in traceback.extract_stack()
        if ("/kinline/" in frame.filename and not frame.filename.endswith("routing.py"))
        or "/tests/" in frame.filename
    ]
    line = {"tables": list(verdict.unrouted), "statement": statement, "frames": frames[-8:]}
    with open(path, "a", encoding="utf-8") as report:
        report.write(json.dumps(line) + "\n")
