"""A WSGI app whose Nth import fails, for spawn-error tests.

SPAWN_COUNTER is a file shared by every spawn (created by the test, writable
by the worker's user); each import increments it under a lock. FAIL_SPAWNS
is a comma-separated list of import numbers (1-based) that raise, and
FAIL_FROM makes every import from that number on raise. BOOT_DELAY is
seconds (float) to sleep at import, after the count: a slow boot.
DIE_AFTER makes a process that imported fine exit (status 3) that many
seconds later: ready, then dead. HOLD_SPAWNS lists import numbers that,
after the count, make the file HOLD.reached and wait until the file HOLD
names exists: a spawn held until the test lets it go on.
"""
import fcntl
import os
import threading
import time

with open(os.environ["SPAWN_COUNTER"], "r+") as f:
    fcntl.flock(f, fcntl.LOCK_EX)
    n = int(f.read().strip() or "0") + 1
    f.seek(0)
    f.truncate()
    f.write(str(n))

time.sleep(float(os.environ.get("BOOT_DELAY") or 0))

if n in {int(x) for x in os.environ.get("HOLD_SPAWNS", "").split(",") if x}:
    _hold = os.environ["HOLD"]
    open(_hold + ".reached", "w").close()
    while not os.path.exists(_hold):
        time.sleep(0.01)

fail = {int(x) for x in os.environ.get("FAIL_SPAWNS", "").split(",") if x}
fail_from = int(os.environ.get("FAIL_FROM", "0") or "0")
if n in fail or (fail_from and n >= fail_from):
    raise RuntimeError("flaky app: spawn %d was told to fail" % n)


def _die():
    time.sleep(float(os.environ["DIE_AFTER"]))
    os._exit(3)


if os.environ.get("DIE_AFTER"):
    threading.Thread(target=_die, daemon=True).start()

DELAY = float(os.environ.get("REQUEST_DELAY_MS", "0")) / 1000.0


def application(environ, start_response):
    if DELAY:
        time.sleep(DELAY)
    body = ("%d\n" % os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body))),
                              ("X-Pid", str(os.getpid())), ("X-Spawn", str(n))])
    return [body]
