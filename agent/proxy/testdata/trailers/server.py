"""A Command app whose responses carry what a proxy must handle with care:
a chunked body with a trailer field (X-Checksum), and a field its
Connection header names (X-Hop-Resp, which must not reach the client)."""
import http.server
import os


class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Trailer", "X-Checksum")
        self.send_header("Connection", "X-Hop-Resp")
        self.send_header("X-Hop-Resp", "must not pass")
        self.end_headers()
        for part in (b"hello ", b"trailers\n"):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
        self.wfile.write(b"0\r\nX-Checksum: 42\r\n\r\n")

    def log_message(self, *args):
        pass


http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
