"""Imposing and lifting a rule: a form, a what-if preview, then the change.

Imposing: the form (GET, or POST to change what was previewed) -> the preview
(POST ``/rules/preview``: ``changes.preview.preview_impose``, nothing saved) ->
confirm (POST ``/rules`` with the same fields: ``changes.service.impose_rule``
saves the rule and writes every notice). Lifting: the rule with the preview of
its lifting and a reason (GET) -> POST ``/lift`` (``lift_rule``). A reason is
required both ways: the people concerned read it in their notice.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import RedirectResponse

from kinline.access import Access
from kinline.changes.preview import Preview, preview_impose, preview_lift
from kinline.changes.service import impose_rule, lift_rule
from kinline.errors import InvalidInput, KinlineError
from kinline.http import in_thread
from kinline.identity.model import Action
from kinline.people.service import list_contacts, list_people
from kinline.policy.api import rule_target
from kinline.policy.service import get_rule, rules_in_force
from kinline.rules.model import Authority, Kind
from kinline.web.guard import field_errors
from kinline.web.render import flash, gettext_for, render
from kinline.web.staff.common import TEMPLATES, base, may, multi, now, reader, staff, words

router = APIRouter(include_in_schema=False)

# The form's fields, one value each; ``contacts`` and ``overrides`` are checkboxes.
FIELDS = (
    "person_id",
    "rule_id",
    "authority",
    "kind",
    "channel",
    "relationships",
    "until",
    "max_minutes",
    "quota_count",
    "quota_minutes",
    "quota_per",
    "window_from",
    "window_to",
    "monitoring",
    "text_en",
    "text_es",
    "reason",
    "authority_cited",
)
# A service's field (``rule.until``) -> the form field that holds it.
_FIELD_OF = {
    "rule.id": "rule_id",
    "rule.authority": "authority",
    "rule.kind": "kind",
    "rule.channel": "channel",
    "rule.person": "person_id",
    "rule.contacts": "contacts",
    "rule.until": "until",
    "rule.max_minutes": "max_minutes",
    "rule.quota": "quota_count",
    "rule.window": "window_from",
    "rule.monitoring": "monitoring",
    "rule.overrides": "overrides",
    "rule.text": "text_en",
    "rule.text.en": "text_en",
    "rule.text.es": "text_es",
    "reason": "reason",
    "authority_cited": "authority_cited",
}


class Form:
    """The impose form's values as sent (strings; checkboxes as lists)."""

    def __init__(self, values: dict[str, str], contacts: list[str], overrides: list[str]) -> None:
        self.values = values
        self.contacts = contacts
        self.overrides = overrides

    @classmethod
    async def of(cls, request: Request) -> Form:
        sent = await request.form()
        values = {k: str(sent.get(k, "")).strip() for k in FIELDS}
        return cls(
            values,
            multi(str(v) for v in sent.getlist("contacts")),
            multi(str(v) for v in sent.getlist("overrides")),
        )

    def get(self, key: str, default: str = "") -> str:
        return self.values.get(key) or default

    def rule(self) -> dict[str, Any]:
        """The rule as scenario data (SPEC 3), as ``POST /v1/rules`` takes it."""
        v = self.values
        data: dict[str, Any] = {
            "id": v["rule_id"],
            "authority": v["authority"],
            "kind": v["kind"],
            "channel": v["channel"],
            "person": v["person_id"] or "all",
        }
        relationships = multi(v["relationships"].replace(",", " ").split())
        if self.contacts:
            data["contacts"] = {"ids": self.contacts}
        elif relationships:
            data["contacts"] = {"relationships": relationships}
        else:
            data["contacts"] = "any"
        texts = {lang: v[f"text_{lang}"] for lang in ("en", "es") if v[f"text_{lang}"]}
        # One English text is a string; with a Spanish one, the text per language.
        data["text"] = texts if "es" in texts else texts.get("en", "")
        if self.overrides:
            data["overrides"] = self.overrides
        if v["until"]:
            data["until"] = v["until"]
        if v["max_minutes"]:
            data["max_minutes"] = _whole(v["max_minutes"], "max_minutes")
        if v["quota_count"] or v["quota_minutes"]:
            quota: dict[str, Any] = {"per": v["quota_per"] or "month"}
            if v["quota_count"]:
                quota["count"] = _whole(v["quota_count"], "quota_count")
            if v["quota_minutes"]:
                quota["minutes"] = _whole(v["quota_minutes"], "quota_minutes")
            data["quota"] = quota
        if v["window_from"] or v["window_to"]:
            data["window"] = {"from": v["window_from"], "to": v["window_to"]}
        if v["monitoring"]:
            data["monitoring"] = v["monitoring"]
        return data

    def reason(self) -> str:
        reason = self.values["reason"]
        if not reason:
            raise InvalidInput("give the reason: the people concerned read it", field="reason")
        return reason


