"""The ``kinline`` command as a user runs it: output, exit codes, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kinline.cli import app

SHARED = Path(__file__).resolve().parents[3] / "shared" / "scenarios"
SUPERMAX = SHARED / "supermax-family-contact.yaml"
runner = CliRunner()


def test_scenario_check_counts_every_expectation() -> None:
    result = runner.invoke(app, ["scenario", "check", *map(str, sorted(SHARED.glob("*.yaml")))])
    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines()[-1] == "91 passed, 0 failed"


def test_a_failed_expectation_is_printed_and_exits_1(tmp_path: Path) -> None:
    text = SUPERMAX.read_text().replace(
        "expect: {allowed: false, reason: denied, rules: [sam-family-only]}",
        "expect: {allowed: false, reason: too_soon, rules: [sam-family-only]}",
    )
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(text)
    result = runner.invoke(app, ["scenario", "check", str(wrong)])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert lines[-1] == "45 passed, 1 failed"
    assert "step 5" in lines[0]
    assert "reason" in lines[0]
    assert "'too_soon'" in lines[0]
    assert "'denied'" in lines[0]


@pytest.mark.parametrize(
    ("old", "new", "line", "words"),
    [
        ("timezone: America/Denver", "timezone: Mars/Olympus", 9, "time zone"),
        ("authority: court_order", "authority: supreme_being", 46, "authority"),
        (
            'window: {from: "06:00", to: "21:30"}',
            'window: {from: "22:00", to: "06:00"}',
            35,
            "midnight",
        ),
        ("at: 2024-03-18T10:00", "at: 2024-03-18T25:00", 55, "ISO 8601"),
        ("contact: brother, channel: phone}", "contact: uncle, channel: phone}", 65, "uncle"),
    ],
)
def test_a_malformed_file_exits_2_naming_the_line(
    tmp_path: Path, old: str, new: str, line: int, words: str
) -> None:
    text = SUPERMAX.read_text()
    assert old in text
    bad = tmp_path / "bad.yaml"
    bad.write_text(text.replace(old, new, 1))
    result = runner.invoke(app, ["scenario", "check", str(bad)])
    assert result.exit_code == 2, result.output
    assert f"bad.yaml:{line}:" in result.output
    assert words in result.output
    assert result.output.strip().splitlines()[-1] == "0 passed, 0 failed"


def test_load_then_decide_and_list(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'k.db'}"
    loaded = runner.invoke(app, ["scenario", "load", str(SUPERMAX), "--database-url", url])
    assert loaded.exit_code == 0, loaded.output
    assert "usp-red-mesa" in loaded.output

    decided = runner.invoke(
        app,
        [
            "decide",
            "--person",
            "salazar",
            "--contact",
            "daughter-a",
            "--at",
            "2024-05-06T10:00",
            "--json",
            "--database-url",
            url,
        ],
    )
    assert decided.exit_code == 0, decided.output
    body = json.loads(decided.output)
    assert body["allowed"] is False
    assert body["reason"] == "denied"
    assert body["rules"] == ["sam-children"]
    assert body["explanation"][0]["text"] == "Calls with children suspended pending review."

    notices = runner.invoke(
        app, ["notices", "list", "--person", "salazar", "--json", "--database-url", url]
    )
    assert notices.exit_code == 0, notices.output
    listed = json.loads(notices.output)
    assert [n["subject"] for n in listed] == ["sam-children", "wife:visit"]
    assert listed[0]["appeal_deadline"] == "2024-05-21"

    flags = runner.invoke(app, ["report", "retaliation", "--json", "--database-url", url])
    assert json.loads(flags.output)[0]["days"] == 16

    report = runner.invoke(
        app,
        [
            "report",
            "compliance",
            "--order",
            "order-17",
            "--period",
            "2024-05",
            "--json",
            "--database-url",
            url,
        ],
    )
    assert json.loads(report.output) == {
        "order": "order-17",
        "period": "2024-05",
        "entitled": 2,
        "delivered": 0,
        "shortfall": 2,
    }


def test_unknown_person_is_a_clear_error(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'k.db'}"
    runner.invoke(app, ["scenario", "load", str(SUPERMAX), "--database-url", url])
    result = runner.invoke(
        app, ["decide", "--person", "nobody", "--contact", "wife", "--database-url", url]
    )
    assert result.exit_code == 1
    assert "nobody" in result.output


def test_token_create_prints_a_secret_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'k.db'}"
    runner.invoke(app, ["db", "upgrade", "--database-url", url])
    create = ["token", "create", "--name", "switch", "--scope", "telephony"]
    # A token is bound to a facility: with none yet, there is nothing to bind it to.
    empty = runner.invoke(app, [*create, "--database-url", url])
    assert empty.exit_code == 2
    assert "facility_id" in empty.output
    assert runner.invoke(app, ["demo", "--database-url", url]).exit_code == 0
    result = runner.invoke(app, [*create, "--database-url", url])
    assert result.exit_code == 0, result.output
    secret = result.stdout.strip()
    assert secret.startswith("kl_")
    listed = runner.invoke(app, ["token", "list", "--json", "--database-url", url])
    assert listed.exit_code == 0, listed.output
    # The demo made its own staff token; this one is the switch's.
    [token] = [t for t in json.loads(listed.stdout) if t["subject_name"] == "switch"]
    assert token["state"] == "active"
    assert secret not in listed.stdout
    revoked = runner.invoke(app, ["token", "revoke", str(token["id"]), "--database-url", url])
    assert revoked.exit_code == 0, revoked.output
    listed = runner.invoke(app, ["token", "list", "--json", "--database-url", url])
    states = {t["id"]: t["state"] for t in json.loads(listed.stdout)}
    assert states[token["id"]] == "revoked"
    assert sorted(states.values()) == ["active", "revoked"]  # the demo's token still works
    bad = runner.invoke(
        app, ["token", "create", "--name", "x", "--scope", "root", "--database-url", url]
    )
    assert bad.exit_code == 2
