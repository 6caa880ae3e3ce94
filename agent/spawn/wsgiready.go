package spawn

import (
	"context"
	"net"
	"net/http"
)

// wsgiProbeHost is the Host of a WSGI worker's readiness probe. An app
// that checks it (Django's ALLOWED_HOSTS) must allow it: a refusal (400)
// is below 500, so it counts as ready without reaching the app's views.
const wsgiProbeHost = "localhost"

// waitWSGIReady GETs the app's readiness path from a WSGI worker whose
// loader has reported the app imported, over the worker's socket, until
// it answers below 500: an app may import fine and fail every request (a
// Django project loads its URLconf and views at the first request). It
// polls as waitCommandReady does (pollReady), with the same probe, and
// returns at once when path is empty. Past ctx's deadline the error says
// what the last probe found (an unreadyError); a worker that exits
// meanwhile is an exit before it was ready.
func waitWSGIReady(ctx context.Context, proc *Process, path string) error {
	if path == "" {
		return nil
	}
	return pollReady(ctx, proc, path, readyPoll{
		client: probeClient(&http.Transport{DisableKeepAlives: true, Proxy: nil,
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, proc.Network, proc.Address)
			}}),
		host:       wsgiProbeHost,
		theWorkers: func() bool { return true }, // its socket is the worker's own
		seen: func(last sighting) string {
			return last.describe(proc.Address, path, 0, "")
		},
	})
}