def _whole(text: str, field: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise InvalidInput("must be a whole number", field=field) from None
    if value < 0:
        raise InvalidInput("must be zero or more", field=field)
    return value


def _errors(request: Request, error: KinlineError) -> dict[str, str]:
    """The service's refusal beside the form field that holds what it names."""
    field = error.field or "rule_id"
    mapped = _FIELD_OF.get(field) or next(
        (name for key, name in _FIELD_OF.items() if field.startswith((key + ".", key + "["))),
        field if field in (*FIELDS, "contacts", "overrides") else "rule_id",
    )
    [message] = field_errors(request, TEMPLATES, error).values()
    return {mapped: message}


def _choices(grant: Access, person_id: str, at: datetime, language: str) -> dict[str, Any]:
    """What the form offers, as (value, words): the facility's people, the
    person's contacts (those the reader may see), the court orders in force
    for them."""
    db, place = grant.db, grant.facility
    people = list_people(db, place.id)
    contacts: list[tuple[str, str]] = []
    orders: list[tuple[str, str]] = []
    if person_id and any(p.id == person_id for p in people):
        privileged = grant.privileged()
        contacts = [
            (c.contact.id, c.name)
            for c in list_contacts(db, place.id, person_id, at=at, include_privileged=privileged)
            if privileged or not c.contact.privileged
        ]
        orders = [
            (r.id, r.text_in(language) + (f" ({r.case_number})" if r.case_number else ""))
            for r in rules_in_force(db, place.id, at=at, person_id=person_id)
            if r.authority is Authority.COURT_ORDER and r.kind is Kind.GRANT
        ]
    return {"people": [(p.id, p.name) for p in people], "contacts": contacts, "orders": orders}


def _form_page(
    request: Request, grant: Access, form: Form, *, status: int = 200, errors: Any = None
) -> Response:
    at = now()
    choices = _choices(grant, form.get("person_id"), at, reader(request))
    return render(
        request,
        TEMPLATES,
        "impose.html",
        status=status,
        base=base(grant),
        facility=grant.facility,
        form=form,
        errors=errors or {},
        **choices,
    )


def _suggested_id(person_id: str, at: datetime) -> str:
    return f"{person_id or 'all'}-{at:%Y%m%d-%H%M}"


@router.get("/staff/{facility_id}/rules")
async def rules_page(
    request: Request, grant: Annotated[Access, staff(Action.RULE_READ)]
) -> Response:
    """Every rule in force at the facility, each person's and everyone's."""
    at = now()
    found = await in_thread(rules_in_force, grant.db, grant.facility.id, at=at)
    people = await in_thread(list_people, grant.db, grant.facility.id)
    return render(
        request, TEMPLATES, "rules.html", base=base(grant), facility=grant.facility,
        rules=found, names={p.id: p.name for p in people},
        may=may(grant, Action.RULE_IMPOSE, Action.RULE_LIFT),
    )  # fmt: skip


@router.get("/staff/{facility_id}/rules/new")
async def impose_form(
    request: Request,
    grant: Annotated[Access, staff(Action.RULE_IMPOSE)],
    person_id: Annotated[str, Query(max_length=64)] = "",
) -> Response:
    values = dict.fromkeys(FIELDS, "")
    values |= {
        "person_id": person_id,
        "rule_id": _suggested_id(person_id, now()),
        "authority": "sanction",
        "kind": "deny",
        "channel": "phone",
        "quota_per": "month",
    }
    return await in_thread(_form_page, request, grant, Form(values, [], []))


@router.post("/staff/{facility_id}/rules/new")
async def impose_form_again(
    request: Request, grant: Annotated[Access, staff(Action.RULE_IMPOSE)]
) -> Response:
    """The form again with what was previewed, to change it."""
    return await in_thread(_form_page, request, grant, await Form.of(request))


@router.post("/staff/{facility_id}/rules/preview")
async def impose_preview(
    request: Request, grant: Annotated[Access, staff(Action.RULE_IMPOSE)]
) -> Response:
    """What the rule would change, nothing saved; then confirm or change it."""
    form = await Form.of(request)
    at = now()
    try:
        form.reason()
        preview = await in_thread(preview_impose, grant.db, grant.facility.id, form.rule(), at=at)
    except KinlineError as error:
        if error.status not in (409, 422):
            raise
        errors = _errors(request, error)
        return await in_thread(_form_page, request, grant, form, status=422, errors=errors)
    return _preview_page(request, grant, "preview.html", preview, form=form)


@router.get("/staff/{facility_id}/rules/preview")
async def impose_preview_again(grant: Annotated[Access, staff(Action.RULE_IMPOSE)]) -> Response:
    """A preview is made by sending the form (this address, got again after
    changing the language, starts a new one)."""
    return RedirectResponse(f"{base(grant)}/rules/new", status_code=303)


@router.post("/staff/{facility_id}/rules")
async def impose_post(
    request: Request, grant: Annotated[Access, staff(Action.RULE_IMPOSE)]
) -> Response:
    """Save the rule previewed: ``impose_rule`` writes it and every notice."""
    form = await Form.of(request)
    try:
        rule = await in_thread(
            impose_rule,
            grant.db,
            grant.facility.id,
            form.rule(),
            at=now(),
            actor=grant.actor,
            reason=form.reason(),
            authority_cited=form.get("authority_cited") or None,
        )
    except KinlineError as error:
        if error.status not in (409, 422):
            raise
        errors = _errors(request, error)
        return await in_thread(_form_page, request, grant, form, status=422, errors=errors)
    _ = gettext_for(request, TEMPLATES)
    target = f"{base(grant)}/people/{rule.person}" if rule.person else f"{base(grant)}/rules"
    response = RedirectResponse(target, status_code=303)
    flash(response, _("The rule is in force. Everyone it concerns has been sent a notice."))
    return response


@router.get("/staff/{facility_id}/rules/{rule_id}/lift")
async def lift_page(
    request: Request,
    rule_id: str,
    grant: Annotated[Access, staff(Action.RULE_LIFT, rule_target)],
) -> Response:
    return await _lift_page(request, grant, rule_id, reason="")


async def _lift_page(
    request: Request, grant: Access, rule_id: str, *, reason: str, status: int = 200,
    errors: dict[str, str] | None = None,
) -> Response:  # fmt: skip
    at = now()
    try:
        preview = await in_thread(preview_lift, grant.db, grant.facility.id, rule_id, at=at)
    except KinlineError as error:
        if error.status != 409:
            raise
        rule = await in_thread(get_rule, grant.db, grant.facility.id, rule_id)
        return render(
            request, TEMPLATES, "ended.html", status=409, base=base(grant), rule=rule,
            facility=grant.facility,
        )  # fmt: skip
    return _preview_page(
        request, grant, "lift.html", preview, reason=reason, status=status, errors=errors or {}
    )


@router.post("/staff/{facility_id}/rules/{rule_id}/lift")
async def lift_post(
    request: Request,
    rule_id: str,
    grant: Annotated[Access, staff(Action.RULE_LIFT, rule_target)],
) -> Response:
    sent = await request.form()
    reason = str(sent.get("reason", "")).strip()
    try:
        if not reason:
            raise InvalidInput("give the reason: the people concerned read it", field="reason")
        rule = await in_thread(
            lift_rule, grant.db, grant.facility.id, rule_id, reason=reason, at=now(),
            actor=grant.actor,
        )  # fmt: skip
    except KinlineError as error:
        if error.status not in (409, 422):
            raise
        errors = {"reason": next(iter(field_errors(request, TEMPLATES, error).values()))}
        return await _lift_page(request, grant, rule_id, reason=reason, status=422, errors=errors)
    _ = gettext_for(request, TEMPLATES)
    target = f"{base(grant)}/people/{rule.person}" if rule.person else f"{base(grant)}/rules"
    response = RedirectResponse(target, status_code=303)
    flash(response, _("The rule is lifted. Everyone it concerned has been sent a notice."))
    return response


def _preview_page(
    request: Request, grant: Access, template: str, preview: Preview, **context: Any
) -> Response:
    language = reader(request)
    shown = preview.visible_to(grant.privileged())
    zone = grant.facility.zone
    return render(
        request,
        TEMPLATES,
        template,
        base=base(grant),
        facility=grant.facility,
        preview=shown,
        rule=shown.rule,
        outcomes=[(o, words(o.before, language, zone), words(o.after, language, zone))
                  for o in shown.outcomes],
        bookings=[(b, words(b.before, language, zone), words(b.after, language, zone))
                  for b in shown.bookings],
        **context,
    )  # fmt: skip
