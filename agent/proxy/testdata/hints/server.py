"""A Command app that serves one request at a time, as a WSGI process does:
it accepts a connection only once it answered the one before (each answer
closes its connection). To /gate it sends an interim response (103 Early
Hints) at once, makes the file GATE.reached, and answers only once the
file GATE names exists. To /notice it sends nothing and waits for its
client to go, as a Go or Node server notices one gone: it makes the file
GATE.reached, and once it reads the end of the connection, GATE.noticed,
and closes it unanswered. Any other request it answers at once, with its
pid."""
import os
import select
import socket
import time

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
    path = data.split(b" ", 2)[1]
    if path == b"/notice":
        gate = os.environ["GATE"]
        open(gate + ".reached", "w").close()
        while True:
            select.select([c], [], [])
            if not c.recv(65536):
                open(gate + ".noticed", "w").close()
                return
    if path == b"/gate":
        c.sendall(b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n")
        gate = os.environ["GATE"]
        open(gate + ".reached", "w").close()
        while not os.path.exists(gate):
            time.sleep(0.01)
    body = b"%d\n" % os.getpid()
    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))


while True:
    conn, _ = ls.accept()
    try:
        handle(conn)
    except OSError:  # the proxy closed the connection: its request was abandoned
        pass
    finally:
        conn.close()
