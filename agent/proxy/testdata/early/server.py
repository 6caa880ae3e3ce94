"""A Command app that answers a request as soon as the first bytes of its
body arrive, without waiting for the rest (as an app refusing an upload
early does): the answer says how many body bytes it had. A proxy that held
the body back until it was complete would never get an answer."""
import os
import socket
import threading


def handle(c):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = c.recv(65536)
        if not chunk:
            c.close()
            return
        data += chunk
    body = data.split(b"\r\n\r\n", 1)[1]
    if not body:
        body = c.recv(65536)
    answer = b"got %d\n" % len(body)
    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(answer), answer))
    c.close()


ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", int(os.environ["PORT"])))
ls.listen(64)
while True:
    conn, _ = ls.accept()
    threading.Thread(target=handle, args=(conn,), daemon=True).start()
