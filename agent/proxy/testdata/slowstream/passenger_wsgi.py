"""A WSGI app whose /stream answer sleeps between its chunks, for tests of
a client that goes away partway through it. /stream?n=3&d=3&size=16&cl=0&first=0&gate=0:
n chunks of size bytes, d seconds apart, the first after first seconds;
cl=1 declares the whole length (Content-Length) rather than chunking.
When MARKS is set, the app makes MARKS/reached as it takes the request
(with gate=1, the first chunk then waits until the file MARKS/gate
exists), MARKS/began as it yields its first chunk, and writes
MARKS/closed, saying how many chunks it yielded, once the server closes
the iterable. Any other path answers the process's
pid."""
import os
import time
from urllib.parse import parse_qs


def application(environ, start_response):
    if environ["PATH_INFO"] != "/stream":
        body = str(os.getpid()).encode()
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]
    q = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
    n, d, size, first = int(q.get("n", 3)), float(q.get("d", 3)), int(q.get("size", 16)), float(q.get("first", 0))
    marks = os.environ.get("MARKS")
    if marks:
        open(os.path.join(marks, "reached"), "w").close()
    gate = os.path.join(marks, "gate") if marks and q.get("gate") == "1" else None
    headers = [("Content-Type", "application/octet-stream")]
    if q.get("cl") == "1":
        headers.append(("Content-Length", str(n * size)))
    start_response("200 OK", headers)
    return Stream(n, d, size, first, gate)


class Stream:
    def __init__(self, n, d, size, first, gate):
        self.n, self.d, self.size, self.first, self.gate, self.sent = n, d, size, first, gate, 0

    def __iter__(self):
        return self

    def __next__(self):
        if self.sent == self.n:
            raise StopIteration
        if self.sent:
            time.sleep(self.d)
        else:
            time.sleep(self.first)
            while self.gate and not os.path.exists(self.gate):
                time.sleep(0.01)
            marks = os.environ.get("MARKS")
            if marks:
                open(os.path.join(marks, "began"), "w").close()
        self.sent += 1
        return b"x" * self.size

    def close(self):
        marks = os.environ.get("MARKS")
        if marks:
            with open(os.path.join(marks, "closed.tmp"), "w") as f:
                f.write(str(self.sent))
            os.replace(os.path.join(marks, "closed.tmp"), os.path.join(marks, "closed"))
