"""Ferry's WSGI loader: the worker side of every WSGI app.

The Ferry agent runs this file as ``python3 -u <this file>`` with the
application root as the working directory. It imports the application, serves
it over HTTP/1.1 on a Unix socket, and reports readiness on an inherited file
descriptor. Standard library only; Python 3.9 to 3.13.

Environment (set by the agent):

  FERRY_APP_ROOT      absolute application root, symlinks resolved once at
                      start: put first on sys.path and chdir'd to
  FERRY_STARTUP_FILE  file relative to the root exposing ``application``
                      (default passenger_wsgi.py)
  FERRY_SOCKET        absolute path of the Unix socket to listen on
  FERRY_READY_FD      inherited descriptor for the one readiness message
  FERRY_REVISION      informational; left in os.environ for the application

Readiness: exactly one JSON line is written on FERRY_READY_FD, then it is
closed. ``{"ready": true, "pid": N}`` once the application is imported and the
socket listens; ``{"error": "<one line>", "traceback": "<text>"}`` if the
application (or the socket) could not be set up, after which the process exits
with status 1. Tracebacks also go to stderr.

Serving: one request at a time, from a single-threaded poll loop over the
listening socket and every open connection, so an idle keep-alive connection
never holds up a request on another. Requests are parsed by hand (no
http.server). Signals: SIGTERM or SIGINT lets the request in progress finish,
answers requests already received, then closes everything and exits 0.
"""

import errno
import gc
import importlib
import inspect
import io
import json
import os
import re
import select
import signal
import socket
import stat
import sys
import time
import traceback
import types
from importlib.machinery import SourceFileLoader
from importlib.util import find_spec, module_from_spec, spec_from_file_location
from urllib.parse import unquote_to_bytes

MAX_HEADER_BYTES = 64 * 1024  # request line + headers; beyond: 431 and close
RECV_SIZE = 64 * 1024  # largest single read from a connection
DRAIN_LIMIT = 256 * 1024  # unread request body we read and discard to keep a connection
MAX_CHUNK_LINE = 4096  # a chunk-size line of a chunked request body
IO_TIMEOUT_MS = 300 * 1000  # longest wait for the client within one request
BACKLOG = 1024
TRACEBACK_LIMIT = 32 * 1024  # characters of traceback sent on the ready fd

_stopping = False  # set by SIGTERM / SIGINT


def _on_signal(signum, frame):
    global _stopping
    _stopping = True


class ClientDisconnected(OSError):
    """The client went away (or stalled past IO_TIMEOUT_MS) mid-request."""


class Abandoned(ClientDisconnected):
    """The proxy closed its side of the connection mid-answer: no one reads the rest."""


class BadRequestBody(ValueError):
    """The request body is not valid chunked encoding."""


class LoadError(Exception):
    """The application cannot be loaded; the message is the whole summary."""


# ---------------------------------------------------------------------------
# Socket helpers. Every connection is non-blocking; the blocking reads and
# writes a request needs wait with poll() on that one connection.


def _wait(sock, events):
    p = select.poll()
    p.register(sock, events)
    if not p.poll(IO_TIMEOUT_MS):
        raise ClientDisconnected(errno.ETIMEDOUT, "timed out waiting for the client")


def _recv(sock, n):
    while True:
        try:
            data = sock.recv(n)
        except BlockingIOError:
            _wait(sock, select.POLLIN)
            continue
        except OSError as e:
            raise ClientDisconnected(e.errno, str(e)) from None
        if not data:
            raise ClientDisconnected(errno.ECONNRESET, "the client closed the connection mid-request")
        return data


# How often, at most, a streamed answer looks whether the proxy closed its
# side (_left): a stream whose chunks come fast pays one look a second, a
# slow one (a long poll, server-sent events) one per chunk.
LOOK_EVERY = 1.0


def _left(sock):
    """Whether the proxy closed its side of the connection (read EOF on it).

    The proxy half-closes the connection of an answer its client went away
    from, and reads the rest (to the end its framing gives, or until the
    loader closes the connection, when it has none): nothing more is
    asked on a connection while an answer is under way, so EOF there (not
    bytes: a request body the application did not read) means no one
    awaits the answer.
    """
    try:
        return sock.recv(1, socket.MSG_PEEK) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def _sendall(sock, data):
    while True:
        try:
            n = sock.send(data)
        except BlockingIOError:
            n = 0
        except OSError as e:
            raise ClientDisconnected(e.errno, str(e)) from None
        if n == len(data):
            return
        data = memoryview(data)[n:]
        _wait(sock, select.POLLOUT)


# A socket error of sendfile's that means the client went away; any other
# (an I/O error reading the file, say) is the application's to hear about.
_GONE = frozenset((errno.EPIPE, errno.ECONNRESET, errno.ENOTCONN, errno.ESHUTDOWN, errno.ECONNABORTED))

# What sendfile says of a file it cannot send (/proc's, some FUSE file
# systems): the head is out, so the rest is read and sent instead.
_NO_SENDFILE = frozenset((errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP))


# The most one sendfile call is asked for: Linux's own cap on one call, and
# well inside the C ssize_t the count must fit (an app's Content-Length need not).
SENDFILE_MAX = 0x7FFFF000


def _sendfile(sock, fd, offset, count):
    """Send count bytes of the file fd from offset; return how many were sent.

    Fewer than count: the file ended first (it is shorter than the caller
    said, or shrank meanwhile).
    """
    out = sock.fileno()
    sent = 0
    while sent < count:
        try:
            left = count - sent
            n = os.sendfile(out, fd, offset + sent, left if left < SENDFILE_MAX else SENDFILE_MAX)
        except BlockingIOError:
            _wait(sock, select.POLLOUT)
            continue
        except OSError as e:
            if e.errno in _GONE:
                raise ClientDisconnected(e.errno, str(e)) from None
            if e.errno in _NO_SENDFILE:
                return sent + _send_read(sock, fd, offset + sent, count - sent)
            raise
        if not n:
            break
        sent += n
    return sent


def _send_read(sock, fd, offset, count):
    """_sendfile through Python: pread pieces of the file, sent in turn."""
    sent = 0
    while sent < count:
        left = count - sent
        data = os.pread(fd, left if left < RECV_SIZE else RECV_SIZE, offset + sent)
        if not data:
            break
        _sendall(sock, data)
        sent += len(data)
    return sent


def _sendv(sock, parts):
    try:
        n = sock.sendmsg(parts)
    except BlockingIOError:
        n = 0
    except OSError as e:
        raise ClientDisconnected(e.errno, str(e)) from None
    for p in parts:
        size = len(p)
        if n >= size:
            n -= size
            continue
        _sendall(sock, memoryview(p)[n:] if n else p)
        n = 0


# ---------------------------------------------------------------------------
# wsgi.input


