// Package proxy is the agent's Passenger-like front: an HTTP server per
// AppGroup that queues each request in the pool until a worker is free and
// forwards it over the worker's own transport: persistent connections used
// on the request's goroutine, without http.Transport's per-connection
// goroutines. The request head is written straight from the client's
// request (forward.go); only upgrades go through httputil.ReverseProxy
// (Rewrite, not Director), which handles the switch of protocols.
//
// What it guarantees:
//   - hop-by-hop headers never reach a worker; X-Forwarded-For, -Proto and
//     -Host are set (by default the client address replaces any
//     X-Forwarded-For the client sent: see Options.TrustForwardedFor);
//   - request and response bodies stream (a worker may answer while the
//     body still comes in); trailers pass; interim 1xx responses are read
//     past, not passed on; upgrades (WebSocket) pass through;
//   - a request whose connection to a worker failed before any byte was
//     sent is retried on another worker; once a byte was sent it is never
//     replayed (Go's transport would replay an idempotent request whose
//     keep-alive connection died, which would hand a request that crashed
//     one worker to the next). An idle connection the worker closed is
//     noticed before reuse (a non-blocking peek); one it closes in the
//     instant between that peek and the write costs the request a 502;
//   - every refusal is explicit: 503 with Retry-After when the queue is full
//     or nothing can be spawned, 504 after the queue timeout, 502 with a
//     body naming the worker when it died mid-request, 400 (connection
//     closed) when the client's body is malformed, which also frees the
//     worker at once;
//   - a worker's response head is bounded (10 MiB, five interim responses);
//   - Shutdown drains in-flight requests, upgraded ones included.
//
// The request path takes one session from a sync.Pool, the pool's mutex
// twice (Acquire, Release) and the worker transport's twice (take and
// return a connection); it allocates what the server's request parsing
// and http.ReadResponse do, the cancellation hook (context.AfterFunc), the
// response body's wrapper and two closures (the write, the retried send):
// about 40 allocations per request beyond the server's own
// (BenchmarkRequest).
package proxy
