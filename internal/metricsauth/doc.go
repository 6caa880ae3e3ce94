// Package metricsauth guards a metrics endpoint as kubebuilder's secure
// metrics do: only a caller whose bearer token the API server authenticates
// (a TokenReview) and allows to get the non-resource URL /metrics (a
// SubjectAccessReview) reaches the wrapped handler.
//
// It stands in for controller-runtime's filters.WithAuthenticationAndAuthorization,
// which builds on k8s.io/apiserver's delegating authenticator and authorizer
// and with them links grpc and OpenTelemetry into both binaries (30 MB), and
// which answers a token the API server rejects with 500 and an error-level
// log line per request. Here:
//
//   - no token, or one the API server rejects: 401 with WWW-Authenticate: Bearer;
//   - a token whose user may not get /metrics: 403;
//   - a method other than GET and HEAD: 405, before any review (the
//     reviews are of get);
//   - a review that fails (API server unreachable, the reviews forbidden to
//     us): 500, logged at most once a minute, never with the token;
//   - decisions are cached by a hash of the token (allowed for a minute, so
//     that a scrape every 15-30 s costs about two reviews a minute; refused
//     for 10 s, so that a fixed binding is seen soon), in a bounded cache;
//   - tokens not allowed before are reviewed at 5 a second at most (past
//     that, 500 at once), so that a flood of made-up tokens costs the API
//     server little, while a token allowed before is reviewed again at
//     once when its decision expires, so that the flood cannot keep a
//     scraper out.
//
// The review calls are behind the Reviews interface (Filter's pure logic is
// tested with a fake); APIReviews makes them with client-go's typed clients.
package metricsauth
