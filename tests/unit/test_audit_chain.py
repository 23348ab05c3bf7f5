"""The hash chain: a built chain verifies, and every kind of tampering is found where it is."""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kinline.audit.chain import (
    GENESIS,
    ChainLink,
    canonical_json,
    chain_facility,
    check_tag,
    event_hash,
    facility_chain,
    person_chain,
    to_json_value,
    verify_chain,
)

CHAIN = "person:fac-1:p-1"

scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=6)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=4,
)
events = st.tuples(
    st.text(min_size=1, max_size=8),  # actor
    st.sampled_from(["policy:rule:imposed", "calls:session:completed", "people:person:admitted"]),
    st.dictionaries(st.text(max_size=4), scalars | st.lists(scalars, max_size=2), max_size=3),
)


def build_chain(contents: Sequence[tuple[str, str, Mapping[str, object]]]) -> list[ChainLink]:
    links: list[ChainLink] = []
    prev = GENESIS
    start = datetime(2025, 1, 1, tzinfo=UTC)
    for seq, (actor, tag, payload) in enumerate(contents, start=1):
        at = (start + timedelta(minutes=seq)).isoformat()
        payload_json = canonical_json(payload)
        digest = event_hash(prev, CHAIN, seq, at, actor, tag, payload_json)
        links.append(ChainLink(CHAIN, seq, at, actor, tag, payload_json, prev, digest, 100 + seq))
        prev = digest
    return links


def head_of(links: list[ChainLink]) -> tuple[int, str]:
    return (links[-1].seq, links[-1].hash) if links else (0, GENESIS)


chains = st.lists(events, min_size=1, max_size=8).map(build_chain)


@st.composite
def chain_and_index(draw: st.DrawFn, min_size: int = 1) -> tuple[list[ChainLink], int]:
    links = draw(st.lists(events, min_size=min_size, max_size=8).map(build_chain))
    return links, draw(st.integers(0, len(links) - 1))


# -- the hash -------------------------------------------------------------------


def test_event_hash_is_sha256_of_prev_hash_and_canonical_content() -> None:
    expected = hashlib.sha256(
        ("0" * 64).encode()
        + '{"actor":"officer é","chain":"facility:f","occurred_at":"2025-01-01T00:00:00+00:00",'
        '"payload":{"a":[1,2],"b":"x"},"seq":1,"tag":"people:facility:registered"}'.encode()
    ).hexdigest()
    digest = event_hash(
        GENESIS,
        "facility:f",
        1,
        "2025-01-01T00:00:00+00:00",
        "officer é",
        "people:facility:registered",
        '{"b": "x", "a": [1, 2]}',
    )
    assert digest == expected


def test_canonical_json_sorts_keys_drops_spaces_and_keeps_unicode() -> None:
    assert canonical_json({"b": 1, "a": ["ñ", None]}) == '{"a":["ñ",null],"b":1}'


def test_canonical_json_refuses_nan() -> None:
    with pytest.raises(ValueError, match="JSON"):
        canonical_json({"x": float("nan")})


class Channel(enum.StrEnum):
    PHONE = "phone"


def test_payload_values_become_json_with_instants_in_utc() -> None:
    chicago = timezone(timedelta(hours=-6))
    value = to_json_value(
        {
            "at": datetime(2025, 3, 1, 6, 30, tzinfo=chicago),
            "on": date(2025, 3, 1),
            "channel": Channel.PHONE,
            "ids": ("a", "b"),
            "set": frozenset({"z", "y"}),
            "nested": {"at": datetime(2025, 3, 1, 12, 30, tzinfo=UTC)},
        }
    )
    assert value == {
        "at": "2025-03-01T12:30:00+00:00",
        "on": "2025-03-01",
        "channel": "phone",
        "ids": ["a", "b"],
        "set": ["y", "z"],
        "nested": {"at": "2025-03-01T12:30:00+00:00"},
    }


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ({"at": datetime(2025, 3, 1)}, ValueError),
        ({"x": float("inf")}, ValueError),
        ({"x": object()}, TypeError),
        ({1: "not a string key"}, TypeError),
    ],
)
def test_payload_values_that_are_not_json_are_refused(value: object, error: type) -> None:
    with pytest.raises(error):
        to_json_value(value)


# -- tags and chain names ------------------------------------------------------------


@pytest.mark.parametrize("tag", ["policy:rule:imposed", "calls:session:no_show", "a:b2:c"])
def test_tags_of_three_parts_pass(tag: str) -> None:
    assert check_tag(tag) == tag


