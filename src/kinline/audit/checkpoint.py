"""Signed checkpoints of the audit log: the part of the evidence kept outside the database.

A hash chain shows that an event was changed only while the rest of its chain
and its head are left alone. Whoever can write the database can change an
event, recompute every hash after it and the head, or delete a chain with its
head, and ``verify_log`` still passes. A checkpoint closes that gap (DESIGN,
invariant 4): it lists every chain's head (chain, seq, hash) at one instant,
with a digest over the list, the time and the facilities it covers, signed with
an Ed25519 key the database does not hold. A court or monitor keeps the file.
Later, every chain it names must still reach the checkpointed seq with the same
hash: each hash covers all before it, so a chain recomputed from a changed
event cannot reach it, a truncated chain does not reach the seq, and a deleted
chain is not there. Events appended since are not covered by this checkpoint,
and pass; the next checkpoint covers them.

The file is JSON: ``{"header": {...}, "chains": [{"chain", "seq", "hash"}, ...],
"signature": base64}``. The signature is over the canonical JSON of the header
(``kinline.audit.chain.canonical_json``), and the header's ``digest`` is the
SHA-256 of the canonical JSON of the chains, so anyone with the public key and
a few lines of code can check the file without kinline.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from kinline.audit import repository
from kinline.audit.chain import Problem, canonical_json, chain_facility
from kinline.audit.service import VerifyReport

# The per-chain check ``verify_log`` makes, so a checkpoint is signed over, and
# verified against, exactly what ``kinline audit verify`` accepts.
from kinline.audit.service import _first_problem as chain_problem
from kinline.db.engine import Database
from kinline.db.routing import cross_facility
from kinline.errors import Conflict, InvalidInput

FORMAT = "kinline-audit-checkpoint/1"

CheckpointProblemKind = Literal["bad signature", "rewritten", "truncated", "deleted chain"]


@dataclass(frozen=True, slots=True)
class ChainHead:
    chain: str
    seq: int
    hash: str


@dataclass(frozen=True, slots=True)
class CheckpointProblem:
    """What the log, or the file, no longer agrees with; ``chain`` is "" for the file."""

    what: CheckpointProblemKind
    chain: str
    seq: int
    detail: str

    @property
    def message(self) -> str:
        """One line for the person running the check."""
        if self.what == "bad signature":
            return f"checkpoint file altered (bad signature): {self.detail}"
        return f"audit log {self.what} since the checkpoint: chain {self.chain}: {self.detail}"


@dataclass(frozen=True, slots=True)
class CheckpointReport:
    """The log checked against one checkpoint.

    ``log`` is the plain chain check of the whole log (None when the file was
    not trusted, so the database was not read); ``problems`` are the ways the
    log differs from the checkpoint, in chain order.
    """

    taken_at: str | None
    checkpointed_chains: int
    log: VerifyReport | None
    problems: tuple[CheckpointProblem, ...]

    @property
    def passed(self) -> bool:
        return not self.problems and self.log is not None and self.log.problem is None


# -- keys -----------------------------------------------------------------------------------


def load_private_key(pem: bytes) -> Ed25519PrivateKey:
    """An unencrypted Ed25519 private key in PEM (``openssl genpkey -algorithm ed25519``)."""
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as error:
        raise InvalidInput(
            f"not an unencrypted PEM private key ({_reason(error)})", field="key"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise InvalidInput("the private key is not an Ed25519 key", field="key")
    return key


def load_public_key(pem: bytes) -> Ed25519PublicKey:
    """An Ed25519 public key in PEM (``openssl pkey -in KEY.pem -pubout``)."""
    if b"PRIVATE KEY" in pem:
        raise InvalidInput(
            "this is a private key; give its public key (openssl pkey -in KEY.pem -pubout)",
            field="public_key",
        )
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, UnsupportedAlgorithm) as error:
        raise InvalidInput(f"not a PEM public key ({_reason(error)})", field="public_key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise InvalidInput("the public key is not an Ed25519 key", field="public_key")
    return key


def key_id(public_key: Ed25519PublicKey) -> str:
    """SHA-256 of the raw public key, hex: names the key a checkpoint was signed with."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def _reason(error: Exception) -> str:
    return str(error).splitlines()[0] if str(error) else type(error).__name__


