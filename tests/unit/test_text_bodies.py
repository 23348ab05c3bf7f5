"""``limits.TextBodies``: a NUL in any text of a JSON or form body is refused as
422 naming the field, before a route (or PostgreSQL) sees it; every other body
reaches the route exactly as sent."""

from __future__ import annotations

import json
import warnings

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kinline.limits import TextBodies

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient


async def echo(request: Request) -> Response:
    return Response(await request.body(), media_type="application/octet-stream")


@pytest.fixture
def client() -> TestClient:
    return TestClient(TextBodies(Starlette(routes=[Route("/", echo, methods=["POST", "PUT"])])))


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"person_id": "a\x00b"}, "person_id"),
        ({"rule": {"text": {"es": "\x00"}}}, "rule.text.es"),
        ({"visitors": ["ok", "also\x00"]}, "visitors.1"),
        ({"ok": 1, "bad\x00key": 2}, "badkey"),
        (["\x00"], "0"),
        ("\x00", "body"),
    ],
)
def test_a_nul_in_json_is_refused_naming_its_field(
    client: TestClient, body: object, field: str
) -> None:
    json_kind = {"content-type": "application/json"}
    answer = client.post("/", content=json.dumps(body), headers=json_kind)
    assert answer.status_code == 422
    assert answer.headers["content-type"].startswith("application/problem+json")
    problem = answer.json()
    assert (problem["field"], problem["status"]) == (field, 422)
    assert "NUL" in problem["detail"]


def test_a_nul_in_json_nested_past_reading_is_never_a_server_error(client: TestClient) -> None:
    json_kind = {"content-type": "application/json"}
    deep = '{"text": "\\u0000", "x": ' + "[" * 100_000 + "]" * 100_000 + "}"
    answer = client.post("/", content=deep, headers=json_kind)
    assert answer.status_code == 200 and answer.text == deep  # the route says what is wrong
    walked = "[" * 900 + '"\\u0000"' + "]" * 900
    answer = client.post("/", content=walked, headers=json_kind)
    assert answer.status_code == 422 and answer.json()["field"] == ".".join(["0"] * 900)


def test_a_nul_in_a_form_is_refused_naming_its_field(client: TestClient) -> None:
    answer = client.post(
        "/",
        content=b"name=Ana&reason=late%00",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code == 422 and answer.json()["field"] == "reason"


@pytest.mark.parametrize(
    ("content", "kind"),
    [
        # The text "\u0000" (an escaped backslash, then u0000): no NUL in it.
        (json.dumps({"note": "\\u0000"}).encode(), "application/json"),
        (b'{"not json', "application/json"),  # the route says what is wrong with it
        (b"%PDF-1.7\x00\x01binary", "application/pdf"),
        (b"a=100%25", "application/x-www-form-urlencoded"),
        (json.dumps({"ok": "fine"}).encode(), "application/merge-patch+json"),
    ],
)
def test_every_other_body_reaches_the_route_as_sent(
    client: TestClient, content: bytes, kind: str
) -> None:
    answer = client.put("/", content=content, headers={"content-type": kind})
    assert answer.status_code == 200 and answer.content == content


def test_a_body_sent_in_chunks_reaches_the_route_whole(client: TestClient) -> None:
    parts = [b'{"a": "', b"x" * 70_000, b'"}']
    answer = client.post("/", content=iter(parts), headers={"content-type": "application/json"})
    assert answer.status_code == 200 and answer.content == b"".join(parts)
