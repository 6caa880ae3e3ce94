// Package wsgi holds Ferry's WSGI loader, the worker side of every WSGI app,
// and what the agent needs to start one and learn that it is ready.
//
// The loader is a standard-library-only Python 3 script (3.9 to 3.13),
// embedded in the agent and written to disk by Install. The spawner starts
// it like this:
//
//	path, err := wsgi.Install(dir)               // once per agent; idempotent
//	o := wsgi.Options{Root: root, StartupFile: "passenger_wsgi.py", Socket: sock, Revision: rev}
//	argv := o.Argv(path)                          // [python3 -u path]
//	cmd := exec.Command(argv[0], argv[1:]...)
//	cmd.Dir = o.Root
//	cmd.Env = append(baseEnv, o.Env()...)
//	r, w, _ := os.Pipe()
//	cmd.ExtraFiles = []*os.File{w}                // the child's fd 3 = ReadyFD
//	cmd.Start(); w.Close()                        // close the parent's write end
//	msg, err := wsgi.ReadMessage(r)               // r.SetReadDeadline bounds it
//
// The protocol:
//
//   - The loader writes exactly one JSON line on ReadyFD and closes it:
//     {"ready": true, "pid": N} once the application is imported and the Unix
//     socket at Options.Socket is listening (a stale file there is replaced);
//     {"error": "...", "traceback": "..."} when the startup file cannot be
//     imported, does not define a callable `application` that can take two
//     arguments (as far as inspect.signature can tell), or the socket cannot
//     be bound. After an error message it exits with status 1. ReadMessage
//     returns io.ErrUnexpectedEOF when the process dies before writing a
//     message (killed, interpreter missing, ...): the caller then reports the
//     exit status and the last lines of the process's output.
//   - Tracebacks (import errors and application errors during requests) also
//     go to stderr, which is also wsgi.errors. They leave out the loader's
//     and importlib's own frames, in every exception of a chain. Nothing is
//     logged per request.
//   - It serves HTTP/1.1 and HTTP/1.0 with keep-alive on the socket, one
//     request at a time from a single-threaded poll loop over every open
//     connection: several idle keep-alive connections are fine, requests on
//     them are served in turn.
//   - It trusts X-Forwarded-For (last entry → REMOTE_ADDR), X-Forwarded-Proto
//     (wsgi.url_scheme) and X-Forwarded-Host (SERVER_NAME, SERVER_PORT; else
//     Host): the proxy in front must set them, overwriting what clients sent
//     or appending to X-Forwarded-For. Request headers whose names contain "_"
//     and the Proxy header are dropped; a header that comes more than once is
//     one environ value, joined with ", " (Cookie with "; "). REQUEST_URI
//     and RAW_URI (gunicorn's) are the request target; RAW_URI keeps an
//     absolute-form target as it came. There is no REMOTE_PORT: the proxy
//     passes on no client port.
//   - Responses: the head goes out with the first non-empty body chunk (or
//     at the end), and the iterable's close() is always called. A response
//     without a body (HEAD, 204, 304) iterates no further than that chunk: a
//     HEAD to an endless stream ends. A status or header value holding a
//     control character other than HTAB fails start_response, as does a
//     1xx status (interim: the proxy would wait on for the final one). An error
//     before the head is a 500 and a traceback; after it, the connection is
//     closed. sys.exit() in a request ends the process, with its traceback.
//     A request body the application leaves unread is read and discarded
//     to keep the connection, up to 256 KiB; past that the connection is
//     closed after the answer, whose head says Connection: close (for a
//     chunked body, when the chunk sizes received by then show it).
//   - wsgi.file_wrapper: returned for a regular file (its fileno() works:
//     open(path, "rb"), a Django File, a temporary file), the file goes out
//     with sendfile, never read into Python, from its position (tell()):
//     as many bytes as the app's Content-Length says, else the rest of the
//     file, a length the head then says (so never chunked). A file that
//     ends first (shorter than said, or shrinking) closes the connection.
//     One sendfile refuses (EINVAL: /proc's, some FUSE file systems) is
//     read and sent from the same offset instead.
//     Any other file-like (BytesIO, a pipe, a text-mode file, a GzipFile,
//     whose fileno() is the compressed file's) is read in blksize pieces, no
//     further than the Content-Length (a text-mode file's str pieces are
//     the app's error, a 500: PEP 3333 wants bytes). HEAD, 204 and 304 never touch the
//     file; the wrapper's close() closes it. Wrapped in a middleware's own
//     iterable, the wrapper is just read.
//   - SIGTERM or SIGINT: the request in progress finishes (its response says
//     Connection: close), requests already received on other connections are
//     answered, then every connection is closed, the socket file removed and
//     the process exits 0. An idle loader exits at once. Threads the
//     application started and did not make daemons can delay the exit: the
//     spawner's shutdown timeout and SIGKILL cover that.
//   - The loader resolves symlinks in Options.Root once, at start, and
//     imports only from there: swapping a "current" symlink later does not
//     change what a running worker imports. Resolve it in the spawner too
//     (filepath.EvalSymlinks) so that the revision you record matches.
//
// The loader keeps the environment it is given; Env adds only FERRY_*
// variables (FERRY_REVISION stays visible to the application).
package wsgi
