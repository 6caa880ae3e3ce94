// Package proxy is the agent's Passenger-like front: an HTTP server per
// AppGroup that queues each request in the pool until a worker is free and
// forwards it with httputil.ReverseProxy (Rewrite, not Director).
//
// What it guarantees:
//   - hop-by-hop headers never reach a worker; X-Forwarded-For, -Proto and
//     -Host are set (by default the client address replaces any
//     X-Forwarded-For the client sent: see Options.TrustForwardedFor);
//   - request and response bodies stream; upgrades (WebSocket) pass through;
//   - a request whose connection to a worker failed before any byte was
//     sent is retried on another worker; once a byte was sent it is never
//     replayed (Go's transport would replay an idempotent request whose
//     keep-alive connection died, which would hand a request that crashed
//     one worker to the next: the proxy forbids that replay);
//   - every refusal is explicit: 503 with Retry-After when the queue is full
//     or nothing can be spawned, 504 after the queue timeout, 502 with a
//     body naming the worker when it died mid-request;
//   - Shutdown drains in-flight requests, upgraded ones included.
//
// The request path takes one session from a sync.Pool, the pool's mutex
// twice (Acquire, Release), and allocates what ReverseProxy does plus two
// context values (the session and its httptrace hooks).
package proxy
