"""A WSGI app whose answer of a declared length stalls partway: its head
and first 100 bytes go out, then it sleeps ?ms=N milliseconds before the
other 900. X-Pid names the worker."""
import os
import time
from urllib.parse import parse_qs


def application(environ, start_response):
    ms = float(parse_qs(environ.get("QUERY_STRING", "")).get("ms", ["0"])[0])
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "1000"), ("X-Pid", str(os.getpid()))])

    def body():
        yield b"x" * 100
        time.sleep(ms / 1000.0)
        yield b"y" * 900

    return body()
