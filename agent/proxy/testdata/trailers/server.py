"""A Command app whose responses carry what a proxy must handle with care:
a chunked body with a trailer field (X-Checksum), and a field its
Connection header names (X-Hop-Resp, which must not reach the client).
GET /bad also sends, declared or not, trailers RFC 9110 keeps out of
trailers (framing, routing, caching, state, a field Connection names)."""
import http.server
import os

BAD = [
    ("Content-Length", "99"), ("Transfer-Encoding", "chunked"), ("Set-Cookie", "session=evil"),
    ("ETag", '"x"'), ("Location", "/evil"), ("Cache-Control", "max-age=3600"), ("Content-Type", "text/evil"),
    ("X-Hop-Resp", "trailer"), ("Trailer", "X-More"), ("WWW-Authenticate", "Basic"),
]


class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        bad = self.path == "/bad"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Transfer-Encoding", "chunked")
        # Declared: what Go's client takes in a Trailer field (it refuses
        # a response that declares Content-Length, say).
        self.send_header("Trailer", "X-Checksum, Set-Cookie, ETag, Location, X-Hop-Resp" if bad else "X-Checksum")
        self.send_header("Connection", "X-Hop-Resp")
        self.send_header("X-Hop-Resp", "must not pass")
        self.end_headers()
        for part in (b"hello ", b"trailers\n"):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
        self.wfile.write(b"0\r\nX-Checksum: 42\r\n")
        if bad:
            for k, v in BAD:
                self.wfile.write(("%s: %s\r\n" % (k, v)).encode())
        self.wfile.write(b"\r\n")

    def log_message(self, *args):
        pass


http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
