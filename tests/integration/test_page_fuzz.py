"""Every web page, sent forms and queries of any text by every kind of
signed-in caller: each answer is the page's own, never a 5xx.

The pages read their forms by hand (``request.form()``), so no schema says what
they take; the fields sent are every name a page reads, each example a random
few of them, with the world's own records (``test_access_matrix``'s) or text of
any characters (NUL, control characters, very long lines) as their values, and
the session's CSRF token (or a wrong one). ``KINLINE_FUZZ_EXAMPLES`` sets the
requests per page and caller (default 5).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
from _databases import DbTemplate
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_access_matrix import BINDINGS, MATRIX, _page_path, _session_for, routes_of, worlds

from kinline.api import create_app
from kinline.db.engine import Database

EXAMPLES = int(os.environ.get("KINLINE_FUZZ_EXAMPLES", "5"))
# Every field name a page reads from a form or a query.
FIELDS = [
    "address",
    "authority",
    "authority_cited",
    "channel",
    "contact_id",
    "contacts",
    "country",
    "criminal_record",
    "criminal_record_declared",
    "date",
    "date_of_birth",
    "day",
    "email",
    "facility_id",
    "from",
    "id_document_number",
    "id_document_type",
    "kind",
    "lang",
    "language",
    "live",
    "login",
    "max_minutes",
    "monitoring",
    "month",
    "name",
    "next",
    "overrides",
    "password",
    "person_id",
    "person_name",
    "phone",
    "quota_count",
    "quota_minutes",
    "quota_per",
    "reason",
    "recorded",
    "relationship",
    "relationships",
    "require",
    "rule_id",
    "slot",
    "text",
    "text_en",
    "text_es",
    "time",
    "timezone",
    "to",
    "totp",
    "until",
    "username",
    "visit",
    "week",
    "window_from",
    "window_to",
]

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient


@pytest.fixture
def db_template() -> DbTemplate:
    return MATRIX


@pytest.fixture
def client(db: Database) -> Iterator[TestClient]:
    with TestClient(create_app(db), raise_server_exceptions=True) as made:
        yield made


def values(known: list[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(known),
        st.text(max_size=40),
        st.sampled_from(["", "0", "-1", "99999999999999999999", "2024-02-30", "25:61", "phone"]),
        st.text(min_size=2_000, max_size=3_000, alphabet="ab\n\x00é"),
    )


@pytest.mark.parametrize("label", sorted(set(BINDINGS) - {"telephony"}))
def test_every_page_answers_any_form_from_every_caller(
    client: TestClient, db: Database, label: str
) -> None:
    own = worlds(db)["salazar"]
    secret, csrf = _session_for(db, label)
    known = [own.facility, own.person, own.contact, own.rule, str(own.notice), own.hold]
    forms = st.dictionaries(st.sampled_from(FIELDS), values(known), max_size=8)
    faults: dict[str, str] = {}
    for route in routes_of(client.app, pages=True):
        fuzz(client, route.method, route.path, _page_path(route, own), secret, csrf, forms, faults)
    assert not faults, "\n".join(f"{where}: {why}" for where, why in sorted(faults.items()))


def fuzz(
    client: TestClient,
    method: str,
    route: str,
    path: str,
    secret: str,
    csrf: str,
    forms: st.SearchStrategy[dict[str, str]],
    faults: dict[str, str],
) -> None:
    """``EXAMPLES`` requests to one page; what went wrong goes into ``faults``."""

    @given(form=forms, query=forms, token=st.sampled_from([csrf, csrf, "wrong"]))
    @settings(
        max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    def send(form: dict[str, str], query: dict[str, str], token: str) -> None:
        sent: dict[str, Any] = {"params": query}
        if method != "GET":
            sent["data"] = {**form, "csrf_token": token}
        try:
            answer = client.request(
                method,
                path,
                headers={"Cookie": f"kinline_session={secret}"},
                follow_redirects=False,
                **sent,
            )
        except Exception as error:  # an exception out of the app: the finding
            faults.setdefault(f"{method} {route}", f"raised {error!r:.300} for {sent!r:.300}")
            return
        if answer.status_code >= 500:
            faults.setdefault(
                f"{method} {route}", f"answered {answer.status_code} to {sent!r:.300}"
            )

    send()
