"""slow-boot-wsgi: answers like hello-wsgi's "/" after a slow import.

It sleeps BOOT_DELAY seconds (default 5) at import, to exercise start
timeouts and rolling restarts that must wait for the new process.
"""

import os
import time

time.sleep(float(os.environ.get("BOOT_DELAY") or 5))

REVISION = os.environ.get("FERRY_REVISION", "")


def application(environ, start_response):
    pid = str(os.getpid())
    body = pid.encode() + b"\n"
    start_response(
        "200 OK",
        [("Content-Type", "text/plain"), ("Content-Length", str(len(body))), ("X-Pid", pid), ("X-Revision", REVISION)],
    )
    return [body]
