"""A Command app whose GET (or POST) /sse is a stream that idles: a chunked
response whose first event comes at once and the next ones every 10 s, as
server-sent events or a long poll do."""
import os
import socket
import threading
import time


def serve(c):
    f = c.makefile("rb")
    try:
        while True:
            head = b""
            while True:
                line = f.readline()
                if not line:
                    return
                head += line
                if line in (b"\r\n", b"\n"):
                    break
            length = 0
            for l in head.split(b"\r\n")[1:]:
                k, _, v = l.partition(b":")
                if k.strip().lower() == b"content-length":
                    length = int(v.strip())
            if length:
                f.read(length)
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
                      b"9\r\ndata: 1\n\n\r\n")
            for _ in range(3):
                time.sleep(10)
                c.sendall(b"9\r\ndata: 2\n\n\r\n")
            c.sendall(b"0\r\n\r\n")
    finally:
        c.close()


s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(os.environ["PORT"])))
s.listen(64)
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
