"""A Command app that accepts an HTTP Upgrade to a line-echo protocol, for
the proxy's upgrade (WebSocket-style) pass-through test. The 101 says, in
Seen-* fields, which of a balancer's fields about the client came, and in
Seen-Underscored the names of the fields spelt with an underscore. GET
/hang never answers (for maxRequestTime to kill the process)."""
import http.server
import os
import signal
import sys
import threading


BALANCER_FIELDS = ("X-Real-IP", "X-Forwarded-Ssl", "X-Forwarded-Port", "X-Forwarded-Prefix", "X-Forwarded-Scheme")


class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        if self.headers.get("Upgrade", "").lower() == "echo":
            self.send_response(101, "Switching Protocols")
            self.send_header("Connection", "Upgrade")
            self.send_header("Upgrade", "echo")
            for name in BALANCER_FIELDS:
                if name in self.headers:
                    self.send_header("Seen-" + name, self.headers[name])
            self.send_header("Seen-Underscored", ",".join(k for k in self.headers.keys() if "_" in k))
            self.end_headers()
            self.wfile.flush()
            for line in self.rfile:
                self.wfile.write(b"echo: " + line)
                self.wfile.flush()
            self.close_connection = True
            return
        if self.path == "/hang":
            threading.Event().wait()
        body = ("%d\n" % os.getpid()).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