class Input:
    """wsgi.input: the request body, streamed from the connection.

    Content-Length bodies never read past their end; chunked bodies are
    decoded as they are read, and whatever follows them is kept for the next
    request. Nothing is buffered beyond one socket read.
    """

    __slots__ = ("_sock", "_buf", "_left", "_chunked", "_cont", "_raw", "_chunk", "_done", "_bad", "_extra")

    def __init__(self, sock, rest, length, chunked, cont):
        self._sock = sock
        self._cont = cont  # Expect: 100-continue not answered yet
        self._chunked = chunked
        self._bad = False
        if chunked:
            self._raw = rest  # received, not yet decoded
            self._buf = b""
            self._chunk = 0  # >0: data left in chunk; 0: size line next; -1: CRLF next
            self._done = False
            self._left = 0
            self._extra = b""
        else:
            if len(rest) > length:
                self._buf = rest[:length]
                self._extra = rest[length:]
            else:
                self._buf = rest
                self._extra = b""
            self._left = length - len(self._buf)  # still on the wire
            self._raw = b""
            self._chunk = 0
            self._done = True

    # -- decoding

    def _more(self):
        """Return buffered body bytes, reading more if none; b"" at the end."""
        buf = self._buf
        if buf:
            return buf
        if self._cont and (self._left or not self._done):
            self._cont = False
            _sendall(self._sock, b"HTTP/1.1 100 Continue\r\n\r\n")
        if self._chunked:
            return self._more_chunked()
        left = self._left
        if not left:
            return b""
        data = _recv(self._sock, left if left < RECV_SIZE else RECV_SIZE)
        self._left = left - len(data)
        self._buf = data
        return data

    def _more_chunked(self):
        try:
            while not self._done:
                size = self._chunk
                if size > 0:
                    raw = self._raw
                    if raw:
                        if len(raw) <= size:
                            data = raw
                            self._raw = b""
                        else:
                            data = raw[:size]
                            self._raw = raw[size:]
                    else:
                        data = _recv(self._sock, size if size < RECV_SIZE else RECV_SIZE)
                    size -= len(data)
                    self._chunk = size if size else -1
                    self._buf = data
                    return data
                if size < 0:
                    self._fill(2)
                    if self._raw[:2] != b"\r\n":
                        raise BadRequestBody("malformed chunked request body: missing CRLF after chunk data")
                    self._raw = self._raw[2:]
                    self._chunk = 0
                    continue
                size = _chunk_size(self._line())
                if size:
                    self._chunk = size
                    continue
                trailers = 0  # last chunk: skip the trailer section
                while True:
                    line = self._line()
                    if not line:
                        break
                    trailers += len(line)
                    if trailers > MAX_HEADER_BYTES:
                        raise BadRequestBody("malformed chunked request body: trailers too large")
                self._done = True
            return b""
        except BadRequestBody:
            self._bad = True
            self._done = True
            raise

    def _fill(self, n):
        while len(self._raw) < n:
            self._raw += _recv(self._sock, RECV_SIZE)

    def _line(self):
        raw = self._raw
        start = 0
        while True:
            i = raw.find(b"\r\n", start)
            if i >= 0:
                self._raw = raw[i + 2 :]
                return raw[:i]
            if len(raw) > MAX_CHUNK_LINE:
                raise BadRequestBody("malformed chunked request body: line too long")
            start = len(raw) - 1 if raw else 0
            raw += _recv(self._sock, RECV_SIZE)
            self._raw = raw

    # -- the file-like interface (PEP 3333)

    def read(self, size=-1):
        if size is None or size < 0:
            parts = []
            while True:
                buf = self._more()
                if not buf:
                    break
                parts.append(buf)
                self._buf = b""
            return b"".join(parts)
        if not size:
            return b""
        buf = self._more()
        if len(buf) >= size:
            self._buf = buf[size:]
            return buf[:size]
        self._buf = b""
        parts = [buf]
        got = len(buf)
        while got < size:
            buf = self._more()
            if not buf:
                break
            need = size - got
            if len(buf) > need:
                self._buf = buf[need:]
                buf = buf[:need]
            else:
                self._buf = b""
            parts.append(buf)
            got += len(buf)
        return b"".join(parts)

    def readline(self, size=-1):
        if size is None:
            size = -1
        parts = []
        while size:
            buf = self._more()
            if not buf:
                break
            end = len(buf) if size < 0 or size > len(buf) else size
            i = buf.find(b"\n", 0, end)
            if i >= 0:
                end = i + 1
            parts.append(buf[:end])
            self._buf = buf[end:]
            if size > 0:
                size -= end
            if i >= 0:
                break
        return b"".join(parts)

    def readlines(self, hint=-1):
        if hint is None:
            hint = -1
        lines = []
        total = 0
        while True:
            line = self.readline()
            if not line:
                break
            lines.append(line)
            total += len(line)
            if 0 < hint <= total:
                break
        return lines

    def __iter__(self):
        return self

    def __next__(self):
        line = self.readline()
        if not line:
            raise StopIteration
        return line

    # -- after the response

    def can_drain(self):
        """Whether what the application left of the body may be read and discarded.

        False when it is more than finish() reads, as far as the loader knows
        by now: the response head, which asks this, says Connection: close
        then. A chunked body shows its length only chunk by chunk: one whose
        next chunks take it over the limit is closed without a word.
        """
        if self._bad:
            return False
        if self._chunked:
            if self._done:
                return True
            return not self._cont and len(self._buf) + self._known_chunk() <= DRAIN_LIMIT
        return len(self._buf) + self._left <= DRAIN_LIMIT and not (self._cont and self._left)

    def _known_chunk(self):
        """The chunk data still to come that is known: the current chunk's, or the next one's if its size line is here."""
        size = self._chunk
        if size > 0:
            return size
        raw = self._raw
        start = 0
        if size < 0:  # the CRLF after a chunk's data comes first
            if raw[:2] != b"\r\n":
                return 0
            start = 2
        i = raw.find(b"\r\n", start)
        if i < 0:
            return 0
        try:
            return _chunk_size(raw[start:i])
        except BadRequestBody:
            return DRAIN_LIMIT + 1  # finish() would fail on it

    def finish(self):
        """Discard the unread body; return the bytes that follow it, or None to close."""
        if not self.can_drain():
            return None
        budget = DRAIN_LIMIT
        try:
            while True:
                buf = self._more()
                if not buf:
                    break
                self._buf = b""
                budget -= len(buf)
                if budget < 0:
                    return None
        except (ClientDisconnected, BadRequestBody):
            return None
        return self._raw if self._chunked else self._extra


_HEX = re.compile(rb"[0-9A-Fa-f]+").fullmatch


def _chunk_size(line):
    """The size a chunk-size line says, its extensions ignored."""
    i = line.find(b";")
    if i >= 0:
        line = line[:i]
    line = line.strip(b" \t")
    if not line or len(line) > 16 or not _HEX(line):
        raise BadRequestBody("malformed chunked request body: bad chunk size")
    return int(line, 16)


_EMPTY_INPUT = Input(None, b"", 0, False, False)


# ---------------------------------------------------------------------------
# wsgi.file_wrapper


class FileWrapper:
    """wsgi.file_wrapper (PEP 3333's "Optional Platform-Specific File Handling").

    Returned by the application, it lets Response.send_file send a regular
    file with os.sendfile: the file's bytes go from the page cache to the
    socket without passing through Python. Anywhere else (inside a
    middleware's iterable, say) it is an ordinary iterable of read(blksize)
    pieces.
    """

    __slots__ = ("filelike", "blksize", "left")

    def __init__(self, filelike, blksize=8192):
        self.filelike = filelike
        self.blksize = blksize
        self.left = None  # the most the loader still sends, when it knows (the app's Content-Length)

    def __iter__(self):
        return self

    def __next__(self):
        n = self.blksize
        left = self.left
        if left is not None:
            if left <= 0:
                raise StopIteration  # read no further than a Content-Length allows
            if left < n:
                n = left
        data = self.filelike.read(n)
        if not data:
            raise StopIteration
        if left is not None:
            self.left = left - len(data)
        return data

    def close(self):
        close = getattr(self.filelike, "close", None)
        if close is not None:
            close()

    # Werkzeug's _RangeWrapper seeks the wrapper (for a Range request)
    # rather than read up to the range's start when it can.

    def seekable(self):
        seekable = getattr(self.filelike, "seekable", None)
        return bool(seekable and seekable())

    def seek(self, offset, whence=0):
        return self.filelike.seek(offset, whence)

    def tell(self):
        return self.filelike.tell()


