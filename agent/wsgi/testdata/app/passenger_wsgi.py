"""The loader tests' application: one route per behaviour under test.

Routes under /raw/ are served as is; every other route is wrapped in
wsgiref.validate.validator, which turns any PEP 3333 violation by the app or
by the server into an AssertionError (a 500 and a traceback on stderr).
"""

import enum
import hashlib
import itertools
import json
import os
import sys
import time
from urllib.parse import parse_qs, unquote
from wsgiref.validate import validator

CLOSED = [0]  # how many times the server called close() on our iterables


class Closing:
    """A body iterable whose close() is observable through /closed."""

    def __init__(self, chunks, fail=False):
        self.chunks = chunks
        self.fail = fail

    def __iter__(self):
        for c in self.chunks:
            yield c
        if self.fail:
            raise RuntimeError("late boom")

    def close(self):
        CLOSED[0] += 1


class Markup(str):
    """A str subclass, as markupsafe's Markup and Django's SafeString are."""


class Blob(bytes):
    """A bytes subclass, as some frameworks' body chunks are."""


class Kind(str, enum.Enum):
    JSON = "application/json"


def reply(start_response, body, ctype="text/plain", status="200 OK", extra=()):
    start_response(status, [("Content-Type", ctype)] + list(extra))
    return [body]


def reply_json(start_response, obj):
    return reply(start_response, json.dumps(obj).encode(), "application/json")


def query(environ):
    return {k: v[0] for k, v in parse_qs(environ["QUERY_STRING"]).items()}


def app(environ, start_response):
    path = environ["PATH_INFO"]
    inp = environ["wsgi.input"]
    if path == "/":
        return reply(start_response, b"ok\n")
    if path.startswith("/environ"):
        return reply_json(start_response, {k: v for k, v in environ.items() if isinstance(v, (str, bool, tuple))})
    if path == "/sha256":
        h = hashlib.sha256()
        n = 0
        while True:
            b = inp.read(65536)
            if not b:
                break
            h.update(b)
            n += len(b)
        return reply_json(
            start_response,
            {"sha256": h.hexdigest(), "length": n, "te": environ.get("HTTP_TRANSFER_ENCODING"), "cl": environ.get("CONTENT_LENGTH")},
        )
    if path == "/lines":
        return reply_json(start_response, [line.decode("latin-1") for line in inp])
    if path == "/stream":
        n = int(query(environ).get("n", "3"))

        def gen():
            start_response("200 OK", [("Content-Type", "text/plain")])  # lazily, from the iterable
            for i in range(n):
                yield b""
                yield b"chunk %d\n" % i
            yield b""

        return gen()
    if path == "/write":
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"part1,")
        write(b"part2,")
        return [b"part3"]
    if path == "/length":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
        return iter([b"he", b"llo"])
    if path == "/latin1":
        return reply(start_response, b"ok", extra=[("X-Latin", "caf\xe9")])
    if path == "/nocontent":
        start_response("204 No Content", [])
        return []
    if path == "/hop":
        return reply(start_response, b"ok", extra=[("Connection", "close"), ("Keep-Alive", "timeout=5")])
    if path == "/close":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return Closing([b"a", b"b"])
    if path == "/event-stream":
        # As an endless event stream, iterated past its first chunk only for
        # GET: a HEAD that ran it would never end (here: a 500, as the
        # iterable raises before anything was sent).
        start_response("200 OK", [("Content-Type", "text/event-stream")])
        return Closing([b"", b"data: 1\n\n"], fail=True)
    if path == "/streamed":
        # As Werkzeug answers a HEAD to a streamed response: the same head
        # (no Content-Length: the length is unknown), and an empty body.
        start_response("200 OK", [("Content-Type", "text/csv")])
        if environ["REQUEST_METHOD"] == "HEAD":
            return ()
        return iter([b"a,b\n", b"c,d\n"])
    if path == "/endless":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return Closing(itertools.repeat(b"data\n"))
    if path == "/closed":
        return reply(start_response, b"%d" % CLOSED[0])
    if path == "/boom":
        raise RuntimeError("boom")
    if path == "/boom-late":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return Closing([b"first"], fail=True)
    if path == "/exc-info":
        try:
            raise ValueError("replaced")
        except ValueError:
            start_response("200 OK", [("Content-Type", "text/plain")])
            start_response("503 Service Unavailable", [("Content-Type", "text/plain")], sys.exc_info())
        return [b"replaced\n"]
    if path == "/wait":
        # Signal that the request started, then wait until the loader has
        # handled SIGTERM (its module is __main__), so the test needs no sleep.
        q = query(environ)
        with open(q["started"], "w"):
            pass
        loader = sys.modules["__main__"]
        deadline = time.monotonic() + 60
        while not loader._stopping and time.monotonic() < deadline:
            time.sleep(0.01)
        return reply(start_response, b"released\n")
    return reply(start_response, b"not found\n", status="404 Not Found")


def raw(environ, start_response):
    path = environ["PATH_INFO"]
    inp = environ["wsgi.input"]
    if path == "/raw/list":
        return reply(start_response, b"ok\n")
    if path == "/raw/readall":
        body = inp.read()
        return reply_json(start_response, {"sha256": hashlib.sha256(body).hexdigest(), "length": len(body)})
    if path == "/raw/mixed":
        out = [inp.readline(4), inp.readline(), inp.read(3), inp.readline(0), inp.read(0)]
        out += inp.readlines()
        out.append(inp.read())
        return reply_json(start_response, [b.decode("latin-1") for b in out])
    if path == "/raw/str-subclass":
        # Not under the validator: wsgiref's insists on type(v) is str.
        start_response(Markup("200 OK"), [(Markup("X-Safe"), Markup("yes")), ("Content-Type", Kind.JSON)])
        return [b"{}"]
    if path == "/raw/bytes-subclass":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [Blob(b"a bytes "), Blob(b"subclass")]
    if path == "/raw/header":
        # Not under the validator, which refuses control characters itself:
        # the value is the query string, as an app echoing input would send it.
        start_response("200 OK", [("Content-Type", "text/plain"), ("X-Value", unquote(environ["QUERY_STRING"], "latin-1"))])
        return [b"ok"]
    if path == "/raw/late-read":
        # Starts its answer, then reads the upload, as a streaming transform does.
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"receiving\n")
        return [b"got %d bytes\n" % len(inp.read())]
    if path == "/raw/str-in-list":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"bytes, then ", "a str"]
    return reply(start_response, b"not found\n", status="404 Not Found")


validated = validator(app)


def application(environ, start_response):
    if environ["PATH_INFO"].startswith("/raw/"):
        return raw(environ, start_response)
    return validated(environ, start_response)
