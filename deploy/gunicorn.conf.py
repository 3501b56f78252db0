"""gunicorn settings of the heavy lane (``scripts/serve.py`` passes ``-c deploy/gunicorn.conf.py``).

Each worker, once it has loaded the app, gets the start every lane's worker
gets (``web.lane.start_worker``): a memory ceiling, in this lane a lower CPU
priority, and the planning inputs read in the background. Why the light lane
runs under granian instead is in ``web/lane.py``.
"""
from __future__ import annotations

import os

from web.lane import start_worker

#: Longest request line gunicorn reads (its own maximum); the front refuses longer ones first, as JSON 414.
limit_request_line = 8190
worker_class = "gthread"
# The app's own log (errors with their tracebacks) goes to the lane's error log with gunicorn's.
capture_output = True
# No control socket: two lanes (and other checkouts) would share its one default path.
control_socket_disable = True
keepalive = 30
graceful_timeout = 5


def post_worker_init(worker):
    start_worker(worker.wsgi, os.environ.get("MINSHENG_LANE", "heavy"), worker.cfg.threads, worker.log)
