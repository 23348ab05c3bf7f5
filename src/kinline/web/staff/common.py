"""What every staff page shares: the guard that reads the facility from the
path, the templates, and the words a decision is shown in.

A staff page's address names its facility (``/staff/{facility_id}/...``), so a
member of staff bound to several facilities can keep a page of each open. The
guard is the foundation's ``PageGuard`` given that facility: the same policy,
session cookie and answers (sign in, 403, 404). The console is for staff: other
kinds of subject have their own pages, and here are refused.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import Depends, Path, Request

from kinline.access import Access, Locator
from kinline.calls.service import ExplainedDecision
from kinline.errors import Forbidden
from kinline.explain import Explanation, explain
from kinline.identity.model import Action, Kind
from kinline.rules.decide import Request as Asked
from kinline.web.guard import PageGuard
from kinline.web.render import Templates, language_of

TEMPLATES = Templates(__file__)
FacilityId = Annotated[str, Path(max_length=64)]


class StaffPage(PageGuard):
    """``PageGuard`` for ``/staff/{facility_id}/...``: the facility from the path,
    staff only."""

    async def __call__(  # type: ignore[override]
        self, request: Request, facility_id: FacilityId
    ) -> Access:
        grant = await super().__call__(request, facility_id)
        if grant.subject.kind is not Kind.STAFF:
            raise Forbidden("the staff console is for a facility's staff")
        return grant


def staff(action: Action, locate: Locator | None = None) -> Any:
    """A staff page's guard: ``grant: Annotated[Access, staff(Action.X, locator)]``."""
    return Depends(StaffPage(action, locate))


def now() -> datetime:
    return datetime.now(UTC)


def base(grant: Access) -> str:
    """The console's address for the grant's facility."""
    return f"/staff/{grant.facility.id}"


def may(grant: Access, *actions: Action) -> dict[str, bool]:
    """Which of ``actions`` the reader may take here, for the templates
    (a button for an action the reader lacks is not shown)."""
    return {str(action).replace(":", "_"): grant.may(action) for action in actions}


def words(decided: ExplainedDecision, language: str, zone: ZoneInfo) -> Explanation:
    """A decision in the reader's language."""
    asked = Asked(decided.person_id, decided.contact, decided.channel, decided.at)
    return explain(
        decided.decision, asked, decided.rules, decided.usage, language=language, zone=zone
    )


def reader(request: Request) -> str:
    return language_of(request)


def multi(values: Iterable[str]) -> list[str]:
    """Checked boxes' values, each once, blanks left out."""
    return list(dict.fromkeys(value.strip() for value in values if value.strip()))