# -- the file (pure) ------------------------------------------------------------------------


def chains_digest(heads: list[ChainHead]) -> str:
    """SHA-256 of the canonical JSON of the chain list, as hex."""
    listed = [{"chain": head.chain, "hash": head.hash, "seq": head.seq} for head in heads]
    return hashlib.sha256(canonical_json(listed).encode("utf-8")).hexdigest()


def signed_file(
    heads: list[ChainHead], *, events: int, at: datetime, key: Ed25519PrivateKey
) -> bytes:
    """The checkpoint file of ``heads`` taken at ``at``, signed with ``key``."""
    ordered = sorted(heads, key=lambda head: head.chain)
    facilities = sorted({chain_facility(head.chain) or "" for head in ordered} - {""})
    header = {
        "format": FORMAT,
        "taken_at": at.astimezone(UTC).isoformat(),
        "facilities": facilities,
        "chains": len(ordered),
        "events": events,
        "digest": chains_digest(ordered),
        "key": key_id(key.public_key()),
    }
    signature = key.sign(canonical_json(header).encode("utf-8"))
    document = {
        "header": header,
        "chains": [{"chain": head.chain, "seq": head.seq, "hash": head.hash} for head in ordered],
        "signature": base64.b64encode(signature).decode("ascii"),
    }
    return (json.dumps(document, ensure_ascii=False, indent=1) + "\n").encode("utf-8")


@dataclass(frozen=True, slots=True)
class _Opened:
    taken_at: str
    heads: list[ChainHead]


class _Untrusted(Exception):
    """The file cannot be trusted; the message says why, in one line."""


def open_file(data: bytes, public_key: Ed25519PublicKey) -> _Opened:
    """The checkpoint's heads, once its signature and digest hold; else ``_Untrusted``."""
    try:
        document = json.loads(data.decode("utf-8"))
        header = document["header"]
        signature = base64.b64decode(document["signature"], validate=True)
        listed = document["chains"]
        heads = [ChainHead(str(c["chain"]), int(c["seq"]), str(c["hash"])) for c in listed]
        taken_at = str(header["taken_at"])
        signed = canonical_json(header).encode("utf-8")
    except (ValueError, KeyError, TypeError, binascii.Error, RecursionError) as error:
        raise _Untrusted(f"it is not a kinline audit checkpoint ({_reason(error)})") from None
    try:
        public_key.verify(signature, signed)
    except InvalidSignature:
        signer = header.get("key") if isinstance(header, dict) else None
        if signer != key_id(public_key):
            raise _Untrusted(
                "its header does not carry this public key's signature "
                f"(it names key {str(signer)[:16]}..., this key is "
                f"{key_id(public_key)[:16]}...)"
            ) from None
        raise _Untrusted("its header does not carry this public key's signature") from None
    if header.get("format") != FORMAT:
        raise _Untrusted(f"its format is {header.get('format')!r}, not {FORMAT!r}")
    if chains_digest(heads) != header.get("digest") or len(heads) != header.get("chains"):
        raise _Untrusted("its list of chains does not match the signed digest")
    return _Opened(taken_at, heads)


