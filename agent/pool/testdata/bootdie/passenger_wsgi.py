"""A WSGI app that imports fine, reports ready, and dies DIE_AFTER seconds later;
and at once on a request to /crash, or a path under it (a request that kills
its process; /crash/late works 0.3 s first, /crash/upload reads its
whole body first: one cut short raises instead, /crash/midway sends
1 MiB of the 4 MiB it announces first, and /crash/gate waits until the
file GATE names exists), or on any request while the file DIE_IN_REQUEST_IF_EXISTS
names exists (code broken in place that dies on every path); and hangs on
any other request while the file HANG_IF_EXISTS names exists (a dependency
gone dead). /slow takes a second to answer; /gate answers once the file
GATE names exists, having made GATE.reached (a request the test lets
finish when it chooses). With BOOT_TOKEN set, the import waits until the
file it names exists and takes it (removes it): one process boots per
token the test writes."""
import os
import threading
import time

def _die():
    time.sleep(float(os.environ.get("DIE_AFTER") or "0.2"))
    os._exit(3)

time.sleep(float(os.environ.get("BOOT_DELAY") or "0"))  # a slow import

_token = os.environ.get("BOOT_TOKEN")
while _token:
    try:
        os.remove(_token)
        break
    except FileNotFoundError:
        time.sleep(0.01)

# DIE_IF_EXISTS: die only when this file exists at boot (a dependency that
# fails for new processes while those already up keep theirs).
_flag = os.environ.get("DIE_IF_EXISTS")
if os.environ.get("DIE_AFTER") and (not _flag or os.path.exists(_flag)):
    threading.Thread(target=_die, daemon=True).start()


def _midway():
    for _ in range(16):
        yield b"x" * 65536
    os._exit(3)


def application(environ, start_response):
    path = environ.get("PATH_INFO") or ""
    if path == "/crash/late":
        time.sleep(0.3)
    if path == "/crash/upload":
        environ["wsgi.input"].read()
    if path == "/crash/midway":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(4 << 20))])
        return _midway()
    if path == "/crash/gate":
        while not os.path.exists(os.environ["GATE"]):
            time.sleep(0.01)
    if path == "/crash" or path.startswith("/crash/"):
        os._exit(3)
    _always = os.environ.get("DIE_IN_REQUEST_IF_EXISTS")
    if _always and os.path.exists(_always):
        os._exit(3)
    _hang = os.environ.get("HANG_IF_EXISTS")
    if _hang and os.path.exists(_hang):
        time.sleep(3600)
    if path == "/slow":
        time.sleep(1)
    if path == "/gate":
        _gate = os.environ["GATE"]
        open(_gate + ".reached", "w").close()
        while not os.path.exists(_gate):
            time.sleep(0.01)
    body = ("%d\n" % os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
