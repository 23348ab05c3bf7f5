"""What a notice says: pure content, in the person's language (SPEC 5).

Each change to what a person may do is written as one ``NoticeContent``:
what changed, the rule's text and authority, when it takes effect, the appeal
deadline and how to appeal. English and Spanish; any other language falls
back to English.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from enum import StrEnum


class Change(StrEnum):
    IMPOSED = "imposed"
    LIFTED = "lifted"
    APPROVED = "approved"
    REVOKED = "revoked"
    # A relationship recorded anew: rules choose contacts by relationship.
    CONTACT_CHANGED = "contact_changed"
    # The last number of a contact approved for telephone calls removed.
    PHONE_REMOVED = "phone_removed"
    TRANSFERRED = "transferred"
    RELEASED = "released"
    # A visitor's application decided, and visits with a visitor restricted.
    VISITOR_APPROVED = "visitor_approved"
    VISITOR_REFUSED = "visitor_refused"
    VISITOR_RESTRICTED = "visitor_limited"
    VISITOR_UNRESTRICTED = "visits_restored"
    # A booked or requested visit cancelled: by a block, a refusal, or unanswered.
    VISIT_CANCELLED = "visit_cancelled"
    # An appeal denied because no answer came in time; ``reason`` says what comes next.
    APPEAL_SILENCE = "appeal_silence"


@dataclass(frozen=True, slots=True)
class ChangeFacts:
    """A change to what people may do, before it is addressed to any one of them."""

    change: Change
    subject: str
    channel: str
    effective_at: datetime
    authority: str | None = None
    rule_kind: str | None = None
    rule_text: str | None = None
    case_number: str | None = None
    contact_name: str | None = None
    reason: str | None = None
    # The rule's text per language, when it was written in more than one.
    rule_texts: Mapping[str, str] = field(default_factory=dict)

    def in_language(self, language: str) -> ChangeFacts:
        """These facts with the rule's text in ``language`` (``es-MX`` reads ``es``),
        so a Spanish notice never shows the English text when a Spanish one exists."""
        normalized = language.replace("_", "-")
        for candidate in (normalized, normalized.split("-")[0].lower()):
            if candidate in self.rule_texts:
                return replace(self, rule_text=self.rule_texts[candidate])
        return self


@dataclass(frozen=True, slots=True)
class Addressee:
    """Who a notice goes to, and the change's dates in their facility's calendar."""

    facility_name: str
    person_name: str
    effective_local: datetime
    appeal_deadline: date


@dataclass(frozen=True, slots=True)
class NoticeContent:
    language: str
    title: str
    body: str


_AUTHORITY = {
    "en": {
        "facility_policy": "facility policy",
        "incentive": "incentive program",
        "sanction": "disciplinary sanction",
        "security_measure": "security measure",
        "court_order": "court order",
    },
    "es": {
        "facility_policy": "norma del centro",
        "incentive": "programa de incentivos",
        "sanction": "sanción disciplinaria",
        "security_measure": "medida de seguridad",
        "court_order": "orden judicial",
    },
}
_CHANNEL = {
    "en": {
        "phone": "telephone calls",
        "video": "video calls",
        "visit": "visits",
        "all": "calls and visits",
    },
    "es": {
        "phone": "llamadas telefónicas",
        "video": "videollamadas",
        "visit": "visitas",
        "all": "llamadas y visitas",
    },
}
_TITLES = {
    "en": {
        Change.IMPOSED: "New rule on your {channel}: {rule}",
        Change.LIFTED: "Rule lifted on your {channel}: {rule}",
        Change.APPROVED: "{contact} approved for {channel}",
        Change.REVOKED: "{contact} no longer approved for {channel}",
        Change.CONTACT_CHANGED: "{contact} is now recorded as your {subject}",
        Change.PHONE_REMOVED: "{contact} has no telephone number on file: no calls",
        Change.TRANSFERRED: (
            "Transferred to {subject}: your contacts must be approved again there"
        ),
        Change.RELEASED: "Released from {subject}: {channel} through this facility end",
        Change.VISITOR_APPROVED: "{contact} approved as a visitor",
        Change.VISITOR_REFUSED: "{contact} not approved as a visitor",
        Change.VISITOR_RESTRICTED: "Visits with {contact} restricted",
        Change.VISITOR_UNRESTRICTED: "Restriction on visits with {contact} lifted",
        Change.VISIT_CANCELLED: "Visit of {subject} with {contact} cancelled",
        Change.APPEAL_SILENCE: "Your appeal {subject} is denied: no answer came in time",
    },
    "es": {
        Change.IMPOSED: "Nueva regla sobre sus {channel}: {rule}",
        Change.LIFTED: "Regla levantada sobre sus {channel}: {rule}",
        Change.APPROVED: "{contact} aprobado/a para {channel}",
        Change.REVOKED: "{contact} ya no está aprobado/a para {channel}",
        Change.CONTACT_CHANGED: "{contact} consta ahora como su {subject}",
        Change.PHONE_REMOVED: ("{contact} no tiene número de teléfono registrado: no hay llamadas"),
        Change.TRANSFERRED: ("Traslado a {subject}: sus contactos deben aprobarse de nuevo allí"),
        Change.RELEASED: "Liberación de {subject}: terminan las {channel} por este centro",
        Change.VISITOR_APPROVED: "{contact} aprobado/a como visitante",
        Change.VISITOR_REFUSED: "{contact} no aprobado/a como visitante",
        Change.VISITOR_RESTRICTED: "Visitas con {contact} restringidas",
        Change.VISITOR_UNRESTRICTED: "Se levantó la restricción de visitas con {contact}",
        Change.VISIT_CANCELLED: "Visita del {subject} con {contact} cancelada",
        Change.APPEAL_SILENCE: (
            "Su apelación {subject} queda denegada: no hubo respuesta a tiempo"
        ),
    },
}
_LINES = {
    "en": {
        "to": "To: {person}, {facility}",
        "rule": "Rule {subject} ({authority}{case}): {text}",
        "case": ", case {case}",
        "reason": "Reason: {reason}",
        "effective": "Effective: {effective}",
        "deadline": "You may appeal this change until {deadline}.",
        "how": (
            "How to appeal: file an appeal at the kiosk or on the form available from your "
            "unit team, naming this notice. Your counsel may file for you."
        ),
    },
    "es": {
        "to": "Para: {person}, {facility}",
        "rule": "Regla {subject} ({authority}{case}): {text}",
        "case": ", expediente {case}",
        "reason": "Motivo: {reason}",
        "effective": "Vigente desde: {effective}",
        "deadline": "Puede apelar este cambio hasta el {deadline}.",
        "how": (
            "Cómo apelar: presente una apelación en el quiosco o con el formulario que le "
            "entrega su equipo de unidad, indicando este aviso. Su abogado puede presentarla "
            "por usted."
        ),
    },
}


TITLE_RULE_CHARS = 120


def rule_words(text: str | None, authority: str | None, language: str) -> str:
    """How a title names a rule: its text (cut at a word near
    ``TITLE_RULE_CHARS``, without its final stop), else what kind of authority
    imposed it; never the rule's internal id, which means nothing to a reader."""
    lang = supported_language(language)
    words = " ".join((text or "").split()).rstrip(".")
    if words:
        if len(words) > TITLE_RULE_CHARS:
            words = words[:TITLE_RULE_CHARS].rsplit(" ", 1)[0] + "…"
        return words
    return _AUTHORITY[lang].get(authority or "", _NO_TEXT[lang])


