"""A Command app that keeps its connections open past each answer and
ignores a half-close, as a server that reads its connections only for
bytes does: after an answer it waits for the next request for $IDLE
seconds (600 by default), and the end of the stream (the proxy's
half-close, or its close) does not end the wait. Each connection has a
thread of its own. /stream?n=N answers N bytes, chunked (cl=1: with a
Content-Length): its head and 64 KiB at once (first=K: K bytes; hdr=conn:
a head with a Connection field naming another, hdr=trailer: with a
Trailer field, heads the proxy's front end does not relay itself),
GATE.reached made, and the rest once the file GATE exists, then
GATE.ended. /late makes
GATE.reached as its request comes, and answers (a Content-Length) once
GATE exists, then GATE.ended. Any other request is answered its pid. A
request body is read by its Content-Length."""
import os
import select
import socket
import socketserver
import time
from urllib.parse import parse_qs, urlsplit

GATE = os.environ["GATE"]
IDLE = float(os.environ.get("IDLE", "600"))


def touch(path):
    open(path, "w").close()


def wait_gate():
    while not os.path.exists(GATE):
        time.sleep(0.01)


def idle(c):
    """Whether the next request's bytes came within IDLE; an EOF is ignored."""
    deadline = time.monotonic() + IDLE
    while time.monotonic() < deadline:
        if select.select([c], [], [], deadline - time.monotonic())[0]:
            if c.recv(1, socket.MSG_PEEK):
                return True
            time.sleep(max(0, deadline - time.monotonic()))  # the end of the stream: ignored
    return False


def read_request(c, buf):
    while b"\r\n\r\n" not in buf:
        data = c.recv(65536)
        if not data:
            return None, buf
        buf += data
    head, _, buf = buf.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    target = lines[0].split(b" ")[1].decode()
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(buf) < length:
        data = c.recv(65536)
        if not data:
            return None, buf
        buf += data
    return target, buf[length:]


def chunk(b):
    return b"%x\r\n%s\r\n" % (len(b), b)


def answer(c, target):
    u = urlsplit(target)
    q = parse_qs(u.query)
    if u.path == "/stream":
        n = int(q["n"][0])
        k = int(q.get("first", ["65536"])[0])  # 64 KiB fills the proxy's buffer to its client: the head goes out
        first, rest = b"x" * k, b"x" * (n - k)
        extra = {"conn": b"Connection: X-Hop\r\nX-Hop: 1\r\n", "trailer": b"Trailer: X-Sum\r\n"}.get(q.get("hdr", [""])[0], b"")
        if q.get("cl") == ["1"]:
            c.sendall(b"HTTP/1.1 200 OK\r\n%sContent-Length: %d\r\n\r\n%s" % (extra, n, first))
        else:
            c.sendall(b"HTTP/1.1 200 OK\r\n%sTransfer-Encoding: chunked\r\n\r\n%s" % (extra, chunk(first)))
            rest = chunk(rest) + b"0\r\n\r\n"
        touch(GATE + ".reached")
        wait_gate()
        c.sendall(rest)
        touch(GATE + ".ended")
        return
    body = b"%d\n" % os.getpid()
    if u.path == "/late":
        touch(GATE + ".reached")
        wait_gate()
        body = b"late\n"
    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    if u.path == "/late":
        touch(GATE + ".ended")


class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        c, buf = self.request, b""
        try:
            while buf or idle(c):
                target, buf = read_request(c, buf)
                if target is None:
                    return
                answer(c, target)
        except OSError:
            pass


socketserver.ThreadingTCPServer.allow_reuse_address = True
socketserver.ThreadingTCPServer.daemon_threads = True
socketserver.ThreadingTCPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