def _file_span(f):
    """(fd, offset, size) of the regular file under f from its position, or None.

    None for what sendfile must not send: no real descriptor (BytesIO), not a
    regular file (a pipe), or a file-like whose bytes are not its
    descriptor's (text mode; a GzipFile, whose fileno() is the compressed
    file's).
    """
    if isinstance(f, io.TextIOBase) or (isinstance(f, io.BufferedIOBase) and not isinstance(f, (io.BufferedReader, io.BufferedRandom))):
        return None
    try:
        fd = f.fileno()
        if type(fd) is not int:
            return None
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None
        tell = getattr(f, "tell", None)  # a buffered file's position, which the descriptor's is ahead of
        pos = tell() if tell is not None else os.lseek(fd, 0, os.SEEK_CUR)
    except Exception:  # the app's own file-like may fail any way it likes: iterate it instead
        return None
    if type(pos) is not int or pos < 0:
        return None
    return fd, pos, max(st.st_size - pos, 0)


# ---------------------------------------------------------------------------
# The response: start_response, write, framing.

_NOBODY, _LENGTH, _CHUNKED, _EOF = 1, 2, 3, 4

_RESPONSE_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+").fullmatch
_HOP_BY_HOP = frozenset(
    ("connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer", "trailers", "transfer-encoding", "upgrade")
)
_response_kinds = {}  # header name -> 0 plain, 1 content-length, 2 hop-by-hop, 3 connection


# The control characters a status or field value may not hold: all but
# HTAB (RFC 9110 5.5). A client's HTTP parser (the proxy's) refuses the head.
# Looked for only in a str that is not isprintable(), which is rare and
# cheaper to ask than a regular expression.
_CTL = re.compile("[\x00-\x08\x0a-\x1f\x7f]").search


def _response_kind(name):
    if type(name) is not str:
        raise TypeError("header names must be str, not %s" % type(name).__name__)
    if not _RESPONSE_NAME(name):
        raise ValueError("invalid header name %r" % name)
    lname = name.lower()
    if lname == "content-length":
        kind = 1
    elif lname == "connection":
        kind = 3
    elif lname in _HOP_BY_HOP:
        kind = 2
    else:
        kind = 0
    if len(_response_kinds) < 1024:
        _response_kinds[name] = kind
    return kind


def _not_latin1(out):
    """Say which of a head's status and values (out[1::4]) latin-1 cannot encode."""
    for i in range(1, len(out), 4):
        try:
            out[i].encode("latin-1")
        except UnicodeEncodeError:
            what = "the status" if i == 1 else "header %r" % out[i - 2]
            return "%s holds a character that is not latin-1, as PEP 3333 requires: %r" % (what, out[i])
    return "the response head is not latin-1"


class Response:
    """One response: PEP 3333's start_response and write, and the framing.

    Headers are sent with the first non-empty body chunk, or at the end. The
    framing is the application's Content-Length if it set one, else a length
    Ferry knows (a list body, or an empty one), else chunked (HTTP/1.1) or
    close-delimited (HTTP/1.0). A response without a body (HEAD, 204, 304)
    has the same head, and the iterable is not iterated past the chunk
    that sent it: a HEAD to an endless stream must end. Hop-by-hop headers
    from the application are dropped; "Connection: close" among them closes
    the connection afterwards.
    """

    __slots__ = ("sock", "head_req", "http11", "keep", "inp", "status", "code", "block", "app_cl", "mode", "left", "hint", "over", "env", "look")

    def __init__(self, sock, head_req, http11, keep, inp, env=None):
        self.sock = sock
        self.env = env  # for a log line
        self.over = 0  # bytes the application gave past its Content-Length
        self.head_req = head_req
        self.http11 = http11
        self.keep = keep
        self.inp = inp
        self.status = None
        self.mode = None  # set when the headers are sent
        self.app_cl = None
        self.hint = None
        self.look = None  # when to look next whether the proxy left (stay); None: not yet asked

    def start_response(self, status, headers, exc_info=None):
        if exc_info:
            try:
                if self.mode is not None:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif self.status is not None:
            raise AssertionError("start_response() called a second time without exc_info")
        if type(status) is not str:
            if not isinstance(status, str):
                raise TypeError("status must be str, not %s" % type(status).__name__)
            status = str.__str__(status)  # a str subclass (a StrEnum, Markup): its plain str
        code = status[:3]
        if len(status) < 4 or status[3] != " " or not (code.isascii() and code.isdigit()):
            raise ValueError("status must look like '200 OK', not %r" % status)
        if code < "200":  # the proxy reads past a 1xx for the final answer, which would never come
            raise ValueError("status %r is not a final status (a 1xx is interim: its client would wait for another answer)" % status)
        if not status.isprintable() and _CTL(status):
            raise ValueError("the status contains a control character: %r" % status)
        if type(headers) is not list:
            raise TypeError("headers must be a list, not %s" % type(headers).__name__)
        out = ["HTTP/1.1 ", status, "\r\n"]
        cl = None
        close = False
        kinds = _response_kinds
        for h in headers:
            if type(h) is not tuple or len(h) != 2:
                raise TypeError("each header must be a (name, value) tuple, not %r" % (h,))
            name, value = h
            if type(value) is not str:
                if not isinstance(value, str):
                    raise TypeError("header values must be str, not %s (header %r)" % (type(value).__name__, name))
                value = str.__str__(value)
            if not value.isprintable() and _CTL(value):
                raise ValueError("header %r contains a control character: %r" % (name, value))
            if type(name) is not str and isinstance(name, str):
                name = str.__str__(name)
            kind = kinds.get(name) if type(name) is str else None
            if kind is None:
                kind = _response_kind(name)
            if kind:
                if kind == 1:
                    v = value.strip()
                    if not (v.isascii() and v.isdigit()) or (cl is not None and int(v) != cl):
                        raise ValueError("invalid Content-Length %r" % value)
                    cl = int(v)
                else:
                    if kind == 3 and "close" in value.lower():
                        close = True
                    continue
            out += (name, ": ", value, "\r\n")
        try:
            self.block = "".join(out).encode("latin-1")
        except UnicodeEncodeError:
            raise ValueError(_not_latin1(out)) from None
        self.code = int(code)
        self.app_cl = cl
        self.status = status
        if close:
            self.keep = False
        return self.app_write

    def app_write(self, data):
        """PEP 3333's write() callable: write(), once the proxy is found still there.

        As between the chunks of a streamed iterable (stay), an application
        that writes its answer in a loop of its own (a download, a long poll)
        learns that its client went away: write() raises Abandoned, an
        OSError, which PEP 3333 lets it raise.
        """
        try:
            self.stay()
        except Abandoned as e:
            e.in_write = True  # _log_stopped says where it was raised
            raise
        self.write(data)

    def stay(self):
        """Raise Abandoned if the proxy closed its side of the connection.

        It looks LOOK_EVERY at most, the first call starting the clock: a
        stream whose chunks come fast pays one look a second, a slow one
        (a long poll, server-sent events) one per chunk. Once the proxy is
        found gone, each call raises.
        """
        now = time.monotonic()
        look = self.look
        if look is None:
            self.look = now + LOOK_EVERY
        elif now >= look:
            if _left(self.sock):
                raise Abandoned(errno.ECONNRESET, "the proxy closed the connection mid-answer")
            self.look = now + LOOK_EVERY

    def _begin(self, total):
        """Settle the framing; return the response head."""
        if self.status is None:
            raise AssertionError("the application produced body data before calling start_response()")
        code = self.code
        keep = self.keep and not _stopping
        cl = self.app_cl
        extra = b""
        if self.head_req or code < 200 or code == 204 or code == 304:
            mode = _NOBODY
            # Only a length a GET would say (a list body's): none when no body
            # bytes came, as apps (Werkzeug) answer a HEAD with an empty body.
            if self.head_req and cl is None and total and code >= 200 and code != 204 and code != 304:
                extra = b"Content-Length: %d\r\n" % total
        elif cl is not None:
            mode = _LENGTH
            self.left = cl
        elif total is not None:
            mode = _LENGTH
            self.left = total
            extra = b"Content-Length: %d\r\n" % total
        elif self.http11:
            mode = _CHUNKED
            extra = b"Transfer-Encoding: chunked\r\n"
        else:
            mode = _EOF
            keep = False
        inp = self.inp
        if inp is not None:
            if keep and not inp.can_drain():
                keep = False
            inp._cont = False  # a 100 Continue after this head would land in its body
        if not keep:
            extra += b"Connection: close\r\n"
        elif not self.http11:
            extra += b"Connection: keep-alive\r\n"
        self.keep = keep
        self.mode = mode
        return self.block + extra + b"\r\n"

    def write(self, data):
        if type(data) is not bytes:
            if not isinstance(data, bytes):
                raise TypeError("response body data must be bytes, not %s" % type(data).__name__)
            data = bytes(data)  # a bytes subclass, as gunicorn takes it
        if not data:
            return
        mode = self.mode
        if mode is None:
            head = self._begin(self.hint)
            mode = self.mode
        else:
            head = None
        if mode == _CHUNKED:
            size = b"%x\r\n" % len(data)
            parts = [head + size if head else size, data, b"\r\n"]
        elif mode == _LENGTH:
            left = self.left
            if len(data) > left:
                self.over += len(data) - left
                data = data[:left]  # more than its Content-Length: cut, then close (finish says so)
                self.keep = False
            self.left = left - len(data)
            parts = [head, data] if head else [data]
        elif mode == _EOF:
            parts = [head, data] if head else [data]
        elif head:
            parts = [head]
        else:
            return
        _sendv(self.sock, parts)

    def send_file(self, wrapper):
        """Answer with a wsgi.file_wrapper's file; return False to iterate it instead.

        A regular file goes out with sendfile, as many bytes as the app's
        Content-Length says (else the file's size from its position, which
        the head then says: the length is known, so nothing is chunked). A
        file that ends first leaves self.left set: finish() closes the
        connection, as for any body short of its length. A response without
        a body never touches the file.
        """
        span = _file_span(wrapper.filelike)
        if span is None:
            if self.head_req or self.code == 204 or self.code == 304:
                _sendall(self.sock, self._begin(None))
                return True
            wrapper.left = self.app_cl
            return False
        fd, pos, size = span
        head = self._begin(size)
        if self.mode != _LENGTH:
            _sendall(self.sock, head)
            return True
        count = self.left
        _sendall(self.sock, head)
        self.left = count - _sendfile(self.sock, fd, pos, count)
        return True

    def finish(self):
        mode = self.mode
        if mode is None:
            if self.status is None:
                raise AssertionError("the application returned without calling start_response()")
            _sendall(self.sock, self._begin(0))
            mode = self.mode
        elif mode == _CHUNKED:
            _sendall(self.sock, b"0\r\n\r\n")
        if mode == _LENGTH and self.left:
            self.keep = False  # shorter than its Content-Length: the client must see EOF
        if mode == _LENGTH and (self.left or self.over) and self.app_cl is not None:
            self.mismatch()

    def mismatch(self):
        """Log an answer whose body disagrees with the application's Content-Length."""
        declared = self.app_cl
        env = self.env or {}
        where = "%s %s" % (env.get("REQUEST_METHOD"), env.get("PATH_INFO"))
        if self.over:
            what = (
                "gave %d bytes, more than its Content-Length (%d): the answer was cut at %d bytes and the connection closed"
                % (declared + self.over, declared, declared)
            )
        else:
            what = (
                "gave %d bytes, fewer than its Content-Length (%d): the connection was closed, and the client gets the answer"
                " cut short (the agent answers 502 when it had sent none of it)" % (declared - self.left, declared)
            )
        sys.stderr.write("ferry-wsgi: the answer to %s %s; set Content-Length to the body's length, or leave it out\n" % (where, what))
        sys.stderr.flush()

    def error(self, inp):
        """Answer 500 if nothing was sent yet; return whether to keep the connection."""
        keep = self.keep and not _stopping and (inp is None or inp.can_drain())
        head = _simple_head(500, "Internal Server Error", len(_BODY_500), keep, self.http11)
        self.mode = _NOBODY
        _sendall(self.sock, head if self.head_req else head + _BODY_500)
        return keep


