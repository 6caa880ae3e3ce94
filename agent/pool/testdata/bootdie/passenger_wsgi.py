"""A WSGI app that imports fine, reports ready, and dies DIE_AFTER seconds later;
and at once on a request to /crash (a request that kills its process).
/slow takes a second to answer."""
import os
import threading
import time

def _die():
    time.sleep(float(os.environ.get("DIE_AFTER") or "0.2"))
    os._exit(3)

time.sleep(float(os.environ.get("BOOT_DELAY") or "0"))  # a slow import

# DIE_IF_EXISTS: die only when this file exists at boot (a dependency that
# fails for new processes while those already up keep theirs).
_flag = os.environ.get("DIE_IF_EXISTS")
if os.environ.get("DIE_AFTER") and (not _flag or os.path.exists(_flag)):
    threading.Thread(target=_die, daemon=True).start()


def application(environ, start_response):
    if environ.get("PATH_INFO") == "/crash":
        os._exit(3)
    if environ.get("PATH_INFO") == "/slow":
        time.sleep(1)
    body = ("%d\n" % os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
