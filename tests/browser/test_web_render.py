"""The pages' rendering without a browser: the language chosen, dates in the
facility's zone and the reader's language, escaping, each feature's catalog."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from starlette.requests import Request

from kinline.web.account.pages import TEMPLATES, local_path
from kinline.web.render import _formatters, language_of, render


def request_with(headers: dict[str, str], **state: Any) -> Request:
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/x",
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "state": dict(state),
    }
    return Request(scope)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, "en"),
        ({"Accept-Language": "es-MX,es;q=0.9"}, "es"),
        ({"Accept-Language": "fr-FR, es;q=0.3, en;q=0.8"}, "en"),
        ({"Accept-Language": "fr, es;q=0.5"}, "es"),
        ({"Accept-Language": "es;q=0"}, "en"),
        ({"Accept-Language": "es", "Cookie": "lang=en"}, "en"),
        ({"Cookie": "lang=es"}, "es"),
        ({"Cookie": "lang=de", "Accept-Language": "es"}, "es"),
    ],
)
def test_the_language_is_the_cookie_then_accept_language_then_english(
    headers: dict[str, str], expected: str
) -> None:
    assert language_of(request_with(headers)) == expected


def test_dates_are_in_the_facility_zone_and_the_readers_language() -> None:
    at = datetime(2024, 6, 20, 16, 0, tzinfo=UTC)  # 10:00 in Denver
    spanish = request_with({"Cookie": "lang=es"}, zone="America/Denver")
    env = TEMPLATES.environment("es")
    template = env.from_string("{{ format_time(at) }} | {{ format_date(at, 'long') }}")
    text = template.render(at=at, **_formatters(spanish, "es"))
    assert text == "10:00 | 20 de junio de 2024"


def test_a_page_escapes_what_it_is_given_and_speaks_the_readers_language() -> None:
    page = render(
        request_with({"Accept-Language": "es"}),
        TEMPLATES,
        "signin.html",
        next="/",
        form={"login": '"><script>alert(1)</script>'},
    )
    body = page.body.decode()
    assert "<script>alert(1)" not in body
    assert "&#34;&gt;&lt;script&gt;" in body
    assert '<html lang="es">' in body
    assert "Iniciar sesión" in body  # the feature's catalog
    assert "Saltar al contenido principal" in body  # the shared catalog
    assert 'name="csrf_token" value="' in body
    assert "kinline_form=" in page.headers["set-cookie"]


@pytest.mark.parametrize(
    ("target", "kept"),
    [
        ("/staff?x=1", "/staff?x=1"),
        ("//evil.example", "/"),
        ("https://evil.example/", "/"),
        ("/\\evil.example", "/"),
        (None, "/"),
        ("", "/"),
    ],
)
def test_next_is_only_a_path_here(target: str | None, kept: str) -> None:
    assert local_path(target) == kept
