"""A Command app that stops accepting connections on SIGUSR1 but stays
alive: its socket then refuses connections, as a dying worker's does.
With $CLOSED_MARK set, it makes that file once its socket is closed.

Each request is answered with its body's length, the X-Pid header and
Connection: close, so every request needs a new connection.
"""
import os
import select
import signal
import socket
import time

closing = [False]
signal.signal(signal.SIGUSR1, lambda *a: closing.__setitem__(0, True))

ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", int(os.environ["PORT"])))
ls.listen(64)


def handle(c):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = c.recv(65536)
        if not chunk:
            return
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = c.recv(65536)
        if not chunk:
            return
        body += chunk
    answer = str(len(body)).encode()
    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nX-Pid: %d\r\nConnection: close\r\n\r\n%s"
              % (len(answer), os.getpid(), answer))


while True:
    if closing[0]:
        ls.close()
        if os.environ.get("CLOSED_MARK"):
            open(os.environ["CLOSED_MARK"], "w").close()
        while True:
            time.sleep(1)
    ready, _, _ = select.select([ls], [], [], 0.05)
    if ready:
        conn, _ = ls.accept()
        try:
            handle(conn)
        finally:
            conn.close()
