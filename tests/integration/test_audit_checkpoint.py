"""Signed checkpoints against a forger who can write the database and knows the hash function.

Every tampering here passes the plain ``verify_log`` (each test asserts so
first): events are rewritten and their chain recomputed with
kinline.audit.chain's own functions, chains cut short with their heads moved
back, whole chains deleted. A checkpoint signed beforehand with a key made by
``openssl genpkey`` finds each one. Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from kinline.audit.chain import GENESIS, canonical_json, event_hash
from kinline.audit.checkpoint import (
    CheckpointReport,
    load_private_key,
    load_public_key,
    make_checkpoint,
    verify_against,
)
from kinline.audit.cli import app as audit_app
from kinline.audit.service import facility_chain, person_chain, record_event, verify_log
from kinline.db.engine import Database
from kinline.db.tables import AuditEventRow, AuditHeadRow
from kinline.errors import Conflict, InvalidInput

FACILITY = "fac-1"
OTHER_FACILITY = "fac-2"
START = datetime(2025, 5, 1, 14, 0, tzinfo=UTC)
TAKEN = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
EVENTS = cast(sa.Table, AuditEventRow.__table__)
HEADS = cast(sa.Table, AuditHeadRow.__table__)

ALICE = person_chain(FACILITY, "alice")
BOB = person_chain(FACILITY, "bob")
ZOE = person_chain(FACILITY, "zoe")
CAROL = person_chain(OTHER_FACILITY, "carol")


@dataclass(frozen=True)
class Keys:
    private: Path
    public: Path


def openssl_keys(folder: Path, name: str) -> Keys:
    folder.mkdir(parents=True, exist_ok=True)
    private, public = folder / f"{name}.pem", folder / f"{name}.pub.pem"
    subprocess.run(
        ["openssl", "genpkey", "-algorithm", "ed25519", "-out", str(private)],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        ["openssl", "pkey", "-in", str(private), "-pubout", "-out", str(public)],
        check=True,
        capture_output=True,
    )
    return Keys(private, public)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    return openssl_keys(tmp_path_factory.mktemp("keys"), "court")


@pytest.fixture(scope="module")
def other_keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    return openssl_keys(tmp_path_factory.mktemp("other-keys"), "other")


def append(db: Database, chain: str, count: int, *, facility: str = FACILITY) -> None:
    for n in range(count):
        with db.transaction() as session:
            record_event(
                session,
                facility_id=facility,
                chain=chain,
                actor="officer",
                tag="policy:rule:imposed",
                payload={"n": n, "text": "ñ"},
                at=START + timedelta(minutes=n),
            )


@pytest.fixture
def logged(db: Database) -> Database:
    """Four chains of one facility and one of another; Bob's is the one tampered with."""
    append(db, ALICE, 3)
    append(db, BOB, 5)
    append(db, ZOE, 2)
    append(db, facility_chain(FACILITY), 2)
    append(db, CAROL, 2, facility=OTHER_FACILITY)
    return db


@pytest.fixture
def checkpoint(logged: Database, keys: Keys) -> bytes:
    return make_checkpoint(logged, load_private_key(keys.private.read_bytes()), at=TAKEN)


def against(db: Database, checkpoint: bytes, keys: Keys) -> CheckpointReport:
    return verify_against(db, checkpoint, load_public_key(keys.public.read_bytes()))


# -- the forger's tools: what anyone who can write the database can do --------------------------


def rewrite_and_rehash(db: Database, chain: str, seq: int, payload: str) -> None:
    """Change the event at ``seq`` and recompute every hash after it, and the head."""
    with db.engine.begin() as connection:
        rows = connection.execute(
            sa.select(EVENTS).where(EVENTS.c.chain == chain).order_by(EVENTS.c.seq)
        ).all()
        prev = GENESIS
        for row in rows:
            body = payload if row.seq == seq else row.payload
            if row.seq >= seq:
                iso = row.occurred_at.astimezone(UTC).isoformat()
                digest = event_hash(prev, chain, row.seq, iso, row.actor, row.tag, body)
                connection.execute(
                    sa.update(EVENTS)
                    .where(EVENTS.c.id == row.id)
                    .values(payload=body, prev_hash=prev, hash=digest)
                )
                prev = digest
            else:
                prev = row.hash
        connection.execute(
            sa.update(HEADS).where(HEADS.c.chain == chain).values(seq=rows[-1].seq, hash=prev)
        )


