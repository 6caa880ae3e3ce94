"""envecho: GET /NAME answers the worker's environment variable NAME (404
when it is unset). It prints nothing: what a test finds in the agent's log
came from the agent."""

import os


def application(environ, start_response):
    name = (environ.get("PATH_INFO") or "/").lstrip("/")
    value = os.environ.get(name)
    status = "200 OK" if value is not None else "404 Not Found"
    body = (value if value is not None else "unset").encode()
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
