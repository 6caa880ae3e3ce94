"""command-hello: a Command app answering like hello-wsgi's "/".

A standard-library ThreadingHTTPServer on 127.0.0.1:$PORT, HTTP/1.1 with
keep-alive. GET / answers the pid (body and X-Pid header) and X-Revision;
/slow?ms=N sleeps first; /healthz answers 200 once the server listens.

Environment: PORT (required), BOOT_DELAY (seconds slept before listening),
REQUEST_DELAY_MS (milliseconds slept in every request).
SIGTERM or SIGINT: stop accepting, let requests in progress finish (up to
30 s), exit 0.
"""

import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

REQUEST_DELAY = float(os.environ.get("REQUEST_DELAY_MS") or 0) / 1000.0
REVISION = os.environ.get("FERRY_REVISION", "")

_inflight = 0
_inflight_lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive; every answer sets Content-Length
    server_version = "command-hello"
    # The head and the body go out in two writes; with Nagle's algorithm on,
    # the second waits for the proxy's delayed ACK on a reused connection:
    # about 40 ms a request instead of well under one.
    disable_nagle_algorithm = True

    def do_GET(self):
        self._counted(head=False)

    def do_HEAD(self):
        self._counted(head=True)

    def _counted(self, head):
        global _inflight
        with _inflight_lock:
            _inflight += 1
        try:
            self._serve(head)
        finally:
            with _inflight_lock:
                _inflight -= 1

    def _serve(self, head):
        url = urlsplit(self.path)
        status = 200
        if url.path == "/healthz":
            body = b"ok\n"
        else:
            if REQUEST_DELAY:
                time.sleep(REQUEST_DELAY)
            if url.path == "/slow":
                try:
                    ms = float(parse_qs(url.query).get("ms", ["0"])[0])
                except ValueError:
                    ms = 0
                time.sleep(ms / 1000.0)
            elif url.path != "/":
                status = 404
            body = b"%d\n" % os.getpid() if status == 200 else b"not found\n"
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Pid", str(os.getpid()))
        self.send_header("X-Revision", REVISION)
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def log_message(self, format, *args):
        pass  # no line per request: this app is used in benchmarks


def main():
    port = int(os.environ["PORT"])
    time.sleep(float(os.environ.get("BOOT_DELAY") or 0))
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True  # idle keep-alive connections must not block exit

    def stop(signum, frame):
        # shutdown() waits for serve_forever, which runs in this thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print("command-hello: listening on 127.0.0.1:%d, pid %d" % (port, os.getpid()), file=sys.stderr, flush=True)
    server.serve_forever()
    server.server_close()
    deadline = time.monotonic() + 30
    while _inflight and time.monotonic() < deadline:
        time.sleep(0.01)
    sys.exit(0)


if __name__ == "__main__":
    main()