def truncate(db: Database, chain: str, keep: int) -> None:
    """Delete the events after ``keep`` and move the head back to the last one kept."""
    with db.engine.begin() as connection:
        kept = connection.execute(
            sa.select(EVENTS.c.hash).where(EVENTS.c.chain == chain, EVENTS.c.seq == keep)
        ).scalar_one()
        connection.execute(sa.delete(EVENTS).where(EVENTS.c.chain == chain, EVENTS.c.seq > keep))
        connection.execute(
            sa.update(HEADS).where(HEADS.c.chain == chain).values(seq=keep, hash=kept)
        )


def delete_chain(db: Database, chain: str) -> None:
    with db.engine.begin() as connection:
        connection.execute(sa.delete(EVENTS).where(EVENTS.c.chain == chain))
        connection.execute(sa.delete(HEADS).where(HEADS.c.chain == chain))


# -- a log that only grew passes --------------------------------------------------------------


def test_the_checkpoint_lists_every_head_signed(checkpoint: bytes, keys: Keys) -> None:
    document = json.loads(checkpoint)
    header = document["header"]
    assert header["taken_at"] == "2025-06-01T12:00:00+00:00"
    assert header["facilities"] == [FACILITY, OTHER_FACILITY]
    assert (header["chains"], header["events"]) == (5, 14)
    assert [(c["chain"], c["seq"]) for c in document["chains"]] == sorted(
        [(ALICE, 3), (BOB, 5), (ZOE, 2), (facility_chain(FACILITY), 2), (CAROL, 2)]
    )
    public = load_public_key(keys.public.read_bytes())
    public.verify(base64.b64decode(document["signature"]), canonical_json(header).encode())


def test_an_untouched_log_passes(logged: Database, checkpoint: bytes, keys: Keys) -> None:
    report = against(logged, checkpoint, keys)
    assert report.passed
    assert report.log is not None
    assert (report.log.chains, report.log.events, report.checkpointed_chains) == (5, 14, 5)
    assert report.taken_at == "2025-06-01T12:00:00+00:00"


def test_a_log_that_only_grew_passes(logged: Database, checkpoint: bytes, keys: Keys) -> None:
    append(logged, BOB, 4)
    append(logged, person_chain(FACILITY, "new"), 2)
    report = against(logged, checkpoint, keys)
    assert report.problems == ()
    assert report.passed
    assert report.log is not None
    assert (report.log.chains, report.log.events) == (6, 20)


# -- what only the checkpoint finds -----------------------------------------------------------


def _rewritten(db: Database) -> None:
    rewrite_and_rehash(db, BOB, 2, '{"n":99,"text":"forged"}')


def _rewritten_last(db: Database) -> None:
    rewrite_and_rehash(db, BOB, 5, '{"n":0}')


def _rewritten_after_growth(db: Database) -> None:
    append(db, BOB, 3)
    rewrite_and_rehash(db, BOB, 1, '{"n":7}')


def _truncated(db: Database) -> None:
    truncate(db, BOB, 3)


def _truncated_and_regrown(db: Database) -> None:
    """Cut back and grown again to the same length: the seq is reached, the hash is not."""
    truncate(db, BOB, 3)
    append(db, BOB, 2)


def _chain_deleted(db: Database) -> None:
    delete_chain(db, BOB)


@pytest.mark.parametrize(
    ("tampering", "what", "words"),
    [
        (_rewritten, "rewritten", "does not have the checkpointed hash"),
        (_rewritten_last, "rewritten", "does not have the checkpointed hash"),
        (_rewritten_after_growth, "rewritten", "does not have the checkpointed hash"),
        (_truncated, "truncated", "it ends at seq 3; the checkpoint has it at 5"),
        (_truncated_and_regrown, "rewritten", "does not have the checkpointed hash"),
        (_chain_deleted, "deleted chain", "it is gone; the checkpoint has it at seq 5"),
    ],
    ids=lambda value: value.__name__.strip("_") if callable(value) else None,
)
def test_tampering_the_chains_cannot_show_is_found_against_the_checkpoint(
    logged: Database,
    checkpoint: bytes,
    keys: Keys,
    tampering: Callable[[Database], None],
    what: str,
    words: str,
) -> None:
    tampering(logged)
    assert verify_log(logged).problem is None, "the plain check alone should not see this"
    report = against(logged, checkpoint, keys)
    assert not report.passed
    assert [(p.what, p.chain, p.seq) for p in report.problems] == [(what, BOB, 5)]
    assert words in report.problems[0].message
    assert report.log is not None
    assert report.log.problem is None


