"""The collector paused while a report is built comes back as it was: after
the block, when the block raises, when it was off already, and when pauses in
two threads overlap (the last one to end turns it back on)."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest

from kinline.courts.gc_pause import collector_paused


@pytest.fixture(autouse=True)
def _collector_on() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    yield
    if was:
        gc.enable()
    else:
        gc.disable()


def test_the_collector_is_off_in_the_block_and_on_after_it() -> None:
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def _build_failing() -> None:
    with collector_paused():
        assert not gc.isenabled()
        raise LookupError("no such order")


def test_the_collector_is_back_on_when_the_block_raises() -> None:
    with pytest.raises(LookupError):
        _build_failing()
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off() -> None:
    gc.disable()
    with collector_paused():
        assert not gc.isenabled()
    assert not gc.isenabled()


def test_overlapping_pauses_in_two_threads_leave_it_on_once_both_end() -> None:
    # first begins, second begins, first ends, second ends: a pause that merely
    # restored what it saw would leave the collector off for good.
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    seen: dict[str, bool] = {}

    def first() -> None:
        with collector_paused():
            first_in.set()
            second_in.wait(5)
        first_out.set()

    def second() -> None:
        first_in.wait(5)
        with collector_paused():
            second_in.set()
            first_out.wait(5)
            seen["after the first ended"] = gc.isenabled()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert seen == {"after the first ended": False}
    assert gc.isenabled()
