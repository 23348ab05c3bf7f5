"""Every route declares its action here, and what object it touches.

``guard(action, locate)`` is the one dependency that admits a request: it finds
the caller (a bearer token, or a signed-in person's session), the facility, and
the object the action touches (``locate``: from the path and query, reading
the record's owner through its feature's service; each feature's api module
holds its own locators), then asks the access policy
(``kinline.identity.model``). What the caller may not see is answered 404, as if
it were not there; what it may see but not do, 403. Nothing else checks roles.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials

from kinline.db.engine import Database
from kinline.errors import Forbidden, InvalidInput, NotFound
from kinline.http import admitted, bearer, facility_of, get_db, get_memo, in_thread
from kinline.identity.model import (
    Action,
    Record,
    Subject,
    Target,
    actions_of,
    people_in_view,
    sees_privileged,
    visible,
)
from kinline.people.model import Facility

Params = Mapping[str, str]
Locator = Callable[[Database, Facility, Params], Target]


@dataclass(frozen=True, slots=True)
class Access:
    """An admitted request: who, where, what they may do it to."""

    db: Database
    subject: Subject
    facility: Facility
    action: Action
    target: Target

    @property
    def actor(self) -> str:
        return self.subject.actor

    def people(self) -> frozenset[str] | None:
        """Whose records a list shows: None for every person of the facility."""
        return people_in_view(self.subject, self.facility.id)

    def sees(self, target: Target) -> bool:
        """Whether a row of a list may be shown."""
        return visible(self.subject, target)

    def privileged(self) -> bool:
        """Whether privileged (counsel) contacts are shown."""
        return sees_privileged(self.subject, self.facility.id)

    def require(self, target: Target) -> None:
        """Check the action on a record the route found in its body (404 or 403)."""
        check(self.subject, self.action, target)

    def may(self, action: Action) -> bool:
        """Whether the subject may also take ``action`` here (say, file late)."""
        return action in actions_of(self.subject, self.facility.id)


class Guard:
    """A route's dependency: ``action`` is what the route does (read by the
    route-table tests), ``locate`` finds what it does it to."""

    def __init__(self, action: Action, locate: Locator | None) -> None:
        self.action = action
        self.locate = locate

    async def __call__(
        self,
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
        facility_id: Annotated[
            str | None,
            Query(max_length=64, description="Facility id; may be left out when there is one."),
        ] = None,
    ) -> Access:
        db, memo = await get_db(request), await get_memo(request)
        subject = await admitted(request, db, credentials)
        place = await facility_of(db, memo, subject, facility_id)
        params: dict[str, str] = {**request.query_params, **request.path_params}
        if self.locate is None:
            target = Target(place.id)
        else:
            try:
                target = await in_thread(self.locate, db, place, params)
            except NotFound as error:
                raise _not_found(error.field or "id") from None
        check(subject, self.action, target)
        return Access(db, subject, place, self.action, target)


def check(subject: Subject, action: Action, target: Target) -> None:
    """404 for what the subject may not see, 403 for what it may not do."""
    if not visible(subject, target):
        raise _not_found(_FIELDS.get(target.record, f"{target.record}_id"))
    if action not in actions_of(subject, target.facility_id):
        raise Forbidden(f"a {subject.kind} subject here may not {action}")


# The request field that names each kind of record.
_FIELDS: dict[Record | None, str] = {
    None: "facility_id",
    Record.DECISION: "contact_id",
    Record.CALL: "hold_id",
    Record.ORDER: "case_number",
}


def _not_found(field: str) -> NotFound:
    """The same answer whether the record is missing or hidden from the caller."""
    return NotFound(f"no {field.removesuffix('_id')} with that id is known", field=field)


@dataclass(frozen=True, slots=True)
class Reach:
    """An admitted request about no one facility: who, and the database."""

    db: Database
    subject: Subject
    action: Action


class AcrossFacilities:
    """A route's dependency for an action over every facility the caller is
    bound to (listing them): ``action`` as for ``Guard``."""

    def __init__(self, action: Action) -> None:
        self.action = action

    async def __call__(
        self,
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> Reach:
        db = await get_db(request)
        subject = await admitted(request, db, credentials)
        if not any(self.action in actions_of(subject, place) for place in subject.facilities()):
            raise Forbidden(f"a {subject.kind} subject may not {self.action}")
        return Reach(db, subject, self.action)


def everywhere(action: Action) -> Any:
    """The dependency for a route over every facility the caller is bound to."""
    return Depends(AcrossFacilities(action))


def allowed(action: Action, locate: Locator | None = None) -> Any:
    """The dependency for a route's signature:
    ``grant: Annotated[Access, allowed(Action.NOTICE_READ, notice)]``."""
    return Depends(Guard(action, locate))


# --- locators: what a route's action touches ---------------------------------


def _param(params: Params, name: str) -> str | None:
    value = params.get(name)
    return None if value is None or value == "" else value


def whole(params: Params, name: str) -> int:
    """A record's serial id from the path, checked as the route's own parameter is
    (1 to 2**31 - 1), so a malformed id is a 422 before anything is looked up."""
    raw = params.get(name, "")
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInput("must be a whole number", field=name) from None
    if not 1 <= value <= 2_147_483_647:
        raise InvalidInput("must be between 1 and 2147483647", field=name)
    return value


def person(db: Database, place: Facility, params: Params) -> Target:
    """The person named by ``person_id`` (path or query); the facility if none."""
    person_id = _param(params, "person_id")
    if person_id is None:
        return Target(place.id)
    return Target(place.id, Record.PERSON, person_id=person_id)


def person_record(db: Database, place: Facility, params: Params) -> Target:
    """The person named by ``person_id`` in the path."""
    return Target(place.id, Record.PERSON, person_id=params["person_id"])


def calls(db: Database, place: Facility, params: Params) -> Target:
    """The facility's call path, for a set-up not yet made."""
    return Target(place.id, Record.CALL)


def people_for(grant: Access, person_id: str | None) -> list[str | None]:
    """The person filters a list runs with: the one asked for, every person of
    the facility (None) for staff, else each person the caller is bound to."""
    if person_id is not None:
        return [person_id]
    people = grant.people()
    return [None] if people is None else [*sorted(people)]