def test_every_deleted_chain_is_counted(logged: Database, checkpoint: bytes, keys: Keys) -> None:
    delete_chain(logged, ALICE)
    delete_chain(logged, CAROL)
    report = against(logged, checkpoint, keys)
    expected = sorted([("deleted chain", ALICE), ("deleted chain", CAROL)], key=lambda p: p[1])
    assert [(p.what, p.chain) for p in report.problems] == expected


def test_a_plain_change_is_still_reported_beside_the_checkpoint(
    logged: Database, checkpoint: bytes, keys: Keys
) -> None:
    with logged.engine.begin() as connection:
        connection.execute(
            sa.update(EVENTS)
            .where(EVENTS.c.chain == ZOE, EVENTS.c.seq == 1)
            .values(payload='{"n":5}')
        )
    report = against(logged, checkpoint, keys)
    assert report.problems == ()
    assert report.log is not None
    assert report.log.problem is not None
    assert (report.log.problem.chain, report.log.problem.seq) == (ZOE, 1)
    assert not report.passed


# -- the file itself --------------------------------------------------------------------------


def _edited(checkpoint: bytes, edit: Callable[[dict[str, object]], None]) -> bytes:
    document = json.loads(checkpoint)
    edit(document)
    return json.dumps(document).encode()


def _hash_swapped(document: dict[str, object]) -> None:
    chains = cast(list[dict[str, object]], document["chains"])
    chains[0]["hash"] = "f" * 64


def _chain_dropped(document: dict[str, object]) -> None:
    cast(list[object], document["chains"]).pop()


def _time_moved(document: dict[str, object]) -> None:
    cast(dict[str, object], document["header"])["taken_at"] = "2025-07-01T12:00:00+00:00"


def _digest_replaced(document: dict[str, object]) -> None:
    header = cast(dict[str, object], document["header"])
    chains = cast(list[dict[str, object]], document["chains"])
    chains.pop()
    # A forger recomputes the digest too: then the signature no longer covers the header.
    header["digest"] = hashlib.sha256(canonical_json(chains).encode()).hexdigest()
    header["chains"] = len(chains)


@pytest.mark.parametrize(
    ("edit", "words"),
    [
        (_hash_swapped, "does not match the signed digest"),
        (_chain_dropped, "does not match the signed digest"),
        (_time_moved, "does not carry this public key's signature"),
        (_digest_replaced, "does not carry this public key's signature"),
    ],
    ids=lambda value: value.__name__.strip("_") if callable(value) else None,
)
def test_an_altered_checkpoint_file_is_refused(
    logged: Database,
    checkpoint: bytes,
    keys: Keys,
    edit: Callable[[dict[str, object]], None],
    words: str,
) -> None:
    report = against(logged, _edited(checkpoint, edit), keys)
    assert [p.what for p in report.problems] == ["bad signature"]
    assert words in report.problems[0].message
    assert report.problems[0].message.startswith("checkpoint file altered (bad signature)")
    assert report.log is None
    assert not report.passed


def test_a_checkpoint_signed_with_another_key_is_refused(
    logged: Database, keys: Keys, other_keys: Keys
) -> None:
    forged = make_checkpoint(logged, load_private_key(other_keys.private.read_bytes()), at=TAKEN)
    report = against(logged, forged, keys)
    assert [p.what for p in report.problems] == ["bad signature"]
    assert "it names key" in report.problems[0].message


@pytest.mark.parametrize(
    "content", [b"not json at all", b"[" * 100_000 + b"]" * 100_000, b"\xff\xfe", b"[]"]
)
def test_a_file_that_is_not_a_checkpoint_is_refused(
    logged: Database, keys: Keys, content: bytes
) -> None:
    report = against(logged, content, keys)
    assert [p.what for p in report.problems] == ["bad signature"]
    assert "not a kinline audit checkpoint" in report.problems[0].message


def test_a_broken_log_is_not_signed(logged: Database, keys: Keys) -> None:
    with logged.engine.begin() as connection:
        connection.execute(sa.delete(EVENTS).where(EVENTS.c.chain == BOB, EVENTS.c.seq == 3))
    with pytest.raises(Conflict, match="does not verify"):
        make_checkpoint(logged, load_private_key(keys.private.read_bytes()), at=TAKEN)