_BODY_500 = b"Internal Server Error\n"


def _simple_head(code, reason, length, keep, http11):
    conn = b"" if keep and http11 else (b"Connection: keep-alive\r\n" if keep else b"Connection: close\r\n")
    return b"HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\n%s\r\n" % (
        code,
        reason.encode("ascii"),
        length,
        conn,
    )


def _simple_close(code, reason):
    body = reason.encode("ascii") + b"\n"
    return _simple_head(code, reason, len(body), False, True) + body


_R400 = _simple_close(400, "Bad Request")
_R431 = _simple_close(431, "Request Header Fields Too Large")
_R501 = _simple_close(501, "Not Implemented")
_R505 = _simple_close(505, "HTTP Version Not Supported")


# ---------------------------------------------------------------------------
# Request parsing.

_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+").fullmatch
_VERSION = re.compile(rb"HTTP/[0-9]\.[0-9]").fullmatch
_METHODS = {m: m.decode() for m in (b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"PATCH", b"OPTIONS", b"TRACE", b"CONNECT")}

# header name bytes -> environ key; "" means dropped
_header_keys = {b"Content-Type": "CONTENT_TYPE", b"Content-Length": "CONTENT_LENGTH"}


def _header_key(name):
    """The environ key of a request header name; "" to drop it, None if invalid."""
    if not _TOKEN(name):
        return None
    if b"_" in name:
        # HTTP_X_FOO could then come from X-Foo or X_Foo: drop the
        # underscore spelling so a client cannot spoof a header a proxy sets.
        key = ""
    else:
        key = name.decode("ascii").upper().replace("-", "_")
        if key != "CONTENT_TYPE" and key != "CONTENT_LENGTH":
            key = "HTTP_" + key
            if key == "HTTP_PROXY":
                key = ""  # httpoxy
    if len(_header_keys) < 2048:
        _header_keys[name] = key
    return key


_server_names = {}  # (host, scheme) -> (SERVER_NAME, SERVER_PORT)


def _server_name(host, scheme):
    hit = _server_names.get((host, scheme))
    if hit is not None:
        return hit
    default = "443" if scheme == "https" else "80"
    if not host:
        name, port = "localhost", default
    elif host[0] == "[":  # IPv6 literal
        i = host.find("]")
        name, port = (host[: i + 1], host[i + 2 :]) if i > 0 and host[i + 1 : i + 2] == ":" else (host, "")
    else:
        name, sep, port = host.rpartition(":")
        if not sep:
            name, port = host, ""
    if not (port.isascii() and port.isdigit()):
        port = default
    hit = (name or "localhost", port)
    if len(_server_names) < 256:
        _server_names[(host, scheme)] = hit
    return hit


def _tokens(value):
    return [t.strip() for t in value.lower().split(",")]


# ---------------------------------------------------------------------------
# The server.


class Conn:
    __slots__ = ("sock", "fd", "pending")

    def __init__(self, sock):
        self.sock = sock
        self.fd = sock.fileno()
        self.pending = b""  # received bytes of a request not yet complete


