"""A Command app that closes every kept connection unanswered: the first
request on a connection is answered, the next one is read and the
connection closed without an answer, as a worker does when its idle
keep-alive timeout fires in the instant the proxy writes a request on
the connection. The process stays.

Answers are "<pid> <n>", n being how many requests it closed unanswered
so far. GET /die (on any connection) writes the process's pid to a file
in $DEATHS_DIR, and the process exits without answering.
"""
import http.server
import os
import socket
import threading

unanswered = [0]
lock = threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        self.served = 0
        super().setup()

    def respond(self, body=True):
        if self.path == "/die":
            open(os.path.join(os.environ["DEATHS_DIR"], str(os.getpid())), "w").close()
            # Refuse connections from now on: at exit the listener may
            # close a moment after this connection, and a replay dialled in
            # that moment would land in its backlog instead of being
            # refused, which is not the case the test is about.
            self.server.socket.shutdown(socket.SHUT_RDWR)
            os._exit(1)
        self.served += 1
        if self.served > 1:  # a kept connection: close it unanswered
            with lock:
                unanswered[0] += 1
            self.close_connection = True
            return
        answer = b"%d %d\n" % (os.getpid(), unanswered[0])
        self.send_response(200)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        if body:
            self.wfile.write(answer)

    def do_GET(self):
        self.respond()

    def do_HEAD(self):
        self.respond(body=False)

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.respond()

    def log_message(self, *args):
        pass


http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
