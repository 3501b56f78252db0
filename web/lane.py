"""A serving lane's worker as it starts (``scripts/serve.py`` runs the lanes).

Every worker, whichever server runs it, gets the same start (:func:`start_worker`):

* **an address-space ceiling** once it has loaded the app: what it holds then
  plus ``MINSHENG_WORKER_MEMORY_MB`` (default 1024). A request that would pass
  it gets a ``MemoryError``, which the app answers with a 503 JSON body
  (``web.security``) instead of the worker being killed by the kernel;
* in the heavy lane, **a lower CPU priority**, so light requests keep the cores
  they need;
* **what its requests need, read in the background**: a light worker holds the
  facilities nearest answers from, a heavy worker the planning inputs (demand
  grid, road graphs, cells joined to them), so the first resident's click or
  planner view does not pay for the read (``MINSHENG_HOLD_INPUTS=0`` turns
  this off). The lane's log says what was held and how long it took.

The light lane runs under granian (:func:`light_app` is its factory): its
requests are short and many, on kept-alive connections, where the server's own
cost per request is a large part of the whole (a bare WSGI answer: about 7,300
requests/s under gunicorn's threaded worker, 30,600 under granian, on the same
two cores). The heavy lane stays on gunicorn (``deploy/gunicorn.conf.py``):
single-threaded workers whose priority is lowered before any thread starts,
and a timeout that replaces a worker stuck on one request.
"""
from __future__ import annotations

import logging
import os
import resource
import threading
import time
from collections.abc import Callable
from typing import Any

from flask import Flask

#: Reserved per worker beyond its budget, not used: one more malloc arena (``MALLOC_ARENA_MAX=2``, set by
#: scripts/serve.py) and each thread's stack.
ARENA_MB, STACK_MB = 64, 8


def _address_space_bytes() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def set_memory_ceiling(threads: int) -> int:
    """Cap this process's address space at what it holds now plus its budget; the ceiling in bytes."""
    budget = int(os.environ.get("MINSHENG_WORKER_MEMORY_MB", "1024")) * 1024 * 1024
    ceiling = _address_space_bytes() + budget + (ARENA_MB + STACK_MB * threads) * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (ceiling, ceiling))
    return ceiling


def start_worker(app: Flask, lane: str, threads: int, log: Any) -> None:
    """What every worker of ``lane`` does once it has loaded ``app``: ceiling, priority, holding."""
    # Imported here: the web modules import the services, which a lane's config should not load before the app.
    from web.nearest_api import hold_nearest_facilities
    from web.planner import hold_planning_inputs

    set_memory_ceiling(threads)
    heavy = lane == "heavy"
    if heavy:
        os.nice(10)  # before any thread starts: a thread takes its priority from the one that starts it
    if os.environ.get("MINSHENG_HOLD_INPUTS", "1") == "0":
        return
    if heavy:
        _in_background(app, log, "planning inputs", hold_planning_inputs, "the first planner view reads them")
    else:
        _in_background(app, log, "nearest facilities", hold_nearest_facilities,
                       "the first nearest request reads them")


def _in_background(app: Flask, log: Any, what: str, hold: Callable[[Flask], str], otherwise: str) -> None:
    def run() -> None:
        start = time.monotonic()
        try:
            held = hold(app)
        except Exception as err:  # noqa: BLE001 (any failure here only means the first request reads them)
            log.warning("%s not held at start (%s: %s); %s", what, type(err).__name__, err, otherwise)
            return
        # scripts/serve.py waits for these words from every light worker (HELD_WORDS) before it says it serves.
        log.info("%s held in %.2f s: %s", what, time.monotonic() - start, held)

    threading.Thread(target=run, name=f"hold-{what.replace(' ', '-')}", daemon=True).start()


def light_app() -> Flask:
    """The app for one light-lane worker (granian calls it in each worker: ``--factory web.lane:light_app``)."""
    from web import create_app

    app = create_app()
    # Its log lines go where the server's go (deploy/granian-log.json).
    start_worker(app, "light", int(os.environ.get("MINSHENG_LANE_THREADS", "1")), logging.getLogger("minsheng.lane"))
    return app
