"""A WSGI app whose response takes a while to stream (12 MiB, in 64 KiB
chunks with a pause between), for client-disconnect tests."""
import time


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/octet-stream")])

    def body():
        for _ in range(200):
            yield b"x" * 65536
            time.sleep(0.01)

    return body()
