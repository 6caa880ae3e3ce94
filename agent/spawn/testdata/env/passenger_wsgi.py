# Answers with the agent's variables as the worker sees them (one
# NAME=value a line), for the tests of whose value wins.
import os

NAMES = ["FERRY_APP_ROOT", "FERRY_STARTUP_FILE", "FERRY_SOCKET", "FERRY_READY_FD", "FERRY_REVISION", "PORT", "APP_OWN"]


def body():
    return "".join("%s=%s\n" % (n, os.environ.get(n, "")) for n in NAMES).encode()


def application(environ, start_response):
    b = body()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(b)))])
    return [b]
