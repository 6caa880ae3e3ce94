// Package proxy is the agent's Passenger-like front: an HTTP server per
// AppGroup that queues each request in the pool until a worker is free and
// forwards it over the worker's own transport: persistent connections used
// on the request's goroutine, without http.Transport's per-connection
// goroutines.
//
// Two servers share the listener. The front end (front.go, head.go,
// reply.go) serves the requests most traffic is made of, HTTP/1.1 without
// a body, itself: it checks the head strictly, writes it to the worker
// from its own buffer and the response back without net/http's server in
// between. Every other request (a body, HTTP/1.0, an upgrade, anything
// malformed or unusual) is handed, with its connection, to net/http's
// server, which serves it as before (forward.go; upgrades through
// httputil.ReverseProxy) or rejects it. Both paths give the same
// guarantees; TestFrontEndTakesOrLeaves and FuzzParseHead hold the front
// end's worker requests to net/http's path's.
//
// What it guarantees:
//   - hop-by-hop headers never reach a worker, nor Expect (the proxy meets
//     a 100-continue itself), nor a request trailer that RFC 9110 keeps
//     out of trailers (framing, routing, request modifiers, credentials,
//     a field the head's Connection names: trailerKept);
//     X-Forwarded-For, -Proto and -Host are set (by default the client
//     address replaces any X-Forwarded-For the client sent, and -Proto is
//     http: see Options.TrustForwardedFor); a client's X-Real-IP, X-Forwarded-Ssl,
//     -Port, -Prefix and -Scheme reach it only when trusted, and any of
//     these eight names spelt with underscores (X_Real_IP,
//     X_Forwarded_For) never;
//   - a request body is read before the request queues, up to the app's
//     limit (spool.go: a slow upload holds no worker, an abandoned one
//     never reaches one), in files while the agent's RequestDisk lasts;
//     past the limit or the budget, or with buffering off, it streams,
//     and a worker may answer while it still comes in;
//   - a response body of a declared length up to the app's limit is read
//     whole before it is written (buffer.go: a slow client holds no
//     worker), while the agent's ResponseMemory lasts; a larger or
//     chunked one streams; trailers pass, but none that RFC 9110 keeps
//     out of trailers (framing, caching, content fields, Set-Cookie,
//     WWW-Authenticate: trailerKept), in the Trailer field too; interim
//     1xx responses are read past, not passed on; upgrades (WebSocket)
//     pass through, and one cut as the agent stops its worker is logged
//     (upgradedConn.end);
//   - a request whose connection to a worker failed before any byte was
//     sent is retried on another worker; once a byte was sent it never
//     goes to another worker: a request that crashed one worker must not
//     crash the next. (Go's transport replays an idempotent request whose
//     kept connection died; a replay the dead worker refused would look
//     unsent and be retried on the next worker.) An idle connection the
//     worker closed is noticed before reuse (a non-blocking peek). When
//     the worker closes it between that peek and the write, before any
//     byte of an answer, a safe request (GET, HEAD, OPTIONS, TRACE, no
//     body) is replayed once, to the same worker on a new connection
//     (staleConnError); if the replay fails too, the request goes to no
//     other worker. Any other request gets a 502;
//   - a worker that has sent no response head within maxRequestTime of
//     the request (of its body's last byte, for a body that streams from
//     the client; a write of which the worker reads none of within it
//     counts as no answer) is killed by its pool (Router.Overran) and its client
//     answered 504; so is one that has not sent the whole of a body the
//     proxy buffers by then, which no client paces (workerConn.boundBody;
//     past the limit the proxy takes what had reached it, unread, and
//     more only while the body flows, lateStep apart, for lateGrace at
//     most: readLate); a response that
//     goes to the client as it comes is not bound once its head came, so
//     a slow client never gets a worker killed (workerConn.bound: a read
//     deadline on the worker connection, lifted when the head came);
//   - every refusal is explicit: 503 with Retry-After when the queue is full
//     or nothing can be spawned, 504 after the queue timeout (the full
//     queue's 503 and this 504 logged once a minute at most, with a
//     count: refusals), 502 with a
//     body naming the worker when it died mid-request (or closed its
//     connection without an answer, which is not called an exit; or
//     failed after its head, before any of the answer reached the
//     client: answerFailed, respond, whose heads wait for the body's
//     first bytes up to headWait, and go out alone after it, and with
//     what came when the worker paused that long after it:
//     workerConn.readOrFlush), 400
//     (connection closed) when the client's body is malformed, which also
//     frees the worker at once, 408 (connection closed) when a body stalls
//     (nothing of it for RequestBodyTimeout: a buffered one before it
//     queues, one that streams with its worker's connection closed and
//     its slot freed; once that worker began its answer, the client's
//     connection is closed instead: idleBody), 400 (connection closed)
//     when a head the front end reads has both Content-Length and
//     Transfer-Encoding, or is HTTP/1.0 with Transfer-Encoding
//     (badFraming; after any chunked request, and any HTTP/1.0 one with
//     a Transfer-Encoding net/http dropped, spotted in the connection's
//     bytes (http10Kept), and any request once a folded
//     Transfer-Encoding line came (framingKept), the connection is closed, so that nothing
//     smuggled after it is read as a request; an HTTP/1.0 one without
//     keeps it when it asks to), 400 (connection closed) to more empty
//     lines before a request line than the front end skips
//     (maxEmptyLines), 400 to a target that is neither a path nor
//     an absolute URL (targetServed), 405 (connection closed) to CONNECT
//     and 505 (connection closed) to h2c's "PRI * HTTP/2.0", neither given to a worker
//     (notServed); a client found gone gets no answer (499 in the metrics,
//     its connection closed), never one net/http would make up;
//   - a client that goes away while its request waits (queued, or at a
//     slow worker) takes the request with it: out of the queue, or off
//     the worker (its connection closed); for a request whose body
//     streams, only once a worker takes it and its body is read, as
//     net/http reads no connection while a body is unread. A worker
//     that serves one request at a time and got the whole request is
//     still at it, and gets its slot back only once its answer has
//     ended (read and dropped to where its length or last chunk says, or
//     to the close without either: an interim 1xx is no answer), it closes
//     the connection (half-closed for it, as the client did, so a server
//     that notices may stop), it dies, or maxRequestTime kills it (for
//     the head, then again for the rest: abandon.go); so does one whose
//     client goes away partway through the answer (maxRequestTime
//     counted from the leaving);
//   - nothing is invented: a response without Content-Type gets none (Go's
//     server would sniff one), only a missing Date is added;
//   - a worker's response head is bounded (10 MiB, five interim responses);
//   - a client that takes none of a response written to it for
//     SendTimeout has its connection closed, freeing a worker its
//     streaming response held (send.go);
//   - Shutdown drains in-flight requests, upgraded ones included.
//
// The front end's request path takes one session from a sync.Pool, the
// pool's mutex twice (Acquire, Release) and the worker transport's twice
// (take and return a connection), and hashes the request's method and
// path for the pool (pool.KeyOfBytes, some 10 ns, no allocation), which
// tells a request of death from a crash loop by it. A plain worker
// response (a length, no trailers: relay.go) is relayed from the
// connection's buffer; any other is
// parsed by http.ReadResponse, which allocates. A plain response costs
// the front end about 3 allocations beyond the client's (BenchmarkRequest;
// net/http's path: about 40); the client's watch cancels a request at a
// worker through a mutex of the connection's, not a context hook. A request that
// waits longer than watchAfter also gets a goroutine that reads its
// connection to notice the client going away.
package proxy
