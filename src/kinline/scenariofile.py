"""Reading a scenario file (SPEC 1-7) into plain steps, with the line of everything.

A malformed file raises ``ScenarioFormatError`` naming the file, the line and
what is wrong. Times are read as local wall times in the facility's zone;
YAML's own guesses at timestamps and base-60 numbers (``22:00`` as 1320) are
turned off so every time arrives as the text that was written.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from kinline.errors import InvalidInput, not_utf8
from kinline.people.model import (
    Facility,
    Person,
    check_email,
    check_housing_unit,
    check_language,
    check_timezone,
    normalize_phone,
)
from kinline.rules.model import RELATIONSHIPS, Channel, Contact
from kinline.rules.parse import RuleError, parse_enum, parse_id, parse_instant, parse_rule
from kinline.rules.retaliation import PROTECTED_KINDS

DECISION_KEYS = frozenset(
    {"allowed", "reason", "rules", "charged_to", "max_minutes", "monitoring"}
    | {"interpreter", "setting", "conflicts"}
)
CONTACT_KEYS = ("id", "person", "name", "relationship", "phones", "approved", "privileged")
ACTIONS = ("call", "check", "filing", "impose", "lift", "approve", "revoke")


class ScenarioFormatError(InvalidInput):
    """A scenario file that is not well formed; the message names its path and line."""

    code = "malformed_scenario"

    def __init__(self, path: str, line: int | None, message: str) -> None:
        where = f"{path}:{line}" if line is not None else path
        super().__init__(f"{where}: {message}")
        self.path = path
        self.line = line


class LineMap(dict[str, Any]):
    """A YAML mapping that remembers its line and the line of each key."""

    line: int
    key_lines: dict[str, int]

    def line_of(self, key: str) -> int:
        return self.key_lines.get(key, self.line)


class LineList(list[Any]):
    line: int
    item_lines: list[int]

    def line_of(self, index: int) -> int:
        return self.item_lines[index] if index < len(self.item_lines) else self.line


class _Loader(yaml.SafeLoader):
    pass


_Loader.yaml_implicit_resolvers = {
    first: [
        (tag, regexp)
        for tag, regexp in resolvers
        if tag not in ("tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:int")
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    re.compile(r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$"),
    list("-+0123456789"),
)


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> LineMap:
    result = LineMap()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str):
            raise yaml.MarkedYAMLError(
                problem=f"key {key!r} is not text", problem_mark=key_node.start_mark
            )
        if key in result:
            raise yaml.MarkedYAMLError(
                problem=f"duplicate key {key!r}", problem_mark=key_node.start_mark
            )
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = key_node.start_mark.line + 1
    return result


def _construct_sequence(loader: _Loader, node: yaml.SequenceNode) -> LineList:
    result = LineList(loader.construct_object(child, deep=True) for child in node.value)
    result.line = node.start_mark.line + 1
    result.item_lines = [child.start_mark.line + 1 for child in node.value]
    return result


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


@dataclass(frozen=True)
class ContactEntry:
    contact: Contact
    name: str
    phones: list[str]
    line: int
    # kinline's extensions to the SPEC format: where notices are emailed.
    email: str | None = None
    notify_by_email: bool = False


@dataclass(frozen=True)
class Step:
    number: int
    line: int
    at: datetime
    action: str
    body: LineMap
    expect: LineMap | None


@dataclass(frozen=True)
class Scenario:
    path: str
    name: str
    facility: Facility
    people: list[Person]
    contacts: list[ContactEntry]
    rules: list[LineMap]
    steps: list[Step]
    expect_end: LineMap | None
    lines: dict[str, int] = field(default_factory=dict)
    # A kinline extension: person id -> housing unit (where printed notices go).
    housing_units: dict[str, str] = field(default_factory=dict)


def load_scenario(path: Path | str) -> Scenario:
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise ScenarioFormatError(name, None, f"cannot read the file: {error.strerror}") from None
    except UnicodeDecodeError as error:
        raise ScenarioFormatError(
            name,
            error.object[: error.start].count(b"\n") + 1,
            not_utf8(error),
        ) from None
    try:
        document = yaml.load(text, Loader=_Loader)  # noqa: S506 (a SafeLoader subclass)
    except RecursionError:
        raise ScenarioFormatError(name, None, "not a scenario: nested too deeply") from None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        line = None if mark is None else mark.line + 1
        raise ScenarioFormatError(name, line, f"not valid YAML: {error.problem}") from None
    except yaml.YAMLError as error:
        raise ScenarioFormatError(name, None, f"not valid YAML: {error}") from None
    return _Reader(name).scenario(document)


class _Reader:
    def __init__(self, path: str) -> None:
        self.path = path
        self.ids: dict[str, int] = {}
        self.people_seen: dict[str, int] = {}
        self.contacts_seen: dict[str, int] = {}
        self.housing_units: dict[str, str] = {}

    def fail(self, line: int | None, message: str) -> ScenarioFormatError:
        return ScenarioFormatError(self.path, line, message)

    def mapping(self, value: object, line: int, what: str) -> LineMap:
        if not isinstance(value, LineMap):
            raise self.fail(line, f"{what} must be a mapping")
        return value

    def sequence(self, value: object, line: int, what: str) -> LineList:
        if value is None:
            empty = LineList()
            empty.line, empty.item_lines = line, []
            return empty
        if not isinstance(value, LineList):
            raise self.fail(line, f"{what} must be a list")
        return value

    def only(self, data: LineMap, allowed: Iterable[str], what: str) -> None:
        allowed = set(allowed)
        for key in data:
            if key not in allowed:
                raise self.fail(data.line_of(key), f"{what}: unknown key {key!r}")

    def text(self, data: LineMap, key: str, what: str, default: str | None = None) -> str:
        value = data.get(key, default)
        if value is None:
            raise self.fail(data.line, f"{what}: `{key}` is required")
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise self.fail(data.line_of(key), f"{what}: `{key}` must be text")
        return str(value)

    def ident(self, data: LineMap, key: str, what: str) -> str:
        value = self.text(data, key, what)
        try:
            return parse_id(value, key)
        except RuleError as error:
            raise self.fail(data.line_of(key), f"{what}: `{key}` {error.message}") from None

    def unique(self, identifier: str, line: int, seen: dict[str, int] | None = None) -> None:
        seen = self.ids if seen is None else seen
        if identifier in seen:
            raise self.fail(line, f"id {identifier!r} is already used on line {seen[identifier]}")
        seen[identifier] = line

    def scenario(self, document: object) -> Scenario:
        top = self.mapping(document, 1, "the file")
        self.only(
            top,
            ("scenario", "facility", "people", "contacts", "rules", "timeline", "expect_end"),
            "top level",
        )
        name = self.text(top, "scenario", "top level")
        facility = self.facility(
            self.mapping(top.get("facility"), top.line_of("facility"), "facility")
        )
        people = self.people(
            self.sequence(top.get("people"), top.line_of("people"), "people"), facility
        )
        person_ids = {person.id for person in people}
        contacts = self.contacts(
            self.sequence(top.get("contacts"), top.line_of("contacts"), "contacts"),
            person_ids,
            facility.country,
        )
        contact_owner = {entry.contact.id: entry.contact.person for entry in contacts}
        zone = facility.zone
        rules: list[LineMap] = []
        raw_rules = self.sequence(top.get("rules"), top.line_of("rules"), "rules")
        for index, item in enumerate(raw_rules):
            rule = self.mapping(item, raw_rules.line_of(index), "a rule")
            self.rule(rule, zone, person_ids, contact_owner)
            rules.append(rule)
        steps = self.steps(
            self.sequence(top.get("timeline"), top.line_of("timeline"), "timeline"),
            zone,
            person_ids,
            contact_owner,
        )
        expect_end = top.get("expect_end")
        if expect_end is not None:
            expect_end = self.mapping(expect_end, top.line_of("expect_end"), "expect_end")
            self.expect_end(expect_end, person_ids)
        return Scenario(
            self.path,
            name,
            facility,
            people,
            contacts,
            rules,
            steps,
            expect_end,
            housing_units=self.housing_units,
        )

    def facility(self, data: LineMap) -> Facility:
        self.only(
            data,
            ("id", "name", "timezone", "country", "appeal_days", "retaliation_window_days"),
            "facility",
        )
        facility_id = self.ident(data, "id", "facility")
        timezone = self.text(data, "timezone", "facility")
        try:
            check_timezone(timezone)
        except InvalidInput as error:
            raise self.fail(data.line_of("timezone"), f"facility: {error.message}") from None
        country = self.text(data, "country", "facility", "US")
        if len(country) != 2 or not country.isalpha():
            raise self.fail(
                data.line_of("country"), "facility: `country` must be a two-letter code"
            )
        return Facility(
            id=facility_id,
            name=self.text(data, "name", "facility", facility_id),
            timezone=timezone,
            country=country.upper(),
            appeal_days=self.count(data, "appeal_days", "facility", 20),
            retaliation_window_days=self.count(data, "retaliation_window_days", "facility", 90),
        )

    def count(self, data: LineMap, key: str, what: str, default: int | None = None) -> int:
        value = data.get(key, default)
        if value is None:
            raise self.fail(data.line, f"{what}: `{key}` is required")
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise self.fail(data.line_of(key), f"{what}: `{key}` must be a whole number, 0 or more")
        return value

    def people(self, items: LineList, facility: Facility) -> list[Person]:
        people = []
        for index, item in enumerate(items):
            data = self.mapping(item, items.line_of(index), "a person")
            self.only(data, ("id", "name", "language", "housing_unit"), "person")
            person_id = self.ident(data, "id", "person")
            self.unique(person_id, data.line, self.people_seen)
            language = self.text(data, "language", "person", "en")
            try:
                check_language(language)
            except InvalidInput as error:
                raise self.fail(data.line_of("language"), f"person: {error.message}") from None
            name = self.text(data, "name", "person", person_id)
            if "housing_unit" in data:
                unit = self.text(data, "housing_unit", "person")
                try:
                    check_housing_unit(unit)
                except InvalidInput as error:
                    raise self.fail(
                        data.line_of("housing_unit"), f"person: {error.message}"
                    ) from None
                self.housing_units[person_id] = unit
            people.append(Person(facility.id, person_id, name, language))
        return people

    def contacts(self, items: LineList, person_ids: set[str], country: str) -> list[ContactEntry]:
        entries = []
        for index, item in enumerate(items):
            data = self.mapping(item, items.line_of(index), "a contact")
            self.only(
                data,
                (*CONTACT_KEYS, "email", "notify_by_email"),
                "contact",
            )
            contact_id = self.ident(data, "id", "contact")
            self.unique(contact_id, data.line, self.contacts_seen)
            person = self.text(data, "person", "contact")
            if person not in person_ids:
                raise self.fail(data.line_of("person"), f"contact: no person {person!r}")
            relationship = self.text(data, "relationship", "contact")
            if relationship not in RELATIONSHIPS:
                raise self.fail(
                    data.line_of("relationship"),
                    f"contact: relationship {relationship!r} is not one of "
                    f"{', '.join(sorted(RELATIONSHIPS))}",
                )
            phones = self.sequence(data.get("phones"), data.line_of("phones"), "contact: phones")
            for phone_index, phone in enumerate(phones):
                line = phones.line_of(phone_index)
                where = f"contacts[{index}].phones[{phone_index}]"
                if not isinstance(phone, str | int) or isinstance(phone, bool):
                    raise self.fail(line, f"{where}: a phone must be text")
                # Checked here, not only when the contact is stored, so that the
                # error names the line of the number.
                try:
                    normalize_phone(str(phone), country, where)
                except InvalidInput as error:
                    raise self.fail(line, f"{where}: {error.message}") from None
            approved = self.sequence(
                data.get("approved"), data.line_of("approved"), "contact: approved"
            )
            channels = frozenset(
                self.channel(value, approved.line_of(i), "contact: approved")
                for i, value in enumerate(approved)
            )
            privileged = data.get("privileged", False)
            if not isinstance(privileged, bool):
                raise self.fail(
                    data.line_of("privileged"), "contact: `privileged` must be true or false"
                )
            email = self.text(data, "email", "contact") if "email" in data else None
            try:
                check_email(email)
            except InvalidInput as error:
                raise self.fail(data.line_of("email"), f"contact: {error.message}") from None
            notify = data.get("notify_by_email", False)
            if not isinstance(notify, bool):
                raise self.fail(
                    data.line_of("notify_by_email"),
                    "contact: `notify_by_email` must be true or false",
                )
            if notify and email is None:
                raise self.fail(
                    data.line_of("notify_by_email"), "contact: `notify_by_email` needs an `email`"
                )
            entries.append(
                ContactEntry(
                    Contact(contact_id, person, relationship, privileged, channels),
                    self.text(data, "name", "contact", contact_id),
                    [str(phone) for phone in phones],
                    data.line,
                    email=email,
                    notify_by_email=notify,
                )
            )
        return entries

    def channel(self, value: object, line: int, what: str) -> Channel:
        try:
            return parse_enum(Channel, value, "channel")
        except RuleError as error:
            raise self.fail(line, f"{what}: {error.message}") from None

    def rule(
        self, data: LineMap, zone: ZoneInfo, person_ids: set[str], owners: Mapping[str, str]
    ) -> None:
        try:
            rule = parse_rule(data, zone, 0)
        except RuleError as error:
            raise self.fail(_line_of_field(data, error.field), f"rule: {error}") from None
        self.unique(rule.id, data.line)
        if rule.person is not None and rule.person not in person_ids:
            raise self.fail(data.line_of("person"), f"rule {rule.id}: no person {rule.person!r}")
        for contact_id in sorted(set(rule.contacts.ids or ()) | rule.contacts.exclude):
            if contact_id not in owners:
                raise self.fail(
                    data.line_of("contacts"), f"rule {rule.id}: no contact {contact_id!r}"
                )

    def steps(
        self, items: LineList, zone: ZoneInfo, person_ids: set[str], owners: Mapping[str, str]
    ) -> list[Step]:
        steps: list[Step] = []
        previous: datetime | None = None
        for index, item in enumerate(items):
            data = self.mapping(item, items.line_of(index), "a timeline step")
            number = index + 1
            what = f"step {number}"
            if "at" not in data:
                raise self.fail(data.line, f"{what}: `at` is required")
            try:
                at = parse_instant(data["at"], zone, "at")
            except RuleError as error:
                raise self.fail(data.line_of("at"), f"{what}: {error.message}") from None
            if previous is not None and at < previous:
                raise self.fail(data.line_of("at"), f"{what}: the timeline must be in time order")
            previous = at
            actions = [key for key in data if key in ACTIONS]
            self.only(data, ("at", "expect", *ACTIONS), what)
            if len(actions) != 1:
                raise self.fail(
                    data.line, f"{what}: needs exactly one action of {', '.join(ACTIONS)}"
                )
            action = actions[0]
            body = self.mapping(data[action], data.line_of(action), f"{what}: {action}")
            self.action(action, body, what, zone, person_ids, owners)
            expect = data.get("expect")
            if expect is not None:
                if action not in ("call", "check"):
                    raise self.fail(
                        data.line_of("expect"), f"{what}: only call and check steps expect"
                    )
                expect = self.mapping(expect, data.line_of("expect"), f"{what}: expect")
                self.expectation(expect, what)
            steps.append(Step(number, data.line, at, action, body, expect))
        return steps

    def action(
        self,
        action: str,
        body: LineMap,
        what: str,
        zone: ZoneInfo,
        person_ids: set[str],
        owners: Mapping[str, str],
    ) -> None:
        what = f"{what}: {action}"
        if action in ("call", "check"):
            self.only(body, ("person", "contact", "channel", "minutes"), what)
            if action == "check" and "minutes" in body:
                raise self.fail(body.line_of("minutes"), f"{what}: a check has no minutes")
            person = self.text(body, "person", what)
            contact = self.text(body, "contact", what)
            if person not in person_ids:
                raise self.fail(body.line_of("person"), f"{what}: no person {person!r}")
            if contact not in owners:
                raise self.fail(body.line_of("contact"), f"{what}: no contact {contact!r}")
            if owners[contact] != person:
                raise self.fail(
                    body.line_of("contact"), f"{what}: {contact!r} is not {person}'s contact"
                )
            self.channel(body.get("channel", "phone"), body.line_of("channel"), what)
            if action == "call":
                self.count(body, "minutes", what)
        elif action == "filing":
            self.only(body, ("id", "person", "kind"), what)
            self.unique(self.ident(body, "id", what), body.line)
            if self.text(body, "person", what) not in person_ids:
                raise self.fail(body.line_of("person"), f"{what}: no person {body['person']!r}")
            kind = self.text(body, "kind", what)
            if kind not in PROTECTED_KINDS:
                raise self.fail(
                    body.line_of("kind"),
                    f"{what}: kind must be one of {', '.join(sorted(PROTECTED_KINDS))}",
                )
        elif action == "impose":
            self.rule(body, zone, person_ids, owners)
        elif action == "lift":
            self.only(body, ("rule", "reason"), what)
            rule_id = self.text(body, "rule", what)
            if rule_id not in self.ids:
                raise self.fail(body.line_of("rule"), f"{what}: no rule {rule_id!r}")
            self.text(body, "reason", what, "")
        else:
            self.only(body, ("contact", "channel", "reason"), what)
            contact = self.text(body, "contact", what)
            if contact not in owners:
                raise self.fail(body.line_of("contact"), f"{what}: no contact {contact!r}")
            self.channel(body.get("channel"), body.line_of("channel"), what)
            self.text(body, "reason", what, "")

    def expectation(self, expect: LineMap, what: str) -> None:
        self.only(expect, DECISION_KEYS, f"{what}: expect")
        for key in ("rules", "conflicts"):
            if key in expect and not isinstance(expect[key], list):
                raise self.fail(expect.line_of(key), f"{what}: expect `{key}` must be a list")

    def expect_end(self, data: LineMap, person_ids: set[str]) -> None:
        self.only(data, ("notices", "retaliation_flags", "compliance"), "expect_end")
        if "notices" in data:
            notices = self.mapping(data["notices"], data.line_of("notices"), "expect_end: notices")
            for person in notices:
                if person not in person_ids:
                    raise self.fail(notices.line_of(person), f"expect_end: no person {person!r}")
                self.count(notices, person, "expect_end: notices")
        if "retaliation_flags" in data:
            flags = self.sequence(
                data["retaliation_flags"], data.line_of("retaliation_flags"), "retaliation_flags"
            )
            for index, flag in enumerate(flags):
                entry = self.mapping(flag, flags.line_of(index), "a retaliation flag")
                self.only(entry, ("action", "activity", "days"), "retaliation flag")
                self.text(entry, "action", "retaliation flag")
                self.text(entry, "activity", "retaliation flag")
                self.count(entry, "days", "retaliation flag")
        if "compliance" in data:
            entries = self.sequence(data["compliance"], data.line_of("compliance"), "compliance")
            for index, item in enumerate(entries):
                entry = self.mapping(item, entries.line_of(index), "a compliance entry")
                self.only(
                    entry, ("order", "period", "entitled", "delivered", "shortfall"), "compliance"
                )
                order = self.text(entry, "order", "compliance")
                if order not in self.ids:
                    raise self.fail(entry.line_of("order"), f"compliance: no rule {order!r}")
                self.text(entry, "period", "compliance")
                for key in ("entitled", "delivered", "shortfall"):
                    if key in entry:
                        self.count(entry, key, "compliance")


def _line_of_field(data: LineMap, dotted: str) -> int:
    """The line of the deepest part of ``rule.quota.per`` that the file has."""
    line = data.line
    node: object = data
    for part in dotted.split(".")[1:]:
        if isinstance(node, LineMap) and part in node:
            line = node.line_of(part)
            node = node[part]
        else:
            break
    return line
