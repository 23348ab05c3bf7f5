"""A timeline out of order of its resolved instants is malformed (SPEC 6), read without a database.

"Steps are in non-decreasing order of their instants (a wall time resolved as
in section 1); a file whose steps are not, or that imposes a rule whose
`until` is not after its start, is malformed." The reader refuses both where
it can see them: the order of the steps, and an `until` not after the
imposed rule's own `from`. (An `until` not after the step's `at` is refused
when the step is played, which needs a database: see the scenario runner.)
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kinline.scenariofile import ScenarioFormatError, load_scenario

HEAD = """\
scenario: ordering
facility: {id: den-order, timezone: America/Denver}
people:
  - {id: jo, name: J. Jo, language: en}
contacts:
  - {id: j-mom, person: jo, relationship: parent, phones: ["+1 719 555 0160"], approved: [phone]}
rules:
  - {id: g-phone, authority: facility_policy, kind: grant, channel: phone, person: jo,
     contacts: any, text: Telephone.}
timeline:
"""
FIRST_STEP_LINE = HEAD.count("\n") + 1


def check_at(when: str) -> str:
    return f"  - at: {when}\n    check: {{person: jo, contact: j-mom}}\n"


def write(tmp_path: Path, steps: str) -> Path:
    path = tmp_path / "ordering.yaml"
    path.write_text(HEAD + steps, encoding="utf-8")
    return path


def malformed(path: Path) -> ScenarioFormatError:
    with pytest.raises(ScenarioFormatError) as raised:
        load_scenario(path)
    return raised.value


@pytest.mark.parametrize(
    ("first", "second"),
    [
        pytest.param("2024-03-04T10:00", "2024-03-04T09:59", id="a-minute-back"),
        pytest.param("2024-03-04T10:00:01", "2024-03-04T10:00", id="a-second-back"),
        # 02:30 does not exist on 2024-03-10 in Denver: fold=0 reads it with the
        # MST offset, 09:30Z = 03:30 MDT, which is after 03:15 MDT (09:15Z)
        pytest.param("2024-03-10T02:30", "2024-03-10T03:15", id="spring-gap"),
        # 01:30 on 2024-11-03 happens twice: fold=0 is the first (MDT, 07:30Z);
        # 01:10 is also read as MDT (07:10Z), earlier
        pytest.param("2024-11-03T01:30", "2024-11-03T01:10", id="autumn-fold"),
    ],
)
def test_steps_out_of_order_of_their_instants_are_malformed(
    tmp_path: Path, first: str, second: str
) -> None:
    error = malformed(write(tmp_path, check_at(first) + check_at(second)))
    assert error.line == FIRST_STEP_LINE + 2  # the second step's `at`
    assert "step 2" in error.message
    assert "time order" in error.message
    assert f":{error.line}:" in str(error)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        pytest.param("2024-03-04T10:00", "2024-03-04T10:00", id="same-instant"),
        # the wall times go backwards but the instants do not: 03:15 MDT (09:15Z)
        # then the nonexistent 02:30, read as 09:30Z
        pytest.param("2024-03-10T03:15", "2024-03-10T02:30", id="spring-gap-in-order"),
        pytest.param("2024-03-04", "2024-03-04T00:00", id="a-date-is-local-midnight"),
    ],
)
def test_steps_in_non_decreasing_order_of_their_instants_are_well_formed(
    tmp_path: Path, first: str, second: str
) -> None:
    scenario = load_scenario(write(tmp_path, check_at(first) + check_at(second)))
    assert [step.number for step in scenario.steps] == [1, 2]
    assert scenario.steps[0].at <= scenario.steps[1].at


@pytest.mark.parametrize(
    "until", ["2024-03-05", "2024-03-04T23:59"], ids=["equal-to-from", "before-from"]
)
def test_an_imposed_rule_whose_until_is_not_after_its_from_is_malformed(
    tmp_path: Path, until: str
) -> None:
    steps = (
        "  - at: 2024-03-04T10:00\n"
        "    impose: {id: d-1, authority: sanction, kind: deny, channel: phone, person: jo,\n"
        f"             contacts: any, from: 2024-03-05, until: {until}, text: No calls.}}\n"
    )
    error = malformed(write(tmp_path, steps))
    assert error.line == FIRST_STEP_LINE + 2  # the line of `until`
    assert "until" in error.message
    assert "later than `from`" in error.message


@pytest.mark.parametrize(
    ("content", "message", "line"),
    [
        (b"scenario: caf\xe9\n", "not UTF-8 text: byte 0xe9 at offset 13", 1),
        (b"scenario: s\n# \x82\n", "not UTF-8 text: byte 0x82 at offset 14", 2),
        (b"scenario: " + b"[" * 5_000 + b"]" * 5_000 + b"\n", "nested too deeply", None),
    ],
)
def test_a_file_that_is_not_a_scenario_is_named_as_such(
    tmp_path: Path, content: bytes, message: str, line: int | None
) -> None:
    path = tmp_path / "malformed.yaml"
    path.write_bytes(content)
    with pytest.raises(ScenarioFormatError, match=message) as raised:
        load_scenario(path)
    assert raised.value.line == line