@pytest.mark.parametrize(
    "tag", ["policy:rule", "policy:rule:imposed:again", "Policy:rule:imposed", "policy::x", ""]
)
def test_tags_not_of_three_parts_are_refused(tag: str) -> None:
    with pytest.raises(ValueError, match="source:subject:action"):
        check_tag(tag)


def test_chain_names() -> None:
    assert person_chain("fac-1", "p-1") == "person:fac-1:p-1"
    assert facility_chain("fac-1") == "facility:fac-1"
    assert chain_facility("person:fac-1:p-1") == "fac-1"
    assert chain_facility("facility:fac-1") == "fac-1"
    assert chain_facility("person:fac-1") is None
    assert chain_facility("visitor:fac-1:v") is None


def test_ids_with_colons_cannot_make_two_people_share_a_chain() -> None:
    assert person_chain("a:b", "c") != person_chain("a", "b:c")
    assert chain_facility(person_chain("a:b%3A", "c")) == "a:b%3A"
    assert chain_facility(facility_chain("x%y:z")) == "x%y:z"


@given(st.text(min_size=1, max_size=20), st.text(min_size=1, max_size=20))
def test_a_person_chain_names_its_facility(facility_id: str, person_id: str) -> None:
    assert chain_facility(person_chain(facility_id, person_id)) == facility_id


def test_chain_names_longer_than_the_column_are_refused() -> None:
    with pytest.raises(ValueError, match="longer"):
        person_chain("f" * 64, ":" * 30)


# -- verification ---------------------------------------------------------------------


@given(chains)
def test_a_built_chain_verifies(links: list[ChainLink]) -> None:
    assert verify_chain(links, head_of(links)) is None
    assert verify_chain(links, None) is None


def test_an_empty_chain_with_a_fresh_head_verifies() -> None:
    assert verify_chain([], (0, GENESIS)) is None


TEXT_FIELDS = ["occurred_at_iso", "actor", "tag", "hash"]


@given(chain_and_index(), st.sampled_from(TEXT_FIELDS), st.text(max_size=12))
def test_changing_a_field_is_found_at_its_seq(
    case: tuple[list[ChainLink], int], field: str, new: str
) -> None:
    links, index = case
    if getattr(links[index], field) == new:
        new += "!"
    changes: dict[str, Any] = {field: new}
    links[index] = dataclasses.replace(links[index], **changes)
    problem = verify_chain(links, head_of(links) if field != "hash" else None)
    assert problem is not None
    assert (problem.chain, problem.seq, problem.row_id, problem.what) == (
        CHAIN,
        index + 1,
        101 + index,
        "changed",
    )


@given(chain_and_index(), json_values)
def test_changing_a_payload_is_found_at_its_seq(
    case: tuple[list[ChainLink], int], value: object
) -> None:
    links, index = case
    payload = json.loads(links[index].payload_json)
    payload["tampered"] = value
    links[index] = dataclasses.replace(links[index], payload_json=canonical_json(payload))
    problem = verify_chain(links, head_of(links))
    assert problem is not None
    assert (problem.seq, problem.what) == (index + 1, "changed")


@given(chain_and_index())
def test_a_payload_respelled_with_the_same_meaning_is_still_a_change(
    case: tuple[list[ChainLink], int],
) -> None:
    links, index = case
    respelled = json.dumps(json.loads(links[index].payload_json), indent=1)
    links[index] = dataclasses.replace(links[index], payload_json=respelled + " ")
    problem = verify_chain(links, head_of(links))
    assert problem is not None
    assert (problem.seq, problem.what) == (index + 1, "changed")


@given(chain_and_index(), st.text(min_size=1, max_size=64))
def test_a_broken_link_is_found_at_its_seq(
    case: tuple[list[ChainLink], int], prev_hash: str
) -> None:
    links, index = case
    if prev_hash == links[index].prev_hash:
        prev_hash += "!"
    links[index] = dataclasses.replace(links[index], prev_hash=prev_hash)
    problem = verify_chain(links, head_of(links))
    assert problem is not None
    assert (problem.seq, problem.row_id, problem.what) == (index + 1, 101 + index, "reordered")


