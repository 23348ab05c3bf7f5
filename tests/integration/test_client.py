"""A client generated from the served OpenAPI document, as the telephony platform
and a records system would make one (openapi-python-client, offline), driven
against a live server through the generated code alone: typed answers, and
typed problems for every error."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from _databases import DbTemplate
from _identity import token_for
from _server import Server, running_server
from test_events import FACILITY, SCENARIO

from kinline.db.engine import Database
from kinline.identity.model import Binding, Job, Kind, Role

GENERATOR = Path(sys.executable).parent / "openapi-python-client"
PACKAGE = "kinline_generated_client"
# The PDFs are bytes to a client: its generator reads octet-stream as such.
CONFIG = "content_type_overrides:\n  application/pdf: application/octet-stream\n"


@pytest.fixture
def served(
    fresh_db: Callable[[DbTemplate], Database],
) -> Iterator[tuple[Server, dict[str, str]]]:
    db = fresh_db(SCENARIO)
    tokens = {
        "telephony": token_for(db, "pbx", Kind.MACHINE, Binding(FACILITY, job=Job.TELEPHONY)),
        "security": token_for(db, "sec", Kind.STAFF, Binding(FACILITY, role=Role.SECURITY)),
    }
    with running_server(db.url, workers=1) as server:
        yield server, tokens


@pytest.fixture
def generated(
    served: tuple[Server, dict[str, str]], tmp_path: Path
) -> Iterator[Callable[[str], ModuleType]]:
    """The generated package, importable; ``module("api.calls.authorize_call")``."""
    server, _tokens = served
    document = tmp_path / "openapi.json"
    document.write_bytes(httpx.get(f"{server.base_url}/openapi.json").content)
    (tmp_path / "generator.yaml").write_text(CONFIG)
    made = subprocess.run(
        [str(GENERATOR), "generate", "--path", str(document), "--meta", "none",
         "--output-path", str(tmp_path / PACKAGE), "--config", str(tmp_path / "generator.yaml")],
        capture_output=True,
        text=True,
        # Its formatter (ruff) from this environment; no network is used.
        env={**os.environ, "PATH": f"{GENERATOR.parent}{os.pathsep}{os.environ['PATH']}"},
        timeout=600,
    )  # fmt: skip
    output = made.stdout + made.stderr
    assert made.returncode == 0, output
    for warning in ("warning", "unable", "cannot", "could not", "skipping", "error"):
        assert warning not in output.lower(), output
    sys.path.insert(0, str(tmp_path))
    try:
        yield lambda name: importlib.import_module(f"{PACKAGE}.{name}" if name else PACKAGE)
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]


@pytest.fixture
def closing() -> Iterator[ExitStack]:
    """Closes the generated clients (their connections) when the test ends."""
    with ExitStack() as stack:
        yield stack


def test_the_call_path_through_the_generated_client(
    served: tuple[Server, dict[str, str]],
    generated: Callable[[str], ModuleType],
    closing: ExitStack,
) -> None:
    server, tokens = served
    package, models = generated(""), generated("models")
    authorize = generated("api.calls.authorize_call")
    connect = generated("api.calls.connect_call")
    end = generated("api.calls.end_call")
    release = generated("api.calls.release_call")
    read = generated("api.calls.get_call")
    pbx = closing.enter_context(
        package.AuthenticatedClient(base_url=server.base_url, token=tokens["telephony"])
    )
    problem = models.Problem

    def setup(key: str, **named: str) -> Any:
        body = (
            models.AuthorizeInByDialed(person_id="ana", idempotency_key=key, dialed=named["dialed"])
            if "dialed" in named
            else models.AuthorizeInByContactId(
                person_id="ana", idempotency_key=key, contact_id=named["contact_id"]
            )
        )
        return authorize.sync(client=pbx, body=body)

    held = setup("c-1", dialed="+1 (303) 555-0100")
    assert isinstance(held, models.AuthorizeOut)
    assert (held.allowed, held.contact_id, held.replayed) == (True, "mom", False)
    assert held.hold_id.startswith("h_")
    # The same key again: the same answer, marked replayed.
    again = setup("c-1", dialed="+1 (303) 555-0100")
    assert isinstance(again, models.AuthorizeOut)
    assert (again.hold_id, again.replayed) == (held.hold_id, True)
    # The same key for another call: a conflict, as a typed problem.
    reused = setup("c-1", contact_id="lawyer")
    assert isinstance(reused, problem)
    assert reused.status == 409 and reused.field == "idempotency_key"
    # Invalid input: a problem naming every field at fault.
    invalid = setup("k" * 201, dialed="+1 303 555 0100")
    assert isinstance(invalid, problem)
    assert (invalid.status, invalid.field) == (422, "idempotency_key")
    assert [issue.field for issue in invalid.errors] == ["idempotency_key"]
    assert isinstance(invalid.errors[0], models.ProblemIssue)

    connected = connect.sync(held.hold_id, client=pbx)
    assert isinstance(connected, models.CallOut) and connected.state == "connected"
    ended = end.sync(held.hold_id, client=pbx, body=models.EndIn(seconds=421))
    assert isinstance(ended, models.CallOut)
    assert (ended.state, ended.minutes) == ("completed", 8)
    assert read.sync(held.hold_id, client=pbx).to_dict() == ended.to_dict()
    twice = end.sync(held.hold_id, client=pbx, body=models.EndIn(seconds=1))
    assert isinstance(twice, problem) and twice.status == 409

    legal = setup("c-2", contact_id="lawyer")
    assert isinstance(legal, models.AuthorizeOut) and legal.monitoring == "none"
    released = release.sync(legal.hold_id, client=pbx)
    assert isinstance(released, models.CallOut)
    assert (released.state, released.minutes) == ("released", 0)
    unknown = connect.sync("h_unknown", client=pbx)
    assert isinstance(unknown, problem) and unknown.status == 404


def test_a_staff_flow_through_the_generated_client(
    served: tuple[Server, dict[str, str]],
    generated: Callable[[str], ModuleType],
    closing: ExitStack,
) -> None:
    server, tokens = served
    package, models = generated(""), generated("models")
    impose = generated("api.rules.impose_rule")
    decide = generated("api.decisions.get_decision")
    notices = generated("api.notices.list_notices")
    notice = generated("api.notices.get_notice")
    staff = closing.enter_context(
        package.AuthenticatedClient(base_url=server.base_url, token=tokens["security"])
    )

    rule = models.ImposeInRule.from_dict(
        {
            "id": "sm-no-mom",
            "authority": "security_measure",
            "kind": "deny",
            "channel": "phone",
            "person": "ana",
            "contacts": {"ids": ["mom"]},
            "text": "No calls to this number while it is checked.",
        }
    )
    imposed = impose.sync(
        client=staff, body=models.ImposeIn(rule=rule, reason="The number is being checked.")
    )
    assert isinstance(imposed, models.RuleOut)
    assert (imposed.id, imposed.kind, imposed.person) == ("sm-no-mom", "deny", "ana")
    again = impose.sync(client=staff, body=models.ImposeIn(rule=rule, reason="Again."))
    assert isinstance(again, models.Problem) and again.status == 409

    decision = decide.sync(client=staff, person_id="ana", contact_id="mom")
    assert isinstance(decision, models.CallsDecisionOut)
    assert (decision.allowed, decision.reason) == (False, "denied")
    assert "sm-no-mom" in decision.rules
    missing = decide.sync(client=staff, person_id="ana", contact_id="nobody")
    assert isinstance(missing, models.Problem) and missing.status == 404

    listed = notices.sync(client=staff, person_id="ana")
    assert isinstance(listed, list) and all(isinstance(n, models.NoticeOut) for n in listed)
    latest = max(listed, key=lambda n: n.id)
    read = notice.sync(latest.id, client=staff)
    assert isinstance(read, models.NoticeOut)
    assert read.person_id == "ana" and read.reason == "The number is being checked."
    assert read.acknowledged is False