class Server:
    def __init__(self, app, lsock, wake_fd):
        self.app = app
        self.lsock = lsock
        self.lfd = lsock.fileno()
        self.wake_fd = wake_fd
        self.conns = {}
        if hasattr(select, "epoll"):
            self.poller = select.epoll()
            self.pollin = select.EPOLLIN
            self.forever = -1
        else:
            self.poller = select.poll()
            self.pollin = select.POLLIN
            self.forever = None
        self.poller.register(self.lfd, self.pollin)
        self.poller.register(wake_fd, self.pollin)
        self.rbuf = bytearray(MAX_HEADER_BYTES + RECV_SIZE)
        self.rview = memoryview(self.rbuf)
        self.base = {
            "SCRIPT_NAME": "",
            "SERVER_SOFTWARE": "ferry-wsgi",
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": False,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
            "wsgi.input_terminated": True,
            "wsgi.file_wrapper": FileWrapper,
        }

    def run(self):
        poll = self.poller.poll
        forever = self.forever
        lfd = self.lfd
        wake_fd = self.wake_fd
        conns = self.conns
        while not _stopping:
            for fd, _ in poll(forever):
                if fd == lfd:
                    self.accept()
                elif fd == wake_fd:
                    try:
                        while os.read(wake_fd, 512):
                            pass
                    except OSError:
                        pass
                else:
                    conn = conns.get(fd)
                    if conn is not None:
                        self.readable(conn)
                if _stopping:
                    break
        self.shutdown()

    def shutdown(self):
        """Stop accepting, answer requests already received, close every connection."""
        while True:  # connections the kernel already accepted for us
            try:
                sock, _ = self.lsock.accept()
            except OSError:
                break
            sock.setblocking(False)
            conn = Conn(sock)
            self.conns[conn.fd] = conn
            self.poller.register(conn.fd, self.pollin)
        self.lsock.close()
        try:
            events = self.poller.poll(0)
        except OSError:
            events = []
        for fd, _ in events:
            conn = self.conns.get(fd)
            if conn is not None:
                self.readable(conn)
        for conn in list(self.conns.values()):
            self.close(conn)

    def accept(self):
        while True:
            try:
                sock, _ = self.lsock.accept()
            except BlockingIOError:
                return
            except OSError as e:
                if e.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    sys.stderr.write("ferry-wsgi: cannot accept a connection: %s\n" % e)
                    time.sleep(0.1)  # the connection stays queued; do not spin
                return
            sock.setblocking(False)
            conn = Conn(sock)
            self.conns[conn.fd] = conn
            self.poller.register(conn.fd, self.pollin)

    def close(self, conn):
        if self.conns.pop(conn.fd, None) is not None:
            try:
                self.poller.unregister(conn.fd)
            except (OSError, ValueError, KeyError):
                pass
        try:
            conn.sock.close()
        except OSError:
            pass

    def readable(self, conn):
        try:
            n = conn.sock.recv_into(self.rbuf)
        except BlockingIOError:
            return
        except OSError:
            self.close(conn)
            return
        if not n:
            self.close(conn)
            return
        data = self.rview[:n].tobytes()
        if conn.pending:
            data = conn.pending + data
            conn.pending = b""
        try:
            self.process(conn, data)
        except ClientDisconnected:
            self.close(conn)
        except Exception:
            sys.stderr.write("ferry-wsgi: internal error, closing the connection\n")
            traceback.print_exc()
            self.close(conn)

    def reject(self, conn, response):
        try:
            conn.sock.send(response)
        except OSError:
            pass
        self.close(conn)

    def process(self, conn, data):
        """Serve every complete request in data; keep the rest for later."""
        while data:
            if data[:1] in (b"\r", b"\n"):
                data = data.lstrip(b"\r\n")  # RFC 9112 2.2: ignore blank lines before a request
                continue
            end = data.find(b"\r\n\r\n")
            if end < 0:
                if len(data) > MAX_HEADER_BYTES:
                    self.reject(conn, _R431)
                elif data.find(b"\n\n") >= 0:
                    self.reject(conn, _R400)
                else:
                    conn.pending = data
                return
            if end > MAX_HEADER_BYTES:
                self.reject(conn, _R431)
                return
            data = self.request(conn, data[:end], data[end + 4 :])
            if data is None:
                self.close(conn)
                return
            if _stopping:
                conn.pending = data
                return

    def request(self, conn, head, rest):
        """Serve one request; return the bytes after it, or None to close."""
        lines = head.split(b"\r\n")
        n = len(lines)
        if head.count(b"\n") != n - 1 or head.count(b"\r") != n - 1 or b"\0" in head:
            return self.reject(conn, _R400)
        parts = lines[0].split(b" ")
        if len(parts) != 3:
            return self.reject(conn, _R400)
        method, target, version = parts
        if version == b"HTTP/1.1":
            http11 = True
        elif version == b"HTTP/1.0":
            http11 = False
        elif _VERSION(version):
            return self.reject(conn, _R505)
        else:
            return self.reject(conn, _R400)
        m = _METHODS.get(method)
        if m is None:
            if not _TOKEN(method):
                return self.reject(conn, _R400)
            m = method.decode("ascii")

        env = self.base.copy()
        keys = _header_keys
        for i in range(1, n):
            line = lines[i]
            c = line.find(b":")
            if c <= 0:
                return self.reject(conn, _R400)
            name = line[:c]
            key = keys.get(name)
            if key is None:
                key = _header_key(name)
                if key is None:
                    return self.reject(conn, _R400)
            if not key:
                continue
            value = line[c + 1 :].strip(b" \t").decode("latin-1")
            if key in env:  # one value, as RFC 9110 5.3 joins them ("a, b": as one line would say it)
                env[key] += ("; " if key == "HTTP_COOKIE" else ", ") + value
            else:
                env[key] = value

        env["REQUEST_METHOD"] = m
        env["SERVER_PROTOCOL"] = "HTTP/1.1" if http11 else "HTTP/1.0"

        raw_target = target
        if target[:1] != b"/":
            lower = target[:8].lower()
            if lower.startswith(b"http://") or lower.startswith(b"https://"):
                i = target.find(b"/", target.find(b"//") + 2)
                target = target[i:] if i >= 0 else b"/"
            elif target != b"*":
                return self.reject(conn, _R400)
        q = target.find(b"?")
        if q < 0:
            path = target
            env["QUERY_STRING"] = ""
        else:
            path = target[:q]
            env["QUERY_STRING"] = target[q + 1 :].decode("latin-1")
        if b"%" in path:
            path = unquote_to_bytes(path)
        env["PATH_INFO"] = path.decode("latin-1")
        uri = target.decode("latin-1")
        env["REQUEST_URI"] = uri
        env["RAW_URI"] = uri if target is raw_target else raw_target.decode("latin-1")  # gunicorn's

        # The proxy in front sets X-Forwarded-*; a comma list ends with the
        # value the nearest (trusted) proxy added.
        scheme = "http"
        v = env.get("HTTP_X_FORWARDED_PROTO")
        if v is not None:
            v = v.rpartition(",")[2].strip().lower()
            if v == "https":
                scheme = "https"
                env["wsgi.url_scheme"] = "https"
                env["HTTPS"] = "on"
        v = env.get("HTTP_X_FORWARDED_HOST") or env.get("HTTP_HOST")
        if v and "," in v:
            v = v.rpartition(",")[2].strip()
        env["SERVER_NAME"], env["SERVER_PORT"] = _server_name(v, scheme)
        v = env.get("HTTP_X_FORWARDED_FOR")
        env["REMOTE_ADDR"] = (v.rpartition(",")[2].strip() or "127.0.0.1") if v else "127.0.0.1"

        v = env.get("HTTP_CONNECTION")
        if v is None:
            keep = http11
        elif http11:
            keep = "close" not in _tokens(v)
        else:
            keep = "keep-alive" in _tokens(v)

        length = 0
        chunked = False
        te = env.get("HTTP_TRANSFER_ENCODING")
        cl = env.get("CONTENT_LENGTH")
        if te is not None:
            if cl is not None or not http11:
                return self.reject(conn, _R400)
            codings = _tokens(te)
            if codings != ["chunked"]:
                return self.reject(conn, _R501 if codings[-1] == "chunked" else _R400)
            chunked = True
        elif cl is not None:
            if not (cl.isascii() and cl.isdigit()):
                values = set(_tokens(cl))
                if len(values) != 1:
                    return self.reject(conn, _R400)
                cl = values.pop()
                if not (cl.isascii() and cl.isdigit()):
                    return self.reject(conn, _R400)
                env["CONTENT_LENGTH"] = cl
            length = int(cl)

        if chunked or length:
            cont = http11 and "HTTP_EXPECT" in env and env["HTTP_EXPECT"].lower() == "100-continue"
            inp = Input(conn.sock, rest, length, chunked, cont)
            env["wsgi.input"] = inp
        else:
            inp = None
            env["wsgi.input"] = _EMPTY_INPUT

        resp = Response(conn.sock, m == "HEAD", http11, keep, inp, env)
        if not self.call(env, resp, inp):
            return None
        if inp is not None:
            return inp.finish()
        return rest

    def call(self, env, resp, inp):
        """Run the application for one request; return whether to keep the connection."""
        result = None
        ok = False
        stopped = None  # the Abandoned that stopped the answer: the proxy left mid-answer
        sent = False  # the body went out with sendfile
        try:
            try:
                result = self.app(env, resp.start_response)
                if type(result) is list:
                    if resp.status is not None and resp.mode is None:
                        total = 0
                        for data in result:
                            if type(data) is not bytes:
                                if not isinstance(data, bytes):
                                    resp.write(data)  # raises TypeError before anything is sent
                                break
                            total += len(data)
                        else:
                            resp.hint = total
                elif type(result) is FileWrapper:
                    sent = resp.status is not None and resp.mode is None and resp.send_file(result)
                elif type(result) in _NOT_BODIES and (result is None or result):
                    # Iterated, bytes give ints and a str 1-character strs: say what
                    # the app did. (An empty one, after write(), iterates as nothing.)
                    if result is None:
                        raise TypeError("the application returned None, not an iterable of bytes")
                    raise TypeError("the application returned %s, not an iterable of bytes (return [body])" % type(result).__name__)
                write = resp.write
                if not sent and resp.mode != _NOBODY:  # write() may have sent a bodiless head
                    # A stream (not a list, whose chunks are all there) looks
                    # between chunks, LOOK_EVERY at most, whether the proxy
                    # gave up on it (its client went away): the iterable is
                    # then closed (PEP 3333), so that an endless one (server-
                    # sent events) does not hold the process for ever.
                    stream = type(result) is not list
                    if stream:
                        resp.stay()  # the clock starts, unless write() started it
                    for data in result:
                        if stream:
                            resp.stay()
                        write(data)
                        if resp.mode == _NOBODY:
                            break  # nothing more goes out: stop (a HEAD to an endless stream)
                resp.finish()
                ok = True
                _streak_ends()
            except Abandoned as e:
                # Said before the iterable's close(), whose own error, if
                # it raises one, is said after (without the Abandoned it
                # met, said already).
                stopped = e
                _log_stopped(env, result, e)
                raise
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    if ok or stopped:
                        try:
                            close()
                        except Exception as e:
                            if stopped:
                                _cut_context(e, stopped)
                            _log_app_error(env, "closing the iterable of the stopped answer to" if stopped else "serving")
                    else:
                        close()
        except ClientDisconnected:  # Abandoned too: said above
            return False
        except Exception:
            _log_app_error(env)
            if resp.mode is not None:
                return False  # the headers are out: only closing tells the client
            try:
                return resp.error(inp)
            except ClientDisconnected:
                return False
        except SystemExit:
            # As under gunicorn, the process exits (the pool starts another),
            # but Python would print nothing: say where and why.
            _log_app_error(env)
            sys.stderr.write("ferry-wsgi: the application raised SystemExit: the process exits\n")
            raise
        return resp.keep


