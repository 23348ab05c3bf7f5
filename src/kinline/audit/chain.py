"""The hash chain of the audit log, pure so it can be checked without a database.

Each event's hash covers the previous event's hash, so an event cannot be
changed, removed or moved without breaking the links after it; the stored
head of each chain covers the tail, which no later link vouches for. The
chain lives here, apart from the store, so that the arithmetic a court may be
asked to trust is a few functions anyone can read and re-run.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from enum import Enum
from typing import Literal

GENESIS = "0" * 64
"""The ``prev_hash`` of the first event of every chain."""

MAX_CHAIN_LENGTH = 140  # the width of the ``chain`` column

ProblemKind = Literal["changed", "deleted", "reordered"]

_ESCAPED = re.compile("%25|%3A")
_UNESCAPED = {"%25": "%", "%3A": ":"}
_TAG = re.compile(r"^[a-z][a-z0-9_]*:[a-z][a-z0-9_]*:[a-z][a-z0-9_]*$")


def canonical_json(value: object) -> str:
    """One spelling per value, so the same content always hashes the same.

    NaN and infinities are refused: they are not JSON, and another verifier
    could not read them back.
    """
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def to_json_value(value: object) -> object:
    """Payload values as JSON types; instants as UTC ISO-8601.

    Instants are written in UTC so one instant has one spelling whatever zone
    the caller held it in. A naive datetime names no instant, so it is refused
    rather than guessed at.
    """
    if value is None or isinstance(value, bool | int | str):
        return value.value if isinstance(value, Enum) else value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} cannot be written to the audit log")
        return value
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r} in an audit payload")
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, Enum):
        return to_json_value(value.value)
    if isinstance(value, Mapping):
        items: dict[str, object] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"audit payload key {key!r} is not a string")
            items[key] = to_json_value(item)
        return items
    if isinstance(value, list | tuple):
        return [to_json_value(item) for item in value]
    if isinstance(value, set | frozenset):
        return sorted((to_json_value(item) for item in value), key=canonical_json)
    raise TypeError(f"{type(value).__name__} cannot be written to the audit log")


def check_tag(tag: str) -> str:
    """Tags are ``source:subject:action`` so the log can be filtered by any part."""
    if not _TAG.match(tag):
        raise ValueError(f"audit tag {tag!r} is not of the form source:subject:action")
    return tag


def event_hash(
    prev_hash: str,
    chain: str,
    seq: int,
    occurred_at_iso: str,
    actor: str,
    tag: str,
    payload_json: str,
) -> str:
    """``sha256(prev_hash || canonical JSON of the event)``, as hex.

    The payload is hashed as parsed JSON, not as stored text, so the hash
    depends only on what the event says.
    """
    content = canonical_json(
        {
            "actor": actor,
            "chain": chain,
            "occurred_at": occurred_at_iso,
            "payload": json.loads(payload_json),
            "seq": seq,
            "tag": tag,
        }
    )
    return hashlib.sha256(prev_hash.encode("utf-8") + content.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class ChainLink:
    """One stored event, as the verifier sees it."""

    chain: str
    seq: int
    occurred_at_iso: str
    actor: str
    tag: str
    payload_json: str
    prev_hash: str
    hash: str
    row_id: int


@dataclass(frozen=True, slots=True)
class Problem:
    """Where a chain breaks: ``row_id`` is None when the event at ``seq`` is missing."""

    chain: str
    seq: int
    row_id: int | None
    what: ProblemKind
    detail: str


def verify_chain(
    links: Sequence[ChainLink], head: tuple[int, str] | None, *, chain: str = ""
) -> Problem | None:
    """The first break in one chain's links, given in storage (seq) order.

    Sequence numbers run 1, 2, 3...; a link that does not carry the seq due at
    its position is reported at that position, as "deleted" when that seq is
    nowhere in the chain and "reordered" when it is elsewhere. Linkage is
    checked before content, so an event moved to another seq is reported as
    moved, not merely as changed. Without ``head`` a lost tail cannot be seen.
    ``chain`` names the chain in a problem when there are no links to name it.
    """
    present = {link.seq for link in links}
    expected = 1
    prev_hash = GENESIS
    for link in links:
        chain = link.chain
        if link.seq != expected:
            if link.seq > expected and expected not in present:
                return Problem(chain, expected, None, "deleted", f"no event has seq {expected}")
            return Problem(
                chain,
                expected,
                link.row_id,
                "reordered",
                f"seq {link.seq} is where {expected} is due",
            )
        if link.prev_hash != prev_hash:
            return Problem(
                chain,
                link.seq,
                link.row_id,
                "reordered",
                "its prev_hash does not match the event before it",
            )
        if _content_hash(link) != link.hash:
            return Problem(chain, link.seq, link.row_id, "changed", "its hash does not match it")
        prev_hash = link.hash
        expected += 1
    if head is None:
        return None
    head_seq, head_hash = head
    last_seq = expected - 1
    if last_seq < head_seq:
        return Problem(
            chain,
            last_seq + 1,
            None,
            "deleted",
            f"the chain ends at seq {last_seq} but its head is at seq {head_seq}",
        )
    if last_seq > head_seq:
        beyond = links[max(head_seq, 0)]
        return Problem(
            chain, beyond.seq, beyond.row_id, "changed", f"it lies beyond the head at {head_seq}"
        )
    if prev_hash != head_hash:
        row_id = links[-1].row_id if links else None
        return Problem(chain, last_seq, row_id, "changed", "its hash does not match the head")
    return None


def _content_hash(link: ChainLink) -> str | None:
    """None when the stored payload is not canonical JSON: that is a change too."""
    try:
        if canonical_json(json.loads(link.payload_json)) != link.payload_json:
            return None
    except ValueError:
        return None
    return event_hash(
        link.prev_hash,
        link.chain,
        link.seq,
        link.occurred_at_iso,
        link.actor,
        link.tag,
        link.payload_json,
    )


def person_chain(facility_id: str, person_id: str) -> str:
    """``person:<facility_id>:<person_id>``: every change to one person, in order."""
    return _chain_name("person", facility_id, person_id)


def facility_chain(facility_id: str) -> str:
    """``facility:<facility_id>``: changes that touch a whole facility."""
    return _chain_name("facility", facility_id)


def chain_facility(chain: str) -> str | None:
    """The facility a chain belongs to, or None if the name is not a chain's.

    Events carry ``facility_id`` outside the hash; checking it against the
    chain's name means it cannot be altered unseen either.
    """
    kind, _, rest = chain.partition(":")
    parts = rest.split(":")
    if (kind, len(parts)) not in {("person", 2), ("facility", 1)} or not all(parts):
        return None
    return _unescape(parts[0])


def _chain_name(kind: str, *ids: str) -> str:
    # Ids may contain ":" (see rules.parse), which would let two people share a
    # chain name; escaping it keeps names unique and leaves ordinary ids as is.
    if not all(ids):
        raise ValueError(f"an empty id in a {kind} chain name")
    name = ":".join([kind, *(_escape(part) for part in ids)])
    if len(name) > MAX_CHAIN_LENGTH:
        raise ValueError(f"chain name {name!r} is longer than {MAX_CHAIN_LENGTH}")
    return name


def _escape(part: str) -> str:
    return part.replace("%", "%25").replace(":", "%3A")


def _unescape(part: str) -> str:
    return _ESCAPED.sub(lambda match: _UNESCAPED[match.group(0)], part)
