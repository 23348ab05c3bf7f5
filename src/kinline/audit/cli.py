"""``kinline audit``: checking the audit log, and signing checkpoints of its chain heads."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from kinline.audit.checkpoint import (
    CheckpointReport,
    load_private_key,
    load_public_key,
    make_checkpoint,
    verify_against,
)
from kinline.audit.service import VerifyReport, verify_log
from kinline.cli_base import DatabaseOption, console, database, errors, friendly
from kinline.errors import InvalidInput

app = typer.Typer(
    help=(
        "The tamper-evident audit log: per-person hash chains with their heads, and "
        "signed checkpoints of those heads kept outside the database."
    ),
    no_args_is_help=True,
)

CheckpointOption = Annotated[
    Path | None,
    typer.Option(
        "--checkpoint",
        help=(
            "A checkpoint file made by 'kinline audit checkpoint': also check that no "
            "event it covers was rewritten, no chain truncated and none deleted since. "
            "Needs --public-key."
        ),
        dir_okay=False,
    ),
]
PublicKeyOption = Annotated[
    Path | None,
    typer.Option(
        "--public-key",
        help=(
            "The Ed25519 public key (PEM) the checkpoint must be signed with, e.g. "
            "from 'openssl pkey -in KEY.pem -pubout'. Needs --checkpoint."
        ),
        dir_okay=False,
    ),
]
KeyOption = Annotated[
    Path,
    typer.Option(
        "--key",
        help=(
            "The Ed25519 private key (unencrypted PEM, as 'openssl genpkey -algorithm "
            "ed25519' makes it) to sign with. Keep it away from the database's host."
        ),
        dir_okay=False,
    ),
]
OutputOption = Annotated[
    Path,
    typer.Option(
        "-o",
        "--output",
        help="The checkpoint file to write (replaced whole if it exists).",
        dir_okay=False,
    ),
]


@app.callback()
def audit() -> None:
    """The tamper-evident audit log."""
    # A callback keeps the commands subcommands whatever their number.


@app.command(
    "verify",
    help=(
        "Recompute every audit chain and compare it with its stored head. Exits 0 when "
        "nothing was changed, deleted or reordered; otherwise prints where the first "
        "problem is and exits 1. With --checkpoint and --public-key, also checks the "
        "checkpoint's signature and that every chain it names still reaches its "
        "checkpointed event unchanged (a log that only grew since passes)."
    ),
)
@friendly
def verify(
    database_url: DatabaseOption = None,
    checkpoint: CheckpointOption = None,
    public_key: PublicKeyOption = None,
) -> None:
    if (checkpoint is None) != (public_key is None):
        missing = "--public-key" if public_key is None else "--checkpoint"
        raise InvalidInput(
            f"--checkpoint and --public-key go together: {missing} is missing",
            field=missing.removeprefix("--").replace("-", "_"),
        )
    if checkpoint is not None and public_key is not None:
        key = load_public_key(_read(public_key, "public_key"))
        data = _read(checkpoint, "checkpoint")
        db = database(database_url)
        try:
            against = verify_against(db, data, key)
        finally:
            db.dispose()
        _print_against(against)
        return
    db = database(database_url)
    try:
        report = verify_log(db)
    finally:
        db.dispose()
    if _print_log(report):
        raise typer.Exit(1)
    console.print(f"{report.events} events in {report.chains} chains verified", soft_wrap=True)


@app.command(
    "checkpoint",
    help=(
        "Sign a checkpoint of every audit chain's head (chain, seq and hash; a digest "
        "over them, the time and the facilities) with an Ed25519 key the database does "
        "not hold, and write it to a file for a court or monitor to keep. Refuses, and "
        "exits 1, when the log does not verify."
    ),
)
@friendly
def checkpoint(key: KeyOption, output: OutputOption, database_url: DatabaseOption = None) -> None:
    private_key = load_private_key(_read(key, "key"))
    db = database(database_url)
    try:
        data = make_checkpoint(db, private_key)
    finally:
        db.dispose()
    _write(output, data)
    console.print(f"checkpoint written to {escape(str(output))}", soft_wrap=True)


def _print_log(report: VerifyReport) -> bool:
    """Print the log's first problem, if any; True when there was one."""
    problem = report.problem
    if problem is None:
        return False
    event_id = "none (missing)" if problem.row_id is None else str(problem.row_id)
    errors.print(
        f"[red]audit log {problem.what}[/red]: chain {escape(problem.chain)}, "
        f"seq {problem.seq}, event id {event_id}: {escape(problem.detail)}",
        soft_wrap=True,
    )
    errors.print(f"({report.events} events in {report.chains} chains checked)", soft_wrap=True)
    return True


def _print_against(report: CheckpointReport) -> None:
    """One line per kind of finding; exit 1 on any."""
    if report.problems:
        first = report.problems[0]
        more = len(report.problems) - 1
        tail = f" (and {more} more chain{'s' if more != 1 else ''})" if more else ""
        errors.print(f"[red]{escape(first.message)}[/red]{tail}", soft_wrap=True)
    broken = report.log is not None and _print_log(report.log)
    if report.problems or broken or report.log is None:
        raise typer.Exit(1)
    console.print(
        f"{report.log.events} events in {report.log.chains} chains verified; all "
        f"{report.checkpointed_chains} chains of the checkpoint of {report.taken_at} intact",
        soft_wrap=True,
    )


def _read(path: Path, field: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise InvalidInput(f"cannot read {path}: {error.strerror}", field=field) from None


def _write(path: Path, data: bytes) -> None:
    """Written beside the target and renamed over it: never a half-written checkpoint."""
    temporary: str | None = None
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.resolve().parent)
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except OSError as error:
        if temporary is not None and os.path.exists(temporary):
            os.unlink(temporary)
        raise InvalidInput(f"cannot write {path}: {error.strerror}", field="output") from None
