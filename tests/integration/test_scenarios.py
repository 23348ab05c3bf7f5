"""Every scenario file, played through the real services on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from kinline.db.engine import Database
from kinline.scenario import check
from kinline.scenariofile import load_scenario

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "scenarios"
FILES = sorted(SHARED.glob("*.yaml")) + sorted((ROOT / "tests" / "scenarios").glob("*.yaml"))


def test_the_shared_examples_are_there() -> None:
    assert {path.name for path in SHARED.glob("*.yaml")} >= {
        "supermax-family-contact.yaml",
        "state-prison-general-population.yaml",
    }


@pytest.mark.parametrize("path", FILES, ids=lambda path: path.name)
def test_scenario_passes(path: Path, db: Database) -> None:
    result = check(load_scenario(path), db)
    assert [str(failure) for failure in result.failures] == []
    assert result.passed > 0
