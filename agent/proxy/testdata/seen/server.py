"""A Command app that keeps every request it is sent, as it reads it: the
request line, the fields in their order, and the body by the framing the
head declares (Content-Length, or chunked with its trailers). GET /seen
answers, as JSON, the requests kept since the one before, and forgets
them; every other request is answered 200 "ok".
"""
import http.server
import json
import os
import threading

kept = []
lock = threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def handle_one_request(self):
        try:
            super().handle_one_request()
        except ValueError:  # a framing this reader cannot follow
            self.close_connection = True

    def do_any(self):
        if self.command == "GET" and self.path == "/seen":
            with lock:
                doc = list(kept)
                kept.clear()
            return self.answer(json.dumps(doc).encode(), "application/json")
        body, trailers = self.read_body()
        with lock:
            kept.append({
                "line": self.requestline,
                "fields": [[k, v] for k, v in self.headers.items()],
                "body": body.decode("latin-1"),
                "trailers": trailers,
            })
        self.answer(b"ok", "text/plain")

    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body, trailers = b"", []
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    break
                body += self.rfile.read(size)
                self.rfile.readline()
            while True:
                line = self.rfile.readline().strip()
                if not line:
                    return body, trailers
                k, _, v = line.decode("latin-1").partition(":")
                trailers.append([k.strip(), v.strip()])
        return self.rfile.read(int(self.headers.get("Content-Length") or 0)), []

    do_GET = do_POST = do_PUT = do_HEAD = do_OPTIONS = do_DELETE = do_get = do_any

    def answer(self, body, ctype):
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, *args):
        pass


http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
