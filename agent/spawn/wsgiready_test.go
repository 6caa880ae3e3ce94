package spawn

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	ferryv1 "github.com/ferry-dev/ferry/api/v1alpha1"
)

// TestSpawnWSGIWaitsForItsReadinessPath: a WSGI app that imports fine
// and fails at its first request (its views loaded then, as Django's
// are) is ready once loaded when it has no readiness path, as before;
// with one, its spawn fails, saying what the path answered and with the
// traceback the loader logged, rather than a process that answers 500
// to everything being taken as ready. One whose path answers below 500
// spawns, and one that exits in the probe's request is an exit.
func TestSpawnWSGIWaitsForItsReadinessPath(t *testing.T) {
	for _, tc := range []struct {
		name, views, path string
		reason            string // "": the spawn succeeds
		output            string // a fragment of the failed spawn's output
	}{
		{"healthy", "views", "/healthz", "", ""},
		{"broken views, no readiness path", "broken_views", "", "", ""},
		{"broken views", "broken_views", "/healthz",
			"not ready within startTimeout (10s): GET /healthz on {socket} answered 500 Internal Server Error until then " +
				"(readiness takes a status below 500)",
			"SyntaxError"},
		{"redirects to https", "redirect_views", "/healthz", "", ""}, // a 3xx is below 500: not followed
		{"exits in the probe's request", "exit_views", "/healthz?deep=1", "exited with status 3 before it was ready", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := testSpec(t, ferryv1.AppSpec{Type: ferryv1.AppTypeWSGI, Root: "testdata/lazyviews",
				StartupFile: "passenger_wsgi.py", ReadinessPath: tc.path, Env: []ferryv1.EnvVar{{Name: "VIEWS", Value: tc.views}}})
			spec.StartTimeout = 10 * time.Second // the broken case waits it whole; a loaded machine loads the app well within it
			p, err := Spawn(context.Background(), spec)
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("spawn failed: %v", err)
				}
				defer p.Stop(5 * time.Second)
				if tc.views != "views" {
					return
				}
				if body := get(t, p, "/healthz"); body != "ok\n" {
					t.Errorf("GET /healthz: %q, want ok", body)
				}
				return
			}
			if err == nil {
				p.Stop(5 * time.Second)
				t.Fatal("the spawn succeeded")
			}
			var se *Error
			if !errors.As(err, &se) {
				t.Fatalf("err = %v, want an *Error", err)
			}
			socket := regexp.MustCompile(regexp.QuoteMeta(spec.RunDir) + `/[0-9a-z]+\.[0-9a-z]+/s `) // makeSockDir's
			if got := socket.ReplaceAllString(se.Reason, "{socket} "); got != tc.reason {
				t.Errorf("reason %q,\nwant %q ({socket}: the worker's, in %s)", se.Reason, tc.reason, spec.RunDir)
			}
			if !strings.Contains(se.Output, tc.output) {
				t.Errorf("output %q, want %q in it", se.Output, tc.output)
			}
		})
	}
}

// TestRefusedWSGISocketNamesNoPort: a WSGI worker's socket that refuses
// the readiness probe is not told to listen on $PORT, which a WSGI app
// never sees (the loader listens for it); a Command app's is.
func TestRefusedWSGISocketNamesNoPort(t *testing.T) {
	refused := sighting{refused: true}
	if got, want := refused.describe("/run/w/s", "/healthz", 0, ""), "nothing accepted connections on /run/w/s"; got != want {
		t.Errorf("WSGI: %q, want %q", got, want)
	}
	if got, want := refused.describe("127.0.0.1:61000", "/healthz", 61000, ""),
		"nothing accepted connections on 127.0.0.1:61000 (the app must listen on $PORT, 61000)"; got != want {
		t.Errorf("Command: %q, want %q", got, want)
	}
}
