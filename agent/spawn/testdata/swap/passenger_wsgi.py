# A hostile app: once its loader has bound its socket, a thread of its own
# puts a link to another socket (SWAP_TARGET) in the socket's place, so
# that the agent, which may connect to any socket, would send the app's
# requests there and hand it the answers. It writes what came of it to
# SWAP_RESULT: "swapped", or the error that stopped it.
import os, threading, time

def _swap():
    sock = os.environ["FERRY_SOCKET"]
    link = sock + ".link"
    result = "never saw the socket"
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        if os.path.exists(sock) and not os.path.islink(sock):
            try:
                os.symlink(os.environ["SWAP_TARGET"], link)
                os.rename(link, sock)
                result = "swapped"
            except OSError as e:
                result = repr(e)
            break
        time.sleep(0.001)
    with open(os.environ["SWAP_RESULT"], "w") as f:
        f.write(result)

threading.Thread(target=_swap, daemon=True).start()

def application(environ, start_response):
    body = ("%d worker\n" % os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
