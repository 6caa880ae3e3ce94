# A hostile app that wins the race TestWorkerCannotRedirectItsSocket's
# (testdata/swap) runs: it wraps the loader's listen, so that a link to
# another socket (SWAP_TARGET) is in its socket's place the moment the
# loader listens, before the loader reads its socket's inode.
import os, socket

_listen = socket.socket.listen

def _listen_and_swap(self, *args):
    _listen(self, *args)
    sock = os.environ["FERRY_SOCKET"]
    os.symlink(os.environ["SWAP_TARGET"], sock + ".link")
    os.rename(sock + ".link", sock)

socket.socket.listen = _listen_and_swap

def application(environ, start_response):
    body = ("%d worker\n" % os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
