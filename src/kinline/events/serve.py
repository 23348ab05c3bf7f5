"""``kinline serve --publisher``: the events publisher inside a server process.

Apart from kinline.events.publisher so that a server started without it does
not import the NATS and HTTP clients.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

from kinline.db.engine import Database

PUBLISHER_ENV = "KINLINE_PUBLISHER"


def start_publisher_from_env(db: Database) -> Callable[[], None]:
    """Start the publisher in this server process when ``KINLINE_PUBLISHER=1``
    (set by ``kinline serve --publisher``); returns the function that stops it
    (a no-op when it was not started). Must be called in the server's event loop.

    Every process started so publishes; JetStream keeps each event once and in
    order all the same (a publisher publishes an event only after the one before
    it was acknowledged), but webhooks may then get an event twice: serve one
    process with it, or run ``kinline events publish`` beside the server.
    """
    if os.environ.get(PUBLISHER_ENV, "").lower() not in ("1", "true", "yes", "on"):
        return lambda: None
    from kinline.events.publisher import run, settings_from_env

    stop = asyncio.Event()
    task = asyncio.get_running_loop().create_task(run(db, settings_from_env(), stop))

    def stopper() -> None:
        stop.set()
        task.cancel()

    return stopper
