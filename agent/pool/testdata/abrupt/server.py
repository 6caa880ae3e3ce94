"""abrupt: a Command app that dies the moment it gets SIGTERM.

Python's default for SIGTERM is to end the process at once, requests in
progress and all, as many servers do: only the pool's drain (no SIGTERM
until the worker's requests are done) lets them finish.

GET /hold waits until the file $HOLD_FILE exists, then answers 200 with
the pid (body and X-Pid). GET / answers at once. With $IGNORE_TERM set,
it ignores SIGTERM instead: only SIGKILL stops it.
"""

import os
import signal
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOLD_FILE = os.environ.get("HOLD_FILE", "")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        if self.path.startswith("/hold"):
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


if os.environ.get("IGNORE_TERM"):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
server = ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler)
server.daemon_threads = True
server.serve_forever()