def compare(
    checkpointed: ChainHead, events_by_seq: dict[int, str] | None, last_seq: int
) -> CheckpointProblem | None:
    """How one chain now differs from its checkpointed head, if it does.

    ``events_by_seq`` maps the chain's stored seqs to their hashes (None: no
    chain of that name is stored); ``last_seq`` is the highest stored seq.
    Whether the chain links up to that seq is the plain chain check's part.
    """
    name, seq = checkpointed.chain, checkpointed.seq
    if events_by_seq is None:
        return CheckpointProblem(
            "deleted chain", name, seq, f"it is gone; the checkpoint has it at seq {seq}"
        )
    if last_seq < seq:
        return CheckpointProblem(
            "truncated", name, seq, f"it ends at seq {last_seq}; the checkpoint has it at {seq}"
        )
    stored = events_by_seq.get(seq)
    if stored != checkpointed.hash:
        return CheckpointProblem(
            "rewritten",
            name,
            seq,
            f"its event at seq {seq} does not have the checkpointed hash, "
            "so it or an event before it was changed",
        )
    return None


# -- use cases ------------------------------------------------------------------------------


def make_checkpoint(db: Database, key: Ed25519PrivateKey, *, at: datetime | None = None) -> bytes:
    """A signed checkpoint of every chain head, as the file's bytes.

    Reads one snapshot, and checks the log as ``kinline audit verify`` does
    before signing: a checkpoint vouches for the log it covers, so a log that
    is already broken is refused (``Conflict``) rather than signed. ``at`` is
    the time written in the checkpoint (default: now).
    """
    taken = at or datetime.now(UTC)
    if taken.tzinfo is None or taken.utcoffset() is None:
        raise ValueError("a checkpoint needs a timezone-aware time")
    heads: list[ChainHead] = []
    events = 0
    first: Problem | None = None
    with cross_facility("audit-checkpoint"), db.transaction() as session:
        repository.read_consistently(session)
        # Read to the end even past a problem: the events stream from a server
        # cursor, which must not be left open when the transaction ends.
        for stored in repository.iter_chains(session):
            first = first or chain_problem(stored)
            events += len(stored.events)
            if stored.head is not None:
                heads.append(ChainHead(stored.chain, stored.head[0], stored.head[1]))
    if first is not None:
        raise Conflict(
            f"the audit log does not verify ({_describe(first)}); no checkpoint signed",
            field="audit_log",
        )
    return signed_file(heads, events=events, at=taken, key=key)


def verify_against(
    db: Database, checkpoint: bytes, public_key: Ed25519PublicKey
) -> CheckpointReport:
    """The log checked against a checkpoint, and the checkpoint against its signature.

    An untrusted file is reported without reading the database. Otherwise one
    snapshot is read: every chain gets the plain check, and every chain the
    checkpoint names must reach its checkpointed seq with the same hash.
    """
    try:
        opened = open_file(checkpoint, public_key)
    except _Untrusted as error:
        bad = CheckpointProblem("bad signature", "", 0, str(error))
        return CheckpointReport(None, 0, None, (bad,))
    expected = {head.chain: head for head in opened.heads}
    problems: list[CheckpointProblem] = []
    chains = events = 0
    first: Problem | None = None
    with cross_facility("audit-checkpoint"), db.transaction() as session:
        repository.read_consistently(session)
        for stored in repository.iter_chains(session):
            chains += 1
            events += len(stored.events)
            if first is None:
                first = chain_problem(stored)
            head = expected.pop(stored.chain, None)
            if head is None:
                continue
            hashes = {event.link.seq: event.link.hash for event in stored.events}
            last_seq = max(hashes, default=0)
            problem = compare(head, hashes, last_seq)
            if problem is not None:
                problems.append(problem)
    for head in expected.values():
        gone = compare(head, None, 0)
        if gone is not None:
            problems.append(gone)
    problems.sort(key=lambda problem: problem.chain)
    log = VerifyReport(chains, events, first)
    return CheckpointReport(opened.taken_at, len(opened.heads), log, tuple(problems))


def _describe(problem: Problem) -> str:
    event = "missing" if problem.row_id is None else f"event id {problem.row_id}"
    return f"{problem.what} in chain {problem.chain} at seq {problem.seq}, {event}"
