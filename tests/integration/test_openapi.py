"""The OpenAPI document as a client generator meets it: it validates, every
operation has a name chosen for people, every error answer is the one Problem
component, and every example fits its own schema."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.routing import APIRoute
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from kinline.api import create_app
from kinline.db.engine import Database
from kinline.openapi import OPERATIONS, RESPONSE_NAMES

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient


@pytest.fixture
def served(fresh_db: Any) -> Iterator[tuple[dict[str, Any], bytes, Any]]:
    """The document as /openapi.json serves it, its bytes, and the app."""
    db: Database = fresh_db()
    app = create_app(db)
    with TestClient(app) as client:
        response = client.get("/openapi.json")
        assert response.status_code == 200
        yield response.json(), response.content, app


def test_the_served_document_validates(served: tuple[dict[str, Any], bytes, Any]) -> None:
    document, body, _app = served
    validate(document)
    # Problem once, not inlined into some 600 responses (it was about 1 MB).
    assert len(body) < 300_000, len(body)
    assert body.count(b'"RFC 9457 problem details') == 1


def test_every_error_answer_refers_to_the_problem_components(
    served: tuple[dict[str, Any], bytes, Any],
) -> None:
    document, _body, _app = served
    components = document["components"]
    problem = components["schemas"]["Problem"]
    assert problem["properties"]["errors"]["anyOf"][0]["items"] == {
        "$ref": "#/components/schemas/ProblemIssue"
    }
    assert "$defs" not in problem
    checked = 0
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for status, name in RESPONSE_NAMES.items():
                assert operation["responses"][status] == {
                    "$ref": f"#/components/responses/{name}"
                }, (method, path, status)
                checked += 1
    for name in RESPONSE_NAMES.values():
        content = components["responses"][name]["content"]
        assert content == {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        }
    assert checked >= 8 * 70


def test_every_operation_has_a_chosen_id(served: tuple[dict[str, Any], bytes, Any]) -> None:
    document, _body, app = served
    documented = {
        (method.upper(), path): operation["operationId"]
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
    }
    unnamed = sorted(key for key in documented if key not in OPERATIONS)
    assert unnamed == [], "name these operations in kinline.openapi.OPERATIONS"
    assert {key: OPERATIONS[key] for key in documented} == documented
    ids = list(documented.values())
    assert len(ids) == len(set(ids))
    assert documented[("POST", "/v1/calls/authorize")] == "authorizeCall"
    assert documented[("POST", "/v1/calls/{hold_id}/end")] == "endCall"
    assert documented[("POST", "/v1/rules")] == "imposeRule"
    # Every route the app documents is in the document; those it keeps out
    # (include_in_schema=False: the web pages) are not.
    for route in _api_routes(app.routes):
        for method in route.methods:
            assert ((method, route.path) in documented) == route.include_in_schema, route.path
    assert all(
        operation["tags"] for ops in document["paths"].values() for operation in ops.values()
    )


def _api_routes(routes: Any) -> Iterator[APIRoute]:
    """Every route, also those of included routers kept as routers of their own."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif hasattr(route, "original_router"):
            yield from _api_routes(route.original_router.routes)


def _examples(node: Any, where: str = "#") -> Iterator[tuple[str, dict[str, Any], Any]]:
    """(where, schema, example) for every schema's ``examples`` and every media
    type's or parameter's ``example``/``examples``."""
    if isinstance(node, dict):
        if "schema" in node and isinstance(node["schema"], dict):
            if "example" in node:
                yield where, node["schema"], node["example"]
            for name, example in (node.get("examples") or {}).items():
                yield f"{where}/examples/{name}", node["schema"], example.get("value")
        if isinstance(node.get("examples"), list) and ("type" in node or "properties" in node):
            schema = {key: value for key, value in node.items() if key != "examples"}
            for index, example in enumerate(node["examples"]):
                yield f"{where}/examples/{index}", schema, example
        for key, value in node.items():
            yield from _examples(value, f"{where}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _examples(value, f"{where}/{index}")


def test_every_example_is_valid_against_its_schema(
    served: tuple[dict[str, Any], bytes, Any],
) -> None:
    document, _body, _app = served
    registry: Registry[Any] = Registry().with_resource(
        "urn:kinline:openapi", Resource.from_contents(document, default_specification=DRAFT202012)
    )
    found = list(_examples(document))
    assert len(found) >= 8  # AuthorizeIn, AdmitIn, ContactIn, ... carry examples
    wrong = []
    for where, schema, example in found:
        rooted = json.loads(
            json.dumps(schema).replace('"#/components/', '"urn:kinline:openapi#/components/')
        )
        validator = Draft202012Validator(rooted, registry=registry)
        wrong += [(where, error.message) for error in validator.iter_errors(example)]
    assert wrong == []
    # The check can fail: an example that breaks its schema is found.
    authorize = document["components"]["schemas"]["AuthorizeIn"]
    rooted = {key: value for key, value in authorize.items() if key != "examples"}
    assert list(Draft202012Validator(rooted).iter_errors({"channel": "phone"}))
