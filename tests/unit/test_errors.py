"""The one family of domain errors, and the one place each entry point renders them.

No database: the API's handlers are mounted on a tiny app, the CLI's on a tiny
command.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import pytest
import typer
from fastapi import FastAPI
from typer.testing import CliRunner

import kinline.http
import kinline.scenariofile
from kinline.cli_base import friendly
from kinline.errors import (
    AlreadyExists,
    Conflict,
    HoldExpired,
    InvalidInput,
    KinlineError,
    LateFiling,
    NotFound,
    ServiceUnavailable,
    WrongState,
    problem_type,
)
from kinline.http import PROBLEM, install_problem_handlers

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient


def family() -> list[type[KinlineError]]:
    """KinlineError and every subclass of it defined anywhere in kinline (the
    modules that could define one are imported above)."""
    assert kinline.scenariofile.ScenarioFormatError.code == "malformed_scenario"
    assert kinline.http.domain_problem is not None

    def below(cls: type[KinlineError]) -> Iterator[type[KinlineError]]:
        yield cls
        for sub in cls.__subclasses__():
            yield from below(sub)

    return [cls for cls in below(KinlineError) if cls.__module__.startswith("kinline.")]


def test_the_family_is_all_there() -> None:
    codes = {cls.code for cls in family()}
    assert {
        "invalid_input",
        "late_filing",
        "malformed_scenario",
        "unauthenticated",
        "forbidden",
        "not_found",
        "conflict",
        "already_exists",
        "wrong_state",
        "hold_expired",
        "idempotency_key_reused",
    } <= codes


def test_every_error_has_its_own_code_a_client_error_status_and_an_exit_code() -> None:
    classes = family()
    codes = [cls.code for cls in classes]
    assert len(codes) == len(set(codes)), codes
    for cls in classes:
        assert cls.code.isidentifier() and cls.code.islower(), cls
        # A client's fault, but for the one that is the server's: the database
        # did not answer in time.
        if cls is ServiceUnavailable:
            assert cls.status == 503
        else:
            assert 400 <= cls.status <= 499, cls
        assert isinstance(cls.exit_code, int) and 1 <= cls.exit_code <= 125, cls
    types = [problem_type(code) for code in codes]
    assert len(types) == len(set(types))


def test_a_specific_error_is_still_its_general_kind() -> None:
    """Callers that catch the general class keep working; clients see the code."""
    assert issubclass(LateFiling, InvalidInput) and LateFiling.status == 422
    assert LateFiling.exit_code == InvalidInput.exit_code == 2
    for cls in (AlreadyExists, WrongState, HoldExpired):
        assert issubclass(cls, Conflict) and cls.status == 409
    assert NotFound.status == 404


def test_type_title_and_message() -> None:
    error = HoldExpired("hold 'h1' expired before the call connected", field="hold_id")
    assert error.type == "https://kinline.dev/problems/hold-expired"
    assert error.title == "hold expired"
    assert error.message == str(error) == "hold 'h1' expired before the call connected"
    assert error.field == "hold_id"


@pytest.fixture
def client() -> Iterator[TestClient]:
    app = FastAPI()
    install_problem_handlers(app)

    @app.post("/holds/{hold_id}/connect")
    def connect(hold_id: str) -> None:
        raise HoldExpired(f"hold {hold_id!r} expired before the call connected", field="hold_id")

    @app.get("/late")
    def late() -> None:
        raise LateFiling("the time to file ended on 2024-05-21", field="at")

    @app.get("/count")
    def count(n: int) -> int:
        return n

    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def test_the_api_answers_a_domain_error_as_problem_json(client: TestClient) -> None:
    response = client.post("/holds/h1/connect")
    assert response.status_code == 409
    assert response.headers["content-type"] == PROBLEM
    assert response.json() == {
        "type": "https://kinline.dev/problems/hold-expired",
        "title": "hold expired",
        "status": 409,
        "detail": "hold 'h1' expired before the call connected",
        "code": "hold_expired",
        "field": "hold_id",
    }
    late = client.get("/late").json()
    assert (late["status"], late["code"], late["field"]) == (422, "late_filing", "at")
    assert late["type"] == "https://kinline.dev/problems/late-filing"


def test_the_api_answers_invalid_input_with_the_same_type(client: TestClient) -> None:
    body = client.get("/count", params={"n": "many"}).json()
    assert body["status"] == 422
    assert body["type"] == problem_type("invalid_input") == InvalidInput("x").type
    assert (body["code"], body["field"]) == ("invalid_input", "n")
    assert [issue["field"] for issue in body["errors"]] == ["n"]


def test_an_unknown_path_is_about_blank(client: TestClient) -> None:
    body = client.get("/nowhere").json()
    assert (body["status"], body["type"]) == (404, "about:blank")


def test_the_cli_prints_the_message_and_exits_with_the_errors_code() -> None:
    app = typer.Typer()

    @app.command()
    @friendly
    def file(late: bool = False) -> None:
        if late:
            raise LateFiling("the time to file ended on [2024-05-21]", field="at")
        raise AlreadyExists("an appeal against it is already open", field="notice_id")

    runner = CliRunner()
    refused = runner.invoke(app, ["--late"])
    assert refused.exit_code == LateFiling.exit_code == 2
    assert "error (at): the time to file ended on [2024-05-21]" in refused.output
    again = runner.invoke(app, [])
    assert again.exit_code == AlreadyExists.exit_code == 1
    assert "error (notice_id): an appeal against it is already open" in again.output