_NO_TEXT = {"en": "a rule without text", "es": "una regla sin texto"}


def supported_language(language: str) -> str:
    return language if language in _TITLES else "en"


def compose_notice(facts: ChangeFacts, to: Addressee, language: str) -> NoticeContent:
    lang = supported_language(language)
    channel = _CHANNEL[lang].get(facts.channel, facts.channel)
    title = _TITLES[lang][facts.change].format(
        channel=channel,
        subject=facts.subject,
        contact=facts.contact_name or facts.subject,
        rule=rule_words(facts.rule_text, facts.authority, lang),
    )
    lines = _LINES[lang]
    body = [lines["to"].format(person=to.person_name, facility=to.facility_name), title]
    if facts.authority is not None:
        case = lines["case"].format(case=facts.case_number) if facts.case_number else ""
        body.append(
            lines["rule"].format(
                subject=facts.subject,
                authority=_AUTHORITY[lang].get(facts.authority, facts.authority),
                case=case,
                text=facts.rule_text or "",
            )
        )
    if facts.reason:
        body.append(lines["reason"].format(reason=facts.reason))
    body.append(lines["effective"].format(effective=to.effective_local.strftime("%Y-%m-%d %H:%M")))
    body.append(lines["deadline"].format(deadline=to.appeal_deadline.isoformat()))
    body.append(lines["how"])
    return NoticeContent(language=lang, title=title, body="\n".join(body))
