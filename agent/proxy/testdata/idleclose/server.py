"""A Command app that closes keep-alive connections idle for 50 ms (or
$IDLE_TIMEOUT seconds), as many servers do on their own schedule (Node's
default is 5 s, gunicorn's 2 s). Each answer's body is how many
connections it has accepted so far. GET /unasked also sends a second
response nobody asked for, once the file $UNASKED_DIR/go exists, and then
creates $UNASKED_DIR/sent.
"""
import http.server
import os
import threading
import time

accepted = [0]
lock = threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = float(os.environ.get("IDLE_TIMEOUT", "0.05"))  # idle keep-alive connections are closed after this

    def setup(self):
        with lock:
            accepted[0] += 1
        super().setup()

    def do_GET(self):
        body = str(accepted[0]).encode() + b"\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        if self.path == "/unasked":
            self.wfile.flush()
            d = os.environ["UNASKED_DIR"]
            while not os.path.exists(os.path.join(d, "go")):  # the client has the answer
                time.sleep(0.01)
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nsmuggled\n")
            self.wfile.flush()
            open(os.path.join(d, "sent"), "w").close()

    do_POST = do_GET  # a POST without a body, which the proxy may not replay

    def log_message(self, *args):
        pass


http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
