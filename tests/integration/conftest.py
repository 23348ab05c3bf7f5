"""The integration suite checks that every statement routes to one facility's
shard (kinline.db.routing): each engine kinline's factory makes, here and in the
servers and commands the tests start (which inherit the environment), raises on
a statement over a facility table without a facility predicate, unless it runs
in a declared cross-facility operation. ``KINLINE_ROUTING_CHECK=0`` turns it off.

What the tests' own code sends (counting rows, tampering with the audit log)
runs as the declared test-only operation "test-fixture"; what kinline's code
sends for them is checked.
"""

from __future__ import annotations

import os
from pathlib import Path

from kinline.db.routing import declare_code

os.environ.setdefault("KINLINE_ROUTING_CHECK", "1")
# Every tier's own code: a run of the whole suite (make test) has the check on
# for the browser tests too, whose servers are then checked as well.
declare_code(str(Path(__file__).parents[1]), "test-fixture")
