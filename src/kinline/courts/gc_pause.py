"""The cyclic garbage collector paused while a large report is built.

A report over years makes thousands of small objects (its evidence, and their
JSON) that stay alive until it is written; each allocation of a few hundred
makes CPython run a collection that walks them all again, and every so many a
full collection over the whole process. None of them can be garbage while the
report is built, and none forms a reference cycle (tuples and dicts of
strings, numbers and instants, freed by reference counting as soon as the
report is), so pausing the collector while it is built leaks nothing and
saves walking them.

The collector is one per process and requests run in threads: a pause that
merely remembered and restored ``gc.isenabled()`` could, overlapping with
another, leave it off for good (the second restores "off" after the first has
turned it back on). So pauses are counted: the first one to begin turns the
collector off if it was on, and the last one to end turns it back on.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_pauses = 0
_was_enabled = False


@contextmanager
def collector_paused() -> Iterator[None]:
    """No cyclic garbage collection in the block (nor in other threads while it
    runs); afterwards the collector is as it was before the first of the
    overlapping pauses began, even when the block raises."""
    global _pauses, _was_enabled
    with _lock:
        if _pauses == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _pauses += 1
    try:
        yield
    finally:
        with _lock:
            _pauses -= 1
            if _pauses == 0 and _was_enabled:
                gc.enable()
