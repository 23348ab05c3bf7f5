"""``kinline.explain``: every decision the engine makes, in words, in English and Spanish.

A systematic grid: for each reason (and for allowed sessions), a small facility
built in the scenario format, decided by the engine's own ``decide()``, then
explained in each language. The sentences are checked for what they must
hold (the hours, the quota and its use, the end of a deny, the authority, the
next possible moment) and for what they must never hold (a rule id, a reason
code, English words in a Spanish explanation). The catalogs are read as files:
every message the code asks for has a Spanish translation with the same
placeholders.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from babel.messages.extract import extract_from_file
from babel.messages.pofile import read_po

from kinline.explain import Explanation, Role, explain, languages, resolve_language
from kinline.explain import explanation as explanation_module
from kinline.rules.decide import Decision, Request, decide
from kinline.rules.model import Channel, Contact, Reason, Rule
from kinline.rules.parse import RuleError, parse_rule, rule_definition, rule_from_definition
from kinline.rules.periods import wall_to_instant
from kinline.rules.usage import UsageLedger, usage_change

ZONE = ZoneInfo("America/Denver")
PERSON = "p-salazar"
LOCALE = Path(explanation_module.__file__).with_name("locale")
REASON_CODES = [str(reason) for reason in Reason]
CHANNELS = [Channel.PHONE, Channel.VIDEO, Channel.VISIT]


def at(wall: str) -> datetime:
    return wall_to_instant(datetime.fromisoformat(wall), ZONE)


def contact(contact_id: str, *channels: Channel, relationship: str = "spouse") -> Contact:
    return Contact(contact_id, PERSON, relationship, approved=frozenset(channels))


def rule(rule_id: str, kind: str, channel: Channel, order: int, **fields: Any) -> Rule:
    data: dict[str, Any] = {
        "id": rule_id,
        "kind": kind,
        "authority": "facility_policy",
        "channel": str(channel),
        "person": PERSON,
        "contacts": "any",
        "text": {"en": f"English text of {rule_id}.", "es": f"Texto en español de {rule_id}."},
    }
    if "from_" in fields:
        fields["from"] = fields.pop("from_")
    data.update(fields)
    return parse_rule(data, ZONE, order)


@dataclass
class Case:
    """One facility, a history of sessions, and the session to explain."""

    name: str
    channel: Channel
    rules: list[Rule]
    when: str
    expected: Reason | None
    history: list[tuple[str, int]] = field(default_factory=list)
    approved: bool = True
    appeals: dict[str, date] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.ledger = UsageLedger(ZONE)
        others = [channel for channel in CHANNELS if channel is not self.channel]
        self.contact = contact("wife", *([self.channel] if self.approved else others))
        by_id = {r.id: r for r in self.rules}
        for wall, minutes in self.history:
            decision = self.decide(at(wall))
            assert decision.allowed, (self.name, wall, decision)
            assert decision.max_minutes is not None
            charged = by_id[decision.charged_to or ""]
            governing = [by_id[i] for i in decision.governed_by]
            used = min(minutes, decision.max_minutes)
            self.ledger.apply(PERSON, usage_change(charged, governing, at(wall), used, ZONE))

    def request(self, moment: datetime | None = None) -> Request:
        return Request(PERSON, self.contact, self.channel, moment or at(self.when))

    def decide(self, moment: datetime) -> Decision:
        return decide(self.request(moment), self.rules, self.ledger.snapshot(PERSON), ZONE)

    def explain(self, language: str) -> tuple[Decision, Explanation]:
        decision = self.decide(at(self.when))
        words = explain(
            decision,
            self.request(),
            self.rules,
            self.ledger.snapshot(PERSON),
            language=language,
            zone=ZONE,
            appeals=self.appeals,
        )
        return decision, words


def cases(channel: Channel) -> list[Case]:
    c = channel
    grant = rule("grant-alpha", "grant", c, 0)
    return [
        Case("not-on-list", c, [grant], "2026-06-10T10:00", Reason.NOT_ON_LIST, approved=False),
        Case(
            "no-grant",
            c,
            [rule("limit-hours", "limit", c, 0, window={"from": "08:00", "to": "21:00"})],
            "2026-06-10T10:00",
            Reason.NO_GRANT,
        ),
        Case(
            "no-grant-until-a-later-grant",
            c,
            [rule("grant-later", "grant", c, 0, from_="2026-06-20T09:00")],
            "2026-06-10T10:00",
            Reason.NO_GRANT,
        ),
        Case(
            "denied-until",
            c,
            [
                rule(
                    "grant-order", "grant", c, 0, authority="court_order", case_number="24-CV-117"
                ),
                rule(
                    "deny-sam",
                    "deny",
                    c,
                    1,
                    authority="security_measure",
                    from_="2026-06-01",
                    until="2026-07-15T12:00",
                    overrides=["grant-order"],
                    case_number="SIS-2026-41",
                ),
            ],
            "2026-06-10T10:00",
            Reason.DENIED,
            appeals={"deny-sam": date(2026, 6, 21)},
        ),
        Case(
            "denied-open-ended",
            c,
            [grant, rule("deny-sanction", "deny", c, 1, authority="sanction", from_="2026-06-01")],
            "2026-06-10T10:00",
            Reason.DENIED,
        ),
        Case(
            "outside-window-evening",
            c,
            [grant, rule("limit-hours", "limit", c, 1, window={"from": "08:00", "to": "21:00"})],
            "2026-06-10T21:30",
            Reason.OUTSIDE_WINDOW,
        ),
        Case(
            "outside-window-morning",
            c,
            [grant, rule("limit-hours", "limit", c, 1, window={"from": "08:00", "to": "21:00"})],
            "2026-06-10T06:15",
            Reason.OUTSIDE_WINDOW,
        ),
        Case(
            "too-soon",
            c,
            [grant, rule("limit-gap", "limit", c, 1, min_gap_minutes=60)],
            "2026-06-10T10:40",
            Reason.TOO_SOON,
            history=[("2026-06-10T10:00", 20)],
        ),
        Case(
            "too-soon-zero-gap",
            c,
            [grant, rule("limit-gap", "limit", c, 1, min_gap_minutes=0)],
            "2026-06-10T10:10",
            Reason.TOO_SOON,
            history=[("2026-06-10T10:00", 30)],
        ),
        Case(
            "quota-month",
            c,
            [rule("grant-alpha", "grant", c, 0, quota={"count": 2, "per": "month"})],
            "2026-06-20T10:00",
            Reason.QUOTA_EXHAUSTED,
            history=[("2026-06-01T10:00", 15), ("2026-06-12T10:00", 15)],
        ),
        Case(
            "quota-week-limit",
            c,
            [grant, rule("limit-week", "limit", c, 1, quota={"count": 1, "per": "week"})],
            "2026-06-12T10:00",
            Reason.QUOTA_EXHAUSTED,
            history=[("2026-06-09T10:00", 15)],
        ),
        Case(
            "quota-day-minutes",
            c,
            [grant, rule("limit-day", "limit", c, 1, quota={"minutes": 30, "per": "day"})],
            "2026-06-10T18:00",
            Reason.QUOTA_EXHAUSTED,
            history=[("2026-06-10T09:00", 20), ("2026-06-10T12:00", 10)],
        ),
        Case(
            "quota-rolling",
            c,
            [
                rule(
                    "grant-alpha",
                    "grant",
                    c,
                    0,
                    quota={"count": 2, "minutes": 90, "per": {"rolling_days": 7}},
                )
            ],
            "2026-06-12T10:00",
            Reason.QUOTA_EXHAUSTED,
            history=[("2026-06-08T09:30", 15), ("2026-06-10T17:45", 15)],
        ),
        Case(
            "quota-zero",
            c,
            [grant, rule("limit-none", "limit", c, 1, quota={"count": 0, "per": "month"})],
            "2026-06-10T10:00",
            Reason.QUOTA_EXHAUSTED,
        ),
        Case(
            "allowed-plain",
            c,
            [rule("grant-alpha", "grant", c, 0, quota={"count": 4, "per": "month"})],
            "2026-06-10T10:00",
            None,
            history=[("2026-06-02T10:00", 20)],
        ),
        Case(
            "allowed-over-a-limit-outranked",
            c,
            [
                rule("grant-order", "grant", c, 0, authority="court_order", max_minutes=20),
                rule("limit-hours", "limit", c, 1, window={"from": "08:00", "to": "09:00"}),
                rule(
                    "require-all",
                    "require",
                    c,
                    2,
                    monitoring="live",
                    interpreter="es",
                    **({"setting": "non_contact"} if c is Channel.VISIT else {}),
                ),
            ],
            "2026-06-10T10:00",
            None,
        ),
        Case(
            "allowed-governed",
            c,
            [
                grant,
                rule(
                    "limit-all",
                    "limit",
                    c,
                    1,
                    window={"from": "08:00", "to": "21:00"},
                    min_gap_minutes=30,
                    quota={"count": 3, "minutes": 120, "per": "week"},
                    max_minutes=45,
                ),
            ],
            "2026-06-10T10:00",
            None,
            history=[("2026-06-09T10:00", 15)],
        ),
    ]


GRID = [
    (case, language) for channel in CHANNELS for case in cases(channel) for language in ("en", "es")
]


def grid_id(param: object) -> str:
    if isinstance(param, Case):
        return f"{param.channel}-{param.name}"
    return str(param)


@pytest.mark.parametrize(("case", "language"), GRID, ids=grid_id)
def test_every_decision_reads_in_words(case: Case, language: str) -> None:
    decision, words = case.explain(language)
    assert decision.reason is case.expected, decision
    assert words.allowed is decision.allowed
    assert words.reason is decision.reason
    assert words.language == language
    assert words.causes, "every decision names at least one cause"
    ids = {r.id for r in case.rules}
    for sentence in words.sentences:
        assert sentence.strip()
        assert sentence[0].isupper() or sentence[0].isdigit(), sentence
        for rule_id in ids:
            assert rule_id not in sentence, (rule_id, sentence)
        for code in REASON_CODES:
            assert code not in sentence, (code, sentence)
        assert "{" not in sentence and "}" not in sentence, sentence
    for cause in words.causes:
        if cause.rule_id is None:
            continue
        expected = "Texto en español de" if language == "es" else "English text of"
        assert cause.rule_text == f"{expected} {cause.rule_id}."
        assert cause.authority_words and cause.authority_words in cause.sentence


@pytest.mark.parametrize("channel", CHANNELS)
def test_every_reason_and_allowed_are_in_the_grid(channel: Channel) -> None:
    covered = {case.explain("en")[0].reason for case in cases(channel)}
    assert covered == {*Reason, None}


@pytest.mark.parametrize(("case", "language"), GRID[::2], ids=grid_id)
def test_spanish_says_every_sentence_in_spanish(case: Case, language: str) -> None:
    _, english = case.explain("en")
    _, spanish = case.explain("es")
    assert len(english.sentences) == len(spanish.sentences)
    for en, es in zip(english.sentences, spanish.sentences, strict=True):
        assert en != es
    english_words = {"the", "rule", "allowed", "call", "calls", "visit", "until", "since"}
    for sentence in spanish.sentences:
        found = set(re.findall(r"[a-z]+", sentence.lower())) & english_words
        assert not found, (found, sentence)


@pytest.mark.parametrize(("case", "language"), GRID, ids=grid_id)
def test_refusals_say_the_facts_a_person_needs(case: Case, language: str) -> None:
    decision, words = case.explain(language)
    if decision.allowed:
        assert words.next_possible is None and words.next_sentence is None
        assert {c.rule_id for c in words.causes if c.role is not Role.OUTRANKED} <= set(
            decision.rules
        )
        assert {c.rule_id for c in words.causes if c.role is Role.OUTRANKED} == set(
            decision.conflicts
        )
        assert (
            str(decision.max_minutes) in words.headline
            or "no time limit" in words.headline
            or "sin límite" in words.headline
        )
        return
    assert words.next_sentence is not None
    refusing = [c for c in words.causes if c.role is Role.REFUSES]
    assert refusing == list(words.causes)
    if decision.rules:
        assert [c.rule_id for c in refusing] == list(decision.rules)
    text = words.text
    if case.name.startswith("outside-window"):
        opens, closes = ("8:00\u202fAM", "9:00\u202fPM") if language == "en" else ("8:00", "21:00")
        assert opens in text and closes in text
    if case.name == "quota-month":
        nouns = {
            "en": ("calls", "video calls", "visits"),
            "es": ("llamadas", "videollamadas", "visitas"),
        }
        noun = nouns[language][CHANNELS.index(case.channel)]
        assert f"2 {noun}" in text
    if case.name == "denied-until":
        (cause,) = refusing
        assert cause.case_number == "SIS-2026-41"
        assert cause.since == date(2026, 6, 1)
        assert [named.rule_id for named in cause.overrides] == ["grant-order"]
        assert "24-CV-117" in cause.sentence
        assert cause.appeal_by == date(2026, 6, 21)
        assert ("June 21, 2026" if language == "en" else "21 de junio de 2026") in cause.sentence
        assert cause.next_possible == at("2026-07-15T12:00")
        assert ("July 15, 2026" if language == "en" else "15 de julio de 2026") in cause.sentence


@pytest.mark.parametrize(("case", "language"), GRID[::2], ids=grid_id)
def test_next_possible_is_the_first_allowed_moment(case: Case, language: str) -> None:
    decision, words = case.explain(language)
    if decision.allowed:
        return
    moment = words.next_possible
    never = {"not-on-list", "denied-open-ended", "quota-zero", "no-grant"}
    if case.name in never:
        assert moment is None
        return
    assert moment is not None and moment > at(case.when)
    assert case.decide(moment).allowed
    for before in (timedelta(minutes=1), timedelta(seconds=1)):
        assert not case.decide(moment - before).allowed
    assert not case.decide(at(case.when) + (moment - at(case.when)) / 2).allowed


@pytest.mark.parametrize(("case", "language"), GRID[::2], ids=grid_id)
def test_each_cause_is_gone_at_its_next_possible_and_not_a_minute_before(
    case: Case, language: str
) -> None:
    decision, words = case.explain(language)
    for cause in words.causes:
        if cause.next_possible is None or cause.rule_id is None:
            continue
        later = case.decide(cause.next_possible)
        assert not (later.reason is cause.reason and cause.rule_id in later.rules), later
        earlier = case.decide(cause.next_possible - timedelta(minutes=1))
        assert earlier.reason is cause.reason and cause.rule_id in earlier.rules, earlier
    if decision.reason is Reason.NO_GRANT and case.name == "no-grant-until-a-later-grant":
        (cause,) = words.causes
        assert cause.next_possible == at("2026-06-20T09:00") == words.next_possible


def test_a_spanish_reader_gets_the_spanish_rule_text_or_the_only_one() -> None:
    english_only = parse_rule(
        {
            "id": "grant-plain",
            "authority": "facility_policy",
            "kind": "grant",
            "channel": "phone",
            "person": PERSON,
            "contacts": "any",
            "text": "Two calls a month.",
        },
        ZONE,
        0,
    )
    request = Request(PERSON, contact("wife", Channel.PHONE), Channel.PHONE, at("2026-06-10T10:00"))
    decision = decide(request, [english_only], UsageLedger(ZONE).snapshot(PERSON), ZONE)
    words = explain(
        decision,
        request,
        [english_only],
        UsageLedger(ZONE).snapshot(PERSON),
        language="es-MX",
        zone=ZONE,
    )
    assert words.language == "es"
    assert words.causes[0].rule_text == "Two calls a month."
    assert words.headline.startswith("Llamada permitida")


def test_languages_resolve_to_a_catalog() -> None:
    assert languages() == {"en", "es"}
    assert resolve_language("es-MX") == "es"
    assert resolve_language("es_AR") == "es"
    assert resolve_language("fr") == "en"
    assert resolve_language("") == "en"


def test_rules_may_be_given_as_a_mapping_by_id() -> None:
    case = cases(Channel.PHONE)[5]  # outside the window in the evening
    decision = case.decide(at(case.when))
    by_list = explain(
        decision, case.request(), case.rules, case.ledger.snapshot(PERSON), language="en", zone=ZONE
    )
    by_id = explain(
        decision,
        case.request(),
        {r.id: r for r in case.rules},
        case.ledger.snapshot(PERSON),
        language="en",
        zone=ZONE,
    )
    assert by_list == by_id


# --- rule texts per language ----------------------------------------------------------


def test_a_rule_text_may_be_written_per_language_and_survives_storage() -> None:
    data = {
        "id": "grant-x",
        "authority": "court_order",
        "kind": "grant",
        "channel": "phone",
        "person": PERSON,
        "contacts": "any",
        "text": {"es": "Dos llamadas al mes.", "en": "Two calls a month."},
    }
    parsed = parse_rule(data, ZONE, 0)
    assert parsed.text == "Two calls a month."
    assert parsed.texts == {"es": "Dos llamadas al mes.", "en": "Two calls a month."}
    assert parsed.text_in("es-MX") == "Dos llamadas al mes."
    assert parsed.text_in("fr") == "Two calls a month."
    stored = rule_from_definition(rule_definition(parsed), starts_at=None, ends_at=None, order=0)
    assert stored == parsed
    assert stored.texts == parsed.texts
    spanish_only = parse_rule({**data, "text": {"es": "Solo en español."}}, ZONE, 0)
    assert spanish_only.text == "Solo en español."
    no_english = parse_rule(
        {**data, "text": {"pt": "Duas chamadas.", "es": "Dos llamadas."}}, ZONE, 0
    )
    assert no_english.text == "Dos llamadas."
    assert (
        rule_from_definition(rule_definition(no_english), starts_at=None, ends_at=None, order=0)
        == no_english
    )
    plain = parse_rule({**data, "text": "One text."}, ZONE, 0)
    assert plain.texts == {} and plain.text_in("es") == "One text."
    assert rule_definition(plain)["text"] == "One text."


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ({}, "rule.text"),
        ({"english": "x"}, "rule.text"),
        ({"en": 5}, "rule.text.en"),
        ({"en": "x" * 2001}, "rule.text.en"),
        (["x"], "rule.text"),
        (5, "rule.text"),
    ],
)
def test_a_bad_text_names_its_field(text: object, field: str) -> None:
    data = {
        "id": "grant-x",
        "authority": "court_order",
        "kind": "grant",
        "channel": "phone",
        "person": PERSON,
        "contacts": "any",
        "text": text,
    }
    with pytest.raises(RuleError) as error:
        parse_rule(data, ZONE, 0)
    assert error.value.field == field


# --- the catalogs -----------------------------------------------------------------------


def source_messages() -> list[str | tuple[str, str]]:
    found: list[str | tuple[str, str]] = []
    for path in sorted(Path(explanation_module.__file__).parent.glob("*.py")):
        for _, message, _, _ in extract_from_file(
            "python", str(path), keywords={"gettext": None, "ngettext": (1, 2)}
        ):
            if message not in found:
                found.append(message)
    return found


def catalog(language: str) -> Any:
    with (LOCALE / language / "LC_MESSAGES" / "explain.po").open("rb") as po:
        return read_po(po, locale=language, domain="explain")


def fields_of(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


@pytest.mark.parametrize("language", ["en", "es"])
def test_the_catalog_holds_every_message_of_the_code_and_no_other(language: str) -> None:
    messages = source_messages()
    assert len(messages) > 50
    held = catalog(language)
    ids = {m[0] if isinstance(m, tuple) else m for m in messages}
    in_catalog = {
        message.id[0] if isinstance(message.id, tuple) else message.id
        for message in held
        if message.id
    }
    assert ids == in_catalog


@pytest.mark.parametrize("language", ["en", "es"])
def test_every_message_is_translated_with_the_same_placeholders(language: str) -> None:
    held = catalog(language)
    assert held.num_plurals == 2
    count = 0
    for message in held:
        if not message.id:
            continue
        count += 1
        assert not message.fuzzy, message.id
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        texts = message.string if isinstance(message.string, tuple) else (message.string,)
        assert all(texts), f"{message.id!r} is not translated in {language}"
        wanted = set().union(*(fields_of(i) for i in ids))
        for text in texts:
            assert fields_of(text) == wanted, (message.id, text)
        if language == "es" and ids[0] not in {"{date} at {time}", "{sessions} and {minutes}"}:
            assert texts[0] != ids[0], f"{ids[0]!r} is left in English"
    assert count > 50


def test_catalog_sentences_differ_between_one_and_many() -> None:
    (case,) = [c for c in cases(Channel.VISIT) if c.name == "allowed-over-a-limit-outranked"]
    _, words = case.explain("es")
    assert (
        words.headline
        == "Visita permitida por hasta 20 minutos. El personal la supervisa en directo."
    )
    assert words.conditions == (
        "Participa un intérprete de español.",
        "Se realiza en una sala sin contacto, a través de un cristal.",
    )
    outranked = [c for c in words.causes if c.role is Role.OUTRANKED]
    assert [c.rule_id for c in outranked] == ["limit-hours"]
    assert outranked[0].outranked_by is not None
    assert outranked[0].outranked_by.name == "una orden judicial"
