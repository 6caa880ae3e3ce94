"""A Command app whose answers fail after their head. Any method:
  /die       a chunked head, then the process exits
  /badchunk  (or a path under it) a chunked head and a malformed chunk
             size; the process lives on
  /cut       a head declaring 8 MiB, 100 bytes of it, then the connection is
             closed; the process lives on
  /sent      a chunked head and a 256 KiB chunk, then the connection is
             closed; the process lives on
  /quiet?flag=PATH     a chunked head, then, once the file PATH exists, one
             event and the end
  /quietcut?flag=PATH  a chunked head, then, once the file PATH exists, the
             connection is closed; the process lives on
  /quietlongcut?flag=PATH  a head declaring 8 MiB, then, once the file PATH
             exists, the connection is closed; the process lives on
  anything else: 200 "ok"
"""
import os
import socket
import threading
import time

CHUNKED = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"


def serve(c):
    f = c.makefile("rb")
    try:
        while True:
            line = f.readline()
            if not line:
                return
            path, _, query = line.split(b" ")[1].partition(b"?")
            flag = query.partition(b"flag=")[2].decode()
            length = 0
            while True:
                h = f.readline()
                if h in (b"\r\n", b"\n", b""):
                    break
                k, _, v = h.partition(b":")
                if k.strip().lower() == b"content-length":
                    length = int(v.strip())
            if length:
                f.read(length)
            if path == b"/die":
                c.sendall(CHUNKED)
                os._exit(1)
            elif path == b"/badchunk" or path.startswith(b"/badchunk/"):
                c.sendall(CHUNKED + b"zz\r\n")
                return
            elif path == b"/cut":
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 8388608\r\n\r\n" + b"x" * 100)
                return
            elif path == b"/sent":
                c.sendall(CHUNKED + b"40000\r\n" + b"x" * 0x40000 + b"\r\n")
                return
            elif path in (b"/quiet", b"/quietcut", b"/quietlongcut"):
                if path == b"/quietlongcut":
                    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 8388608\r\n\r\n")
                else:
                    c.sendall(CHUNKED)
                while not os.path.exists(flag):
                    time.sleep(0.01)
                if path != b"/quiet":
                    return
                c.sendall(b"9\r\ndata: 1\n\n\r\n0\r\n\r\n")
            else:
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n")
    finally:
        c.close()


s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(os.environ["PORT"])))
s.listen(64)
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
