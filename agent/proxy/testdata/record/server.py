"""A Command app that says how each request's body reached it. A POST is
answered with JSON: the Content-Length and Transfer-Encoding it came with,
how many body bytes arrived and their SHA-256, and the trailers. GET /count
answers how many other requests have reached the app: counted as soon as
their head arrives, before their body. GET /hangup closes the connection
without an answer. POST /499 is answered with status 499. GET
/big?bytes=N answers N bytes; GET /die?bytes=N declares N, sends half, and
the process exits; GET /short?bytes=N declares N, sends half, and closes
the connection (the process lives on). HEAD answers /big's head.
"""
import hashlib
import http.server
import json
import os
import threading

seen = [0]
lock = threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        path, _, query = self.path.partition("?")
        if path == "/hangup":  # close the connection without an answer
            self.close_connection = True
            return
        if path in ("/big", "/die", "/short"):
            n = int(query.removeprefix("bytes="))
            self.send_response(200)
            self.send_header("Content-Length", str(n))
            self.end_headers()
            if path == "/die":  # half the body, then the process is gone
                self.wfile.write(b"x" * (n // 2))
                self.wfile.flush()
                os._exit(1)
            if path == "/short":  # half the body, then the connection is closed
                self.wfile.write(b"x" * (n // 2))
                self.close_connection = True
                return
            chunk = b"0123456789abcdef" * 4096
            for _ in range(n // len(chunk)):
                self.wfile.write(chunk)
            self.wfile.write(chunk[: n % len(chunk)])
            return
        self.answer({"count": seen[0]})

    def do_HEAD(self):  # /big's head
        self.send_response(200)
        self.send_header("Content-Length", self.path.partition("bytes=")[2])
        self.end_headers()

    def do_POST(self):
        with lock:
            seen[0] += 1
        digest, n, trailers = hashlib.sha256(), 0, {}
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    break
                data = self.rfile.read(size)
                digest.update(data)
                n += len(data)
                self.rfile.readline()
            while True:
                line = self.rfile.readline().strip()
                if not line:
                    break
                k, _, v = line.decode().partition(":")
                trailers[k.strip()] = v.strip()
        else:
            left = int(self.headers.get("Content-Length") or 0)
            while left:
                data = self.rfile.read(min(left, 65536))
                if not data:
                    break
                digest.update(data)
                n += len(data)
                left -= len(data)
        self.answer(status=499 if self.path == "/499" else 200, doc={
            "length": self.headers.get("Content-Length"),
            "te": self.headers.get("Transfer-Encoding"),
            "bytes": n,
            "sha256": digest.hexdigest(),
            "trailers": trailers,
        })

    def answer(self, doc, status=200):
        body = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
