"""abrupt: a Command app that dies the moment it gets SIGTERM.

Python's default for SIGTERM is to end the process at once, requests in
progress and all, as many servers do: only the pool's drain (no SIGTERM
until the worker's requests are done) lets them finish.

GET /hold makes $HOLD_FILE.reached (the test learns the request is in
the app), waits until the file $HOLD_FILE exists, then answers 200 with
the pid (body and X-Pid). GET / answers at once. With $IGNORE_TERM set,
it ignores SIGTERM instead: only SIGKILL stops it. With $EXIT_FILE set,
it exits with status 3 once that file exists (an exit of its own). With
$TERM_PROBE set, a child in its process group, which the agent signals
with it, makes that file when SIGTERM comes (the test learns the signal
was sent, whatever the app does with it).
"""

import os
import signal
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOLD_FILE = os.environ.get("HOLD_FILE", "")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        if self.path.startswith("/hold"):
            open(HOLD_FILE + ".reached", "w").close()
            while not os.path.exists(HOLD_FILE):
                time.sleep(0.01)
        body = b"%d\n" % os.getpid()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Pid", str(os.getpid()))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        pass


def probe(path):
    def on_term(*_):
        open(path, "w").close()
        os._exit(0)

    signal.signal(signal.SIGTERM, on_term)
    while True:
        signal.pause()


def exit_once(path):
    while not os.path.exists(path):
        time.sleep(0.01)
    os._exit(3)


if os.environ.get("TERM_PROBE") and os.fork() == 0:
    probe(os.environ["TERM_PROBE"])
if os.environ.get("EXIT_FILE"):
    threading.Thread(target=exit_once, args=(os.environ["EXIT_FILE"],), daemon=True).start()
if os.environ.get("IGNORE_TERM"):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
server = ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler)
server.daemon_threads = True
server.serve_forever()
