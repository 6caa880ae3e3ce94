"""hello-wsgi: Ferry's sample WSGI application, used by docs, tests and benchmarks.

Every response carries X-Pid (the worker's pid) and X-Revision
($FERRY_REVISION), so a client can tell which process and revision served it.

Routes:
  /              200, body: the pid and a newline
  /slow?ms=N     the same, after sleeping N milliseconds
  /echo          the request body; with ?headers=1, the HTTP_* environ as JSON
  /env           JSON of REMOTE_ADDR, SERVER_NAME, SERVER_PORT, wsgi.url_scheme,
                 PATH_INFO and QUERY_STRING
  /alloc?mb=N    allocates N MiB more and holds it (memory-limit recycling);
                 body: the MiB held so far
  anything else  404

Environment:
  BOOT_DELAY        seconds (float) to sleep at import: a slow boot
  REQUEST_DELAY_MS  milliseconds to sleep in every request

Standard library only.
"""

import json
import os
import time
from urllib.parse import parse_qs

time.sleep(float(os.environ.get("BOOT_DELAY") or 0))

REQUEST_DELAY = float(os.environ.get("REQUEST_DELAY_MS") or 0) / 1000.0
REVISION = os.environ.get("FERRY_REVISION", "")
ENV_KEYS = ("REMOTE_ADDR", "SERVER_NAME", "SERVER_PORT", "wsgi.url_scheme", "PATH_INFO", "QUERY_STRING")

_held = []  # what /alloc allocated, kept for the life of the process


def _arg(environ, name, default):
    values = parse_qs(environ.get("QUERY_STRING", "")).get(name)
    try:
        return float(values[0]) if values else default
    except ValueError:
        return default


def _read_body(environ):
    inp = environ["wsgi.input"]
    length = environ.get("CONTENT_LENGTH")
    if length:
        return inp.read(int(length))
    if environ.get("HTTP_TRANSFER_ENCODING"):  # chunked: the server marks the end
        return inp.read()
    return b""


def application(environ, start_response):
    if REQUEST_DELAY:
        time.sleep(REQUEST_DELAY)
    path = environ.get("PATH_INFO") or "/"
    status = "200 OK"
    ctype = "text/plain"
    pid = str(os.getpid())

    if path == "/":
        body = pid.encode() + b"\n"
    elif path == "/slow":
        time.sleep(_arg(environ, "ms", 0) / 1000.0)
        body = pid.encode() + b"\n"
    elif path == "/echo":
        body = _read_body(environ)
        if _arg(environ, "headers", 0):
            ctype = "application/json"
            body = json.dumps({k: v for k, v in environ.items() if k.startswith("HTTP_")}, sort_keys=True).encode()
        else:
            ctype = environ.get("CONTENT_TYPE") or "application/octet-stream"
    elif path == "/env":
        ctype = "application/json"
        body = json.dumps({k: environ.get(k) for k in ENV_KEYS}, sort_keys=True).encode()
    elif path == "/alloc":
        mb = int(_arg(environ, "mb", 0))
        if mb > 0:
            _held.append(b"\x01" * (mb << 20))  # written, so it is resident
        body = b"%d\n" % (sum(len(b) for b in _held) >> 20)
    else:
        status = "404 Not Found"
        body = b"not found\n"

    start_response(
        status,
        [
            ("Content-Type", ctype),
            ("Content-Length", str(len(body))),
            ("X-Pid", pid),
            ("X-Revision", REVISION),
        ],
    )
    return [body]