_NOT_BODIES = frozenset((type(None), bytes, bytearray, str))


# The application's error said last, as (its line, its traceback), how
# many times in a row it came, and when its traceback was said in full
# last: a request that fails the same way again (the readinessPath, which
# the agent asks until startTimeout, ten times a second; a client
# retrying) gets its traceback once a streak, and a line at each power of
# two. A streak ends at a request served (_streak_ends) or a different
# error. Fewer lines keep the traceback in the last lines a failed spawn
# shows, too.
_streak = [None, 0, 0.0]

# A failure of the streak that comes STREAK_RESAY seconds or more after its
# last traceback is said in full again, with the count: the lines at
# powers of two grow ever further apart (an app failing the same way for
# hours would say its traceback once, at the start), and an operator who
# looks at the log now should find the traceback in its last minute or so,
# as the agent says queue refusals once a minute. The time is the
# traceback's alone: the short lines at powers of two leave it, or an app
# failing ten times a second (the readinessPath) would have its traceback
# pushed back by each (at 2, 4, ... 512 failures) and say it again only
# once the short lines are a minute apart, some 2.7 minutes on. An app
# failing once a minute or less often has each failure in full; one failing
# more often has a traceback about a minute, with the short lines between.
# A constant, not a setting, as the refusals' minute is (tests alone set
# it, on the loader's command line: main).
STREAK_RESAY = 60.0


def _log_app_error(env, doing="serving"):
    e = sys.exc_info()[1]
    what = "ferry-wsgi: error %s %s %s" % (doing, env.get("REQUEST_METHOD"), env.get("REQUEST_URI"))
    tb = _format_traceback(e)
    now = time.monotonic()
    if _streak[0] == (what, tb):
        n = _streak[1] = _streak[1] + 1
        if now - _streak[2] >= STREAK_RESAY:
            _streak[2] = now
            sys.stderr.write(
                "%s: same as before, %d times in a row; in full again, %g s or more since the last traceback\n%s"
                % (what, n, STREAK_RESAY, tb)
            )
            sys.stderr.flush()
        elif n & (n - 1) == 0:
            # Not the streak's time: that is the last traceback's.
            sys.stderr.write(
                "%s: same as before (%s), %d times in a row; next said at %d, or in full once %g s have passed since the last traceback\n"
                % (what, _summary(e), n, 2 * n, STREAK_RESAY)
            )
            sys.stderr.flush()
        return
    _streak[0], _streak[1], _streak[2] = (what, tb), 1, now
    sys.stderr.write(what + "\n" + tb)
    sys.stderr.flush()


def _streak_ends():
    _streak[0] = None


def _cut_context(e, said):
    """Take the exception said out of e's chain of contexts."""
    while e is not None:
        if e.__context__ is said:
            e.__context__ = None
            return
        e = e.__context__


def _log_stopped(env, result, stopped):
    """Say that an answer was stopped partway, its client gone, and how the application heard of it."""
    if result is None:
        how = "its write() raised an OSError (Abandoned) in the application"
    elif getattr(stopped, "in_write", False):
        # The application's iterable called write(), and let its error through.
        how = "its write() raised an OSError (Abandoned) in the application's iterable, which let it through; the iterable is %s" % (
            "dropped" if getattr(result, "close", None) is None else "closed")
    elif getattr(result, "close", None) is None:
        how = "the rest of the application's iterable is dropped"
    else:
        how = "the application's iterable is closed"
    sys.stderr.write(
        "ferry-wsgi: stopped the answer to %s %s partway: its client went away (the proxy closed the connection); %s\n"
        % (env.get("REQUEST_METHOD"), env.get("PATH_INFO"), how)
    )
    sys.stderr.flush()


