"""A bad value in a scenario's people or contacts names the file, its line and the field.

The reader is tested directly: no database. SPEC: "A malformed file is an error
naming the file, the line and what is wrong".
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kinline.errors import InvalidInput
from kinline.people.model import normalize_phone
from kinline.scenariofile import ScenarioFormatError, load_scenario

# Line numbers are those of this text (line 1 is `scenario: errors`).
BASE = [
    "scenario: errors",  # 1
    "facility:",  # 2
    "  id: fac",  # 3
    "  timezone: America/Denver",  # 4
    "  country: US",  # 5
    "people:",  # 6
    "  - id: ana",  # 7
    "    name: A. Ana",  # 8
    "    language: es",  # 9
    "contacts:",  # 10
    "  - id: wife",  # 11
    "    person: ana",  # 12
    "    name: W. Ana",  # 13
    "    relationship: spouse",  # 14
    '    phones: ["+1 213 555 0147"]',  # 15
    "    approved: [phone]",  # 16
    "  - id: son",  # 17
    "    person: ana",  # 18
    "    name: S. Ana",  # 19
    "    relationship: child",  # 20
    "    phones:",  # 21
    '      - "+1 213 555 0148"',  # 22
    '      - "(213) 555-0149"',  # 23
    "    approved:",  # 24
    "      - phone",  # 25
    "      - visit",  # 26
    "    privileged: false",  # 27
]


def write(tmp_path: Path, changes: dict[int, str]) -> Path:
    lines = list(BASE)
    for number, text in changes.items():
        lines[number - 1] = text
    path = tmp_path / "family.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def malformed(path: Path) -> ScenarioFormatError:
    with pytest.raises(ScenarioFormatError) as raised:
        load_scenario(path)
    return raised.value


def test_the_base_file_is_well_formed(tmp_path: Path) -> None:
    scenario = load_scenario(write(tmp_path, {}))
    assert [entry.phones for entry in scenario.contacts] == [
        ["+1 213 555 0147"],
        ["+1 213 555 0148", "(213) 555-0149"],
    ]


PHONES = [
    # (changes, line, field, plain message)
    (
        {23: '      - "+1 555"'},
        23,
        "contacts[1].phones[1]",
        "'+1 555' is not a phone number: too short",
    ),
    (
        {22: '      - "not a number"'},
        22,
        "contacts[1].phones[0]",
        "'not a number' is not a phone number",
    ),
    (
        {23: '      - "555"'},
        23,
        "contacts[1].phones[1]",
        "'555' is not a valid number in US: too short",
    ),
    (
        {23: '      - "+1 213 555 0149 12345"'},
        23,
        "contacts[1].phones[1]",
        "'+1 213 555 0149 12345' is not a phone number: too long",
    ),
    (
        {23: '      - "+999 123"'},
        23,
        "contacts[1].phones[1]",
        "'+999 123' is not a phone number: the country code is not known",
    ),
    (
        {5: "  country: XX"},
        23,
        "contacts[1].phones[1]",
        "'(213) 555-0149' is not a phone number: the country code is missing",
    ),
    # A flow list: every item is on the line of `phones`.
    (
        {15: '    phones: ["+1 213 555 0147", "+1 555"]'},
        15,
        "contacts[0].phones[1]",
        "'+1 555' is not a phone number: too short",
    ),
    # A number written as a YAML integer is read as text, and checked too.
    (
        {22: "      - 5550"},
        22,
        "contacts[1].phones[0]",
        "'5550' is not a valid number in US: too short",
    ),
    ({22: "      - {number: 1}"}, 22, "contacts[1].phones[0]", "a phone must be text"),
]


@pytest.mark.parametrize(("changes", "line", "field", "message"), PHONES)
def test_a_bad_phone_names_the_file_the_line_of_the_number_and_the_field(
    tmp_path: Path, changes: dict[int, str], line: int, field: str, message: str
) -> None:
    path = write(tmp_path, changes)
    error = malformed(path)
    assert (error.path, error.line) == (str(path), line)
    assert str(error) == f"{path}:{line}: {field}: {message}"
    # Not the phone library's own words.
    assert "(1)" not in str(error)
    assert "did not seem" not in str(error)


OTHERS = [
    # (changes, line, what the message must name)
    ({20: "    relationship: cousin"}, 20, "relationship 'cousin'"),
    ({26: "      - fax"}, 26, "approved"),
    ({16: "    approved: [phone, fax]"}, 16, "approved"),
    ({16: "    approved: phone"}, 16, "approved"),
    ({27: "    privileged: maybe"}, 27, "`privileged`"),
    ({27: "    colour: red"}, 27, "unknown key 'colour'"),
    ({21: "    phones: '+1 213 555 0148'", 22: "", 23: ""}, 21, "phones"),
    ({18: "    person: nobody"}, 18, "no person 'nobody'"),
    ({19: "    name: [S, Ana]"}, 19, "`name`"),
    ({17: "  - id: wife"}, 17, "'wife' is already used on line 11"),
    ({17: "  - id: 'not an id!'"}, 17, "`id`"),
    ({27: "    email: nope"}, 27, "not an email address"),
    ({9: "    language: Spanish"}, 9, "'Spanish' is not a language code"),
    ({9: "    colour: red"}, 9, "unknown key 'colour'"),
    ({9: "    housing_unit: '!B'"}, 9, "housing unit"),
    ({8: "    name: {first: A}"}, 8, "`name`"),
]


@pytest.mark.parametrize(("changes", "line", "named"), OTHERS)
def test_every_other_bad_value_in_a_person_or_contact_names_its_line(
    tmp_path: Path, changes: dict[int, str], line: int, named: str
) -> None:
    path = write(tmp_path, changes)
    error = malformed(path)
    assert (error.path, error.line) == (str(path), line)
    assert str(error).startswith(f"{path}:{line}: ")
    assert named in error.message


@pytest.mark.parametrize(
    ("text", "country", "message"),
    [
        ("+1 555", "US", "'+1 555' is not a phone number: too short"),
        ("not a number", "US", "'not a number' is not a phone number"),
        ("", "US", "'' is not a phone number"),
        ("555", "US", "'555' is not a valid number in US: too short"),
        ("12", "GB", "'12' is not a valid number in GB: too short"),
        ("213 555 0147", "XX", "'213 555 0147' is not a phone number: the country code is missing"),
        ("+999 123", "US", "'+999 123' is not a phone number: the country code is not known"),
        ("12345678901234567890", "US", "'12345678901234567890' is not a phone number: too long"),
    ],
)
def test_normalize_phone_says_plainly_what_is_wrong(text: str, country: str, message: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        normalize_phone(text, country, "contact.phones[0]")
    assert raised.value.message == message
    assert raised.value.field == "contact.phones[0]"


def test_normalize_phone_still_reads_any_format_as_e164() -> None:
    assert normalize_phone("(213) 555-0147", "US") == "+12135550147"
    assert normalize_phone("+52 667 555 0111", "US") == "+526675550111"
    assert normalize_phone("020 7946 0958", "GB") == "+442079460958"
