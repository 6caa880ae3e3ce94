// Package loadgen is Ferry's HTTP load generator. Benchmarks use it to measure
// worker restarts under load, and the agent's tests use it to run continuous
// load through a rolling restart and assert that no request failed and which
// worker PIDs answered.
//
// It implements the measurement protocol of the peer baseline
// (shared/peers-baseline.md, "Definitions (loadgen)") so that Ferry's numbers
// compare directly with the Passenger, gunicorn and uWSGI figures there.
//
// # Load model
//
// Run starts Config.Clients closed-loop clients. Client c sends to
// URLs[c % len(URLs)] over its own http.Transport limited to one connection
// (MaxConnsPerHost = 1, MaxIdleConnsPerHost = 1), so each client holds at most
// one keep-alive connection, and a client never has more than one request in
// flight. Compression, proxies from the environment and redirects are off:
// what the server sends is what is measured. After a failed request a client
// sleeps Config.FailureSleep (10 ms by default) so a refused port cannot
// inflate the failure count by spinning.
//
// Every completed request becomes a [Record]. Records are appended to
// per-client slices without locks and merged when the run ends. When the
// Duration elapses, clients stop sending and the requests in flight complete
// (bounded by Config.Timeout) and are recorded. When the caller's context is
// cancelled, the requests in flight are aborted and not recorded; they are
// counted in Result.Aborted.
//
// The worker PID of a response is read from the Config.PIDHeader header
// ("X-Pid" by default) or, when the header is absent, from a body that is a
// decimal number (surrounding white space allowed). Bodies are always read to
// the end so the connection can be reused.
//
// The hot path takes no lock: each client reuses one *http.Request (its
// per-request timeout comes from http.Client.Timeout, which clones the request
// internally), reads the PID without allocating and appends to its own
// pre-sized record slice. OnRecord, when set, is called from the client
// goroutines.
//
// Requests the Go transport silently re-sent on a fresh connection (a reused
// keep-alive connection turned out to be dead) are flagged Record.Retried and
// counted separately; they are not failures unless the re-sent request failed
// too.
//
// # Definitions
//
// [Result.Report] computes every figure the peer baseline defines. It is a pure
// function of Records, End and the trigger times, so a hand-built Result pins
// the definitions in tests. A test that drives a restart itself, without
// Config.Trigger, can set Result.Triggered, TriggerStart and TriggerEnd
// (offsets from Result.Start) before calling Report to get the same figures. All times are offsets
// from the start of the run; T is the start of the trigger.
//
//   - A request succeeded if it got a 2xx status and its body was read
//     without error. Otherwise it failed, and Record.Kind says how.
//   - PIDs are taken from successful responses only. Old PIDs answered before
//     T (some successful response ended before T). New PIDs were first seen at
//     or after T and are not old.
//   - Restart done D = max(first response of the last new PID, last response
//     of any old PID). Restart duration = D - T. It is defined only when a new
//     PID appeared; otherwise it is reported as zero and RestartDone is false.
//   - Restart window: [T, W] with W = D + 2 s, or, if no new PID appeared,
//     W = trigger exit + 5 s. W is capped at the end of the run.
//   - Steady window: successful requests that completed before T (all
//     successful requests when there is no trigger).
//   - Restart-window requests: those in flight at any moment of [T, W], that
//     is Start <= W and End >= T.
//   - Max latency: over every request, failed ones included.
//   - Longest gap: the longest interval in which no request completed
//     successfully. Over the whole run it runs from the start of the run to the
//     end of the run (when the last client stopped); in the restart window it
//     runs from T to W. The boundaries count: a server that never answers
//     after T gives a gap that ends at W.
//   - PIDs replaced: old PIDs that are absent among the PIDs answering
//     (successfully) after W. When W was capped at the end of the run nothing
//     answers after W, so every old PID counts as replaced; the report flags
//     this as WindowCapped and the figure is then unverified.
//   - New conns / requests: requests for which the transport dialled a new
//     connection (httptrace GotConnInfo.Reused == false), divided by requests.
//   - Transport retries: requests for which GotConn fired more than once or
//     the request write failed (httptrace WroteRequestInfo.Err != nil).
//
// Percentiles use the nearest-rank method on the sorted latencies: the p-th
// percentile of n values is the value at rank ceil(p/100 * n) (1-based).
// It is always an observed latency, never an interpolation; with fewer than
// 100 values p99 is the maximum.
//
// Latency is End - Start of a request, measured around http.Client.Do plus
// reading the body, so it includes connection setup and transport retries.
//
// The per-second series buckets requests by completion time: bucket i holds
// requests that ended in [i s, (i+1) s). Its p50 is over the successful ones,
// its max over all of them.
package loadgen