@given(chain_and_index(), st.integers(-3, 20))
def test_a_changed_seq_is_found_at_its_position(
    case: tuple[list[ChainLink], int], seq: int
) -> None:
    links, index = case
    if seq == links[index].seq:
        seq += 100
    links[index] = dataclasses.replace(links[index], seq=seq)
    problem = verify_chain(links, head_of(links))
    assert problem is not None
    assert problem.seq == index + 1
    assert problem.what in {"deleted", "reordered"}


@given(chain_and_index())
def test_a_content_rewrite_with_a_fresh_hash_is_still_found(
    case: tuple[list[ChainLink], int],
) -> None:
    links, index = case
    old = links[index]
    forged = dataclasses.replace(old, actor=old.actor + " (edited)")
    forged = dataclasses.replace(
        forged,
        hash=event_hash(
            forged.prev_hash,
            forged.chain,
            forged.seq,
            forged.occurred_at_iso,
            forged.actor,
            forged.tag,
            forged.payload_json,
        ),
    )
    head = head_of(links)
    links[index] = forged
    problem = verify_chain(links, head)
    assert problem is not None
    if index == len(links) - 1:  # only the head vouches for the last event
        assert (problem.seq, problem.what) == (index + 1, "changed")
    else:  # the next event no longer links to it
        assert (problem.seq, problem.what) == (index + 2, "reordered")


@given(chain_and_index(min_size=2))
def test_deleting_any_event_is_found_at_its_seq(case: tuple[list[ChainLink], int]) -> None:
    links, index = case
    head = head_of(links)
    del links[index]
    problem = verify_chain(links, head)
    assert problem is not None
    assert (problem.chain, problem.seq, problem.row_id, problem.what) == (
        CHAIN,
        index + 1,
        None,
        "deleted",
    )


@given(chains, st.integers(1, 3))
def test_deleting_the_tail_is_found_only_through_the_head(links: list[ChainLink], cut: int) -> None:
    head = head_of(links)
    kept = links[: max(len(links) - cut, 0)]
    problem = verify_chain(kept, head, chain=CHAIN)
    assert problem is not None
    assert (problem.chain, problem.seq, problem.what) == (CHAIN, len(kept) + 1, "deleted")
    assert verify_chain(kept, None) is None  # why the head is stored at all


@given(chain_and_index(min_size=2), st.data())
def test_swapping_two_events_is_found_at_the_first(
    case: tuple[list[ChainLink], int], data: st.DataObject
) -> None:
    links, first = case
    second = data.draw(st.integers(0, len(links) - 1).filter(lambda i: i != first))
    low, high = sorted((first, second))
    links[low], links[high] = links[high], links[low]
    problem = verify_chain(links, head_of(sorted(links, key=lambda link: link.seq)))
    assert problem is not None
    assert (problem.seq, problem.row_id, problem.what) == (low + 1, 101 + high, "reordered")


@given(chain_and_index(min_size=2), st.data())
def test_swapping_the_seqs_of_two_events_is_found_at_the_lower(
    case: tuple[list[ChainLink], int], data: st.DataObject
) -> None:
    """As a database presents it: the seqs swapped, the rows read back in seq order."""
    links, first = case
    second = data.draw(st.integers(0, len(links) - 1).filter(lambda i: i != first))
    low, high = sorted((first, second))
    head = head_of(links)
    a, b = links[low], links[high]
    links[low] = dataclasses.replace(b, seq=a.seq)
    links[high] = dataclasses.replace(a, seq=b.seq)
    problem = verify_chain(links, head)
    assert problem is not None
    assert (problem.seq, problem.row_id, problem.what) == (low + 1, 101 + high, "reordered")


@given(chains)
def test_an_event_beyond_the_head_is_found(links: list[ChainLink]) -> None:
    problem = verify_chain(links, (len(links) - 1, links[-2].hash if len(links) > 1 else GENESIS))
    assert problem is not None
    assert (problem.seq, problem.what) == (len(links), "changed")


@given(chains, st.text(min_size=1, max_size=64))
def test_a_head_that_disagrees_with_the_last_hash_is_found(
    links: list[ChainLink], forged: str
) -> None:
    if forged == links[-1].hash:
        forged += "!"
    problem = verify_chain(links, (len(links), forged))
    assert problem is not None
    assert (problem.seq, problem.row_id, problem.what) == (len(links), 100 + len(links), "changed")


def test_a_head_with_no_events_left_names_the_chain() -> None:
    problem = verify_chain([], (4, "f" * 64), chain=CHAIN)
    assert problem is not None
    assert (problem.chain, problem.seq, problem.row_id, problem.what) == (CHAIN, 1, None, "deleted")
