"""gunicorn settings of both lanes (``scripts/serve.py`` passes ``-c deploy/gunicorn.conf.py``).

Each worker gets an address-space ceiling once it has loaded the app
(``post_worker_init``): what it holds then plus ``MINSHENG_WORKER_MEMORY_MB`` (default 1024). A request
that would pass it gets a ``MemoryError``, which the app answers with a 503
JSON body (``web.security``) instead of the worker being killed by the
kernel. The heavy lane (``MINSHENG_LANE=heavy``) also runs at a lower CPU
priority, so light requests keep the cores they need, and each of its workers
reads the planning inputs (demand grid, road graphs, cells joined to them) in
the background as it starts, so the first planner view is not the one that
pays for them (``MINSHENG_HOLD_INPUTS=0`` turns this off). Each light worker
likewise reads the facilities nearest holds in memory as it starts, so the
first resident's click does not pay for that read. The lanes' logs say what
was held and how long it took.
"""
from __future__ import annotations

import os
import resource
import threading
import time

from web.nearest_api import hold_nearest_facilities
from web.planner import hold_planning_inputs

#: Longest request line gunicorn reads (its own maximum); the front refuses longer ones first, as JSON 414.
limit_request_line = 8190
worker_class = "gthread"
# The app's own log (errors with their tracebacks) goes to the lane's error log with gunicorn's.
capture_output = True
# No control socket: two lanes (and other checkouts) would share its one default path.
control_socket_disable = True
keepalive = 30
# The light lane's workers each listen on a socket of their own (SO_REUSEPORT): the kernel spreads nginx's
# keep-alive connections over them. On one shared socket the quickest worker can take them all and serve the
# lane on one core (measured: 300 instead of 1,000 requests/s). The heavy lane keeps one shared socket, so a
# request goes to whichever worker is free rather than queueing behind a long one.
reuse_port = os.environ.get("MINSHENG_LANE") != "heavy"
graceful_timeout = 5


def _address_space_bytes() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def post_worker_init(worker):
    budget = int(os.environ.get("MINSHENG_WORKER_MEMORY_MB", "1024")) * 1024 * 1024
    # Reserved after this point, not used: the threads' stacks (8 MiB each) and one more malloc arena
    # (64 MiB; MALLOC_ARENA_MAX=2, set by scripts/serve.py).
    ceiling = _address_space_bytes() + budget + (64 + 8 * worker.cfg.threads) * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (ceiling, ceiling))
    heavy = os.environ.get("MINSHENG_LANE") == "heavy"
    if heavy:
        os.nice(10)  # before any thread starts: a thread takes its priority from the one that starts it
    if os.environ.get("MINSHENG_HOLD_INPUTS", "1") == "0":
        return
    if heavy:
        _in_background(worker, "planning inputs", hold_planning_inputs, "the first planner view reads them")
    else:
        _in_background(worker, "nearest facilities", hold_nearest_facilities, "the first nearest request reads them")


def _in_background(worker, what: str, hold, otherwise: str) -> None:
    def run() -> None:
        start = time.monotonic()
        try:
            held = hold(worker.wsgi)
        except Exception as err:  # noqa: BLE001 (any failure here only means the first request reads them)
            worker.log.warning("%s not held at start (%s: %s); %s", what, type(err).__name__, err, otherwise)
            return
        worker.log.info("%s held in %.2f s: %s", what, time.monotonic() - start, held)

    threading.Thread(target=run, name=f"hold-{what.replace(' ', '-')}", daemon=True).start()
