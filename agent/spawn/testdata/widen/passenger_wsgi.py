# A hostile app: while its socket directory is still its own (at import,
# before the loader binds), it opens the directory to itself for good,
# by its mode (WIDEN=mode: 0777) or by an ACL entry naming its own user
# (WIDEN=acl), neither of which the agent's chown takes away. Once it has
# answered its first request (the agent has taken the directory back and
# checked the socket by then), it puts a link to another socket
# (SWAP_TARGET) in its socket's place, so that the agent's next connection
# would go there. It writes what came of it to SWAP_RESULT: "swapped", or
# the error that stopped it.
import os, struct, threading

_sock = os.environ["FERRY_SOCKET"]
_dir = os.path.dirname(_sock)

if os.environ["WIDEN"] == "mode":
    os.chmod(_dir, 0o777)
else:
    # system.posix_acl_access: version 2, then (tag, perm, id) entries:
    # the owner rwx, this user rwx, the group and others nothing, mask rwx.
    _any = 0xFFFFFFFF
    _acl = struct.pack("<I", 2) + b"".join(struct.pack("<HHI", *e) for e in [
        (0x01, 7, _any), (0x02, 7, os.getuid()), (0x04, 0, _any), (0x10, 7, _any), (0x20, 0, _any)])
    os.setxattr(_dir, "system.posix_acl_access", _acl)

_answered = threading.Event()


def _swap():
    _answered.wait()
    link = _sock + ".link"
    try:
        os.symlink(os.environ["SWAP_TARGET"], link)
        os.rename(link, _sock)
        result = "swapped"
    except OSError as e:
        result = repr(e)
    with open(os.environ["SWAP_RESULT"], "w") as f:
        f.write(result)


threading.Thread(target=_swap, daemon=True).start()


def application(environ, start_response):
    body = ("%d worker\n" % os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    _answered.set()
    return [body]