def test_an_empty_log_has_an_empty_checkpoint_that_later_growth_passes(
    db: Database, keys: Keys
) -> None:
    empty = make_checkpoint(db, load_private_key(keys.private.read_bytes()), at=TAKEN)
    assert json.loads(empty)["chains"] == []
    append(db, ALICE, 2)
    assert against(db, empty, keys).passed


def test_keys_of_the_wrong_kind_are_refused(keys: Keys, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="private key; give its public key"):
        load_public_key(keys.private.read_bytes())
    with pytest.raises(InvalidInput, match="not an unencrypted PEM private key"):
        load_private_key(keys.public.read_bytes())
    rsa = tmp_path / "rsa.pem"
    subprocess.run(
        ["openssl", "genpkey", "-algorithm", "rsa", "-out", str(rsa)],
        check=True,
        capture_output=True,
    )
    with pytest.raises(InvalidInput, match="not an Ed25519 key"):
        load_private_key(rsa.read_bytes())


# -- the commands -----------------------------------------------------------------------------


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(audit_app, list(args))
    return result.exit_code, " ".join(result.output.split())


def test_the_commands_sign_then_verify_then_find_a_rewrite(
    logged: Database, keys: Keys, tmp_path: Path
) -> None:
    file = tmp_path / "checkpoint.json"
    url = logged.url
    code, output = run(
        "checkpoint", "--key", str(keys.private), "-o", str(file), "--database-url", url
    )
    assert code == 0, output
    assert f"checkpoint written to {file}" in output
    verify = ("verify", "--checkpoint", str(file), "--public-key", str(keys.public))
    code, output = run(*verify, "--database-url", url)
    assert code == 0, output
    assert "14 events in 5 chains verified; all 5 chains of the checkpoint of" in output

    append(logged, ZOE, 1)
    assert run(*verify, "--database-url", url)[0] == 0

    _rewritten(logged)
    assert run("verify", "--database-url", url)[0] == 0
    code, output = run(*verify, "--database-url", url)
    assert code == 1
    assert f"audit log rewritten since the checkpoint: chain {BOB}:" in output


def test_the_verify_command_reports_an_altered_file_in_one_line(
    logged: Database, checkpoint: bytes, keys: Keys, tmp_path: Path
) -> None:
    file = tmp_path / "checkpoint.json"
    file.write_bytes(_edited(checkpoint, _time_moved))
    result = CliRunner().invoke(
        audit_app,
        [
            *("verify", "--checkpoint", str(file), "--public-key", str(keys.public)),
            *("--database-url", logged.url),
        ],
    )
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1
    assert lines[0].startswith("checkpoint file altered (bad signature)")


def test_the_verify_command_reports_a_deleted_chain(
    logged: Database, checkpoint: bytes, keys: Keys, tmp_path: Path
) -> None:
    file = tmp_path / "checkpoint.json"
    file.write_bytes(checkpoint)
    delete_chain(logged, BOB)
    code, output = run(
        "verify",
        "--checkpoint",
        str(file),
        "--public-key",
        str(keys.public),
        "--database-url",
        logged.url,
    )
    assert code == 1
    assert f"audit log deleted chain since the checkpoint: chain {BOB}: it is gone" in output


def test_the_commands_refuse_half_their_options_and_wrong_keys(
    logged: Database, checkpoint: bytes, keys: Keys, tmp_path: Path
) -> None:
    file = tmp_path / "checkpoint.json"
    file.write_bytes(checkpoint)
    code, output = run("verify", "--checkpoint", str(file), "--database-url", logged.url)
    assert code == 2
    assert "--public-key is missing" in output
    code, output = run(
        "verify",
        "--checkpoint",
        str(file),
        "--public-key",
        str(keys.private),
        "--database-url",
        logged.url,
    )
    assert code == 2
    assert "give its public key" in output
    code, output = run(
        "checkpoint",
        "--key",
        str(tmp_path / "absent.pem"),
        "-o",
        str(tmp_path / "c.json"),
        "--database-url",
        logged.url,
    )
    assert code == 2
    assert "cannot read" in output
    assert not (tmp_path / "c.json").exists()


@pytest.mark.parametrize("command", ["checkpoint", "verify"])
def test_every_option_has_help(command: str) -> None:
    result = CliRunner().invoke(audit_app, [command, "--help"])
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    options = {
        "checkpoint": ["--key", "--output", "--database-url"],
        "verify": ["--checkpoint", "--public-key", "--database-url"],
    }[command]
    for option in options:
        assert option in text
    assert "Ed25519" in text