# ---------------------------------------------------------------------------
# Start-up.


def _load_app(root, startup):
    path = os.path.join(root, startup)
    if not os.path.exists(path):
        _no_startup_file(root, startup)
    if os.path.isdir(path):
        raise LoadError("app.startupFile %s: a directory in app.root %s, not a file" % (startup, root))
    module = _import_startup(root, startup, path)
    app = getattr(module, "application", None)
    if app is None:
        raise LoadError("%s does not define 'application'%s" % (startup, _found_instead(module, startup)))
    if not callable(app):
        raise LoadError("%s: 'application' is not callable (it is %s)" % (startup, _a(type(app).__name__)))
    refused = _cannot_serve(app)
    if refused:
        raise LoadError("%s: 'application' cannot be called as application(environ, start_response): %s" % (startup, refused))
    return app


def _import_startup(root, startup, path):
    """Import the startup file: as a module of its package if it is in one (shop/wsgi.py as shop.wsgi), else top-level."""
    stem = os.path.basename(startup).split(".")[0]
    package = _package_of(root, startup)
    if package and stem.isidentifier():
        parent = importlib.import_module(package)
        if stem == "__init__":
            return parent  # the package itself, run once
        name = package + "." + stem
        module = sys.modules.get(name)
        if module is not None and os.path.realpath(getattr(module, "__file__", None) or "") == os.path.realpath(path):
            return module  # the package imported it already
        if module is None:
            module = _exec_file(name, path)
            setattr(parent, stem, module)
            return module
    name = re.sub(r"\W", "_", stem) or "ferry_app"
    if name in sys.modules or not name.isidentifier() or not _names_only(name, path):
        name = "ferry_app_" + name
    try:
        return _exec_file(name, path)
    except ImportError as e:
        hint = _outside_its_package(root, startup, path, e)
        if hint:
            raise LoadError(hint) from e
        raise


def _exec_file(name, path):
    """Run the file at path as the module name (a package's module, if name is dotted)."""
    loader = SourceFileLoader(name, path)  # any suffix, e.g. app.wsgi
    spec = spec_from_file_location(name, path, loader=loader)
    module = module_from_spec(spec)
    sys.modules[name] = module
    try:
        loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def _package_of(root, startup):
    """The package the startup file is a module of, as imported from root: "shop" for shop/wsgi.py; "" if none.

    Its package directories (_package_dirs), if the outermost of them is
    what its name imports (root is first on sys.path; a package of that
    name imported already or built in comes first).
    """
    above, names = _package_dirs(root, startup)
    if not names or _spec_file(names[0]) != os.path.realpath(os.path.join(root, *above, names[0], "__init__.py")):
        return ""
    return ".".join(names)


def _package_dirs(root, startup):
    """The directories above the startup file that are packages, and those above them, up to root (not root itself).

    (["src"], ["shop"]) for src/shop/wsgi.py when src/shop holds an
    __init__.py and src does not.
    """
    above = startup.split("/")[:-1]
    names = []
    while above and above[-1].isidentifier() and os.path.isfile(os.path.join(root, *above, "__init__.py")):
        names.insert(0, above.pop())
    return above, names


def _outside_its_package(root, startup, path, e):
    """What to do about a startup file's own relative import that failed as it was not loaded in its package; "" if e is not that."""
    tb = e.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if "no known parent package" not in str(e) or tb is None or tb.tb_frame.f_code.co_filename != path:
        return ""
    above, names = _package_dirs(root, startup)
    if not names:
        return ""
    found = _spec_file(names[0])
    if found == "":
        why = "finds nothing"
        fix = "put its parent on the path (env PYTHONPATH=%s, relative to root), or import absolutely" % ("/".join(above) or ".")
    else:
        why = "finds %s first" % (os.path.relpath(found, root) if found and found.startswith(root + "/") else found or "a module built in")
        fix = "rename one of them, or import absolutely"
    return "%s: %s: %s is a package directory, but importing %s from root %s, so the file was loaded as a top-level module: %s" % (
        startup, e, "/".join(above + names), names[0], why, fix)


# The names Flask's command line looks for an application factory under.
FACTORY_NAMES = ("create_app", "make_app")


def _found_instead(module, startup):
    """What a startup file without 'application' defines that could be it, and the line to add."""
    apps = [name for name, v in vars(module).items() if not name.startswith("_") and _looks_wsgi(v, module.__name__)]
    if apps:
        return "; it defines %s, which look%s like a WSGI application: add 'application = %s' to %s (Ferry calls 'application'; no AppGroup field names another)" % (
            ", ".join("%s (%s)" % (name, _kind(getattr(module, name))) for name in apps),
            "" if len(apps) > 1 else "s",
            apps[0] if len(apps) == 1 else "<the one to serve>",
            startup,
        )
    for name in FACTORY_NAMES:
        v = getattr(module, name, None)
        if v is not None and _binds(v, ()):
            return "; it defines %s, an application factory: add 'application = %s()' to %s" % (name, name, startup)
    return ": define application(environ, start_response), or assign your application to it"


def _looks_wsgi(v, module_name):
    """Whether v looks like a WSGI application: it can be called with two arguments, and not one.

    A function only if the startup file defines it (not one it imported to
    use); an object as long as its class is no module, class or function.
    """
    try:
        if isinstance(v, (type, types.ModuleType)) or not callable(v):
            return False
        if isinstance(v, (types.FunctionType, types.BuiltinFunctionType)) and getattr(v, "__module__", None) != module_name:
            return False
    except Exception:  # a proxy, as in _signature
        return False
    return _binds(v, (None, None)) is True and _binds(v, (None,)) is False


def _cannot_serve(app):
    """Why app cannot be called with two arguments, and what to do; None if it can, or inspect cannot tell.

    An application factory assigned uncalled ("application = create_app")
    imports fine and fails every request: refused here, it fails the spawn.
    """
    sig = _signature(app)
    if sig is None or _bind_error(sig, (None, None)) is None:
        return None
    name = getattr(app, "__name__", None)
    if isinstance(name, str) and name.isidentifier():
        what = "it is %s%s" % (name, sig)
    else:
        what = "it is %s taking %s" % (_kind(app), sig)
    what += " (%s)" % _bind_error(sig, (None, None))
    if name and _bind_error(sig, ()) is None:
        return what + "; if %s makes the application, call it: application = %s()" % (name, name)
    return what + "; a WSGI application takes (environ, start_response)"


def _signature(f):
    """f's signature, as written (not that of the function a decorator wrapped); None when inspect cannot read it.

    Reading it may raise anything: a proxy (werkzeug's LocalProxy, as
    flask.current_app) looks its attributes up on what it stands for,
    which outside a request is nothing.
    """
    try:
        return inspect.signature(f, follow_wrapped=False)
    except Exception:
        return None


def _bind_error(sig, args):
    """Why a callable of signature sig cannot take args; None if it can."""
    try:
        sig.bind(*args)
    except TypeError as e:
        return str(e)
    return None


def _binds(f, args):
    """Whether f can be called with args: True, False, or None when inspect cannot tell (a builtin, say)."""
    sig = _signature(f)
    if sig is None:
        return None
    return _bind_error(sig, args) is None


def _kind(v):
    """What v is, for a message: "a function", "a Flask object"."""
    if isinstance(v, (types.FunctionType, types.BuiltinFunctionType, types.MethodType)):
        return "a function"
    return _a(type(v).__name__) + " object"


def _a(word):
    """word with its indefinite article: "a Flask", "an int"."""
    return ("an " if word[:1] in "aeiouAEIOU" else "a ") + word


def _no_startup_file(root, startup):
    """Raise a LoadError for a missing startup file, naming the field and the root.

    The agent checks before it spawns; this is for a file removed since.
    Written as a module name whose file is there, "mysite.wsgi" (or
    gunicorn's "mysite.wsgi:application") for mysite/wsgi.py, it says so.
    """
    msg = "app.startupFile %s: no such file in app.root %s" % (startup, root)
    meant = _module_file(startup)
    if meant is not None and os.path.isfile(os.path.join(root, meant)):
        msg += "; startupFile is a path, not a module name: did you mean %s?" % meant
    raise LoadError(msg)


def _module_file(startup):
    """The file a module name, as gunicorn takes it ("mysite.wsgi:application"), stands for: "mysite/wsgi.py".

    None when startup is not a module name.
    """
    module = startup.partition(":")[0]
    parts = module.split(".")
    if not all(p.isidentifier() for p in parts):
        return None
    return "/".join(parts) + ".py"


def _names_only(name, path):
    """Whether importing name finds nothing but the startup file at path.

    A startup file named like a package it imports ("yourapplication.wsgi"
    doing "from yourapplication import app") must not take that name.
    """
    found = _spec_file(name)
    return found == "" or found == os.path.realpath(path)


def _spec_file(name):
    """The file, symlinks resolved, that importing the top-level name would run.

    "" if nothing; None if it cannot be told (finding it fails, or it is
    built in).
    """
    try:
        spec = find_spec(name)
    except Exception:
        return None
    if spec is None:
        return ""
    if not spec.has_location or spec.origin is None:
        return None
    return os.path.realpath(spec.origin)


def _listen(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        lsock.bind(path)
        lsock.listen(BACKLOG)
        lsock.setblocking(False)
    except BaseException:
        lsock.close()
        raise
    return lsock


def _summary(e):
    if isinstance(e, LoadError):
        s = str(e)
    else:
        t = type(e)
        name = t.__qualname__
        if t.__module__ not in ("builtins", "__main__"):
            name = t.__module__ + "." + name
        try:
            msg = str(e)
        except Exception:
            msg = ""
        s = name + ": " + msg if msg else name
    s = " ".join(s.splitlines())
    return s if len(s) <= 1000 else s[:997] + "..."


def _format_traceback(e):
    """The traceback without the loader's and importlib's own frames.

    Those of the exceptions it chains (its cause or context, an exception
    group's members) too: an app that raises its own error while handling
    one the loader raised (reading a malformed upload) shows both.
    """
    here = os.path.abspath(__file__)
    te = traceback.TracebackException(type(e), e, e.__traceback__)
    todo = [te]
    seen = set()
    while todo:
        t = todo.pop()
        if t is None or id(t) in seen:
            continue
        seen.add(id(t))
        t.stack = traceback.StackSummary.from_list(
            [f for f in t.stack if f.filename != here and not f.filename.startswith("<frozen importlib")]
        )
        todo += (t.__cause__, t.__context__)
        todo += getattr(t, "exceptions", None) or ()  # an ExceptionGroup's (3.11)
    return "".join(te.format())


# The argument that sets STREAK_RESAY, for tests only (main).
TEST_STREAK_RESAY_FLAG = "--test-streak-resay="


def _take_flag(argv, flag):
    """The value of flag ("--name=") in argv after argv[0], or None.

    Every argument that starts with flag is removed from argv, in place;
    the last one's value counts.
    """
    value = None
    rest = argv[:1]
    for a in argv[1:]:
        if a.startswith(flag):
            value = a[len(flag) :]
        else:
            rest.append(a)
    argv[:] = rest
    return value


def _report(fd, message):
    if fd < 0:
        return
    data = (json.dumps(message) + "\n").encode("utf-8")
    try:
        while data:
            data = data[os.write(fd, data) :]
    except OSError as e:
        sys.stderr.write("ferry-wsgi: cannot write to the ready fd %d: %s\n" % (fd, e))
    try:
        os.close(fd)
    except OSError:
        pass


def main():
    global STREAK_RESAY
    env = os.environ
    try:
        ready_fd = int(env.pop("FERRY_READY_FD", "-1"))
    except ValueError:
        ready_fd = -1
    if ready_fd >= 0:
        try:
            os.set_inheritable(ready_fd, False)  # not into the app's own children
        except OSError:
            sys.stderr.write("ferry-wsgi: FERRY_READY_FD %d is not open\n" % ready_fd)
            ready_fd = -1

    # Tests only: a STREAK_RESAY short enough to wait out, given as
    # --test-streak-resay=SECONDS after the loader's path. On the command
    # line, not in the environment: an AppGroup's spec.app.env reaches the
    # environment (a FERRY_ name the agent does not set is the app's), so
    # an app could set the bound in production, while the agent's command
    # line (Options.Argv) has no argument after the path. Taken out of
    # sys.argv before the app loads: the app sees the agent's argv.
    resay = _take_flag(sys.argv, TEST_STREAK_RESAY_FLAG)
    if resay is not None:
        # A value that is no number of seconds is ignored with a line, not
        # raised: here, before the try below, it would kill the loader with
        # a bare traceback before it reports to the agent.
        try:
            seconds = float(resay)
        except ValueError:
            seconds = float("nan")
        if seconds >= 0:  # not NaN, not negative
            STREAK_RESAY = seconds
        else:
            sys.stderr.write(
                "ferry-wsgi: %s%r is no number of seconds; ignored, the bound stays %g s\n"
                % (TEST_STREAK_RESAY_FLAG, resay, STREAK_RESAY)
            )

    sock_path = None
    try:
        # Pin the release directory: if root is a symlink a deploy tool swaps
        # later, this process must keep importing its own revision's code.
        root = os.path.realpath(env.get("FERRY_APP_ROOT") or os.getcwd())
        startup = env.get("FERRY_STARTUP_FILE") or "passenger_wsgi.py"
        sock_path = env.get("FERRY_SOCKET")
        if not sock_path:
            raise LoadError("FERRY_SOCKET is not set")
        os.chdir(root)
        here = os.path.dirname(os.path.realpath(__file__))
        if sys.path and os.path.realpath(sys.path[0] or ".") == here:
            del sys.path[0]  # the loader's own directory is nothing the app should import from
        sys.path.insert(0, root)
        app = _load_app(root, startup)
        lsock = _listen(sock_path)
    except BaseException as e:
        tb = _format_traceback(e)
        try:
            sys.stderr.write(tb)
            sys.stderr.flush()
        except Exception:
            pass
        if len(tb) > TRACEBACK_LIMIT:
            tb = "...\n" + tb[-TRACEBACK_LIMIT:]
        _report(ready_fd, {"error": _summary(e), "traceback": tb})
        os._exit(1)  # not sys.exit: threads the app started must not keep us alive

    # lstat: the app may have put a link in the socket's place already (its
    # threads run), which stat would follow, perhaps into a directory the
    # worker may not enter (a PermissionError, a traceback). The agent
    # refuses such a socket once told the worker is ready.
    inode = os.lstat(sock_path).st_ino
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    server = Server(app, lsock, wake_r)
    gc.collect()
    gc.freeze()  # the app's import-time objects are long-lived: keep them out of GC passes
    _report(ready_fd, {"ready": True, "pid": os.getpid()})
    server.run()
    try:
        if os.lstat(sock_path).st_ino == inode:
            os.unlink(sock_path)
    except OSError:
        pass
    sys.stdout.flush()
    sys.stderr.flush()
    sys.exit(0)


if __name__ == "__main__":
    main()
